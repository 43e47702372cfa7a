"""EfficientNetV2 (B0-B3, S, M, L) as stage tables, matching Keras Applications exactly.

Fused-MBConv in the early stages, MBConv with SE later, BN momentum 0.9,
channel rounding without the 10% guard ("v2"), the stem as wide as the first
stage's input. Stage and block names follow Keras Applications
(`block1a` is the first block), so its weights load by name. The eval
resolutions are Keras' default sizes; the dropout rates are those of the
published training recipe (google/automl effnetv2_configs), which does not
change inference.
"""

from __future__ import annotations

from efficientnet_tpu.model.specs import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, ModelSpec, StageSpec
from efficientnet_tpu.model.registry import register

Row = tuple[str, int, int, float, int, int, int, float]  # block, kernel, stride, expand, in, out, repeats, se


def _stages(rows: tuple[Row, ...]) -> tuple[StageSpec, ...]:
    return tuple(StageSpec(b, k, s, e, i, o, r, se) for b, k, s, e, i, o, r, se in rows)


_F, _M = "fused_mbconv", "mbconv"

V2_BASE_STAGES = _stages(
    (
        (_F, 3, 1, 1, 32, 16, 1, 0.0),
        (_F, 3, 2, 4, 16, 32, 2, 0.0),
        (_F, 3, 2, 4, 32, 48, 2, 0.0),
        (_M, 3, 2, 4, 48, 96, 3, 0.25),
        (_M, 3, 1, 6, 96, 112, 5, 0.25),
        (_M, 3, 2, 6, 112, 192, 8, 0.25),
    )
)
V2_S_STAGES = _stages(
    (
        (_F, 3, 1, 1, 24, 24, 2, 0.0),
        (_F, 3, 2, 4, 24, 48, 4, 0.0),
        (_F, 3, 2, 4, 48, 64, 4, 0.0),
        (_M, 3, 2, 4, 64, 128, 6, 0.25),
        (_M, 3, 1, 6, 128, 160, 9, 0.25),
        (_M, 3, 2, 6, 160, 256, 15, 0.25),
    )
)
V2_M_STAGES = _stages(
    (
        (_F, 3, 1, 1, 24, 24, 3, 0.0),
        (_F, 3, 2, 4, 24, 48, 5, 0.0),
        (_F, 3, 2, 4, 48, 80, 5, 0.0),
        (_M, 3, 2, 4, 80, 160, 7, 0.25),
        (_M, 3, 1, 6, 160, 176, 14, 0.25),
        (_M, 3, 2, 6, 176, 304, 18, 0.25),
        (_M, 3, 1, 6, 304, 512, 5, 0.25),
    )
)
V2_L_STAGES = _stages(
    (
        (_F, 3, 1, 1, 32, 32, 4, 0.0),
        (_F, 3, 2, 4, 32, 64, 7, 0.0),
        (_F, 3, 2, 4, 64, 96, 7, 0.0),
        (_M, 3, 2, 4, 96, 192, 10, 0.25),
        (_M, 3, 1, 6, 192, 224, 19, 0.25),
        (_M, 3, 2, 6, 224, 384, 25, 0.25),
        (_M, 3, 1, 6, 384, 640, 7, 0.25),
    )
)

# Keras Applications: the B variants keep EfficientNet's ImageNet mean/std,
# S/M/L map [0, 255] to [-1, 1] as x / 128 - 1.
_SIGNED_UNIT = ((128.0, 128.0, 128.0), (128.0, 128.0, 128.0))
_IMAGENET = (IMAGENET_MEAN_RGB, IMAGENET_STD_RGB)

# name: (stages, width, depth, eval resolution, dropout, (mean, std))
V2_TABLE: dict[str, tuple[tuple[StageSpec, ...], float, float, int, float, tuple]] = {
    "v2_b0": (V2_BASE_STAGES, 1.0, 1.0, 224, 0.2, _IMAGENET),
    "v2_b1": (V2_BASE_STAGES, 1.0, 1.1, 240, 0.2, _IMAGENET),
    "v2_b2": (V2_BASE_STAGES, 1.1, 1.2, 260, 0.3, _IMAGENET),
    "v2_b3": (V2_BASE_STAGES, 1.2, 1.4, 300, 0.3, _IMAGENET),
    "v2_s": (V2_S_STAGES, 1.0, 1.0, 384, 0.2, _SIGNED_UNIT),
    "v2_m": (V2_M_STAGES, 1.0, 1.0, 480, 0.3, _SIGNED_UNIT),
    "v2_l": (V2_L_STAGES, 1.0, 1.0, 480, 0.4, _SIGNED_UNIT),
}


def v2_spec(name: str) -> ModelSpec:
    """The spec of one published EfficientNetV2."""
    stages, width, depth, resolution, dropout, (mean, std) = V2_TABLE[name]
    return ModelSpec(
        name=name,
        stages=stages,
        stem_channels=stages[0].in_channels,
        head_channels=1280,
        width_coefficient=width,
        depth_coefficient=depth,
        resolution=resolution,
        dropout_rate=dropout,
        drop_connect_rate=0.2,
        bn_momentum=0.9,
        rounding="v2",
        mean=mean,
        std=std,
    )


for _name, (_stages_of, _width, _depth, _res, _drop, _norm) in V2_TABLE.items():
    register(
        _name,
        f"EfficientNetV2-{_name[3:].upper()} (Keras Applications; width {_width}, depth {_depth}, {_res}px)",
    )(lambda phi, coefficients, _n=_name: v2_spec(_n))
