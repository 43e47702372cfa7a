"""Helpers shared by the test files: the repository root, parameter counts, tiny configs and models.

conftest.py puts this folder on sys.path, so a test file imports them with `from helpers import ...`.
Nothing here imports TensorFlow or Keras at import time: model-only tests stay TensorFlow-free.
"""

from __future__ import annotations

import math
import os
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def trainable_params(model: Any) -> int:
    """The trainable parameter count, as the papers and Keras' summary count it."""
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))


def subprocess_env(**extra: str) -> dict[str, str]:
    """os.environ with this checkout first on PYTHONPATH, for tests that start a CLI in a child process."""
    return dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)


def tiny_train_config(model_dir: Any, **changes: Any):
    """A TrainConfig that trains the ConvNet baseline on the digits at 16 px for 4 steps (seconds on a CPU).

    `changes` override any field, e.g. `variant="b0", phi=-6.0` for a tiny EfficientNet.
    """
    from efficientnet_tpu.training import config as config_lib

    values = dict(model_dir=str(model_dir), variant="baseline_convnet", resolution=16, dataset="digits",
                  train_batch_size=8, eval_batch_size=64, train_steps=4, steps_per_loop=2,
                  checkpoint_every_steps=2, precision="float32", optimizer="adam", learning_rate=1e-3,
                  lr_reference_batch=None, warmup_epochs=0.0, epsilon=1e-7, preemption_handler="signal",
                  ema_decay=0.9, mode="train", eval_every_epochs=100.0, seed=3)
    values.update(changes)
    return config_lib.merge(values)


def tiny_convnet(input_shape: tuple[int, int, int] = (16, 16, 3), num_classes: int = 10, *,
                 strides: int = 1, batch_norm: bool = True):
    """A four-layer Keras classifier: a stand-in where a test checks plumbing, not an architecture."""
    import keras

    layers = [keras.Input(input_shape), keras.layers.Conv2D(4, 3, strides=strides)]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(num_classes)]
    return keras.Sequential(layers)
