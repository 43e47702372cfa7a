"""Learning-rate schedules: linear warm-up, then staircase exponential, cosine or constant.

The exponential schedule follows the reference implementation: the decay
exponent counts from step 0 (not from the end of warm-up), so after warm-up
the rate continues where ``peak * decay_rate ** floor(step / decay_steps)``
already is.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from efficientnet_tpu.training import config as config_lib
from efficientnet_tpu.training.config import TrainConfig


@keras.saving.register_keras_serializable(package="efficientnet_tpu")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``peak * step / warmup_steps`` during warm-up, then the chosen decay."""

    def __init__(self, peak: float, warmup_steps: float, total_steps: float, kind: str = "exponential",
                 decay_steps: float = 1.0, decay_rate: float = 1.0, staircase: bool = True,
                 final: float = 0.0) -> None:
        super().__init__()
        if kind not in config_lib.LR_SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}; choose {', '.join(config_lib.LR_SCHEDULES)}")
        if decay_steps <= 0:
            raise ValueError(f"decay_steps must be > 0, got {decay_steps}")
        self.peak = float(peak)
        self.warmup_steps = float(warmup_steps)
        self.total_steps = float(total_steps)
        self.kind = kind
        self.decay_steps = float(decay_steps)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)
        self.final = float(final)

    def _after_warmup(self, step: tf.Tensor) -> tf.Tensor:
        if self.kind == "constant":
            return tf.constant(self.peak, tf.float32)
        if self.kind == "exponential":
            exponent = step / self.decay_steps
            if self.staircase:
                exponent = tf.floor(exponent)
            return self.peak * tf.pow(self.decay_rate, exponent)
        span = max(self.total_steps - self.warmup_steps, 1.0)
        progress = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
        return self.final + 0.5 * (self.peak - self.final) * (1.0 + tf.cos(math.pi * progress))

    def __call__(self, step: Any) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        decayed = self._after_warmup(step)
        if self.warmup_steps <= 0:
            return decayed
        warm = self.peak * step / self.warmup_steps
        return tf.where(step < self.warmup_steps, warm, decayed)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "kind": self.kind, "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "final": self.final}


def build_schedule(config: TrainConfig, num_train_examples: int) -> WarmupDecay:
    """The schedule a config describes, with epochs converted to steps of the global batch."""
    per_epoch = config_lib.steps_per_epoch(config, num_train_examples)
    return WarmupDecay(
        peak=config_lib.peak_learning_rate(config),
        warmup_steps=config.warmup_epochs * per_epoch,
        total_steps=config_lib.total_train_steps(config, num_train_examples),
        kind=config.lr_schedule,
        decay_steps=max(config.lr_decay_epochs * per_epoch, 1e-9),
        decay_rate=config.lr_decay_rate,
        staircase=True,
        final=config.min_learning_rate,
    )
