"""The model package: layers, blocks, specs, the variant registry, the builder, the MAC counter
and the Keras Applications weight loader (`weights`).

Only `keras` and `keras.ops` are used here (no TensorFlow), so models run on
any Keras 3 backend.
"""

from efficientnet_tpu.model.builder import build_from_spec, build_model
from efficientnet_tpu.model.features import build_feature_extractor, feature_endpoints
from efficientnet_tpu.model.macs import count_macs
from efficientnet_tpu.model.specs import BlockSpec, ModelSpec, StageSpec, resolve_blocks, round_filters
from efficientnet_tpu.model.variants import get_spec, list_variants

# The variant families: each registers its networks (`variants.register`) and knobs
# (`register_spec_override`) when imported, so the package loads them all here. The block
# types are declared in blocktypes.py and their layers registered by the modules builder imports.
from efficientnet_tpu.model import knobs, presets, lite, v2, baseline_specs, baselines  # noqa: E402,F401  isort: skip

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
