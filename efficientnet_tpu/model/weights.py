"""Loading Keras Applications' EfficientNet (V1 and V2) weights into our models.

Our blocks name their sublayers as Keras Applications names its layers
(`block2a_expand_conv` lives in our layer `block2a` as `expand_conv`), so the
mapping is by name, and every weight of our model must be matched exactly once.

The Keras quirk: the released EfficientNet files store the ImageNet standard
deviation where the `Normalization` layer expects the variance, so a Keras
model built with `weights=<path>` normalizes with sqrt(std) and predicts
slightly wrong (Keras patches this only for `weights="imagenet"`). Our models
never read normalization statistics from a file: `Normalize` holds the true
mean and std as constants, so the same convolution weights predict as the
original TPU training intended.
"""

from __future__ import annotations

import logging
import os
from typing import Callable

import keras
import numpy as np

from efficientnet_tpu.model.layers import IMAGENET_STD_RGB

logger = logging.getLogger(__name__)

# Our variant name -> the Keras Applications constructor with the same architecture.
KERAS_CONSTRUCTORS: dict[str, str] = {
    **{f"b{n}": f"EfficientNetB{n}" for n in range(8)},
    **{f"v2_b{n}": f"EfficientNetV2B{n}" for n in range(4)},
    "v2_s": "EfficientNetV2S",
    "v2_m": "EfficientNetV2M",
    "v2_l": "EfficientNetV2L",
}
# Keras' V2 MBConv calls its depthwise conv "dwconv2"; ours is "dwconv" in every family.
_SUFFIX_ALIASES = {"dwconv2": "dwconv"}
_TOP_LEVEL = ("stem_conv", "stem_bn", "top_conv", "top_bn", "predictions")
_MODEL_PREFIX = "efficientnet_tpu_"


def _layer_or_none(model: keras.Model, name: str) -> keras.layers.Layer | None:
    return next((layer for layer in model.layers if layer.name == name), None)


def _variant_of(model: keras.Model) -> str:
    name = model.name
    return name[len(_MODEL_PREFIX):] if name.startswith(_MODEL_PREFIX) else name


def _keras_model_from_file(model: keras.Model, path: str) -> keras.Model:
    """Builds the Keras Applications twin of `model` and loads `path` into it."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"Weights file {path!r} does not exist.")
    variant = _variant_of(model)
    constructor_name = KERAS_CONSTRUCTORS.get(variant)
    if constructor_name is None:
        raise ValueError(
            f"No Keras Applications model matches variant {variant!r}; weights files can be "
            f"loaded for: {', '.join(KERAS_CONSTRUCTORS)}."
        )
    constructor: Callable[..., keras.Model] = getattr(keras.applications, constructor_name)
    include_top = _layer_or_none(model, "predictions") is not None
    kwargs = dict(weights=path, include_top=include_top, input_shape=tuple(model.input_shape[1:]))
    if include_top:
        kwargs.update(classes=model.get_layer("predictions").units, classifier_activation=None)
    return constructor(**kwargs)


def _sublayers_by_name(layer: keras.layers.Layer) -> dict[str, keras.layers.Layer]:
    found: dict[str, keras.layers.Layer] = {}
    for sub in layer._flatten_layers(include_self=False, recursive=True):
        if sub.weights:
            found.setdefault(sub.name, sub)
    return found


def _target_layer(model: keras.Model, keras_name: str, cache: dict) -> keras.layers.Layer:
    if keras_name in _TOP_LEVEL:
        return model.get_layer(keras_name)
    block_name, _, suffix = keras_name.partition("_")
    if not suffix:
        raise ValueError(f"Cannot map Keras layer {keras_name!r} onto this model.")
    if block_name not in cache:
        block = _layer_or_none(model, block_name)
        if block is None:
            raise ValueError(
                f"Keras layer {keras_name!r} belongs to block {block_name!r}, which this model "
                "lacks: the source is a different architecture (variant, phi or stage table)."
            )
        cache[block_name] = _sublayers_by_name(block)
    subs = cache[block_name]
    target = subs.get(suffix) or subs.get(_SUFFIX_ALIASES.get(suffix, ""))
    if target is None:
        raise ValueError(
            f"Keras layer {keras_name!r} has no counterpart in our {block_name!r} "
            f"(it has {', '.join(sorted(subs))})."
        )
    return target


def _check_normalization(source: keras.Model) -> None:
    """Logs whether the source carries the std-as-variance quirk; ours is immune either way."""
    for layer in source.layers:
        if isinstance(layer, keras.layers.Normalization) and layer.weights:
            stored = [w for w in layer.weights if w.path.endswith("variance")]
            if not stored:
                continue
            variance = np.asarray(stored[0]).reshape(-1)
            std = np.asarray(IMAGENET_STD_RGB) / 255.0
            if variance.shape == std.shape and np.allclose(variance, std, rtol=1e-3):
                logger.warning(
                    "The source's Normalization stores the standard deviation as the variance "
                    "(the known Keras EfficientNet quirk); it is ignored here: efficientnet_tpu "
                    "normalizes with the true ImageNet mean and std."
                )


def _is_state(weight) -> bool:
    return "seed_generator" in weight.path


def load_keras_applications(model: keras.Model, source: keras.Model | str | os.PathLike) -> keras.Model:
    """Copies every weight of a Keras Applications EfficientNet into `model`.

    `source` is a `keras.applications` EfficientNet (V1 or V2) model or a
    weights file that `keras.applications.EfficientNet<X>(weights=path)`
    accepts. Raises ValueError when the architectures differ. Returns `model`.
    """
    if isinstance(source, (str, os.PathLike)):
        source = _keras_model_from_file(model, os.fspath(source))
    if not isinstance(source, keras.Model):
        raise TypeError(f"source must be a keras.Model or a weights file path, got {type(source).__name__}.")
    _check_normalization(source)

    cache: dict = {}
    assigned: set[int] = set()
    for layer in source.layers:
        if not layer.weights or isinstance(layer, keras.layers.Normalization):
            continue
        target = _target_layer(model, layer.name, cache)
        theirs = [w for w in layer.weights if not _is_state(w)]
        ours = [w for w in target.weights if not _is_state(w)]
        if [tuple(w.shape) for w in theirs] != [tuple(w.shape) for w in ours]:
            raise ValueError(
                f"Shape mismatch at {layer.name!r}: Keras has {[tuple(w.shape) for w in theirs]}, "
                f"ours {[tuple(w.shape) for w in ours]}; the source is a different architecture."
            )
        for mine, value in zip(ours, theirs):
            mine.assign(value)
            assigned.add(id(mine))
    missed = [w.path for w in model.weights if not _is_state(w) and id(w) not in assigned]
    if missed:
        raise ValueError(
            f"{len(missed)} weights of our model had no counterpart in the source, "
            f"e.g. {', '.join(missed[:4])}: the architectures differ."
        )
    return model
