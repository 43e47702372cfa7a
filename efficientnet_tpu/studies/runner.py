"""Runs a study's trials, each an ordinary training run in its own directory.

Rerunning the same study skips trials whose record says done (or diverged:
the same run would diverge again), resumes the others from their newest
checkpoint, and records a failure as one line while the study goes on.
``--force`` patterns start chosen trials from scratch. Workers split a study
by taking every N-th trial, so N machines need no scheduler of ours.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import time
import traceback
from typing import Any, Callable, Sequence

import tensorflow as tf
import yaml

from efficientnet_tpu import exit_codes
from efficientnet_tpu.storage import atomic_write
from efficientnet_tpu.studies import measure, records
from efficientnet_tpu.studies.spec import StudySpec, Trial, parse_spec
from efficientnet_tpu.training.lock import LockHeld
from efficientnet_tpu.training.loop import TrainingDiverged
from efficientnet_tpu.training.preemption import Preempted

STUDY_FILENAME = "study.yaml"
SKIPPED_STATUSES = ("done", "diverged")


def train(config, *, progress: bool = True) -> dict[str, Any]:
    """The one call into the trainer (``run(config)``); the only import of it in the studies package."""
    from efficientnet_tpu.run import run  # pylint: disable=import-outside-toplevel

    return run(config, progress=progress)


def shard(trials: Sequence[Trial], num_workers: int, worker_index: int) -> list[Trial]:
    """Every ``num_workers``-th trial starting at ``worker_index`` (the study's order is fixed)."""
    if num_workers < 1 or not 0 <= worker_index < num_workers:
        raise ValueError(f"--worker_index must be in [0, --num_workers) and --num_workers >= 1; "
                         f"got {worker_index} of {num_workers}")
    return list(trials[worker_index::num_workers])


def matches(trial: Trial, patterns: Sequence[str]) -> bool:
    """Whether a --force pattern (a glob on the trial name or the full name; 'all') selects the trial."""
    return any(p == "all" or fnmatch.fnmatchcase(trial.trial, p) or fnmatch.fnmatchcase(trial.name, p)
               for p in patterns)


def save_study(study_dir: str, spec: StudySpec, profile: str | None) -> str:
    """Keeps the spec (its YAML mapping) and profile in study_dir so ``--report_only`` needs only the directory."""
    path = os.path.join(study_dir, STUDY_FILENAME)
    if tf.io.gfile.exists(path):
        previous = load_study(study_dir)
        if previous["spec"].name != spec.name or previous.get("profile") != profile:
            raise ValueError(f"{study_dir} holds study {previous['spec'].name!r} (profile "
                             f"{previous.get('profile')}); use another --study_dir for {spec.name!r} "
                             f"(profile {profile})")
    tf.io.gfile.makedirs(study_dir)
    plain = {k: v for k, v in spec.raw.items() if not k.startswith("_")}
    return atomic_write(path, yaml.safe_dump({"spec": plain, "profile": profile}, sort_keys=False))


def load_study(study_dir: str) -> dict[str, Any]:
    """The spec (parsed: a StudySpec) and profile a study_dir was run with ({"spec": ..., "profile": ...})."""
    path = os.path.join(study_dir, STUDY_FILENAME)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path} does not exist: {study_dir} holds no study run (give --study as well)")
    with tf.io.gfile.GFile(path, "r") as f:
        data = yaml.safe_load(f.read())
    if not isinstance(data, dict) or not isinstance(data.get("spec"), dict):
        raise ValueError(f"{path} is not a study file written by the study runner")
    return {**data, "spec": parse_spec(data["spec"], path)}


def reason(error: BaseException, limit: int = 300) -> str:
    """One line saying why a trial failed; for TF's graph errors, the message's last line (the cause)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if isinstance(error, tf.errors.OpError) and len(lines) > 1:
        lines = [lines[-1]]
    text = " ".join(" ".join(lines).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _base_record(trial: Trial, profile: str | None) -> dict[str, Any]:
    return records.new_record(
        study=trial.study, trial=trial.trial, name=trial.name, group=trial.group, repeat=trial.repeat,
        axes=trial.axes, profile=profile, dataset=trial.config.dataset, config=trial.config.to_dict(),
        variant=trial.config.variant, started=records.now())


def _speed(trial: Trial, batch_size: int) -> dict[str, Any]:
    from efficientnet_tpu.studies.measure import speed  # pylint: disable=import-outside-toplevel

    return speed(trial.config, batch_size=batch_size)


def run_trial(trial: Trial, study_dir: str, *, profile: str | None, measure_speed: bool = True,
              latency_batch_size: int = 32, progress: bool = True) -> dict[str, Any]:
    """Trains (or resumes) one trial and writes its record; a failure is recorded, not raised.

    ``Preempted`` and ``KeyboardInterrupt`` propagate: the study stops with
    its checkpoints saved, and rerunning resumes it. So does ``LockHeld``:
    another process trains this trial now, and recording it as failed would
    be false.
    """
    record = _base_record(trial, profile)
    try:
        record.update(measure.describe_size(trial.config))
    except ValueError as e:
        record.update(status="failed", error=exit_codes.one_line(e), finished=records.now())
        records.write_record(study_dir, record)
        return record
    start = time.perf_counter()
    try:
        result = train(trial.config, progress=progress)
    except (Preempted, KeyboardInterrupt, LockHeld):
        raise
    except TrainingDiverged as e:
        record.update(status="diverged", error=exit_codes.one_line(e))
    except Exception as e:  # pylint: disable=broad-except  (one trial's failure must not end the study)
        record.update(status="failed", error=f"{type(e).__name__}: {reason(e)}")
        tf.io.gfile.makedirs(trial.config.model_dir)
        with tf.io.gfile.GFile(os.path.join(trial.config.model_dir, "error.log"), "w") as f:
            f.write(traceback.format_exc())
    else:
        evaluation = result.get("eval") or {}
        record.update(status="done", config=result["config"].to_dict(),
                      top1=evaluation.get("top1"), top5=evaluation.get("top5"), loss=evaluation.get("loss"))
    record["wall_s"] = round(time.perf_counter() - start, 3)
    record["history"] = records.eval_history(trial.config.model_dir) if tf.io.gfile.exists(
        trial.config.model_dir) else []
    if record["status"] == "done" and measure_speed:
        record.update(_speed(trial, latency_batch_size))
    record["finished"] = records.now()
    records.write_record(study_dir, record)
    return record


def run_study(trials: Sequence[Trial], study_dir: str, *, profile: str | None, force: Sequence[str] = (),
              num_workers: int = 1, worker_index: int = 0, measure_speed: bool = True,
              latency_batch_size: int = 32, progress: bool = True,
              on_trial_end: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Runs this worker's share of ``trials``; returns the records of the trials it ran or skipped."""
    mine = shard(trials, num_workers, worker_index)
    out = []
    for index, trial in enumerate(mine, 1):
        existing = records.read_record(study_dir, trial.name)
        if force and matches(trial, force):
            if tf.io.gfile.exists(trial.config.model_dir):
                tf.io.gfile.rmtree(trial.config.model_dir)
            existing = None
        if existing is not None and existing.get("status") in SKIPPED_STATUSES:
            _say(progress, f"[{index}/{len(mine)}] {trial.name}: {existing['status']} already; skipped "
                           "(--force to redo)")
            out.append(existing)
            continue
        _say(progress, f"[{index}/{len(mine)}] {trial.name}")
        record = run_trial(trial, study_dir, profile=profile, measure_speed=measure_speed,
                           latency_batch_size=latency_batch_size, progress=progress)
        if record["status"] != "done":
            _say(progress, f"[{index}/{len(mine)}] {trial.name}: {record['status']}: {record['error']}")
        out.append(record)
        if on_trial_end is not None:
            on_trial_end(record)
    return out


def _say(enabled: bool, text: str) -> None:
    if enabled:
        print(text, file=sys.stdout, flush=True)
