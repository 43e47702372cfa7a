"""The declared-setting rules (efficientnet_tpu/settings.py): wording and edges of each kind."""

import dataclasses

import pytest

from efficientnet_tpu import settings


def test_interval_edges_follow_open_and_closed_ends():
    rule = settings.between(0.0, 1.0, low_open=True)
    assert rule.describe() == "in (0, 1]"
    assert rule.accepts(1.0) and rule.accepts(1e-9)
    assert not rule.accepts(0.0) and not rule.accepts(1.0000001)
    assert not rule.accepts(float("nan")) and not rule.accepts(float("inf"))


def test_choices_error_names_the_setting_and_every_choice():
    with pytest.raises(ValueError, match=r"^--mode='tran' is not one of train, eval$"):
        settings.one_of(("train", "eval")).check("mode", "tran")


def test_bound_error_shows_the_value_and_the_note():
    rule = settings.between(0, 30, note="the reference scale is 0-10")
    with pytest.raises(ValueError, match=r"^--m must be in \[0, 30\] \(the reference scale is 0-10\), got 31$"):
        rule.check("m", 31.0)


def test_integer_rule_refuses_floats_and_bools():
    rule = settings.at_least(1, integer=True)
    assert rule.accepts(3) and not rule.accepts(3.0) and not rule.accepts(True)
    assert rule.describe() == ">= 1"


def test_none_is_left_to_the_field_type():
    assert settings.above(0).accepts(None)


def test_fields_carry_their_rule_into_help_and_checks():
    @dataclasses.dataclass
    class Options:
        size: int = settings.setting(8, "Image size.", settings.at_least(8, integer=True))
        name: str = settings.setting("a", "Which one.", settings.one_of("ab"))

    size, name = dataclasses.fields(Options)
    assert settings.help_of(size) == "Image size. [>= 8]"
    assert settings.help_of(name) == "Which one. [one of a, b]"
    settings.check_fields(Options())
    with pytest.raises(ValueError, match="^size must be >= 8, got 4$"):
        settings.check_fields(Options(size=4), prefix="")


def test_a_one_sided_float_bound_says_finite_because_inf_is_refused():
    assert settings.at_least(0.0).describe() == "a finite number >= 0"
    assert settings.above(0.0).describe() == "a finite number > 0"
    with pytest.raises(ValueError, match=r"^--lr must be a finite number > 0, got inf$"):
        settings.above(0.0).check("lr", float("inf"))


def test_choices_may_also_take_a_size_or_an_empty_value():
    groups = settings.one_of(("all", "reference"), sizes=True)
    assert groups.accepts("all") and groups.accepts("8") and groups.accepts(None)
    assert not any(groups.accepts(v) for v in ("0", "some", "-2", "²", ""))
    assert groups.describe() == "one of all, reference or a positive integer"
    method = settings.one_of(("a", "b"), empty="read from the path")
    assert method.accepts("") and method.accepts("a") and not method.accepts("c")
    with pytest.raises(ValueError, match=r"^--m='c' is not one of a, b; empty: read from the path$"):
        method.check("m", "c")


def test_check_values_checks_a_partial_layer_by_field_name():
    @dataclasses.dataclass
    class Options:
        size: int = settings.setting(8, "Image size.", settings.at_least(8, integer=True))
        name: str = settings.setting("a", "Which one.")

    fields = {f.name: f for f in dataclasses.fields(Options)}
    settings.check_values(fields, {"name": "anything"})
    with pytest.raises(ValueError, match=r"^f.yaml: size must be >= 8, got 2$"):
        settings.check_values(fields, {"size": 2}, prefix="f.yaml: ")
