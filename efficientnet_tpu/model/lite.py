"""EfficientNet-lite0..lite4, as the reference's lite builder defines them.

tensorflow/tpu models/official/efficientnet/lite/efficientnet_lite_builder.py
(`efficientnet_lite_params`, `efficientnet_lite`): B0's stage table without
squeeze-and-excitation, ReLU6, inputs normalized with mean 127 and std 128
(inception style, friendlier to post-training quantization), and
`fix_head_stem`: the stem (32) and head (1280) keep their width and the first
and last stage keep their repeats however the network is scaled
(efficientnet_model.py, `Model._build`). The reference's lite pipeline resizes
bilinearly. `b0_lite` (the study's B0-lite, a preset) is a different network
whenever it is scaled, and stays as it is.
"""

from __future__ import annotations

from efficientnet_tpu.model.efficientnet import B0
from efficientnet_tpu.model.registry import register
from efficientnet_tpu.model.specs import ModelSpec

LITE_MEAN_RGB = (127.0, 127.0, 127.0)
LITE_STD_RGB = (128.0, 128.0, 128.0)

# efficientnet_lite_params: (width, depth, resolution, dropout); survival_prob 0.8 for all.
LITE_SCALING: dict[str, tuple[float, float, int, float]] = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3),
    "lite4": (1.4, 1.8, 300, 0.3),
}


# What every lite network shares (efficientnet_lite: relu6, use_se=False, fix_head_stem=True).
LITE_FIXED = dict(
    drop_connect_rate=0.2,
    activation="relu6",
    se_position="none",
    scale_stem_head=False,
    scale_first_last_repeats=False,
    mean=LITE_MEAN_RGB,
    std=LITE_STD_RGB,
    resize_method="bilinear",
)
_SCALED_FIELDS = ("width_coefficient", "depth_coefficient", "resolution", "dropout_rate")


def lite_spec(name: str) -> ModelSpec:
    """The spec of one reference EfficientNet-lite."""
    return B0.replace(name=name, **dict(zip(_SCALED_FIELDS, LITE_SCALING[name])), **LITE_FIXED)


for _name, (_width, _depth, _res, _drop) in LITE_SCALING.items():
    register(
        _name,
        f"EfficientNet-{_name} (reference lite builder: width {_width}, depth {_depth}, {_res}px, "
        "no SE, ReLU6, fixed stem/head)",
    )(lambda phi, coefficients, _n=_name: lite_spec(_n))
