"""From trial records to numbers and tables: repeats aggregated, columns derived, cells formatted.

A study's records hold one entry per trial run; a reader wants one row per
trial with the spread over its repeats, the columns the seed's table has
(ratios and speedups against a reference network) and the seed's own numbers
beside ours. Everything here is plain data in, plain data out, so the report,
the CSV files and the plots all read the same aggregated values.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable, Mapping, Sequence

from efficientnet_tpu.studies import optional


# Numbers a record carries, averaged over a trial's repeats.
ARCHITECTURE_METRICS = ("params", "macs")  # properties of the network: known even when training failed
TRAINING_METRICS = (
    "latency_ms_batch1", "latency_ms_batch", "train_images_per_s", "wall_s", "top1", "top5", "loss",
)
METRICS = ARCHITECTURE_METRICS + TRAINING_METRICS
# Metrics where smaller is better (for picking a winner and for "best").
SMALLER_IS_BETTER = frozenset({"params", "macs", "latency_ms_batch1", "latency_ms_batch", "wall_s", "loss"})
# Record fields that describe a trial rather than measure it.
DESCRIPTIVE = ("variant", "dataset", "resolution", "num_classes", "group")
# Columns computed against the report's reference trial: name -> (metric, kind).
#   pct: (ours - reference) / reference * 100;  ratio: ours / reference;  speedup: reference / ours.
DERIVED: dict[str, tuple[str, str]] = {
    "params_vs_reference_pct": ("params", "pct"),
    "macs_vs_reference_pct": ("macs", "pct"),
    "macs_ratio_vs_reference": ("macs", "ratio"),
    "latency_speedup_vs_reference": ("latency_ms_batch1", "speedup"),
    "latency_batch_speedup_vs_reference": ("latency_ms_batch", "speedup"),
    "train_speedup_vs_reference": ("train_images_per_s", "ratio"),
    "top1_vs_reference_pct": ("top1", "difference"),
}
COLUMNS = METRICS + DESCRIPTIVE + tuple(DERIVED) + ("runs",)

# Record fields written to results.csv, in order; the axes follow as "axes.<key>".
RUN_COLUMNS = (
    "name", "study", "trial", "group", "repeat", "status", "error", "profile", "dataset", "variant",
    "resolution", "num_classes", "params", "macs", "latency_ms_batch1", "latency_ms_batch",
    "latency_batch_size", "train_images_per_s", "wall_s", "top1", "top5", "loss", "machine",
    "started", "finished",
)

_HEADERS = {
    "params": "params",
    "macs": "MACs",
    "latency_ms_batch1": "latency b1 (ms)",
    "latency_ms_batch": "latency batch (ms)",
    "train_images_per_s": "train img/s",
    "wall_s": "train wall (s)",
    "top1": "top-1 (%)",
    "top5": "top-5 (%)",
    "loss": "loss",
    "variant": "variant",
    "dataset": "dataset",
    "resolution": "resolution",
    "num_classes": "classes",
    "group": "group",
    "runs": "runs",
    "params_vs_reference_pct": "params vs {ref}",
    "macs_vs_reference_pct": "MACs vs {ref}",
    "macs_ratio_vs_reference": "MACs / {ref}",
    "latency_speedup_vs_reference": "speedup b1 vs {ref}",
    "latency_batch_speedup_vs_reference": "speedup batch vs {ref}",
    "train_speedup_vs_reference": "train speed / {ref}",
    "top1_vs_reference_pct": "top-1 vs {ref} (pp)",
}


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None when there is no value, std None for one value)."""
    if not values:
        return None, None
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else None
    return mean, std


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def lookup(item: Mapping[str, Any], key: str) -> Any:
    """A record's or an aggregated trial's field, else its axis of that name (``series``, ``pivot`` keys)."""
    if key in item and key != "axes":
        return item[key]
    return (item.get("axes") or {}).get(key)


def aggregate(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per trial (records with the same group and trial), in order of first appearance.

    Training metrics average the runs that finished ("done"); a failed or
    diverged run's numbers are not results. Params and MACs describe the
    network, so they come from any run that has them.
    """
    by_trial: dict[tuple[Any, str], list[Mapping[str, Any]]] = {}
    for record in records:
        by_trial.setdefault((record.get("group"), record["trial"]), []).append(record)
    names = [trial for _, trial in by_trial]
    trials = []
    for (group, trial), runs in by_trial.items():
        done = [r for r in runs if r.get("status") == "done"]
        first = done[0] if done else runs[0]
        entry: dict[str, Any] = {
            "study": first.get("study"),
            "trial": trial,
            "group": group,
            "label": trial if names.count(trial) == 1 else f"{group}/{trial}",
            "axes": dict(first.get("axes") or {}),
            **{key: first.get(key) for key in DESCRIPTIVE if key != "group"},
            "runs": len(runs),
            "runs_done": len(done),
            "status": "done" if done else _worst_status(runs),
            "errors": [f"{r.get('name')}: {r.get('status')}: {r.get('error')}" for r in runs
                       if r.get("status") != "done"],
            "mean": {}, "std": {}, "n": {},
        }
        for metric in METRICS:
            source = runs if metric in ARCHITECTURE_METRICS else done
            values = [v for v in (_finite(r.get(metric)) for r in source) if v is not None]
            entry["mean"][metric], entry["std"][metric] = mean_std(values)
            entry["n"][metric] = len(values)
            if metric in ARCHITECTURE_METRICS and entry["mean"][metric] is not None:
                entry["mean"][metric] = int(round(entry["mean"][metric]))  # counts stay counts
        trials.append(entry)
    return trials


def _worst_status(runs: Sequence[Mapping[str, Any]]) -> str:
    statuses = [r.get("status") or "unknown" for r in runs]
    return "diverged" if "diverged" in statuses else statuses[0]


def find_reference(trials: Sequence[Mapping[str, Any]], name: str | None,
                   group: Any = None) -> Mapping[str, Any] | None:
    """The reference trial: same name in the same group if there is one, else the first of that name."""
    if not name:
        return None
    same_name = [t for t in trials if t["trial"] == name]
    for trial in same_name:
        if trial["group"] == group:
            return trial
    return same_name[0] if same_name else None


def add_derived(trials: list[dict[str, Any]], reference: str | None) -> None:
    """Fills each trial's ``derived`` columns from the trial means against the reference's means."""
    for trial in trials:
        ref = find_reference(trials, reference, trial["group"])
        trial["derived"] = {}
        for column, (metric, kind) in DERIVED.items():
            ours = trial["mean"].get(metric)
            theirs = ref["mean"].get(metric) if ref else None
            trial["derived"][column] = _derive(kind, ours, theirs)


def _derive(kind: str, ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None:
        return None
    if kind == "difference":
        return (ours - theirs) * 100.0  # top-1 fractions -> percentage points
    if kind == "speedup":
        return theirs / ours if ours else None
    if not theirs:
        return None
    return ours / theirs if kind == "ratio" else (ours - theirs) / theirs * 100.0


def value(trial: Mapping[str, Any], column: str) -> tuple[Any, float | None]:
    """A trial's (value, std) for a table column; std only for averaged metrics."""
    if column in METRICS:
        return trial["mean"].get(column), trial["std"].get(column)
    if column in DERIVED:
        return trial.get("derived", {}).get(column), None
    if column == "runs":
        return (f"{trial['runs_done']}/{trial['runs']}" if trial["runs_done"] != trial["runs"]
                else trial["runs"]), None
    return lookup(trial, column), None


def header(column: str, reference: str | None) -> str:
    return _HEADERS.get(column, column).format(ref=reference or "reference")


def _plain(number: float) -> str:
    """Three significant figures at most, trailing zeros kept so a column lines up (4.00, 12.3, 154)."""
    magnitude = abs(number)
    return f"{number:.0f}" if magnitude >= 100 else f"{number:.1f}" if magnitude >= 10 else f"{number:.2f}"


def _si(number: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= limit:
            return f"{_plain(number / limit)}{suffix}"
    return _plain(number)


def format_number(column: str, number: Any, *, published: bool = False) -> str:
    """A cell in the column's display units. Published values are already in display units
    (percentages in %, counts as counts; top-1/top-5 in % or as a fraction); strings are shown as they are."""
    if number is None:
        return "n/a"
    if isinstance(number, str):
        return number
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return str(number)
    if column in ("top1", "top5"):
        # Records hold fractions; a spec may publish 76.2 or 0.762 (no published top-1 is at or below 1%).
        return f"{number if published and number > 1.0 else number * 100:.2f}"
    if column in ("params", "macs"):
        return _si(number)
    kind = DERIVED.get(column, (None, None))[1]
    if kind == "pct":
        return f"{number:+.1f}%"
    if kind == "difference":
        return f"{number:+.2f}"
    if kind in ("ratio", "speedup"):
        return f"{number:.2f}x"
    if column == "loss":
        return f"{number:.4f}"
    if column in ("resolution", "num_classes"):
        return f"{number:g}"
    return _plain(number)


def format_cell(column: str, number: Any, std: float | None) -> str:
    text = format_number(column, number)
    if std is None or number is None or column in ARCHITECTURE_METRICS:
        return text  # params and MACs do not change with the seed
    if column in ("top1", "top5"):
        return f"{text} ± {std * 100:.2f}"
    return f"{text} ± {format_number(column, std).lstrip('+')}"


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (cells are pre-formatted strings, kept as they are)."""
    tabulate_lib = optional.require("tabulate", "a study report table")  # a spec is checked without it
    return tabulate_lib.tabulate(rows, headers=list(headers), tablefmt="github", disable_numparse=True)


def spread_comparison(trials: Sequence[Mapping[str, Any]], metric: str, target: Mapping[str, Any]
                      ) -> dict[str, dict[str, Any]]:
    """Each trial's difference to ``target`` in ``metric``, and whether it exceeds the spread.

    A difference is called a finding only when it is larger than the sum of
    the two trials' standard deviations over repeats (their one-std intervals
    do not overlap). A trial with one run has no known spread: undecided.
    Returns label -> {"difference", "spread", "verdict"} with verdict one of
    "finding", "within spread", "no spread (1 run)", "target".
    """
    out = {}
    scale = 100.0 if metric in ("top1", "top5") else 1.0
    t_mean, t_std = target["mean"].get(metric), target["std"].get(metric)
    for trial in trials:
        mean, std = trial["mean"].get(metric), trial["std"].get(metric)
        if mean is None or t_mean is None:
            continue
        if trial is target:
            out[trial["label"]] = {"difference": 0.0, "spread": None, "verdict": "target"}
            continue
        difference = (mean - t_mean) * scale
        if std is None or t_std is None:
            out[trial["label"]] = {"difference": difference, "spread": None, "verdict": "no spread (1 run)"}
            continue
        spread = (std + t_std) * scale
        verdict = "finding" if abs(difference) > spread else "within spread"
        out[trial["label"]] = {"difference": difference, "spread": spread, "verdict": verdict}
    return out


def best_trial(trials: Sequence[Mapping[str, Any]], metric: str) -> Mapping[str, Any] | None:
    """The finished trial with the best mean ``metric`` (smallest for losses, latencies, sizes)."""
    candidates = [t for t in trials if t["status"] == "done" and t["mean"].get(metric) is not None]
    if not candidates:
        return None
    pick = min if metric in SMALLER_IS_BETTER else max
    return pick(candidates, key=lambda t: t["mean"][metric])


def flat_trial(trial: Mapping[str, Any]) -> dict[str, Any]:
    """An aggregated trial as one flat row: ``<metric>_mean``, ``<metric>_std``, ``<metric>_n``, derived."""
    row: dict[str, Any] = {key: trial.get(key) for key in ("study", "trial", "group", "label")}
    row.update({key: trial.get(key) for key in DESCRIPTIVE if key != "group"})
    row.update({"status": trial["status"], "runs": trial["runs"], "runs_done": trial["runs_done"],
                "errors": " | ".join(trial["errors"]) or None})
    for metric in METRICS:
        row[f"{metric}_mean"] = trial["mean"].get(metric)
        row[f"{metric}_std"] = trial["std"].get(metric)
        row[f"{metric}_n"] = trial["n"].get(metric)
    row.update(trial.get("derived", {}))
    row.update({f"axes.{key}": val for key, val in (trial.get("axes") or {}).items()})
    return row


def run_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A trial run as one flat row of results.csv (config and history stay in results.json)."""
    row = {key: record.get(key) for key in RUN_COLUMNS}
    row.update({f"axes.{key}": val for key, val in (record.get("axes") or {}).items()})
    return row


def union_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """All keys of the rows, in order of first appearance."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)
