"""The training loop: typed config, distribution strategy, one custom loop, checkpoints, preemption.

Modules, each with one job:
  config      TrainConfig, YAML loading and validation (no TensorFlow)
  strategy    TPUStrategy / MirroredStrategy / MultiWorkerMirroredStrategy / default
  schedule    warm-up then exponential, cosine or constant learning rate
  optimizer   RMSProp / Adam / SGD and the kernel-only weight decay
  ema         exponential moving average of the weights
  modeling    the network a config describes
  loop        the Trainer: compiled multi-step train loop, exact evaluation
  actions     the loop's schedule: eval, checkpoint, freeze, preemption, progress as interval actions
  checkpoint  preemption-safe checkpoints
  trained     load_trained_model: a run's model rebuilt from model_dir, for eval and export
  preemption  SIGTERM / TensorFlow preemption handling
  progress    console progress line and TensorBoard scalars

Names are imported on first use, so `import efficientnet_tpu.training` stays
cheap and the command line can reject bad flags before TensorFlow loads.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "efficientnet_tpu.training.config",
    "Trainer": "efficientnet_tpu.training.loop",
    "TrainingDiverged": "efficientnet_tpu.training.loop",
    "Preempted": "efficientnet_tpu.training.preemption",
    "load_trained_model": "efficientnet_tpu.training.trained",
    "resolve_strategy": "efficientnet_tpu.training.strategy",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
