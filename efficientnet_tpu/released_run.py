"""``--init_checkpoint`` in a run (orchestration, beside run.py): checked before model_dir is touched, loaded into the fresh network.

`prepare` runs before anything is written: it finds the checkpoint, reads the
model name inside it, fixes the training method and the input normalization
the weights need (recorded in config.yaml, so eval and export use them
without being told again), and loads it once into a throwaway float32
network so that every missing, extra, mis-shaped or unreadable variable is
reported while model_dir is still as it was.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from efficientnet_tpu.released import published
from efficientnet_tpu.released.loader import (CheckpointError, checkpoint_model_name, find_checkpoint,
                                              load_released_checkpoint, _read_names, released_model_name)
from efficientnet_tpu.training import config as config_lib
from efficientnet_tpu.training.config import TrainConfig

HEAD_KERNEL = "/head/dense/kernel"


def recorded_normalization(config: TrainConfig) -> TrainConfig:
    """A model_dir that once loaded released weights keeps their normalization (and training method,
    for the published number) on later runs."""
    if not tf.io.gfile.exists(config_lib.config_path(config.model_dir)):
        return config
    previous = config_lib.load_run_config(config.model_dir)
    changes = {key: previous[key] for key in ("input_normalization", "checkpoint_method")
               if not getattr(config, key) and previous.get(key)}
    return config_lib.replace(config, **changes) if changes else config


def checkpoint_classes(path: str) -> int:
    """The class count of the checkpoint's classifier."""
    prefix = find_checkpoint(path)
    names = _read_names(prefix)
    scope = checkpoint_model_name(names, prefix)
    kernel = names.get(scope + HEAD_KERNEL)
    if kernel is None:
        raise CheckpointError(f"{prefix} lacks {scope}{HEAD_KERNEL}: it is not a complete {scope} checkpoint")
    return int(kernel[-1])


def prepare(config: TrainConfig) -> TrainConfig:
    """Validates --init_checkpoint against the variant and fills in the method and normalization."""
    if not config.init_checkpoint:
        return config
    expected = released_model_name(config.variant)
    if expected is None or config.phi is not None:
        raise CheckpointError(f"--init_checkpoint: the authors released no checkpoint of --variant={config.variant}"
                              f"{'' if config.phi is None else f' with --phi={config.phi:g}'}; released checkpoints "
                              "load into b0..b7, lite0..lite4, v2_b0..v2_b3, v2_s, v2_m, v2_l")
    method = config.checkpoint_method or published.guess_method(config.init_checkpoint, config.variant)
    normalization = config.input_normalization or published.normalization_for(method, config.variant)
    return config_lib.replace(config, checkpoint_method=method, input_normalization=normalization)


def check_loads(config: TrainConfig) -> None:
    """Loads the checkpoint once into a throwaway network: every error surfaces before model_dir is written."""
    from efficientnet_tpu.training.modeling import build_network  # pylint: disable=import-outside-toplevel
    from efficientnet_tpu.training.trained import float32_policy  # pylint: disable=import-outside-toplevel

    classes = checkpoint_classes(config.init_checkpoint)
    if config.mode == "eval" and classes != config.num_classes:
        raise CheckpointError(f"--init_checkpoint has a {classes}-class classifier, {config.dataset} has "
                              f"{config.num_classes} classes: evaluate it on its own dataset, or fine-tune "
                              "(--mode=train_and_eval) to replace the head")
    with float32_policy():
        model = build_network(config, for_training=False)
    load(model, config)


def load(model: keras.Model, config: TrainConfig) -> str:
    """Loads --init_checkpoint into `model`; returns the line for the log."""
    same_head = checkpoint_classes(config.init_checkpoint) == model.get_layer("predictions").units
    report = load_released_checkpoint(model, config.init_checkpoint, use_ema=config.init_checkpoint_ema,
                                      include_head=same_head)
    return f"{report.summary()}; inputs normalized as {config.input_normalization or 'the variant does'}"


def shows_published(config: TrainConfig, step: int) -> bool:
    """An eval of released weights as released (step 0): the published number is the one to compare."""
    return config.mode == "eval" and bool(config.checkpoint_method) and step == 0


def eval_line(config: TrainConfig, results: dict) -> str:
    """Our top-1/top-5 beside the authors' published top-1 for this checkpoint."""
    return published.describe(config.variant, config.checkpoint_method, results["top1"], results["top5"])
