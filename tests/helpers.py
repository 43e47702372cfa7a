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


# A child process that starts TensorFlow quietly and does not wait for a GCE metadata server.
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2", "GCE_METADATA_IP": "127.0.0.1:9"}

# `python -m efficientnet_tpu.train` arguments of a run that takes seconds: the ConvNet baseline on 16 px digits.
TINY_ARGS = ["--dataset=digits", "--variant=baseline_convnet", "--resolution=16", "--train_batch_size=8",
             "--eval_batch_size=64", "--steps_per_loop=1", "--precision=float32", "--learning_rate=0.01",
             "--lr_reference_batch=", "--warmup_epochs=0", "--preemption_handler=none", "--mode=train"]


def train_cli(*args: str):
    """Runs `python -m efficientnet_tpu.train ARGS` in a child process (a fresh TensorFlow), from the repository."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "efficientnet_tpu.train", *args], env=subprocess_env(**QUIET),
                          capture_output=True, text=True, timeout=600, cwd=REPO, check=False)


def error_lines(text: str) -> list[str]:
    """The `error:` lines of a command's output."""
    return [line for line in text.splitlines() if line.startswith("error:")]
