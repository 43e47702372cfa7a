"""The registry of named networks: each a small pure function `make(phi, coefficients) -> ModelSpec`. No Keras.

The family modules (`efficientnet`, `efficientnet_studies`, `lite`, `v2`,
`baselines.specs`) register their networks here with `register`; `get_spec`
looks one up, makes its spec (compound-scaled by `scaling` where the family
accepts a phi) and applies the keyword overrides (`overrides`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from efficientnet_tpu.model.overrides import apply_overrides
from efficientnet_tpu.model.scaling import ScalingCoefficients
from efficientnet_tpu.model.specs import ModelSpec


@dataclass(frozen=True)
class Variant:
    """A registry entry: how to make the spec, and whether a phi may scale it."""

    name: str
    description: str
    make: Callable[[float | None, ScalingCoefficients], ModelSpec]
    accepts_phi: bool


_REGISTRY: dict[str, Variant] = {}


def register(name: str, description: str, accepts_phi: bool = False):
    """Decorator adding a spec factory `fn(phi, coefficients) -> ModelSpec` to the registry."""

    def decorate(fn: Callable[[float | None, ScalingCoefficients], ModelSpec]):
        if name in _REGISTRY:
            raise ValueError(f"Variant {name!r} is registered twice.")
        _REGISTRY[name] = Variant(name, description, fn, accepts_phi)
        return fn

    return decorate


def list_variants() -> list[str]:
    """Every name `build_model` and `get_spec` accept, in registration order."""
    return list(_REGISTRY)


def describe_variant(name: str) -> str:
    return _lookup(name).description


def _lookup(name: str) -> Variant:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"Unknown variant {name!r}; valid choices: {', '.join(_REGISTRY)}.")
    return _REGISTRY[name]


def check_phi(phi: Any) -> float | None:
    """phi must be a real, finite number (or None)."""
    if phi is None:
        return None
    if isinstance(phi, bool) or not isinstance(phi, (int, float)) or not math.isfinite(phi):
        raise ValueError(
            f"phi must be a finite real number such as -1, 0.5 or 3; got {phi!r}."
        )
    return float(phi)


def get_spec(variant: str = "b0", phi: float | None = None, **overrides: Any) -> ModelSpec:
    """The spec of a named variant, optionally compound-scaled by `phi` and with knobs overridden.

    `alpha`, `beta` and `gamma` replace the compound-scaling coefficients
    (only meaningful with a phi). Any other keyword is a `ModelSpec` field or
    a registered knob such as `se_position`.
    """
    entry = _lookup(variant)
    phi = check_phi(phi)
    coefficients = {key: overrides.pop(key) for key in ("alpha", "beta", "gamma") if key in overrides}
    if phi is not None and not entry.accepts_phi:
        raise ValueError(
            f"Variant {variant!r} has fixed published coefficients and takes no phi; "
            f"use variant='b0' with phi={phi:g} for the compound-scaling formula."
        )
    if coefficients and phi is None:
        raise ValueError(
            f"{', '.join(sorted(coefficients))} only take effect with a phi; "
            "pass phi as well, e.g. get_spec('b0', phi=1, alpha=1.2)."
        )
    spec = entry.make(phi, ScalingCoefficients(**coefficients))
    return apply_overrides(spec, overrides)
