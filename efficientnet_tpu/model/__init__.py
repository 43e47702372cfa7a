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

# Imported for their registrations. The block types: each module's `@register_block`
# classes join BLOCK_TYPES (a new block file is one more name on this line).
from efficientnet_tpu.model import blocks, blocks_extra  # noqa: E402,F401  isort: skip
# The stage knobs, named presets, EfficientNet-lite, EfficientNetV2 and the baselines join the variant registry.
from efficientnet_tpu.model import knobs, presets, lite, v2, baselines  # noqa: E402,F401  isort: skip

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
