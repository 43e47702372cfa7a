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
import dataclasses
import io
import json
import math
import os
import string
from typing import Any, Mapping, Sequence

from efficientnet_tpu.data.native import native_resolution
from efficientnet_tpu.storage import atomic_write
from efficientnet_tpu.studies import hparams, optional, plots, tables
from efficientnet_tpu.studies.report_spec import Pivot, ReportSpec, Winner
from efficientnet_tpu.studies.spec import Shape, StudySpec, profile_notes

Trials = Sequence[Mapping[str, Any]]  # aggregated trials (tables.aggregate)
Records = Sequence[Mapping[str, Any]]  # trial runs, as the contract's records

# How the report tells the reader to rebuild it (the study command's collect-only mode).
REPORT_COMMAND = "python -m efficientnet_tpu.study --study_dir={study_dir} --report_only"


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

def spec_order(spec: StudySpec) -> Any:
    """A sort key that puts trials in the order the spec lists them (groups, explicit trials, axis values),
    so the table reads like the seed's rather than in the order records were collected."""
    groups = list(spec.groups)

    def layout(shape: Shape) -> tuple[list[str], dict[str, list[Any]]]:
        return [t.get("name") for t in shape.trials], {key: list(vals) for key, vals in shape.axes.items()}

    layouts = {None: layout(spec.shape)}
    layouts.update({name: layout(group.shape) for name, group in spec.groups.items()})

    def key(trial: Mapping[str, Any]) -> tuple:
        group = trial.get("group")
        names, axes = layouts.get(group, ([], {}))
        position = names.index(trial["trial"]) if trial["trial"] in names else len(names)
        indices = tuple(vals.index(trial["axes"][k]) if trial["axes"].get(k) in vals else len(vals)
                        for k, vals in axes.items())
        return (groups.index(group) if group in groups else len(groups), position, indices)

    return key


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
        native = native_resolution(dataset)
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


def _published_columns(report: ReportSpec, columns: Sequence[str]) -> set[str]:
    return {col for numbers in report.published.values() for col in numbers if col in columns}


def _comparability(report: ReportSpec, profile: str, datasets: Sequence[str]) -> str:
    source = report.published_source or "the seed"
    if profile in report.published_profiles:
        return (f"Columns marked (seed) are the published numbers of {source}; the `{profile}` profile trains "
                f"on the same data, so accuracy and size are comparable with ours (latency and throughput "
                f"depend on the machine each was measured on).")
    return (f"Columns marked (seed) are the published numbers of {source}. This report's `{profile}` profile "
            f"trains on {', '.join(datasets) or 'other'} data, so accuracy is not comparable with them, and "
            f"sizes, latency and throughput change with the resolution, class count and machine: they are "
            f"shown for reference only.")


def _spread_metric(report: ReportSpec) -> str:
    if report.winner is not None:
        return report.winner.by
    return next((c for c in ("top1", "top5", "loss") if c in report.table), "top1")


def _spread_target(trials: Trials, report: ReportSpec, metric: str) -> Mapping[str, Any] | None:
    reference = tables.find_reference(trials, report.reference)
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


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Which columns the main table shows, decided from the trials and the report section."""

    columns: tuple[str, ...]  # the section's metric columns
    axis_columns: list[str]
    seeded: set[str]  # columns with the seed's published numbers beside ours
    show_group: bool
    show_status: bool
    show_runs: bool
    metric: str  # compared against the spread
    spread: dict[str, dict[str, Any]] | None
    target: Mapping[str, Any] | None

    @staticmethod
    def of(trials: Trials, report: ReportSpec) -> _Layout:
        metric = _spread_metric(report)
        target = _spread_target(trials, report, metric)
        repeated = any(t["runs_done"] > 1 for t in trials) and target is not None
        return _Layout(columns=report.table, axis_columns=_axis_columns(trials),
                       seeded=_published_columns(report, report.table),
                       show_group=any(t["group"] is not None for t in trials),
                       show_status=any(t["status"] != "done" for t in trials),
                       show_runs=any(t["runs"] > 1 for t in trials) and "runs" not in report.table,
                       metric=metric, target=target,
                       spread=tables.spread_comparison(trials, metric, target) if repeated else None)


def _main_headers(layout: _Layout, reference: str | None) -> list[str]:
    short = [key.rsplit(".", 1)[-1] for key in layout.axis_columns]  # model_overrides.width_coefficient -> ...
    headers = ["trial"] + (["group"] if layout.show_group else [])
    headers += [name if short.count(name) == 1 else key for name, key in zip(short, layout.axis_columns)]
    headers += ["status"] if layout.show_status else []
    headers += ["runs"] if layout.show_runs else []
    for column in layout.columns:
        headers.append(tables.header(column, reference))
        if column in layout.seeded:
            headers.append(f"{tables.header(column, reference)} (seed)")
    if layout.spread is not None:
        headers.append(f"{tables.header(layout.metric, None)} vs {layout.target['label']}")
    return headers


def _main_row(trial: Mapping[str, Any], layout: _Layout, published: Mapping[str, Mapping[str, Any]]) -> list[str]:
    row = [trial["label"]] + ([str(trial["group"])] if layout.show_group else [])
    row += [str(trial["axes"].get(key, "")) for key in layout.axis_columns]
    row += [trial["status"]] if layout.show_status else []
    row += [str(tables.value(trial, "runs")[0])] if layout.show_runs else []
    for column in layout.columns:
        row.append(tables.format_cell(column, *tables.value(trial, column)))
        if column in layout.seeded:
            number = (published.get(trial["trial"]) or {}).get(column)
            row.append("" if number is None else tables.format_number(column, number, published=True))
    if layout.spread is not None:
        row.append(_spread_cell(layout.spread.get(trial["label"]), layout.metric))
    return row


def _spread_note(layout: _Layout) -> str:
    spread = layout.spread or {}
    within = [label for label, e in spread.items() if e["verdict"] == "within spread"]
    compared = [label for label, e in spread.items() if e["verdict"] in ("within spread", "finding")]
    verdict = (f"Here {len(within)} of {len(compared)} differences are within the spread, so they are not "
               f"findings: {', '.join(within)}." if within else
               f"Here all {len(compared)} differences exceed the spread." if compared else
               "No trial besides it has a spread to compare.")
    return (f"The last column is each trial's mean {tables.header(layout.metric, None)} minus "
            f"{layout.target['label']}'s; a difference counts as a finding only when it is larger than the two "
            f"trials' standard deviations added. {verdict}")


def _main_notes(trials: Trials, layout: _Layout, report: ReportSpec, profile: str,
                datasets: Sequence[str]) -> list[str]:
    notes = []
    if any(t["runs_done"] > 1 for t in trials):
        notes.append("Numbers are mean ± sample standard deviation over the finished repeats.")
    if layout.spread is not None:
        notes.append(_spread_note(layout))
    if (report.reference and tables.find_reference(trials, report.reference) is None
            and any(c in tables.DERIVED for c in layout.columns)):
        notes.append(f"The reference trial {report.reference} has no record yet, so the columns against it are n/a.")
    if layout.seeded:
        notes.append(_comparability(report, profile, datasets))
    unrecorded = [name for name in report.published if name not in {t["trial"] for t in trials}]
    if unrecorded:
        notes.append(f"The seed also has numbers for {', '.join(unrecorded)}, which have no record here (yet).")
    return notes


def _main_table(trials: Trials, report: ReportSpec, profile: str, datasets: Sequence[str]
                ) -> tuple[str, list[str]]:
    """The seed-shaped table and its footnotes."""
    layout = _Layout.of(trials, report)
    rows = [_main_row(trial, layout, report.published) for trial in trials]
    return (tables.markdown(_main_headers(layout, report.reference), rows),
            _main_notes(trials, layout, report, profile, datasets))


def _pivot_cells(trials: Trials, pivot: Pivot) -> tuple[dict[tuple[Any, Any], Mapping[str, Any]], list[str]]:
    """The trial of each (row, column) cell, the first one where several fall into one, and those left out."""
    cells: dict[tuple[Any, Any], Mapping[str, Any]] = {}
    collisions = []
    for trial in trials:
        key = (tables.lookup(trial, pivot.rows), tables.lookup(trial, pivot.columns))
        if key in cells:
            collisions.append(f"{trial['label']} (cell of {cells[key]['label']})")
            continue
        cells[key] = trial
    return cells, collisions


def _pivot_table(trials: Trials, pivot: Pivot, published: Mapping[str, Mapping[str, Any]]
                 ) -> tuple[str, list[str]]:
    metric = pivot.value
    row_values = list(dict.fromkeys(tables.lookup(t, pivot.rows) for t in trials))
    column_values = list(dict.fromkeys(tables.lookup(t, pivot.columns) for t in trials))
    cells, collisions = _pivot_cells(trials, pivot)
    seeded = {col for col in column_values
              if any(metric in (published.get(t["trial"]) or {}) for key, t in cells.items() if key[1] == col)}
    headers = [pivot.rows]
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


def _winner_margin(trials: Trials, best: Mapping[str, Any], by: str) -> str:
    """Whether the winner beats the others by more than the spread over repeats."""
    spread = tables.spread_comparison(trials, by, best)
    close = [label for label, e in spread.items() if e["verdict"] == "within spread"]
    unknown = [label for label, e in spread.items() if e["verdict"] == "no spread (1 run)"]
    if close:
        return f"Within the spread of the winner, so not distinguishable from it on this data: {', '.join(close)}."
    if unknown and best["runs_done"] < 2:
        return "The winner ran once, so whether it beats the others by more than seed noise is unknown."
    if unknown:
        return f"Ran once, so not compared with the winner's spread: {', '.join(unknown)}."
    return "Every other candidate is below the winner by more than the spread."


def _winner_section(trials: Trials, records: Records, winner: Winner) -> list[str]:
    by = winner.by
    best = tables.best_trial(trials, by)
    if best is None:
        return [f"No finished trial has {by}: there is no winner yet."]
    mean_text = tables.format_cell(by, best["mean"][by], best["std"][by])
    axes = ", ".join(f"{k}={v}" for k, v in best["axes"].items())
    lines = [f"Best by mean {tables.header(by, None)} over {best['runs_done']} finished run(s): "
             f"**{best['label']}** ({axes}): {mean_text}."]
    lines.append(_winner_margin(trials, best, by))
    try:
        command = string.Formatter().vformat(winner.command, (), command_fields(_run_of(records, best)))
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

def write_report(study_dir: str, spec: StudySpec, records: Records, *, profile: str) -> dict[str, str]:
    """Writes results.csv (one row per trial run), results_trials.csv (one row per trial, mean and std
    over repeats), results.json (both), report.md, the figures and the HParams summaries into study_dir.
    Returns {"csv", "trials_csv", "json", "report", "hparams", <plot name>...: path}. Without a package of
    the ``studies`` extra it writes nothing and raises optional.MissingPackage (one line: which, and how)."""
    optional.check()
    records = [dict(r) for r in records]
    trials = sorted(tables.aggregate(records), key=spec_order(spec))  # stable: ties keep record order
    tables.add_derived(trials, spec.report.reference)
    datasets = sorted({r.get("dataset") for r in records if r.get("dataset")})
    paths, figures = _write_figures(study_dir, spec, records, trials, datasets, profile)
    paths["report"] = _join(study_dir, "report.md")
    _write(paths["report"], _markdown(study_dir, spec, records, trials, datasets, figures, profile).encode("utf-8"))
    paths.update(_write_results(study_dir, spec, records, trials, datasets, profile))
    paths["hparams"] = _join(study_dir, "hparams")
    hparams.write_hparams(paths["hparams"], records)
    return paths


def _write_figures(study_dir: str, spec: StudySpec, records: Records, trials: Trials, datasets: Sequence[str],
                   profile: str) -> tuple[dict[str, str], dict[str, str]]:
    """({plot name: path} of the figures drawn, {plot name: "" or why it was not drawn})."""
    paths: dict[str, str] = {}
    figures: dict[str, str] = {}
    context = f"{spec.name}, profile {profile}" + (f", {', '.join(datasets)}" if datasets else "")
    for name in spec.report.plots:
        try:
            plot = plots.draw(name, trials, records, series=spec.report.series, context=context)
        except plots.NothingToPlot as reason:
            figures[name] = f"not drawn: {reason}"
            continue
        paths[name] = _join(study_dir, f"{name}.png")
        _write(paths[name], plot.png)
        figures[name] = ""
    return paths, figures


def _write_results(study_dir: str, spec: StudySpec, records: Records, trials: Trials, datasets: Sequence[str],
                   profile: str) -> dict[str, str]:
    """results.csv, results_trials.csv and results.json; {"csv", "trials_csv", "json": path}."""
    paths = {"csv": _join(study_dir, "results.csv"), "trials_csv": _join(study_dir, "results_trials.csv"),
             "json": _join(study_dir, "results.json")}
    _write(paths["csv"], _csv_bytes([tables.run_row(r) for r in records]))
    flat = [tables.flat_trial(t) for t in trials]
    _write(paths["trials_csv"], _csv_bytes(flat))
    results = {"study": spec.name, "title": spec.title, "seeds": list(spec.seeds) or None,
               "profile": profile, "datasets": datasets, "runs": records, "trials": flat}
    _write(paths["json"], json.dumps(_json_safe(results), indent=1, allow_nan=False).encode("utf-8"))
    return paths


def _header_lines(study_dir: str, spec: StudySpec, records: Records, trials: Trials, datasets: Sequence[str],
                  profile: str) -> list[str]:
    """The title, description and what produced the report."""
    seeds = spec.seeds
    machines = sorted({r.get("machine") for r in records if r.get("machine")})
    statuses = [r.get("status") for r in records]
    out = [f"# {spec.title or spec.name}", ""]
    if spec.description:
        out += [" ".join(str(spec.description).split()), ""]
    return out + [
        f"- Study: `{spec.name}`; reproduces seed{'s' if len(seeds) != 1 else ''} "
        f"{', '.join(seeds) or '(none named)'}.",
        f"- Profile: `{profile}`; dataset: {', '.join(datasets) or 'n/a'}; "
        f"machine: {'; '.join(machines) or 'n/a'}.",
        f"- Trial runs: {len(records)} ({statuses.count('done')} done, {statuses.count('failed')} failed, "
        f"{statuses.count('diverged')} diverged) over {len(trials)} trials.",
        f"- Rebuild this report: `{REPORT_COMMAND.format(study_dir=study_dir)}`.",
        "",
    ]


def _section(heading: str, table: str, notes: Sequence[str]) -> list[str]:
    return [heading, "", table, ""] + [line for note in notes for line in (note, "")]


def _honesty_section(spec: StudySpec, records: Records, trials: Trials, profile: str) -> list[str]:
    """The profile's notes, what the records show this data cannot show, and the report section's notes."""
    notes = profile_notes(spec, profile)
    honesty = ([" ".join(notes.split())] if notes else []) + _honesty_lines(records, trials)
    if spec.report.notes:
        honesty.append(" ".join(spec.report.notes.split()))
    return ["## What this run can and cannot show", ""] + [f"- {line}" for line in honesty] + [""] if honesty else []


def _figures_section(figures: Mapping[str, str]) -> list[str]:
    out = ["## Figures", ""] if figures else []
    for plot_name, missing in figures.items():
        title = plots.TITLES[plot_name]
        out += [f"{title}: {missing}." if missing else f"![{title}]({plot_name}.png)", ""]
    return out


def _markdown(study_dir: str, spec: StudySpec, records: Records, trials: Trials, datasets: Sequence[str],
              figures: Mapping[str, str], profile: str) -> str:
    report = spec.report
    out = _header_lines(study_dir, spec, records, trials, datasets, profile)
    if not records:
        return "\n".join(out + ["No trial has a record yet.", ""])
    out += _honesty_section(spec, records, trials, profile)
    out += _section("## Results", *_main_table(trials, report, profile, sorted(datasets)))
    if report.pivot is not None:
        pivot = report.pivot
        out += _section(f"## {tables.header(pivot.value, None)} by {pivot.rows} and {pivot.columns}",
                        *_pivot_table(trials, pivot, report.published))
    if report.winner is not None:
        out += ["## Winner", ""] + _winner_section(trials, records, report.winner) + [""]
    failures = _failures(records)
    if failures:
        out += ["## Failed and diverged trial runs", "", failures, ""]
    out += _figures_section(figures)
    out += ["All runs: results.csv; one row per trial with mean and std: results_trials.csv; everything, with "
            "configs and eval histories: results.json; TensorBoard HParams: "
            f"`tensorboard --logdir={_join(study_dir, 'hparams')}`.", ""]
    return "\n".join(out)
