"""Declared settings: a value's choices or bounds, stated once beside the field that holds it.

A dataclass field made with ``setting(default, help, rule)`` carries its
rule in the field's metadata, so the check, the flag help (choices listed)
and the YAML error all come from that one declaration instead of a
hand-written ``if`` somewhere else. Rules compare plain Python values and
import nothing heavy: a bad value fails when the command line or YAML file is
read, before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Iterable, Mapping


@dataclasses.dataclass(frozen=True)
class Rule:
    """What values a setting accepts: ``choices``, or a numeric interval (``None`` is always allowed
    here; whether a field may be empty is its type's business)."""

    choices: tuple[Any, ...] | None = None
    # With choices: also any positive whole number written as text (a size: "8").
    sizes: bool = False
    # With choices: "" is accepted too, and means this (e.g. "the variant's own").
    empty: str | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    note: str = ""

    def describe(self) -> str:
        """The accepted values in words: ``one of a, b``, ``>= 1``, ``in (0, 1]``, ``a finite number > 0``.

        A one-sided bound on a float says "a finite number": inf satisfies ``>= 0`` but is refused.
        """
        if self.choices is not None:
            text = "one of " + ", ".join(str(c) for c in self.choices)
            text += " or a positive integer" if self.sizes else ""
            return text + (f"; empty: {self.empty}" if self.empty is not None else "")
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                    f"{')' if self.high_open else ']'}")
        number = "" if self.integer else "a finite number "
        if self.low is not None:
            return f"{number}{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{number}{'<' if self.high_open else '<='} {self.high:g}"
        return "an integer" if self.integer else "a finite number"

    def accepts(self, value: Any) -> bool:
        if value is None:
            return True
        if self.choices is not None:
            if value == "" and self.empty is not None:
                return True
            if self.sizes and isinstance(value, str) and value.isascii() and value.isdigit():
                return int(value) >= 1
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.integer and not isinstance(value, numbers.Integral):
            return False
        value = float(value)
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def check(self, name: str, value: Any, prefix: str = "--") -> None:
        """Raises ValueError naming the setting, the accepted values and the value given."""
        if self.accepts(value):
            return
        note = f" ({self.note})" if self.note else ""
        if self.choices is not None:
            raise ValueError(f"{prefix}{name}={value!r} is not {self.describe()}{note}")
        shown = f"{value:g}" if isinstance(value, float) else repr(value)
        raise ValueError(f"{prefix}{name} must be {self.describe()}{note}, got {shown}")


def one_of(values: Iterable[Any], note: str = "", *, sizes: bool = False, empty: str | None = None) -> Rule:
    """``values`` (and, with ``sizes``, a positive whole number as text; with ``empty``, "" meaning that)."""
    return Rule(choices=tuple(values), sizes=sizes, empty=empty, note=note)


def between(low: float, high: float, *, low_open: bool = False, high_open: bool = False,
            integer: bool = False, note: str = "") -> Rule:
    return Rule(low=low, high=high, low_open=low_open, high_open=high_open, integer=integer, note=note)


def at_least(low: float, *, integer: bool = False, note: str = "") -> Rule:
    return Rule(low=low, integer=integer, note=note)


def above(low: float, *, note: str = "") -> Rule:
    return Rule(low=low, low_open=True, note=note)


def finite(note: str = "") -> Rule:
    return Rule(note=note)


def setting(default: Any, help: str, rule: Rule | None = None) -> Any:  # pylint: disable=redefined-builtin
    """A dataclass field with its help and (optional) rule in the metadata."""
    return dataclasses.field(default=default, metadata={"help": help, "rule": rule})


def rule_of(field: dataclasses.Field) -> Rule | None:
    return field.metadata.get("rule")


def help_of(field: dataclasses.Field) -> str:
    """The field's help with its accepted values appended, for flag help and docs."""
    text = field.metadata.get("help", field.name)
    rule = rule_of(field)
    if rule is None:
        return text
    return f"{text} [{rule.describe()}]"


def check_values(fields: Mapping[str, dataclasses.Field], values: Mapping[str, Any], prefix: str = "--") -> None:
    """Checks each value against the rule of the field of its name (a layer of settings before they merge)."""
    for name, value in values.items():
        rule = rule_of(fields[name])
        if rule is not None:
            rule.check(name, value, prefix)


def check_fields(instance: Any, prefix: str = "--") -> None:
    """Checks every field of a dataclass instance against its declared rule."""
    fields = {field.name: field for field in dataclasses.fields(instance)}
    check_values(fields, {name: getattr(instance, name) for name in fields}, prefix)
