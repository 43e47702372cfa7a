"""A spec's ``report:`` section as typed objects, checked when the spec is parsed.

The section says which columns the main table shows, which figures are
drawn, an optional pivot table (the seed's Table 2 form), how the winner is
chosen and the command it gives, and the seed's published numbers with where
they come from. `parse` refuses a bad section with one line naming the key,
before any trial trains; it reads the column, metric and plot names from
`tables` and `plots`, which import neither matplotlib nor tabulate, so a spec
is checked the same way whether or not the ``studies`` extra is installed.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Any, Mapping, Sequence

from efficientnet_tpu.studies import plots, tables

DEFAULT_TABLE = ("params", "macs", "top1")
DEFAULT_METRIC = "top1"
_TEXT_KEYS = ("reference", "series", "published_source", "notes")


@dataclasses.dataclass(frozen=True)
class Pivot:
    """A table of one metric with a record field or axis down the rows and another across the columns."""

    rows: str
    columns: str
    value: str


@dataclasses.dataclass(frozen=True)
class Winner:
    """The best trial by a metric, and the command template it fills in (``{alpha}``, ``{variant}``)."""

    command: str
    by: str = DEFAULT_METRIC


@dataclasses.dataclass(frozen=True)
class ReportSpec:
    """The ``report:`` section; the defaults are what a spec without one gets."""

    reference: str | None = None
    table: tuple[str, ...] = DEFAULT_TABLE
    plots: tuple[str, ...] = plots.PLOTS
    series: str | None = None
    pivot: Pivot | None = None
    winner: Winner | None = None
    published: Mapping[str, Mapping[str, float | str]] = dataclasses.field(default_factory=dict)
    published_source: str | None = None
    published_profiles: tuple[str, ...] = ()
    notes: str | None = None


KEYS = tuple(field.name for field in dataclasses.fields(ReportSpec))


def parse(section: Any, source: str) -> ReportSpec:
    """The typed section (the defaults for None); ValueError with one line naming what is wrong."""
    if section is None:
        return ReportSpec()
    where = f"{source}: report"
    fields: dict[str, Any] = _texts(section, where)
    if "table" in section:
        fields["table"] = _names(section["table"], tables.COLUMNS, f"{where}.table", "column")
    if "plots" in section:
        fields["plots"] = _names(section["plots"], plots.PLOTS, f"{where}.plots", "plot")
    if "pivot" in section:
        fields["pivot"] = _pivot(section["pivot"], f"{where}.pivot")
    if "winner" in section:
        fields["winner"] = _winner(section["winner"], f"{where}.winner")
    if "published" in section:
        fields["published"] = _published(section["published"], f"{where}.published")
        if "published_source" not in section:
            raise ValueError(f"{where}.published needs published_source: say where the numbers come from "
                             f"(for example \"seed 000 (ImageNet, 224 px)\")")
    if "published_profiles" in section:
        fields["published_profiles"] = _profiles(section["published_profiles"], f"{where}.published_profiles")
    return ReportSpec(**fields)


def _texts(section: Any, where: str) -> dict[str, str]:
    """The section's keys checked, and its free-text fields."""
    if not isinstance(section, Mapping):
        raise ValueError(f"{where} must be a mapping of {', '.join(KEYS)}, got {type(section).__name__}")
    unknown = [key for key in section if key not in KEYS]
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(KEYS)}")
    for key in _TEXT_KEYS:
        if key in section and not (isinstance(section[key], str) and section[key].strip()):
            raise ValueError(f"{where}.{key} must be a non-empty string, got {section[key]!r}")
    return {key: section[key] for key in _TEXT_KEYS if key in section}


def _names(names: Any, known: Sequence[str], where: str, what: str) -> tuple[str, ...]:
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{where} must be a non-empty list of {what} names, got {names!r}")
    for name in names:
        if name not in known:
            raise ValueError(f"{where}: unknown {what} {name!r}; known: {', '.join(known)}")
    return tuple(names)


def _metric(name: Any, where: str) -> str:
    if name not in tables.METRICS:
        raise ValueError(f"{where}: unknown metric {name!r}; known: {', '.join(tables.METRICS)}")
    return name


def _pivot(pivot: Any, where: str) -> Pivot:
    if not isinstance(pivot, Mapping) or set(pivot) != {"rows", "columns", "value"}:
        raise ValueError(f"{where} must be a mapping with exactly rows, columns and value, got {pivot!r}")
    for key in ("rows", "columns"):
        if not isinstance(pivot[key], str) or not pivot[key]:
            raise ValueError(f"{where}.{key} must be a record field or axis name, got {pivot[key]!r}")
    return Pivot(pivot["rows"], pivot["columns"], _metric(pivot["value"], f"{where}.value"))


def _winner(winner: Any, where: str) -> Winner:
    if not isinstance(winner, Mapping) or not set(winner) <= {"by", "command"} or "command" not in winner:
        raise ValueError(f"{where} must be a mapping with command (and optionally by), got {winner!r}")
    by = _metric(winner.get("by", DEFAULT_METRIC), f"{where}.by")
    command = winner["command"]
    if not isinstance(command, str) or not command.strip():
        raise ValueError(f"{where}.command must be a non-empty string, got {command!r}")
    try:
        list(string.Formatter().parse(command))
    except ValueError as error:
        raise ValueError(f"{where}.command is not a valid template ({error}); fields are written "
                         f"{{alpha}}, literal braces {{{{ }}}}") from None
    return Winner(command, by)


def _published(published: Any, where: str) -> dict[str, dict[str, float | str]]:
    if not isinstance(published, Mapping):
        raise ValueError(f"{where} must map trial names to {{column: value}}, got {published!r}")
    for trial, numbers in published.items():
        if not isinstance(numbers, Mapping) or not numbers:
            raise ValueError(f"{where}.{trial} must be a mapping of column -> value, got {numbers!r}")
        for column, number in numbers.items():
            if column not in tables.COLUMNS:
                raise ValueError(f"{where}.{trial}: unknown column {column!r}; known: {', '.join(tables.COLUMNS)}")
            if isinstance(number, bool) or not isinstance(number, (int, float, str)):
                raise ValueError(f"{where}.{trial}.{column} must be a number or a short text, got {number!r}")
    return {str(trial): dict(numbers) for trial, numbers in published.items()}


def _profiles(profiles: Any, where: str) -> tuple[str, ...]:
    if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
        raise ValueError(f"{where} must be a list of profile names, got {profiles!r}")
    return tuple(profiles)
