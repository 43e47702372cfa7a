"""A study's figures as PNG bytes: accuracy against MACs and latency, and training curves.

Figures are drawn on a bare matplotlib ``Figure`` with the Agg canvas, so no
display and no pyplot global state is touched (a study runs on headless TPU
VMs and inside other programs). Each function returns what it drew, read back
from the drawn lines, so a test can check that a figure shows the records.
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from efficientnet_tpu.studies import optional, tables

# matplotlib is imported where a figure is drawn (optional.require: one line naming the extra when it is
# missing); a spec's report section (plot names) is checked without it, before any trial runs.
if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOTTED_KEY = "efficientnet_tpu.plotted"  # PNG text chunk holding the plotted values
PLOTS = ("accuracy_vs_macs", "accuracy_vs_latency", "training_curves")
TITLES = {
    "accuracy_vs_macs": "Accuracy against MACs",
    "accuracy_vs_latency": "Accuracy against inference latency (batch 1)",
    "training_curves": "Top-1 during training",
}


class NothingToPlot(ValueError):
    """No trial has the numbers a figure needs; the message says which."""


@dataclasses.dataclass
class Plot:
    """A drawn figure: the PNG and, per line label, the (x, y) values read back from the line."""

    png: bytes
    lines: dict[str, tuple[list[float], list[float]]]
    point_labels: dict[str, list[str]] = dataclasses.field(default_factory=dict)


def _new_figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Any]:
    figure = optional.require("matplotlib.figure", "a study figure").Figure(figsize=(7.0, 4.8), dpi=100,
                                                                           layout="constrained")
    optional.require("matplotlib.backends.backend_agg", "a study figure").FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _finish(figure: Figure, axes: Any, drawn: dict[str, Any], point_labels: dict[str, list[str]]) -> Plot:
    if len(drawn) > 1 or any(label for label in drawn):
        axes.legend(fontsize=8)
    lines = {label: ([float(x) for x in line.get_xdata()], [float(y) for y in line.get_ydata()])
             for label, line in drawn.items()}
    buffer = io.BytesIO()
    # The plotted values travel inside the PNG (a text chunk), so anyone holding the file can check
    # it against the records without redrawing it.
    figure.savefig(buffer, format="png", metadata={PLOTTED_KEY: json.dumps({"lines": lines,
                                                                           "point_labels": point_labels})})
    return Plot(png=buffer.getvalue(), lines=lines, point_labels=point_labels)


def read_plotted(png: str | bytes) -> dict[str, Any]:
    """The values a figure of this module plotted, from its PNG file (path or bytes):
    {"lines": {label: [xs, ys]}, "point_labels": {label: [trial, ...]}}."""
    from PIL import Image  # pylint: disable=import-outside-toplevel

    with Image.open(io.BytesIO(png) if isinstance(png, bytes) else png) as image:
        image.load()
        return json.loads(image.text[PLOTTED_KEY])


def _title(name: str, context: str, suffix: str = "") -> str:
    return f"{TITLES[name]}{suffix}\n{context}" if context else f"{TITLES[name]}{suffix}"


def accuracy_vs(trials: Sequence[Mapping[str, Any]], x_metric: str, *, series: str | None = None,
                title: str = "", y_metric: str = "top1") -> Plot:
    """Mean top-1 against a cost metric, one line per ``series`` value, each point labelled with its trial.

    Vertical bars show +- one standard deviation over repeats where there is one.
    """
    points: dict[str, list[tuple[float, float, float | None, str]]] = {}
    for trial in trials:
        x, y = trial["mean"].get(x_metric), trial["mean"].get(y_metric)
        if trial["status"] != "done" or x is None or y is None:
            continue
        key = "" if series is None else str(tables.lookup(trial, series))
        points.setdefault(key, []).append((x, y, trial["std"].get(y_metric), trial["label"]))
    if not points:
        raise NothingToPlot(f"no finished trial has both {x_metric} and {y_metric}")
    x_label = {"macs": "MACs", "latency_ms_batch1": "inference latency, batch 1 (ms)"}.get(x_metric, x_metric)
    figure, axes = _new_figure(title, x_label, tables.header(y_metric, None))
    from matplotlib.ticker import EngFormatter, PercentFormatter  # pylint: disable=import-outside-toplevel

    if x_metric in ("macs", "params"):
        axes.xaxis.set_major_formatter(EngFormatter())
    if y_metric in ("top1", "top5"):
        axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        axes.set_ylabel(y_metric.replace("top", "top-"))
    drawn, point_labels = {}, {}
    for index, (key, values) in enumerate(points.items()):
        values.sort()
        xs, ys = [p[0] for p in values], [p[1] for p in values]
        # Without a series the points are separate networks, not a scaling path: no joining line.
        (line,) = axes.plot(xs, ys, marker="o", linestyle="-" if series else "none",
                            label=f"{series} = {key}" if series else None)
        drawn[f"{series} = {key}" if series else ""] = line
        point_labels[f"{series} = {key}" if series else ""] = [p[3] for p in values]
        spreads = [(x, y, std) for x, y, std, _ in values if std is not None]
        if spreads:
            axes.vlines([s[0] for s in spreads], [s[1] - s[2] for s in spreads], [s[1] + s[2] for s in spreads],
                        colors=line.get_color(), alpha=0.6)
        for x, y, _, name in values:
            # Lines often share their first point (the common base): stagger labels per line.
            axes.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4 - 9 * index), fontsize=7,
                          color=line.get_color())
    return _finish(figure, axes, drawn, point_labels)


def accuracy_vs_macs(trials: Sequence[Mapping[str, Any]], *, series: str | None = None, context: str = "") -> Plot:
    return accuracy_vs(trials, "macs", series=series, title=_title("accuracy_vs_macs", context))


def accuracy_vs_latency(trials: Sequence[Mapping[str, Any]], *, series: str | None = None,
                        context: str = "") -> Plot:
    return accuracy_vs(trials, "latency_ms_batch1", series=series, title=_title("accuracy_vs_latency", context))


def curves(records: Sequence[Mapping[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """Top-1 against step per trial: the mean over its finished repeats at the steps all of them
    evaluated, or one curve per repeat (label ``trial/seedN``) when their eval steps differ."""
    runs: dict[tuple[Any, str], list[Mapping[str, Any]]] = {}
    for record in records:
        if record.get("status") == "done" and record.get("history"):
            runs.setdefault((record.get("group"), record["trial"]), []).append(record)
    names = [trial for _, trial in runs]
    out = {}
    for (group, trial), repeats in runs.items():
        label = trial if names.count(trial) == 1 else f"{group}/{trial}"
        histories = [{h["step"]: h["top1"] for h in r["history"] if h.get("top1") is not None} for r in repeats]
        common = sorted(set.intersection(*(set(h) for h in histories)))
        if common and all(len(h) == len(common) for h in histories):
            out[label] = (common, [sum(h[s] for h in histories) / len(histories) for s in common])
            continue
        for record, history in zip(repeats, histories):
            steps = sorted(history)
            out[f"{label}/seed{record.get('repeat')}"] = (steps, [history[s] for s in steps])
    return out


def training_curves(records: Sequence[Mapping[str, Any]], *, context: str = "") -> Plot:
    lines = curves(records)
    if not any(xs for xs, _ in lines.values()):
        raise NothingToPlot("no finished trial has an eval history (top-1 against step)")
    finished = [r["trial"] for r in records if r.get("status") == "done" and r.get("history")]
    averaged = any(finished.count(label.rsplit("/", 1)[-1]) > 1 for label in lines if "/seed" not in label)
    title = _title("training_curves", context, " (mean over repeats)" if averaged else "")
    figure, axes = _new_figure(title, "training step", "top-1")
    from matplotlib.ticker import PercentFormatter  # pylint: disable=import-outside-toplevel

    axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    drawn = {}
    for label, (steps, top1) in lines.items():
        (drawn[label],) = axes.plot(steps, top1, marker="." if len(steps) < 30 else None, label=label)
    return _finish(figure, axes, drawn, {})


def draw(name: str, trials: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]], *,
         series: str | None = None, context: str = "") -> Plot:
    """The named figure (one of PLOTS); ``context`` (study, profile) is added to its title."""
    if name == "accuracy_vs_macs":
        return accuracy_vs_macs(trials, series=series, context=context)
    if name == "accuracy_vs_latency":
        return accuracy_vs_latency(trials, series=series, context=context)
    if name == "training_curves":
        return training_curves(records, context=context)
    raise ValueError(f"unknown plot {name!r}; known: {', '.join(PLOTS)}")
