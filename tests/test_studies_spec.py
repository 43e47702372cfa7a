"""Study specs: every shipped spec loads and expands to a pinned set of trials; bad specs fail in one line.

Also TrainConfig.model_overrides (YAML, JSON, k=v; checked against ModelSpec;
compared on resume; read back from config.yaml) and the safe expressions.
"""

from __future__ import annotations

import os
import shlex

import pytest

from efficientnet_tpu.studies import expressions, report_spec
from efficientnet_tpu.studies import spec as spec_lib
from efficientnet_tpu.training import config as config_lib

# study -> profile -> trial runs (repeats included). Pinned: a change to a shipped spec must be deliberate.
PINNED = {
    "cifar_baselines": {None: 9, "smoke": 2, "cpu": 2, "cifar": 9, "paper": 9},
    "grid_search": {None: 40, "smoke": 3, "cpu": 4, "cifar": 40, "paper": 40},
    "lite_compact": {None: 5, "smoke": 5, "cpu": 5, "cifar": 5, "paper": 5},
    "meconv": {None: 5, "smoke": 5, "cpu": 5, "cifar": 5, "paper": 5},
    "se_placement": {None: 7, "smoke": 7, "cpu": 7, "cifar": 7, "paper": 7},
    "single_dimension_scaling": {None: 21, "smoke": 8, "cpu": 12, "cifar": 21, "paper": 21},
    "v1_vs_v2": {None: 9, "smoke": 3, "cpu": 5, "cifar": 9, "paper": 9},
}


def test_the_seven_studies_are_shipped_and_listed():
    assert [name for name, _ in spec_lib.list_studies()] == sorted(PINNED)
    assert all(title for _, title in spec_lib.list_studies())


@pytest.mark.parametrize("study", sorted(PINNED))
def test_shipped_spec_validates_and_expands_to_pinned_trials(study):
    spec = spec_lib.load_spec(study)
    assert set(spec.profiles) == set(spec_lib.PROFILES)
    for profile, count in PINNED[study].items():
        expansion = spec_lib.expand(spec, profile, study_dir="/tmp/s")
        assert len(expansion.trials) == count, (study, profile)
        names = [t.name for t in expansion.trials]
        assert len(set(names)) == len(names)
        for trial in expansion.trials:
            assert trial.name == f"{study}/{trial.trial}/seed{trial.repeat}"
            assert trial.config.model_dir == os.path.join("/tmp/s", trial.name)
        if profile is not None:
            assert spec_lib.profile_notes(spec, profile).strip(), (study, profile)
    smoke = spec_lib.expand(spec, "smoke", study_dir="/tmp/s").trials
    assert all(t.config.dataset == "synthetic" and t.config.train_steps <= 5 for t in smoke)
    cpu = spec_lib.expand(spec, "cpu", study_dir="/tmp/s").trials
    assert all(t.config.dataset == "digits" for t in cpu)
    paper = spec_lib.expand(spec, "paper", study_dir="/tmp/s").trials
    assert all(t.config.dataset.startswith("cifar") if study == "cifar_baselines"
               else t.config.dataset == "imagenet2012" for t in paper)


def test_grid_search_candidates_satisfy_the_constraint_and_include_the_papers_winner():
    import efficientnet_tpu

    spec = spec_lib.load_spec("grid_search")
    for profile in spec_lib.PROFILES:
        expansion = spec_lib.expand(spec, profile, study_dir="/tmp/s")
        candidates = [t for t in expansion.trials if t.group == "candidates"]
        assert "alpha1.2_beta1.1_gamma1.15" in [t.trial for t in candidates], profile
        for trial in candidates:
            a, b, g = (trial.axes[k] for k in ("alpha", "beta", "gamma"))
            assert abs(a * b**2 * g**2 - 2) <= 0.1
        assert [t.trial for t in expansion.trials if t.group == "base"] == ["base"]
        assert all("rejected" in verdict for _, verdict in expansion.rejected)
    paper = spec_lib.expand(spec, "paper", study_dir="/tmp/s")
    assert len([t for t in paper.trials if t.group == "candidates"]) == 39
    # Its phi = 1 candidate (1.2, 1.1, 1.15) is the model package's compound-scaled B0 at phi = 1.
    winner = next(t for t in paper.trials if t.trial == "alpha1.2_beta1.1_gamma1.15").config
    reference = efficientnet_tpu.get_spec("b0", 1.0)
    assert winner.model_overrides == {"depth_coefficient": 1.2, "width_coefficient": 1.1}
    assert (reference.depth_coefficient, reference.width_coefficient, reference.resolution) == \
        pytest.approx((1.2, 1.1, winner.resolution))


def test_single_dimension_scaling_groups_vary_one_dimension():
    trials = spec_lib.expand(spec_lib.load_spec("single_dimension_scaling"), "paper", study_dir="/s").trials
    by_group = {}
    for trial in trials:
        by_group.setdefault(trial.group, []).append(trial)
    assert [t.config.model_overrides["width_coefficient"] for t in by_group["width"]] == [1.0, 1.4, 1.8, 2.6, 3.8, 5.0]
    assert [t.config.model_overrides["depth_coefficient"] for t in by_group["depth"]] == [1, 2, 3, 4, 6, 8]
    assert [t.config.resolution for t in by_group["resolution"]] == [224, 288, 384, 496, 560]
    assert [t.config.phi for t in by_group["compound"]] == [0, 1, 2, 3]
    assert by_group["width"][0].trial == "width1" and by_group["width"][0].group == "width"


def test_repeats_get_their_own_seed_and_directory():
    spec = spec_lib.load_spec("se_placement")
    trials = spec_lib.expand(spec, "smoke", study_dir="/s", repeats=3).trials
    assert len(trials) == 21
    b0 = [t for t in trials if t.trial == "b0"]
    assert [t.name for t in b0] == [f"se_placement/b0/seed{i}" for i in (1, 2, 3)]
    assert len({t.config.seed for t in b0}) == 3


def test_commands_reproduce_the_trial_config():
    from efficientnet_tpu import train

    trial = spec_lib.expand(spec_lib.load_spec("grid_search"), "cpu", study_dir="/s").trials[0]
    argv = shlex.split(trial.command())
    assert argv[:3] == ["python", "-m", "efficientnet_tpu.train"]
    train.define_flags()  # this test alone, without another one having defined them first
    train.FLAGS.unparse_flags()
    train.FLAGS(["train", *argv[3:]])
    try:
        assert train.config_from_flags() == trial.config
    finally:
        train.FLAGS.unparse_flags()


@pytest.mark.parametrize("text, phrase", [
    ("name: x\nbase: {}\n", "give axes"),
    ("name: x\naxes: {variant: b0}\n", "non-empty list"),
    ("name: x\naxes: {variant: [b0]}\nbogus: 1\n", "unknown top-level key 'bogus'"),
    ("name: x\naxes: {variant: [b0]}\nbase: {learning_rat: 1}\n", "unknown key 'learning_rat'"),
    ("name: x\naxes: {variant: [b0]}\nconstraint: {expression: \"__import__('os')\"}\n", "not allowed"),
    ("name: x\naxes: {variant: [b0]}\nconstraint: {macs_ratio: [2, 1]}\n", "macs_ratio must be [low, high]"),
    ("name: x\naxes: {variant: [b0]}\nprofiles: {cpu: {groups: {nope: {}}}}\n", "group 'nope'"),
    ("name: x\naxes: {widht: [1]}\n", "unknown key 'widht'"),
    ("name: x\naxes: {train_batch_size: [0]}\n", "train_batch_size must be >= 1"),
    # The dataset's rule refuses it when the trial's config merges, before the trials resolve.
    ("name: x\naxes: {dataset: [cifar1O]}\n", "dataset='cifar1O' is not one of imagenet2012, cifar10,"),
    ("name: x\naxes: {variant: [b0]\n", "not valid YAML"),
    ("- a list\n", "must hold a mapping"),
    ("name: x\naxes: {variant: [b0]}\nreport: {table: [bogus]}\n", "unknown column 'bogus'"),
    # The typed report section (report_spec.ReportSpec): one line naming the key, before any trial trains.
    ("name: x\naxes: {variant: [b0]}\nreport: {tabel: [top1]}\n", "bad.yaml: report: unknown key 'tabel'; known: "),
    ("name: x\naxes: {variant: [b0]}\nreport: {winner: {by: acc, command: x}}\n",
     "bad.yaml: report.winner.by: unknown metric 'acc'; known: params, macs"),
    ("name: x\naxes: {variant: [b0]}\nreport: {pivot: {rows: variant, columns: dataset, value: acc}}\n",
     "bad.yaml: report.pivot.value: unknown metric 'acc'"),
    ("name: x\naxes: {variant: [b0]}\nreport: {published: {b0: {top1: 76.2}}}\n",
     "bad.yaml: report.published needs published_source"),
    ("name: x\naxes: {variant: [b0]}\nreport: {notes: ''}\n", "bad.yaml: report.notes must be a non-empty string"),
    ("name: x\naxes: {variant: [b0]}\nseeds: '000'\n", "seeds must be a list of seed document numbers"),
])
def test_bad_specs_fail_with_one_clear_line(tmp_path, text, phrase):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(spec_lib.SpecError) as error:
        spec_lib.load_spec(str(path))
    assert phrase in str(error.value)
    assert all("\n" not in problem for problem in error.value.problems)


@pytest.mark.parametrize("axes, phrase", [
    ("{model_overrides.se_postion: [end]}", "model_overrides.se_postion: unknown key 'se_postion'; valid keys: "),
    ("{variant: [b0, b0_lit]}",
     "trial b0_lit (profile base) and 1 more: variant 'b0_lit' is unknown; valid variants: b0,"),
    ("{model_overrides.stage_blocks: [{3: conv3}]}", "variant 'b0': stage_blocks: unknown block 'conv3'"),
    ("{model_overrides.width_coefficient: [wide]}",
     "model_overrides.width_coefficient: width_coefficient must be float, got 'wide'"),
    ("{variant: [b1], phi: [2]}", "variant 'b1': Variant 'b1' has fixed published coefficients and takes no phi"),
])
def test_a_spec_whose_trials_cannot_be_built_is_refused_naming_the_key_or_value(tmp_path, axes, phrase):
    path = tmp_path / "typo.yaml"
    path.write_text(f"name: typo\naxes: {axes}\nprofiles: {{cpu: {{resolution: 32}}}}\n")
    with pytest.raises(spec_lib.SpecError) as error:
        spec_lib.load_spec(str(path))
    assert len(error.value.problems) == 1, error.value.problems  # one line, not one per trial and profile
    assert phrase in error.value.problems[0] and "\n" not in error.value.problems[0]


def test_a_trial_that_resolves_is_kept_and_one_problem_names_the_first_trial_and_counts_the_rest(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("name: typo\naxes: {variant: [b0, b0_lit], model_overrides.se_position: [end, none]}\n")
    with pytest.raises(spec_lib.SpecError) as error:
        spec_lib.load_spec(str(path))
    from efficientnet_tpu import list_variants

    assert error.value.problems == [f"{path}: trial b0_lit_end (profile base) and 1 more: variant 'b0_lit' is "
                                    f"unknown; valid variants: {', '.join(list_variants())}"]


def test_the_spec_is_parsed_once_into_typed_objects():
    spec = spec_lib.load_spec("grid_search")
    assert isinstance(spec, spec_lib.StudySpec) and spec.name == "grid_search" and not hasattr(spec, "__getitem__")
    assert spec.recipe == "configs/imagenet.yaml" and spec.base.fields == {"variant": "b0"}
    assert spec.variables == ("alpha", "beta", "gamma") and spec.repeats == 1
    assert spec.constraint == spec_lib.Constraint(expression="abs(alpha * beta**2 * gamma**2 - 2) <= 0.1")
    candidates, base = spec.groups["candidates"], spec.groups["base"]
    assert candidates.constraint == spec_lib.INHERIT and base.constraint is None  # `constraint: null`: none
    assert list(candidates.shape.axes) == ["alpha", "beta", "gamma"] and len(base.shape.trials) == 1
    assert set(spec.shape.derived) == {"model_overrides.depth_coefficient", "model_overrides.width_coefficient",
                                       "resolution"}
    smoke = spec.profiles["smoke"]
    assert smoke.recipe == "configs/digits_demo.yaml" and smoke.settings.fields["dataset"] == "synthetic"
    assert smoke.groups["candidates"]["axes"]["alpha"] == [1.2, 2.0] and smoke.constraint == spec_lib.INHERIT
    assert isinstance(spec.report, report_spec.ReportSpec) and spec.report.reference == "base"
    assert spec.report.winner == report_spec.Winner(by="top1", command=spec.raw["report"]["winner"]["command"])


def test_a_spec_without_a_report_section_gets_the_default_one(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: r\naxes: {variant: [b0]}\n")
    assert spec_lib.load_spec(str(path)).report == report_spec.ReportSpec()


def test_the_report_section_is_checked_where_matplotlib_and_tabulate_are_missing(tmp_path):
    """Once the check was skipped silently when they could not be imported."""
    import subprocess
    import sys

    path = tmp_path / "r.yaml"
    path.write_text("name: r\naxes: {variant: [b0]}\nreport: {plots: [accuracy_vs_flops]}\n")
    script = ("import sys\n"
              "class Block:\n"
              "    def find_spec(self, name, path=None, target=None):\n"
              "        if name.split('.')[0] in ('matplotlib', 'tabulate'):\n"
              "            raise ImportError('blocked: ' + name)\n"
              "sys.meta_path.insert(0, Block())\n"
              "from efficientnet_tpu.studies import spec\n"
              "try:\n"
              f"    spec.load_spec({str(path)!r})\n"
              "except spec.SpecError as e:\n"
              "    print(e)\n"
              "assert not any(m.split('.')[0] in ('matplotlib', 'tabulate') for m in sys.modules)\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=repo, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "unknown plot 'accuracy_vs_flops'" in done.stdout, done.stdout


def test_unknown_study_and_profile_name_the_choices(tmp_path):
    with pytest.raises(spec_lib.SpecError, match="shipped studies: cifar_baselines, grid_search"):
        spec_lib.load_spec("se_placment")
    with pytest.raises(spec_lib.SpecError, match="its profiles: smoke, cpu, cifar, paper"):
        spec_lib.expand(spec_lib.load_spec("meconv"), "tpu", study_dir="/s")


def test_macs_ratio_constraint_uses_the_counter_once_per_architecture(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nbase: {variant: b0, resolution: 32}\n"
                    "axes: {model_overrides.width_coefficient: [1.0, 1.4, 2.0]}\n"
                    "constraint: {macs_ratio: [1.8, 2.2]}\n")
    calls = []

    def fake_macs(config):
        calls.append(config.model_overrides)
        width = (config.model_overrides or {}).get("width_coefficient", 1.0)
        return 0, int(100 * width**2)

    expansion = spec_lib.expand(spec_lib.load_spec(str(path)), None, study_dir="/s", macs_fn=fake_macs)
    assert [t.trial for t in expansion.trials] == ["width_coefficient1.4"]
    assert expansion.trials[0].constraint == "macs_ratio 1.950 in [1.8, 2.2]"
    assert [name for name, _ in expansion.rejected] == ["width_coefficient1", "width_coefficient2"]
    assert len(calls) == 4  # the base once, then each candidate


# ------------------------------------------------------------------ expressions

def test_expressions_compute_arithmetic_and_refuse_code():
    assert expressions.evaluate("abs(alpha * beta**2 * gamma**2 - 2) <= 0.1",
                                {"alpha": 1.2, "beta": 1.1, "gamma": 1.15}, "t") is True
    assert expressions.evaluate("8 * round(224 * r / 8)", {"r": 1.3}, "t") == 288
    for text in ("__import__('os').system('true')", "r.__class__", "[r]", "lambda: 1", "'a'", "open('x')"):
        with pytest.raises(ValueError, match="not allowed|not a valid"):
            expressions.evaluate(text, {"r": 1}, "t")
    with pytest.raises(ValueError, match="reads 'q'.*known values: r"):
        expressions.evaluate("q + 1", {"r": 1}, "t")
    with pytest.raises(ValueError, match="too large"):
        expressions.evaluate("9 ** 9 ** 9", {}, "t")
    assert expressions.names(expressions.parse("round(a * b) + abs(c)", "t")) == {"a", "b", "c"}


# ------------------------------------------------------------ model_overrides

def test_model_overrides_from_yaml_json_and_pairs_agree(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model_overrides:\n  se_position: end\n  stage_blocks: {3: conv31}\n")
    from_yaml = config_lib.load_yaml(str(path))["model_overrides"]
    from_json = config_lib.parse_model_overrides('{"se_position": "end", "stage_blocks": {"3": "conv31"}}')
    from_pairs = config_lib.parse_model_overrides("se_position=end, stage_blocks={3: conv31}")
    assert from_yaml == from_json == from_pairs == {"se_position": "end", "stage_blocks": {3: "conv31"}}
    assert config_lib.parse_model_overrides("") is None
    assert config_lib.parse_model_overrides("width_coefficient=1.2,remove_stages=[2]") == \
        {"width_coefficient": 1.2, "remove_stages": [2]}
    for bad in ("se_position", "{se_position: [", "=1"):
        with pytest.raises(ValueError, match="model_overrides must be JSON"):
            config_lib.parse_model_overrides(bad)


def test_model_overrides_are_checked_against_modelspec_with_the_valid_keys():
    from efficientnet_tpu.training import modeling

    config = config_lib.merge({"model_dir": "/m", "model_overrides": {"se_postion": "end"}})
    with pytest.raises(ValueError, match=r"unknown key 'se_postion'; valid keys: .*se_position.*stage_blocks"):
        modeling.model_spec(config)
    for overrides, phrase in (({"width_coefficient": "wide"}, "width_coefficient must be float"),
                              ({"resolution": 1.5}, "resolution must be int"),
                              ({"alpha": 1.2}, "TrainConfig field"),
                              ({"se_position": "middle"}, "se_position must be one of")):
        with pytest.raises(ValueError, match=phrase):
            modeling.model_spec(config_lib.replace(config, model_overrides=overrides))
    spec = modeling.model_spec(config_lib.replace(config, model_overrides={"se_position": "end",
                                                                           "width_coefficient": 1.2}))
    assert (spec.se_position, spec.width_coefficient) == ("end", 1.2)


def test_model_overrides_flag_reaches_the_config():
    from efficientnet_tpu import train

    train.define_flags()
    train.FLAGS.unparse_flags()
    train.FLAGS(["train", "--variant=b0", "--model_dir=/m",
                 '--model_overrides={"se_position": "end", "width_coefficient": 1.2}'])
    try:
        assert train.config_from_flags().model_overrides == {"se_position": "end", "width_coefficient": 1.2}
    finally:
        train.FLAGS.unparse_flags()


def test_model_overrides_are_an_architecture_key_and_survive_config_yaml(tmp_path):
    from efficientnet_tpu.training import modeling

    config = config_lib.merge({"model_dir": str(tmp_path), "variant": "b0", "num_classes": 10, "resolution": 32,
                               "model_overrides": "se_position=none,stage_blocks={3: conv31}"})
    config_lib.dump(config, str(tmp_path))
    loaded = config_lib.from_dict(config_lib.load_run_config(str(tmp_path)))
    assert loaded.model_overrides == config.model_overrides
    config_lib.check_same_architecture(config, config_lib.load_run_config(str(tmp_path)), str(tmp_path))
    with pytest.raises(ValueError, match="model_overrides"):
        config_lib.check_same_architecture(config_lib.replace(config, model_overrides=None),
                                           config_lib.load_run_config(str(tmp_path)), str(tmp_path))
    # What export rebuilds from config.yaml is the overridden network.
    spec = modeling.model_spec(loaded)
    assert spec.se_position == "none" and spec.stages[1].block == "conv31"
