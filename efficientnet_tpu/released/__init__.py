"""The authors' released checkpoints: loading them, their published accuracy, their input normalization.

TensorFlow is needed to read tf.train checkpoints, so this lives outside the
keras-only model package; ``efficientnet_tpu.load_released_checkpoint`` is
the entry point. The loader is imported on first use, so the config code can
read the tables in ``published`` without loading TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_LOADER_NAMES = ("CheckpointError", "LoadReport", "find_checkpoint", "load_released_checkpoint",
                 "reference_model_name", "released_model_name")
__all__ = list(_LOADER_NAMES)


def __getattr__(name: str) -> Any:
    if name in _LOADER_NAMES:
        return getattr(importlib.import_module("efficientnet_tpu.released.loader"), name)
    raise AttributeError(f"module 'efficientnet_tpu.released' has no attribute {name!r}")
