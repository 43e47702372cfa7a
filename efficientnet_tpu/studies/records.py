"""One JSON record per trial (its fields: `new_record`; docs/studies.md), written beside the trial's run.

A record is what the report reads: the resolved config, size, speed, the
final metrics and the eval history, and whether the trial finished, failed
or diverged. Records live at ``<study_dir>/<trial name>/record.json``, so
collecting a study is one glob, on local disks and gs:// alike.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

import tensorflow as tf

from efficientnet_tpu.storage import write_json

RECORD_FILENAME = "record.json"
STATUSES = ("done", "failed", "diverged")

# Every key of a record, in the contract's order; numbers nobody measured stay None.
RECORD_KEYS = (
    "study", "trial", "name", "group", "repeat", "axes", "profile", "dataset", "config", "variant", "resolution",
    "num_classes", "params", "macs", "latency_ms_batch1", "latency_ms_batch", "latency_batch_size",
    "train_images_per_s", "machine", "wall_s", "top1", "top5", "loss", "history", "status", "error",
    "started", "finished",
)


def now() -> str:
    """UTC time in ISO 8601 with a Z, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_path(study_dir: str, name: str) -> str:
    return os.path.join(study_dir, name, RECORD_FILENAME)


def new_record(**values: Any) -> dict[str, Any]:
    """A record with every contract key (None where not given); unknown keys are a bug."""
    unknown = sorted(set(values) - set(RECORD_KEYS))
    if unknown:
        raise KeyError(f"not record keys: {', '.join(unknown)}")
    record = {key: None for key in RECORD_KEYS}
    record["history"] = []
    record.update(values)
    return record


def write_record(study_dir: str, record: dict[str, Any]) -> str:
    """Writes the record atomically (a temporary file renamed over the old one)."""
    if record.get("status") not in STATUSES:
        raise ValueError(f"record status must be one of {', '.join(STATUSES)}, got {record.get('status')!r}")
    path = record_path(study_dir, record["name"])
    tf.io.gfile.makedirs(os.path.dirname(path))
    return write_json(path, record, indent=2, sort_keys=False, default=_plain)


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and tuples that slip into a record."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def read_record(study_dir: str, name: str) -> dict[str, Any] | None:
    """The record of a trial, or None when there is none (or it is unreadable)."""
    path = record_path(study_dir, name)
    if not tf.io.gfile.exists(path):
        return None
    return _load(path)


def _load(path: str) -> dict[str, Any] | None:
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            data = json.loads(f.read())
    except (json.JSONDecodeError, tf.errors.OpError):
        return None
    return data if isinstance(data, dict) else None


def collect(study_dir: str) -> list[dict[str, Any]]:
    """Every readable record under study_dir (``<study>/<trial>/seed<N>/record.json``), sorted by name."""
    pattern = os.path.join(study_dir, "*", "*", "*", RECORD_FILENAME)
    records = [r for r in (_load(p) for p in tf.io.gfile.glob(pattern)) if r is not None]
    return sorted(records, key=lambda r: (str(r.get("name")), int(r.get("repeat") or 0)))


def eval_history(model_dir: str) -> list[dict[str, float]]:
    """Every evaluation a run wrote to its TensorBoard eval log: [{step, top1, top5, loss}], by step.

    A resumed run appends new event files; a later write of the same step wins.
    """
    by_step: dict[int, dict[str, float]] = {}
    files = sorted(tf.io.gfile.glob(os.path.join(model_dir, "eval", "events.out.tfevents.*")))
    for path in files:
        try:
            for raw in tf.data.TFRecordDataset(path):
                event = tf.compat.v1.Event.FromString(raw.numpy())
                for value in event.summary.value:
                    if value.tag not in ("top1", "top5", "loss"):
                        continue
                    number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") \
                        else float(value.simple_value)
                    by_step.setdefault(int(event.step), {"step": int(event.step)})[value.tag] = number
        except tf.errors.DataLossError:
            continue  # a file cut short by preemption: keep what was read
    return [by_step[s] for s in sorted(by_step)]
