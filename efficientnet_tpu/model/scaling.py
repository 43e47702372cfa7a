"""Compound scaling: depth alpha**phi, width beta**phi, resolution gamma**phi. No Keras.

The coefficients the paper's grid search found, and the one function that
applies them to a base spec; every family that accepts a `phi` scales with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from efficientnet_tpu.model.specs import ModelSpec, scaled_resolution

# The coefficients the paper's grid search found, under alpha * beta**2 * gamma**2 ~ 2.
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15


@dataclass(frozen=True)
class ScalingCoefficients:
    """Compound-scaling coefficients: depth = alpha**phi, width = beta**phi, resolution = gamma**phi."""

    alpha: float = ALPHA
    beta: float = BETA
    gamma: float = GAMMA

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}.")

    @property
    def flops_factor(self) -> float:
        """How much FLOPs grow per unit of phi: alpha * beta**2 * gamma**2 (about 2)."""
        return self.alpha * self.beta**2 * self.gamma**2


def compound_scale(base: ModelSpec, phi: float, coefficients: ScalingCoefficients) -> ModelSpec:
    """Scales a base network by depth alpha**phi, width beta**phi and resolution gamma**phi."""
    return base.replace(
        width_coefficient=base.width_coefficient * coefficients.beta**phi,
        depth_coefficient=base.depth_coefficient * coefficients.alpha**phi,
        resolution=scaled_resolution(base.resolution, coefficients.gamma, phi),
        phi=float(phi),
    )
