"""efficientnet_tpu: EfficientNet, its research variants and EfficientNetV2 in Keras 3.

The public model API lives here; data, training and export are subpackages
that import TensorFlow only when used.
"""

from efficientnet_tpu.model import (
    ModelSpec,
    build_feature_extractor,
    build_model,
    count_macs,
    feature_endpoints,
    get_spec,
    list_variants,
)

__version__ = "0.1.0"

__all__ = [
    "ModelSpec",
    "build_feature_extractor",
    "build_model",
    "count_macs",
    "feature_endpoints",
    "get_spec",
    "list_variants",
]
