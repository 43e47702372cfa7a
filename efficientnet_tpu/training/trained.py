"""Rebuilds a trained model from a model_dir: what evaluation and export start from.

It lives beside the checkpoints it reads, below both the orchestration
(``efficientnet_tpu.run``) and ``efficientnet_tpu.export``, so each can use it
without importing the other.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import keras
import tensorflow as tf

from efficientnet_tpu.training import config as config_lib
from efficientnet_tpu.training.checkpoint import restore_newest_readable
from efficientnet_tpu.training.ema import WeightAverage, averaged_weights
from efficientnet_tpu.training.modeling import build_network, model_spec


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
    record = dict(data)
    record.update(checkpoint=path, step=step, image_size=config.resolution,
                  resize_method=model_spec(config).resize_method,
                  eval_crop_fraction=config.eval_crop_fraction, used_ema=bool(ema is not None and swap_in_ema))
    return model, record
