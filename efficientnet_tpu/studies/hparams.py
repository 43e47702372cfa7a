"""TensorBoard HParams dashboard summaries for a study, one run per trial run.

``tensorboard --logdir=<study_dir>/hparams`` then lists every trial run with
what varied (its axes, variant, resolution, profile) beside what came out
(top-1, top-5, loss, params, MACs, latency), sortable and filterable, which is
how many researchers already compare sweeps. TensorFlow is imported inside
the function, so reading the report module stays cheap.
"""

from __future__ import annotations

import math
import posixpath
from typing import Any, Mapping, Sequence

from efficientnet_tpu.studies import optional

# Metric tag -> record field; the dashboard shows each tag's value at the run's last step.
METRICS = {
    "top1": "top1",
    "top5": "top5",
    "loss": "loss",
    "params": "params",
    "macs": "macs",
    "latency_ms_batch1": "latency_ms_batch1",
    "latency_ms_batch": "latency_ms_batch",
    "train_images_per_s": "train_images_per_s",
}
HISTORY_PREFIX = "history/"  # eval history as scalars, so TensorBoard also draws the curves


def hparam_values(record: Mapping[str, Any]) -> dict[str, Any]:
    """What describes a trial run: its axes, then variant, resolution, profile, dataset, group, repeat, status."""
    values: dict[str, Any] = dict(record.get("axes") or {})
    for key in _FIXED:
        if record.get(key) is not None:
            values[key] = record[key]
    return {key: val for key, val in values.items() if val is not None}


_FIXED = ("variant", "resolution", "profile", "dataset", "group", "repeat", "status")


def _uniform(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per-run hparams with one Python type per name (the dashboard needs one domain per hparam):
    all-bool stay bool, all-numeric become float when ints and floats mix, anything else is str."""
    per_run = [hparam_values(r) for r in records]
    names = {name for values in per_run for name in values}
    for name in names:
        seen = [values[name] for values in per_run if name in values]
        if all(isinstance(v, bool) for v in seen):
            continue
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
            if not all(isinstance(v, int) for v in seen):
                for values in per_run:
                    if name in values:
                        values[name] = float(values[name])
            continue
        for values in per_run:
            if name in values:
                values[name] = str(values[name])
    return per_run


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def write_hparams(hparams_dir: str, records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Writes the experiment config at ``hparams_dir`` and one run per record at
    ``hparams_dir/<record name>``; replaces what an earlier report wrote there. Returns the run dirs."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    hp = optional.require("tensorboard.plugins.hparams.api", "the study's HParams summaries")

    if tf.io.gfile.exists(hparams_dir):
        tf.io.gfile.rmtree(hparams_dir)  # derived data only: a rerun of the report must not add duplicates
    per_run = _uniform(records)
    domains: dict[str, list[Any]] = {}
    for values in per_run:
        for name, val in values.items():
            domains.setdefault(name, [])
            if val not in domains[name]:
                domains[name].append(val)
    declared = [hp.HParam(name, hp.Discrete(sorted(vals))) for name, vals in sorted(domains.items())]
    metrics = [hp.Metric(tag, display_name=tag) for tag in METRICS]
    with tf.summary.create_file_writer(hparams_dir).as_default():
        hp.hparams_config(hparams=declared, metrics=metrics)
    run_dirs = []
    for record, values in zip(records, per_run):
        run_dir = posixpath.join(hparams_dir, record["name"])
        history = [h for h in record.get("history") or [] if isinstance(h.get("step"), int)]
        final_step = max([h["step"] for h in history], default=0)
        writer = tf.summary.create_file_writer(run_dir)
        with writer.as_default():
            hp.hparams(values, trial_id=record["name"])
            for entry in history:
                for key in ("top1", "top5", "loss"):
                    number = _finite(entry.get(key))
                    if number is not None:
                        tf.summary.scalar(HISTORY_PREFIX + key, number, step=entry["step"])
            for tag, field in METRICS.items():
                number = _finite(record.get(field))
                if number is not None:
                    tf.summary.scalar(tag, number, step=final_step)
        writer.close()
        run_dirs.append(run_dir)
    return run_dirs
