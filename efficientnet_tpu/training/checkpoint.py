"""Checkpoints that survive preemption (``trained.load_trained_model`` reads them back for export).

TensorFlow's checkpoint writer already makes a save atomic where it matters:
the data files are written first and the small ``checkpoint`` state file is
replaced last, so a process killed mid-save leaves the previous checkpoint as
the latest. On object stores, where a rename is a copy, a half-written
checkpoint can still be listed; ``CheckpointKeeper.restore_latest`` therefore
falls back to the next older checkpoint when the newest cannot be read.

No run may restart over checkpoints it cannot see: when the index file is
damaged, empty or missing, the ``ckpt-N`` files are found by listing the
folder (``scan_checkpoints``) and the lock holder rewrites the index
(``repair_index``) before TensorFlow's CheckpointManager reads it; when none
of them can be read the run is refused, naming them. A save killed half-way
leaves a ``ckpt-N_temp`` folder, removed on the next start
(``remove_temporaries``); weights holding NaN or inf are never saved.
"""

from __future__ import annotations

import dataclasses
import logging as std_logging
import os
import re

import keras
import tensorflow as tf
from absl import logging

from efficientnet_tpu import storage


# Errors that mean "this checkpoint's files are missing, truncated or corrupt"
# (a truncated data file surfaces from the reader as IndexError).
# The reader raises a bare OpError for a file too short to be an sstable.
_UNREADABLE = (tf.errors.OpError, IndexError)


def rng_states(model: keras.Model) -> list:
    """The model's random-generator states (dropout, stochastic depth).

    Keras keeps them outside ``model.weights`` and TensorFlow's checkpoint does
    not reach them through the layers, so they are saved explicitly: without
    them a resumed run would replay the dropout masks of step 0.
    """
    weight_ids = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weight_ids]


INDEX_FILENAME = "checkpoint"
_CKPT_FILE = re.compile(r"^ckpt-(\d+)\.(index|data-\d+-of-\d+)$")


@dataclasses.dataclass(frozen=True)
class CheckpointScan:
    """What a model_dir holds: its checkpoints (step, path; oldest first) and the state of the index.

    ``note`` is set when the index file (``checkpoint``) was damaged, empty or
    missing while ``ckpt-N`` files exist: the checkpoints were then found by
    listing the folder, so that no run restarts over another's work.
    """

    steps: tuple[tuple[int, str], ...]
    note: str | None = None


def _listed_steps(directory: str) -> list[tuple[int, str]]:
    """(step, path) of every ``ckpt-N`` with an index or data file in ``directory``, oldest first."""
    found: set[int] = set()
    for name in tf.io.gfile.listdir(directory):
        match = _CKPT_FILE.match(name.rstrip("/"))
        if match:
            found.add(int(match.group(1)))
    return [(step, os.path.join(directory, f"ckpt-{step}")) for step in sorted(found)]


def _from_state(state) -> list[tuple[int, str]]:
    # get_checkpoint_state has already joined relative entries onto `directory`
    # (joining again would double a relative model_dir: runs/x/runs/x/ckpt-1).
    paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    out = []
    for path in paths:
        try:
            step = int(path.rsplit("-", 1)[-1])
        except ValueError:
            step = -1
        out.append((step, path))
    return out


def _exists(path: str) -> bool:
    return bool(tf.io.gfile.glob(path + ".index")) or bool(tf.io.gfile.glob(path + ".data-*"))


def _quiet_state(directory: str):
    """``tf.train.get_checkpoint_state`` without its "Checkpoint ignored" warnings (our note says more)."""
    tf_logger = std_logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(std_logging.ERROR)
    try:
        return tf.train.get_checkpoint_state(directory)
    finally:
        tf_logger.setLevel(level)


def scan_checkpoints(directory: str) -> CheckpointScan:
    """The checkpoints of ``directory``, from its index file or, when that is unusable, by listing."""
    if not tf.io.gfile.isdir(directory):
        return CheckpointScan(())
    index = os.path.join(directory, INDEX_FILENAME)
    problem = None
    try:
        state = _quiet_state(directory)
    except (ValueError, tf.errors.OpError) as e:  # an empty index: "Invalid checkpoint state"
        state, problem = None, f"is unreadable ({str(e).splitlines()[0][:120]})"
    if state is not None and state.model_checkpoint_path:
        steps = _from_state(state)
        if _exists(steps[-1][1]):
            return CheckpointScan(tuple(steps))
        problem = f"names {os.path.basename(steps[-1][1])}, whose files are missing"
    listed = _listed_steps(directory)
    if not listed:
        return CheckpointScan(())
    if problem is None:
        problem = ("is damaged" if tf.io.gfile.exists(index) and tf.io.gfile.stat(index).length
                   else "is empty" if tf.io.gfile.exists(index) else "is missing")
    names = f"ckpt-{listed[0][0]}" + (f" .. ckpt-{listed[-1][0]}" if len(listed) > 1 else "")
    note = (f"the checkpoint index {index} {problem}; found {len(listed)} checkpoint(s) by listing "
            f"({names}): resuming from the newest readable one")
    return CheckpointScan(tuple(listed), note)


def checkpoint_steps(directory: str) -> list[tuple[int, str]]:
    """(step, path) of the checkpoints in ``directory``, oldest first (see ``scan_checkpoints``)."""
    return list(scan_checkpoints(directory).steps)


def repair_index(directory: str) -> str | None:
    """Rewrites a damaged, empty or missing index from the listed ``ckpt-N`` files; returns the note.

    Only the process that holds the model_dir lock may call it. Without the
    repair TensorFlow's CheckpointManager would see no checkpoint, and the
    run would start from step 0 and save over the intact files.
    """
    scan = scan_checkpoints(directory)
    index = os.path.join(directory, INDEX_FILENAME)
    if not scan.steps and tf.io.gfile.exists(index):
        try:
            _quiet_state(directory)
        except (ValueError, tf.errors.OpError):
            # An unreadable index of no checkpoint files: TensorFlow's manager would refuse to start.
            tf.io.gfile.remove(index)
            return f"removed the unreadable checkpoint index {index} (no ckpt-N files beside it)"
    if scan.note is None:
        return None
    names = [os.path.basename(path) for _, path in scan.steps]
    # The timestamps matter: TensorFlow's CheckpointManager drops entries that have none.
    times = []
    for _, path in scan.steps:
        files = tf.io.gfile.glob(path + ".index") or tf.io.gfile.glob(path + ".data-*")
        times.append(tf.io.gfile.stat(files[0]).mtime_nsec / 1e9)
    lines = [f'model_checkpoint_path: "{names[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in names]
    lines += [f"all_model_checkpoint_timestamps: {stamp!r}" for stamp in times]
    lines.append(f"last_preserved_timestamp: {min(times) - 1.0!r}")  # CheckpointState's text format
    storage.atomic_write(index, "\n".join(lines) + "\n")
    return scan.note


def remove_temporaries(directory: str) -> list[str]:
    """Deletes the ``ckpt-N_temp`` folders a save killed half-way leaves behind; returns their paths.

    Only the lock holder calls it: another live writer's save would be in such a folder.
    """
    removed = []
    if not tf.io.gfile.isdir(directory):
        return removed
    for name in tf.io.gfile.listdir(directory):
        name = name.rstrip("/")
        if re.match(r"^ckpt-\d+_temp", name):
            path = os.path.join(directory, name)
            if tf.io.gfile.isdir(path):
                tf.io.gfile.rmtree(path)
            else:
                tf.io.gfile.remove(path)
            removed.append(path)
    return removed


def nonfinite_variables(variables) -> list[str]:
    """Names of the float variables holding a NaN or an infinity (checked before every save)."""
    bad = []
    for variable in variables:
        if tf.as_dtype(variable.dtype).is_floating and not bool(tf.reduce_all(tf.math.is_finite(variable)).numpy()):
            bad.append(variable.name)
    return bad


def has_object(path: str, name: str) -> bool:
    """Whether the checkpoint at ``path`` holds the top-level object ``name`` (True when unreadable:
    the restore then reports the real problem)."""
    try:
        return any(key.split("/", 1)[0] == name for key, _ in tf.train.list_variables(path))
    except (tf.errors.OpError, ValueError):
        return True


def _try_restore(checkpoint: tf.train.Checkpoint, path: str, partial: bool) -> None:
    status = checkpoint.restore(path)
    if partial:
        status.expect_partial()
    status.assert_existing_objects_matched()


def restore_newest_readable(checkpoint: tf.train.Checkpoint, directory: str, partial: bool = False,
                            without_input: tf.train.Checkpoint | None = None) -> tuple[str | None, bool]:
    """Restores the newest checkpoint that can be read; returns (its path or None, whether in full).

    When the input iterator's saved state does not fit the current pipeline
    (the batch size or augmentation changed between runs), ``without_input``
    (the same objects minus the iterator) is restored instead and the input
    starts afresh. A checkpoint that still fails (files missing, truncated
    or corrupt) is skipped with a warning; if none can be read the last error
    is raised.
    """
    candidates = [path for _, path in reversed(checkpoint_steps(directory))]
    last_error: Exception | None = None
    for path in candidates:
        mismatch = False
        try:
            _try_restore(checkpoint, path, partial)
            return path, True
        except _UNREADABLE as e:
            last_error = e
        except AssertionError as e:
            last_error, mismatch = e, True
        if without_input is not None:
            try:
                _try_restore(without_input, path, partial=True)
                logging.warning("Restored %s without the input position (the input pipeline changed "
                                "since it was saved).", path)
                return path, False
            except _UNREADABLE as e:
                last_error, mismatch = e, False
            except AssertionError as e:
                last_error = e
        if mismatch:
            # Every file was read, but the objects differ: saved with another configuration,
            # not corrupt. Falling back to an older checkpoint would silently drop work.
            raise ValueError(
                f"{path} was saved by a run configured differently (its objects do not match this "
                f"run's: {str(last_error).splitlines()[0][:200]}); rerun with the settings it was "
                "trained with, or use a new --model_dir") from None
        logging.warning("Checkpoint %s cannot be restored (%s); trying an older one.",
                        path, str(last_error).splitlines()[0][:200])
    if last_error is not None:
        names = ", ".join(os.path.basename(path) for path in candidates[:5])
        more = f" and {len(candidates) - 5} more" if len(candidates) > 5 else ""
        raise ValueError(f"no checkpoint in {directory} can be read ({names}{more}: files missing, truncated "
                         f"or corrupt; the newest failed with: {str(last_error).splitlines()[0][:200]}); "
                         "nothing was overwritten: restore the files, move them away to start over, or "
                         "use a new --model_dir") from None
    return None, False


class CheckpointKeeper:
    """A ``tf.train.CheckpointManager`` named by step, with a restore that survives bad files.

    On multi-worker runs every worker must take part in a save; only the chief
    writes to ``model_dir`` and the others write to a scratch directory that
    is removed again.
    """

    def __init__(self, checkpoint: tf.train.Checkpoint, model_dir: str, *, max_to_keep: int,
                 is_chief: bool = True, worker_id: int = 0,
                 without_input: tf.train.Checkpoint | None = None) -> None:
        self.checkpoint = checkpoint
        self.without_input = without_input
        self.input_restored = False
        self.model_dir = model_dir
        self.is_chief = is_chief
        directory = model_dir if is_chief else os.path.join(model_dir, f".worker_{worker_id}_scratch")
        self.manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep,
                                                  checkpoint_name="ckpt")

    def restore_latest(self) -> str | None:
        """Restores the newest readable checkpoint in model_dir; None when starting fresh.

        Partial: an eval-only run has no input iterator to restore.
        """
        path, self.input_restored = restore_newest_readable(
            self.checkpoint, self.model_dir, partial=True, without_input=self.without_input)
        return path

    def save(self, step: int) -> str:
        """Saves ``ckpt-step``; a full, read-only or forbidden model_dir is a ``StorageError`` (one line)."""
        try:
            path = self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as e:
            fault = storage.storage_fault(e, self.manager.directory, f"the checkpoint of step {step} to")
            if fault is None:
                raise
            try:
                remove_temporaries(self.manager.directory)  # this save's own half-written folder
            except tf.errors.OpError:
                pass
            raise fault from None
        if not self.is_chief:
            tf.io.gfile.rmtree(self.manager.directory)
        return path

    @property
    def latest_path(self) -> str | None:
        steps = checkpoint_steps(self.model_dir)
        return steps[-1][1] if steps else None

    @property
    def latest_step(self) -> int | None:
        steps = checkpoint_steps(self.model_dir)
        return steps[-1][0] if steps else None
