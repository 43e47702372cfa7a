"""The override engine: `build_model` / `get_spec` keywords applied to a spec. No Keras.

A keyword is either a plain `ModelSpec` field (`se_position="end"`) or a
registered handler that rewrites the spec (`stage_blocks={3: "conv31"}`).
The stage-table handlers of `stage_overrides` are registered here, so every
caller of `apply_overrides` has them, whichever family module it loaded.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable

from efficientnet_tpu.model.specs import ModelSpec
from efficientnet_tpu.model.stage_overrides import STAGE_OVERRIDES

# Overrides that are not plain ModelSpec fields: name -> fn(spec, value) -> spec.
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


for _knob, _handler in STAGE_OVERRIDES.items():
    register_spec_override(_knob, _handler)
