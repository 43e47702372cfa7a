"""The registry of builders for the families that are not EfficientNets (the baselines). No Keras.

A family's Keras module registers its builder here with
`register_family_builder`; `builder.build_from_spec` calls it for specs of
that `ModelSpec.family`. Kept apart from `builder` so that a family's
builder module and the builder can import each other's layer in one
direction only (the builder imports the families' builders).
"""

from __future__ import annotations

from typing import Any, Callable

from efficientnet_tpu.model.specs import FAMILIES

# builder(spec, inputs, *, num_classes, include_top, include_preprocessing, classifier_activation) -> outputs
FamilyBuilder = Callable[..., Any]
FAMILY_BUILDERS: dict[str, FamilyBuilder] = {}


def register_family_builder(family: str, builder: FamilyBuilder) -> None:
    """`build_from_spec` calls `builder(spec, inputs, **options)` for specs of this `ModelSpec.family`."""
    if family not in FAMILIES or family == "efficientnet":
        raise ValueError(f"family must be one of {', '.join(FAMILIES[1:])} (specs.FAMILIES), got {family!r}.")
    if family in FAMILY_BUILDERS:
        raise ValueError(f"The {family!r} family's builder is registered twice.")
    FAMILY_BUILDERS[family] = builder
