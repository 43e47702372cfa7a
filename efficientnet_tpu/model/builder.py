"""Turns a `ModelSpec` into a functional Keras model.

The builder reads only the resolved spec: the summary, the MAC count and the
tests read the same data, so the network and its description cannot drift.
EfficientNets (V1, lite, V2 and the study variants) are built here from their
stage tables; other families by the builder they registered in
`family_builders` (the baselines: `baselines/builders.py`).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras

# The baselines' builders register their families with register_family_builder.
from efficientnet_tpu.model.baselines import builders as _baseline_builders  # noqa: F401
# Importing the blocks package registers the layer class of every block type.
from efficientnet_tpu.model.blocks import block_class
from efficientnet_tpu.model.family_builders import FAMILY_BUILDERS
from efficientnet_tpu.model.head import classifier_head
from efficientnet_tpu.model.layers import Normalize, batch_norm, conv2d, make_activation
from efficientnet_tpu.model.registry import get_spec
from efficientnet_tpu.model.specs import ModelSpec, resolve_blocks


def _input_shape(spec: ModelSpec, input_shape: Sequence[int | None] | None, preprocessing: bool):
    if input_shape is None:
        return (spec.resolution, spec.resolution, 3)
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}.")
    if preprocessing and shape[-1] != 3:
        raise ValueError(
            f"include_preprocessing normalizes RGB images, so input_shape needs 3 channels; "
            f"got {shape[-1]}. Pass include_preprocessing=False for other inputs."
        )
    for size in shape[:2]:
        if size is not None and size < 8:
            raise ValueError(f"input_shape spatial sizes must be at least 8 pixels, got {shape}.")
    return shape


def _efficientnet(
    spec: ModelSpec,
    inputs,
    *,
    num_classes: int,
    include_top: bool,
    include_preprocessing: bool,
    classifier_activation: str | None,
):
    act = spec.activation_spec()
    x = Normalize(spec.mean, spec.std, name="normalization")(inputs) if include_preprocessing else inputs
    x = conv2d(spec.stem_out, 3, 2, name="stem_conv")(x)
    x = batch_norm(spec.bn_momentum, spec.bn_epsilon, spec.sync_batch_norm, name="stem_bn")(x)
    x = make_activation(act, name="stem_activation")(x)
    options = spec.block_options()
    for block in resolve_blocks(spec):
        x = block_class(block.block)(**block.layer_kwargs(), **options)(x)
    x = conv2d(spec.head_out, 1, name="top_conv")(x)
    x = batch_norm(spec.bn_momentum, spec.bn_epsilon, spec.sync_batch_norm, name="top_bn")(x)
    x = make_activation(act, name="top_activation")(x)
    if include_top:
        x = classifier_head(x, spec, num_classes, classifier_activation)
    return x


def build_from_spec(
    spec: ModelSpec,
    *,
    num_classes: int = 1000,
    input_shape: Sequence[int | None] | None = None,
    include_top: bool = True,
    include_preprocessing: bool = True,
    classifier_activation: str | None = None,
) -> keras.Model:
    """A functional Keras model for `spec`: float pixels in [0, 255] in, logits out."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}.")
    shape = _input_shape(spec, input_shape, include_preprocessing)
    inputs = keras.Input(shape=shape, name="images")
    options: dict[str, Any] = dict(
        num_classes=num_classes,
        include_top=include_top,
        include_preprocessing=include_preprocessing,
        classifier_activation=classifier_activation,
    )
    if spec.family == "efficientnet":
        outputs = _efficientnet(spec, inputs, **options)
    elif spec.family in FAMILY_BUILDERS:
        outputs = FAMILY_BUILDERS[spec.family](spec, inputs, **options)
    else:
        raise ValueError(f"No builder registered for the {spec.family!r} family.")
    return keras.Model(inputs, outputs, name=f"efficientnet_tpu_{spec.name}")


def build_model(
    variant: str = "b0",
    *,
    phi: float | None = None,
    num_classes: int = 1000,
    input_shape: Sequence[int | None] | None = None,
    include_top: bool = True,
    include_preprocessing: bool = True,
    dropout_rate: float | None = None,
    drop_connect_rate: float | None = None,
    classifier_activation: str | None = None,
    **spec_overrides: Any,
) -> keras.Model:
    """Builds a named variant, optionally compound-scaled by `phi`, with any spec knob overridden.

    The model takes float pixels in [0, 255] (normalized inside unless
    `include_preprocessing=False`) and returns logits; pass
    `classifier_activation="softmax"` for probabilities.
    """
    if dropout_rate is not None:
        spec_overrides["dropout_rate"] = dropout_rate
    if drop_connect_rate is not None:
        spec_overrides["drop_connect_rate"] = drop_connect_rate
    spec = get_spec(variant, phi, **spec_overrides)
    return build_from_spec(
        spec,
        num_classes=num_classes,
        input_shape=input_shape,
        include_top=include_top,
        include_preprocessing=include_preprocessing,
        classifier_activation=classifier_activation,
    )
