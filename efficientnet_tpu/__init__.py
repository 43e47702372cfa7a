"""efficientnet_tpu: EfficientNet, its research variants and EfficientNetV2 in Keras 3.

The public model API lives here; data, training and export are subpackages
that import TensorFlow only when used. The model names load on first use
(Keras loads TensorFlow), so the command-line tools can check their flags and
quiet TensorFlow's start-up lines before it loads. Importing the package checks,
from the installed metadata alone, that exactly one TensorFlow distribution is
there (``tf_install``): none, two, or an untested release is said in one line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from efficientnet_tpu.model import (ModelSpec, build_feature_extractor, build_model, count_macs,
                                        feature_endpoints, get_spec, list_variants)
    from efficientnet_tpu.released import load_released_checkpoint

from efficientnet_tpu import tf_install as _tf_install

__version__ = "0.1.0"

# No TensorFlow: its import (by Keras or our code) says how to install one. Two
# side by side, or an untested release: one warning line now (about 1 ms, metadata only).
_tf_install.install_missing_hook()
_tf_install.warn_if_wrong()

__all__ = [
    "ModelSpec",
    "build_feature_extractor",
    "build_model",
    "count_macs",
    "feature_endpoints",
    "get_spec",
    "list_variants",
    "load_released_checkpoint",
]


def __getattr__(name: str) -> Any:
    if name == "load_released_checkpoint":  # reads tf.train checkpoints: TensorFlow, outside the model package
        return importlib.import_module("efficientnet_tpu.released").load_released_checkpoint
    if name in __all__:
        return getattr(importlib.import_module("efficientnet_tpu.model"), name)
    raise AttributeError(f"module 'efficientnet_tpu' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
