"""EfficientNet B0..B7: B0's stage table, the published B1..B7 table, and "b0" with any phi. No Keras.

B0 is written once, as Table 1 of the paper. b1..b7 apply the published
(width, depth, resolution, dropout) table; "b0" with a `phi` applies the
compound-scaling formula for any real phi. The study variants over B0
(`efficientnet_studies`) register through `register_b0_preset`, so they
too accept any phi.
"""

from __future__ import annotations

from typing import Callable

from efficientnet_tpu.model.registry import register
from efficientnet_tpu.model.scaling import ScalingCoefficients, compound_scale
from efficientnet_tpu.model.specs import ModelSpec, StageSpec

# Table 1 of the paper, stages 2..8: (block, kernel, stride, expand, in, out, repeats).
B0_STAGES: tuple[StageSpec, ...] = tuple(
    StageSpec(block, kernel, stride, expand, c_in, c_out, repeats)
    for block, kernel, stride, expand, c_in, c_out, repeats in (
        ("mbconv", 3, 1, 1, 32, 16, 1),
        ("mbconv", 3, 2, 6, 16, 24, 2),
        ("mbconv", 5, 2, 6, 24, 40, 2),
        ("mbconv", 3, 2, 6, 40, 80, 3),
        ("mbconv", 5, 1, 6, 80, 112, 3),
        ("mbconv", 5, 2, 6, 112, 192, 4),
        ("mbconv", 3, 1, 6, 192, 320, 1),
    )
)

B0 = ModelSpec(name="b0", stages=B0_STAGES)

# The published B1..B7 (tensorflow/tpu efficientnet_builder.py): they do not
# follow alpha**phi etc. exactly. (width, depth, resolution, dropout).
OFFICIAL_SCALING: dict[str, tuple[float, float, int, float]] = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}


def official(name: str) -> ModelSpec:
    """One of the published B0..B7."""
    width, depth, resolution, dropout = OFFICIAL_SCALING[name]
    return B0.replace(
        name=name,
        width_coefficient=width,
        depth_coefficient=depth,
        resolution=resolution,
        dropout_rate=dropout,
    )


def register_b0_preset(name: str, description: str, transform: Callable[[ModelSpec], ModelSpec]):
    """A study variant: knobs turned on B0, or on the compound-scaled B0 when a phi is given."""

    def make(phi: float | None, coefficients: ScalingCoefficients) -> ModelSpec:
        base = B0 if phi is None else compound_scale(B0, phi, coefficients)
        return transform(base).replace(name=name)

    register(name, description, accepts_phi=True)(make)


@register("b0", "EfficientNet-B0; with phi, compound-scaled by alpha**phi, beta**phi, gamma**phi", True)
def _b0(phi: float | None, coefficients: ScalingCoefficients) -> ModelSpec:
    return B0 if phi is None else compound_scale(B0, phi, coefficients)


for _name in ("b1", "b2", "b3", "b4", "b5", "b6", "b7"):
    _width, _depth, _res, _drop = OFFICIAL_SCALING[_name]
    register(
        _name,
        f"EfficientNet-{_name.upper()} (published table: width {_width}, depth {_depth}, {_res}px)",
    )(lambda phi, coefficients, _n=_name: official(_n))
