"""Checkpoints that survive preemption, and loading a trained model back for export.

TensorFlow's checkpoint writer already makes a save atomic where it matters:
the data files are written first and the small ``checkpoint`` state file is
replaced last, so a process killed mid-save leaves the previous checkpoint as
the latest. On object stores, where a rename is a copy, a half-written
checkpoint can still be listed; ``CheckpointKeeper.restore_latest`` therefore
falls back to the next older checkpoint when the newest cannot be read.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import keras
import tensorflow as tf
from absl import logging

from efficientnet_tpu.training import config as config_lib
from efficientnet_tpu.training.ema import WeightAverage, averaged_weights
from efficientnet_tpu.training.modeling import build_network

# Errors that mean "this checkpoint's files are missing, truncated or corrupt"
# (a truncated data file surfaces from the reader as IndexError).
_UNREADABLE = (tf.errors.NotFoundError, tf.errors.DataLossError, tf.errors.InvalidArgumentError,
               tf.errors.OutOfRangeError, tf.errors.FailedPreconditionError, tf.errors.UnknownError,
               IndexError)


def rng_states(model: keras.Model) -> list:
    """The model's random-generator states (dropout, stochastic depth).

    Keras keeps them outside ``model.weights`` and TensorFlow's checkpoint does
    not reach them through the layers, so they are saved explicitly: without
    them a resumed run would replay the dropout masks of step 0.
    """
    weight_ids = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weight_ids]


def checkpoint_steps(directory: str) -> list[tuple[int, str]]:
    """(step, path) of the checkpoints listed in ``directory``'s state file, oldest first."""
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return []
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
        raise ValueError(f"no checkpoint in {directory} can be restored; the newest failed with: "
                         f"{str(last_error).splitlines()[0][:300]}") from None
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
        path = self.manager.save(checkpoint_number=step)
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


@contextlib.contextmanager
def float32_policy() -> Iterator[None]:
    """Builds models in float32 whatever the caller's global mixed-precision policy is."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def load_trained_model(model_dir: str, use_ema: bool | None = None,
                       checkpoint_path: str | None = None) -> tuple[keras.Model, dict[str, Any]]:
    """Rebuilds a trained model from ``model_dir`` for evaluation or export.

    The network is rebuilt from ``model_dir/config.yaml`` in float32 (without
    synchronized batch norm), the newest readable checkpoint (or
    ``checkpoint_path``) is restored, and the EMA weights replace the raw ones
    when the run kept an EMA and ``use_ema`` is not False. Returns the model
    and the run's config as a dict, with ``checkpoint``, ``step``,
    ``image_size`` and ``eval_crop_fraction`` filled in.
    """
    data = config_lib.load_run_config(model_dir)
    config = config_lib.from_dict(data, source=config_lib.config_path(model_dir))
    if config.num_classes is None or config.resolution is None:
        raise ValueError(f"{config_lib.config_path(model_dir)} lacks num_classes/resolution: "
                         "it was not written by a training run")
    if use_ema and not config.use_ema:
        raise ValueError(f"the run in {model_dir} kept no EMA of its weights (use_ema: false); "
                         "load it with use_ema=False or None")
    with float32_policy():
        model = build_network(config, for_training=False)
    ema = WeightAverage(averaged_weights(model), config.ema_decay) if config.use_ema else None
    objects: dict[str, Any] = {"model": model}
    if ema is not None:
        objects["ema"] = ema
    checkpoint = tf.train.Checkpoint(**objects)
    if checkpoint_path is not None:
        status = checkpoint.restore(checkpoint_path)
        status.expect_partial()
        status.assert_existing_objects_matched()
        path = checkpoint_path
    else:
        path, _ = restore_newest_readable(checkpoint, model_dir, partial=True)
        if path is None:
            raise FileNotFoundError(f"no checkpoint in {model_dir}: train first "
                                    "(python -m efficientnet_tpu.train --mode=train ...)")
    swap_in_ema = config.use_ema if use_ema is None else use_ema
    if ema is not None and swap_in_ema:
        ema.copy_to_model()
    try:
        step = int(path.rsplit("-", 1)[-1])
    except ValueError:
        step = None
    info = dict(data)
    info.update(checkpoint=path, step=step, image_size=config.resolution,
                eval_crop_fraction=config.eval_crop_fraction, used_ema=bool(ema is not None and swap_in_ema))
    return model, info
