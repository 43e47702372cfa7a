"""The registry of named networks: each a small pure function of a spec.

B0 is written once, as the stage table of the paper. b1..b7 apply the
published (width, depth, resolution, dropout) table; "b0" with a `phi`
applies the compound-scaling formula for any real phi. Study variants are
presets that turn knobs on a base spec, so they too accept any phi.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Callable

from efficientnet_tpu.model.specs import ModelSpec, StageSpec, scaled_resolution

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


# Overrides that are not plain ModelSpec fields: name -> fn(spec, value) -> spec.
# The module that defines a knob registers it (knobs.py: the stage knobs).
SPEC_OVERRIDE_HANDLERS: dict[str, Callable[[ModelSpec, Any], ModelSpec]] = {}
_FIXED_FIELDS = {"name", "stages", "phi", "extra"}


def register_spec_override(name: str, handler: Callable[[ModelSpec, Any], ModelSpec]) -> None:
    """Makes `name=value` a `get_spec` / `build_model` keyword that `handler(spec, value)` applies."""
    if name in SPEC_OVERRIDE_HANDLERS or name in {f.name for f in fields(ModelSpec)}:
        raise ValueError(f"Spec override {name!r} is registered twice (or is a ModelSpec field).")
    SPEC_OVERRIDE_HANDLERS[name] = handler


def overridable_fields() -> list[str]:
    plain = [f.name for f in fields(ModelSpec) if f.name not in _FIXED_FIELDS]
    return sorted(plain + list(SPEC_OVERRIDE_HANDLERS))


def apply_overrides(spec: ModelSpec, overrides: dict[str, Any]) -> ModelSpec:
    """Applies `build_model(..., **spec_overrides)` keywords, rejecting unknown names."""
    plain: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in SPEC_OVERRIDE_HANDLERS:
            spec = SPEC_OVERRIDE_HANDLERS[key](spec, value)
        elif key in _FIXED_FIELDS or key not in {f.name for f in fields(ModelSpec)}:
            raise ValueError(
                f"Unknown spec override {key!r}; valid overrides: {', '.join(overridable_fields())}."
            )
        else:
            plain[key] = value
    return spec.replace(**plain) if plain else spec


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
