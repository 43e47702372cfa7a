"""The model package: specs, the variant registry and its families, block layers, the builder,
the MAC counter and the Keras Applications weight loader (`weights`).

Only `keras` and `keras.ops` are used here (no TensorFlow), so models run on
any Keras 3 backend. The architecture half (specs, registry, families) imports
no Keras and loads with the package; the Keras-backed names (`build_model`,
`build_from_spec`, `count_macs`, the feature extractor) load on first use, so
`import efficientnet_tpu.model.specs` or `get_spec(...)` never loads Keras.
"""

from __future__ import annotations

import importlib
from typing import Any

from efficientnet_tpu.model.registry import get_spec, list_variants
from efficientnet_tpu.model.specs import BlockSpec, ModelSpec, StageSpec, resolve_blocks, round_filters

# The variant families: each registers its networks with `registry.register` when imported.
# The block types are declared in block_types.py; their layers register when the builder loads.
from efficientnet_tpu.model import efficientnet, efficientnet_studies, lite, v2  # noqa: E402,F401  isort: skip
from efficientnet_tpu.model.baselines import specs as _baseline_specs  # noqa: E402,F401  isort: skip

# Name -> the Keras-backed module that defines it, imported on first use (no static import: no Keras here).
_KERAS_EXPORTS = {
    "build_from_spec": "builder",
    "build_model": "builder",
    "build_feature_extractor": "features",
    "feature_endpoints": "features",
    "count_macs": "macs",
}

__all__ = [
    "BlockSpec",
    "ModelSpec",
    "StageSpec",
    "build_feature_extractor",
    "build_from_spec",
    "build_model",
    "count_macs",
    "feature_endpoints",
    "get_spec",
    "list_variants",
    "resolve_blocks",
    "round_filters",
]


def __getattr__(name: str) -> Any:
    if name in _KERAS_EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_KERAS_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_KERAS_EXPORTS))
