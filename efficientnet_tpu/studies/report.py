"""A study's report: results.csv/json, report.md with the seed's table form, figures, HParams summaries.

``write_report`` is called after a study runs and again by ``--report_only``;
it reads nothing but the records it is given, so a report can be rebuilt at
any time from whatever has finished. The report says which profile and data
produced it and what that data cannot show, puts the seed's published numbers
beside ours only with a plain statement of whether they are comparable, and
marks differences smaller than the spread over repeats as no finding.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import string
from typing import Any, Mapping, Sequence

from efficientnet_tpu.storage import atomic_write
from efficientnet_tpu.studies import hparams, plots, tables

Trials = Sequence[Mapping[str, Any]]  # aggregated trials (tables.aggregate)
Records = Sequence[Mapping[str, Any]]  # trial runs, as the contract's records

KEYS = ("reference", "table", "plots", "series", "pivot", "winner", "published", "published_source",
        "published_profiles", "notes")
DEFAULT_TABLE = ("params", "macs", "top1")
# Native image size of the datasets whose images are small: above it, resolution adds no information.
NATIVE_SIZE = {"digits": 8, "cifar10": 32, "cifar100": 32, "cifar10_3class": 32}
# How the report tells the reader to rebuild it (the study command's collect-only mode).
REPORT_COMMAND = "python -m efficientnet_tpu.study --study_dir={study_dir} --report_only"


# --------------------------------------------------------------------------- validation

def validate_report_section(section: Any, source: str) -> None:
    """Raises ValueError with one line naming what is wrong in a spec's ``report:`` section."""
    if section is None:
        return
    where = f"{source}: report"
    if not isinstance(section, Mapping):
        raise ValueError(f"{where} must be a mapping of {', '.join(KEYS)}, got {type(section).__name__}")
    unknown = [key for key in section if key not in KEYS]
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(KEYS)}")
    for key in ("reference", "series", "published_source", "notes"):
        if key in section and not (isinstance(section[key], str) and section[key].strip()):
            raise ValueError(f"{where}.{key} must be a non-empty string, got {section[key]!r}")
    if "table" in section:
        _check_names(section["table"], tables.COLUMNS, f"{where}.table", "column")
    if "plots" in section:
        _check_names(section["plots"], plots.PLOTS, f"{where}.plots", "plot")
    if "pivot" in section:
        _check_pivot(section["pivot"], f"{where}.pivot")
    if "winner" in section:
        _check_winner(section["winner"], f"{where}.winner")
    if "published" in section:
        _check_published(section["published"], f"{where}.published")
        if "published_source" not in section:
            raise ValueError(f"{where}.published needs published_source: say where the numbers come from "
                             f"(for example \"seed 000 (ImageNet, 224 px)\")")
    if "published_profiles" in section:
        profiles = section["published_profiles"]
        if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
            raise ValueError(f"{where}.published_profiles must be a list of profile names, got {profiles!r}")


def _check_names(names: Any, known: Sequence[str], where: str, what: str) -> None:
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{where} must be a non-empty list of {what} names, got {names!r}")
    for name in names:
        if name not in known:
            raise ValueError(f"{where}: unknown {what} {name!r}; known: {', '.join(known)}")


def _check_pivot(pivot: Any, where: str) -> None:
    if not isinstance(pivot, Mapping) or set(pivot) != {"rows", "columns", "value"}:
        raise ValueError(f"{where} must be a mapping with exactly rows, columns and value, got {pivot!r}")
    for key in ("rows", "columns"):
        if not isinstance(pivot[key], str) or not pivot[key]:
            raise ValueError(f"{where}.{key} must be a record field or axis name, got {pivot[key]!r}")
    if pivot["value"] not in tables.METRICS:
        raise ValueError(f"{where}.value: unknown metric {pivot['value']!r}; known: {', '.join(tables.METRICS)}")


def _check_winner(winner: Any, where: str) -> None:
    if not isinstance(winner, Mapping) or not set(winner) <= {"by", "command"} or "command" not in winner:
        raise ValueError(f"{where} must be a mapping with command (and optionally by), got {winner!r}")
    by = winner.get("by", "top1")
    if by not in tables.METRICS:
        raise ValueError(f"{where}.by: unknown metric {by!r}; known: {', '.join(tables.METRICS)}")
    command = winner["command"]
    if not isinstance(command, str) or not command.strip():
        raise ValueError(f"{where}.command must be a non-empty string, got {command!r}")
    try:
        list(string.Formatter().parse(command))
    except ValueError as error:
        raise ValueError(f"{where}.command is not a valid template ({error}); fields are written "
                         f"{{alpha}}, literal braces {{{{ }}}}") from None


def _check_published(published: Any, where: str) -> None:
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


# --------------------------------------------------------------------------- files

def _is_remote(path: str) -> bool:
    return "://" in path


def _join(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}" if _is_remote(directory) else os.path.join(directory, name)


def _write(path: str, data: bytes) -> None:
    """Writes a file whole: atomically on local disks, through tf.io.gfile for gs:// and other remote paths."""
    if _is_remote(path):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
        atomic_write(path, data)
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    atomic_write(path, data)


def _csv_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=tables.union_columns(rows), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_value(val) for key, val in row.items()})
    return buffer.getvalue().encode("utf-8")


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def _json_safe(value: Any) -> Any:
    """NaN and infinities become null (JSON has no such numbers; the contract says unknown is null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _json_safe(val) for key, val in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(val) for val in value]
    return value


# --------------------------------------------------------------------------- report.md parts

def _run_of(records: Records, trial: Mapping[str, Any]) -> Mapping[str, Any]:
    """A finished run of the trial (the first), else any run of it."""
    runs = [r for r in records if r.get("group") == trial["group"] and r["trial"] == trial["trial"]]
    return next((r for r in runs if r.get("status") == "done"), runs[0])


def _axis_columns(trials: Trials) -> list[str]:
    """Axes worth a column: those whose value is not already the trial's name."""
    keys = tables.union_columns([t["axes"] for t in trials])
    return [key for key in keys if not all(str(t["axes"].get(key)) == t["trial"] for t in trials)]


def _honesty_lines(records: Records, trials: Trials) -> list[str]:
    """What this data cannot show, computed from the records."""
    lines = []
    datasets = sorted({r.get("dataset") for r in records if r.get("dataset")})
    if "synthetic" in datasets:
        lines.append("The data is synthetic (random images and labels): accuracy is at chance by construction; "
                     "this run checks the pipeline (trials, records, tables, figures), not the networks.")
    for dataset in datasets:
        native = NATIVE_SIZE.get(dataset)
        resolutions = sorted({r["resolution"] for r in records
                              if r.get("dataset") == dataset and isinstance(r.get("resolution"), int)})
        above = [res for res in resolutions if native and res > native]
        if above:
            lines.append(
                f"{dataset} images are {native}x{native} px and these trials ran at "
                f"{', '.join(f'{res}' for res in resolutions)} px, so the input is upsampled: raising the "
                f"resolution here adds computation but no image detail, and what resolution buys on real photos "
                f"(finer detail) cannot show on this data.")
    max_runs = max((t["runs_done"] for t in trials), default=0)
    if max_runs == 1:
        lines.append("Each trial finished once, so the spread between seeds is unknown: differences of a few "
                     "tenths of a point can be seed noise. Set repeats >= 3 before reading them as findings.")
    return lines


def _published_columns(report: Mapping[str, Any], columns: Sequence[str]) -> set[str]:
    published = report.get("published") or {}
    return {col for numbers in published.values() for col in numbers if col in columns}


def _comparability(report: Mapping[str, Any], profile: str, datasets: Sequence[str]) -> str:
    source = report.get("published_source", "the seed")
    if profile in (report.get("published_profiles") or []):
        return (f"Columns marked (seed) are the published numbers of {source}; the `{profile}` profile trains "
                f"on the same data, so accuracy and size are comparable with ours (latency and throughput "
                f"depend on the machine each was measured on).")
    return (f"Columns marked (seed) are the published numbers of {source}. This report's `{profile}` profile "
            f"trains on {', '.join(datasets) or 'other'} data, so accuracy is not comparable with them, and "
            f"sizes, latency and throughput change with the resolution, class count and machine: they are "
            f"shown for reference only.")


def _spread_metric(report: Mapping[str, Any], table_columns: Sequence[str]) -> str:
    if report.get("winner"):
        return report["winner"].get("by", "top1")
    return next((c for c in ("top1", "top5", "loss") if c in table_columns), "top1")


def _spread_target(trials: Trials, report: Mapping[str, Any], metric: str) -> Mapping[str, Any] | None:
    reference = tables.find_reference(trials, report.get("reference"))
    if reference is not None and reference["mean"].get(metric) is not None:
        return reference
    return tables.best_trial(trials, metric)


def _spread_cell(entry: Mapping[str, Any] | None, metric: str) -> str:
    if entry is None:
        return "n/a"
    if entry["verdict"] == "target":
        return "(compared against)"
    diff = tables.format_number("top1_vs_reference_pct" if metric in ("top1", "top5") else metric,
                                entry["difference"])
    if metric not in ("top1", "top5") and not diff.startswith(("-", "+")):
        diff = f"+{diff}" if entry["difference"] >= 0 else diff
    if entry["verdict"] == "no spread (1 run)":
        return f"{diff} (1 run: spread unknown)"
    spread = f"{entry['spread']:.2f}" if metric in ("top1", "top5") else f"{entry['spread']:.3g}"
    return f"{diff} (finding: > {spread})" if entry["verdict"] == "finding" else f"{diff} (within spread {spread})"


def _main_table(trials: Trials, report: Mapping[str, Any], profile: str, datasets: Sequence[str]
                ) -> tuple[str, list[str]]:
    """The seed-shaped table and its footnotes."""
    columns = list(report.get("table") or DEFAULT_TABLE)
    reference = report.get("reference")
    published = report.get("published") or {}
    seeded = _published_columns(report, columns)
    axis_columns = _axis_columns(trials)
    show_group = any(t["group"] is not None for t in trials)
    show_status = any(t["status"] != "done" for t in trials)
    show_runs = any(t["runs"] > 1 for t in trials) and "runs" not in columns
    short = [key.rsplit(".", 1)[-1] for key in axis_columns]  # model_overrides.width_coefficient -> width_...
    headers = ["trial"] + (["group"] if show_group else [])
    headers += [name if short.count(name) == 1 else key for name, key in zip(short, axis_columns)]
    headers += ["status"] if show_status else []
    headers += ["runs"] if show_runs else []
    for column in columns:
        headers.append(tables.header(column, reference))
        if column in seeded:
            headers.append(f"{tables.header(column, reference)} (seed)")
    metric = _spread_metric(report, columns)
    target = _spread_target(trials, report, metric)
    spread = None
    if any(t["runs_done"] > 1 for t in trials) and target is not None:
        spread = tables.spread_comparison(trials, metric, target)
        headers.append(f"{tables.header(metric, None)} vs {target['label']}")
    rows = []
    for trial in trials:
        row = [trial["label"]] + ([str(trial["group"])] if show_group else [])
        row += [str(trial["axes"].get(key, "")) for key in axis_columns]
        row += [trial["status"]] if show_status else []
        row += [str(tables.value(trial, "runs")[0])] if show_runs else []
        for column in columns:
            row.append(tables.format_cell(column, *tables.value(trial, column)))
            if column in seeded:
                number = (published.get(trial["trial"]) or {}).get(column)
                row.append("" if number is None else tables.format_number(column, number, published=True))
        if spread is not None:
            row.append(_spread_cell(spread.get(trial["label"]), metric))
        rows.append(row)
    notes = []
    if any(t["runs_done"] > 1 for t in trials):
        notes.append("Numbers are mean ± sample standard deviation over the finished repeats.")
    if spread is not None:
        within = [label for label, e in spread.items() if e["verdict"] == "within spread"]
        compared = [label for label, e in spread.items() if e["verdict"] in ("within spread", "finding")]
        verdict = (f"Here {len(within)} of {len(compared)} differences are within the spread, so they are not "
                   f"findings: {', '.join(within)}." if within else
                   f"Here all {len(compared)} differences exceed the spread." if compared else
                   "No trial besides it has a spread to compare.")
        notes.append(
            f"The last column is each trial's mean {tables.header(metric, None)} minus {target['label']}'s; a "
            f"difference counts as a finding only when it is larger than the two trials' standard deviations "
            f"added. {verdict}")
    if reference and tables.find_reference(trials, reference) is None and any(c in tables.DERIVED for c in columns):
        notes.append(f"The reference trial {reference} has no record yet, so the columns against it are n/a.")
    if seeded:
        notes.append(_comparability(report, profile, datasets))
    unrecorded = [name for name in published if name not in {t["trial"] for t in trials}]
    if unrecorded:
        notes.append(f"The seed also has numbers for {', '.join(unrecorded)}, which have no record here (yet).")
    return tables.markdown(headers, rows), notes


def _pivot_table(trials: Trials, report: Mapping[str, Any]) -> tuple[str, list[str]]:
    pivot = report["pivot"]
    rows_key, columns_key, metric = pivot["rows"], pivot["columns"], pivot["value"]
    published = report.get("published") or {}
    row_values = list(dict.fromkeys(tables.lookup(t, rows_key) for t in trials))
    column_values = list(dict.fromkeys(tables.lookup(t, columns_key) for t in trials))
    cells: dict[tuple[Any, Any], Mapping[str, Any]] = {}
    collisions = []
    for trial in trials:
        key = (tables.lookup(trial, rows_key), tables.lookup(trial, columns_key))
        if key in cells:
            collisions.append(f"{trial['label']} (cell of {cells[key]['label']})")
            continue
        cells[key] = trial
    seeded = {col for col in column_values
              if any(metric in (published.get(t["trial"]) or {}) for key, t in cells.items() if key[1] == col)}
    headers = [rows_key]
    for col in column_values:
        headers.append(f"{col}: {tables.header(metric, None)}")
        if col in seeded:
            headers.append(f"{col} (seed)")
    rows = []
    for row_value in row_values:
        row = [str(row_value)]
        for col in column_values:
            trial = cells.get((row_value, col))
            row.append(tables.format_cell(metric, *tables.value(trial, metric)) if trial else "")
            if col in seeded:
                number = (published.get(trial["trial"]) or {}).get(metric) if trial else None
                row.append("" if number is None else tables.format_number(metric, number, published=True))
        rows.append(row)
    notes = [f"Several trials fall into one cell; the table shows the first: {', '.join(collisions)}."] \
        if collisions else []
    return tables.markdown(headers, rows), notes


def command_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a winner command template may name: config fields, model overrides, record fields and axes
    (an axis ``model_overrides.width_coefficient`` also as ``width_coefficient``)."""
    config = dict(record.get("config") or {})
    overrides = config.get("model_overrides") or {}
    fields: dict[str, Any] = {key: val for key, val in config.items() if key != "model_overrides"}
    fields.update(overrides)
    fields["model_overrides"] = json.dumps(overrides, sort_keys=True, separators=(",", ":"))
    for key in ("study", "trial", "group", "profile") + tables.DESCRIPTIVE:
        if record.get(key) is not None:
            fields[key] = record[key]
    for key, val in (record.get("axes") or {}).items():
        fields[key] = val
        fields[key.rsplit(".", 1)[-1]] = val
    return fields


def _winner_section(trials: Trials, records: Records, report: Mapping[str, Any]) -> list[str]:
    winner = report["winner"]
    by = winner.get("by", "top1")
    best = tables.best_trial(trials, by)
    if best is None:
        return [f"No finished trial has {by}: there is no winner yet."]
    mean_text = tables.format_cell(by, best["mean"][by], best["std"][by])
    axes = ", ".join(f"{k}={v}" for k, v in best["axes"].items())
    lines = [f"Best by mean {tables.header(by, None)} over {best['runs_done']} finished run(s): "
             f"**{best['label']}** ({axes}): {mean_text}."]
    spread = tables.spread_comparison(trials, by, best)
    close = [label for label, e in spread.items() if e["verdict"] == "within spread"]
    unknown = [label for label, e in spread.items() if e["verdict"] == "no spread (1 run)"]
    if close:
        lines.append(f"Within the spread of the winner, so not distinguishable from it on this data: "
                     f"{', '.join(close)}.")
    elif unknown and best["runs_done"] < 2:
        lines.append("The winner ran once, so whether it beats the others by more than seed noise is unknown.")
    elif unknown:
        lines.append(f"Ran once, so not compared with the winner's spread: {', '.join(unknown)}.")
    else:
        lines.append("Every other candidate is below the winner by more than the spread.")
    try:
        command = string.Formatter().vformat(winner["command"], (), command_fields(_run_of(records, best)))
    except (KeyError, IndexError, AttributeError, ValueError) as error:
        lines.append(f"The command could not be filled in: the template names {error}, which the winning "
                     f"trial's config and axes do not have; fix report.winner.command in the spec.")
        return lines
    lines += ["", "The command it gives:", "", "```", command, "```"]
    return lines


def _failures(records: Records) -> str | None:
    failed = [r for r in records if r.get("status") != "done"]
    if not failed:
        return None
    rows = [[r.get("name", ""), r.get("status") or "unknown", r.get("error") or "(no reason recorded)"]
            for r in failed]
    return tables.markdown(["trial run", "status", "reason"], rows)


# --------------------------------------------------------------------------- the report

def write_report(study_dir: str, spec: Mapping[str, Any], records: Records, *,
                 profile: str) -> dict[str, str]:
    """Writes results.csv (one row per trial run), results_trials.csv (one row per trial, mean and std
    over repeats), results.json (both), report.md, the figures and the HParams summaries into study_dir.
    Returns {"csv", "trials_csv", "json", "report", "hparams", <plot name>...: path}."""
    report = dict(spec.get("report") or {})
    records = [dict(r) for r in records]
    trials = sorted(tables.aggregate(records), key=tables.spec_order(spec))  # stable: ties keep record order
    tables.add_derived(trials, report.get("reference"))
    datasets = sorted({r.get("dataset") for r in records if r.get("dataset")})
    paths: dict[str, str] = {}

    figures: dict[str, str] = {}
    context = f"{spec.get('name', '')}, profile {profile}" + (f", {', '.join(datasets)}" if datasets else "")
    for name in report.get("plots") or plots.PLOTS:
        try:
            plot = plots.draw(name, trials, records, series=report.get("series"), context=context)
        except plots.NothingToPlot as reason:
            figures[name] = f"not drawn: {reason}"
            continue
        paths[name] = _join(study_dir, f"{name}.png")
        _write(paths[name], plot.png)
        figures[name] = ""

    text = _markdown(study_dir, spec, report, records, trials, datasets, figures, profile)
    paths["report"] = _join(study_dir, "report.md")
    _write(paths["report"], text.encode("utf-8"))
    paths["csv"] = _join(study_dir, "results.csv")
    _write(paths["csv"], _csv_bytes([tables.run_row(r) for r in records]))
    flat = [tables.flat_trial(t) for t in trials]
    paths["trials_csv"] = _join(study_dir, "results_trials.csv")
    _write(paths["trials_csv"], _csv_bytes(flat))
    results = {"study": spec.get("name"), "title": spec.get("title"), "seeds": spec.get("seeds"),
               "profile": profile, "datasets": datasets, "runs": records, "trials": flat}
    paths["json"] = _join(study_dir, "results.json")
    _write(paths["json"], json.dumps(_json_safe(results), indent=1, allow_nan=False).encode("utf-8"))
    paths["hparams"] = _join(study_dir, "hparams")
    hparams.write_hparams(paths["hparams"], records)
    return paths


def _markdown(study_dir: str, spec: Mapping[str, Any], report: Mapping[str, Any], records: Records,
              trials: Trials, datasets: Sequence[str], figures: Mapping[str, str], profile: str) -> str:
    name = spec.get("name", "study")
    seeds = spec.get("seeds") or []
    machines = sorted({r.get("machine") for r in records if r.get("machine")})
    statuses = [r.get("status") for r in records]
    out = [f"# {spec.get('title') or name}", ""]
    if spec.get("description"):
        out += [" ".join(str(spec["description"]).split()), ""]
    out += [
        f"- Study: `{name}`; reproduces seed{'s' if len(seeds) != 1 else ''} "
        f"{', '.join(str(s) for s in seeds) or '(none named)'}.",
        f"- Profile: `{profile}`; dataset: {', '.join(datasets) or 'n/a'}; "
        f"machine: {'; '.join(machines) or 'n/a'}.",
        f"- Trial runs: {len(records)} ({statuses.count('done')} done, {statuses.count('failed')} failed, "
        f"{statuses.count('diverged')} diverged) over {len(trials)} trials.",
        f"- Rebuild this report: `{REPORT_COMMAND.format(study_dir=study_dir)}`.",
        "",
    ]
    if not records:
        return "\n".join(out + ["No trial has a record yet.", ""])
    profile_notes = ((spec.get("profiles") or {}).get(profile) or {}).get("notes")
    honesty = ([" ".join(str(profile_notes).split())] if profile_notes else []) + _honesty_lines(records, trials)
    if report.get("notes"):
        honesty.append(" ".join(str(report["notes"]).split()))
    if honesty:
        out += ["## What this run can and cannot show", ""] + [f"- {line}" for line in honesty] + [""]
    table, notes = _main_table(trials, report, profile, sorted(datasets))
    out += ["## Results", "", table, ""] + [line for note in notes for line in (note, "")]
    if report.get("pivot"):
        pivot = report["pivot"]
        table, notes = _pivot_table(trials, report)
        out += [f"## {tables.header(pivot['value'], None)} by {pivot['rows']} and {pivot['columns']}", "", table,
                ""] + [line for note in notes for line in (note, "")]
    if report.get("winner"):
        out += ["## Winner", ""] + _winner_section(trials, records, report) + [""]
    failures = _failures(records)
    if failures:
        out += ["## Failed and diverged trial runs", "", failures, ""]
    if figures:
        out += ["## Figures", ""]
        for plot_name, missing in figures.items():
            title = plots.TITLES[plot_name]
            out += [f"{title}: {missing}." if missing else f"![{title}]({plot_name}.png)", ""]
    out += ["All runs: results.csv; one row per trial with mean and std: results_trials.csv; everything, with "
            "configs and eval histories: results.json; TensorBoard HParams: "
            f"`tensorboard --logdir={_join(study_dir, 'hparams')}`.", ""]
    return "\n".join(out)
