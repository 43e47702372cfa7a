"""Rebuild a mixed-precision Keras model in float32 for serving.

A model trained under ``mixed_bfloat16`` or ``mixed_float16`` keeps float32
variables but computes in half precision. Serving it that way would make the
exported predictions depend on the training precision (and bfloat16 is slow on
most serving CPUs), so the exporter rebuilds the same architecture with float32
compute and copies the weights over.
"""

from __future__ import annotations

from typing import Any

import keras
from absl import logging

_POLICY_CLASS = "DTypePolicy"


def _is_mixed_policy_config(value: Any) -> bool:
    """True for a serialized ``DTypePolicy`` whose name is ``mixed_*``."""
    if isinstance(value, str):
        return value.startswith("mixed_")
    if isinstance(value, dict) and value.get("class_name") == _POLICY_CLASS:
        return str(value.get("config", {}).get("name", "")).startswith("mixed_")
    return False


def _float32_config(config: Any) -> tuple[Any, bool]:
    """Returns ``config`` with every mixed dtype policy replaced by float32.

    The second item says whether anything was replaced.
    """
    if isinstance(config, dict):
        replaced = False
        result = {}
        for key, value in config.items():
            if key == "dtype" and _is_mixed_policy_config(value):
                result[key] = "float32"
                replaced = True
            else:
                result[key], sub_replaced = _float32_config(value)
                replaced = replaced or sub_replaced
        return result, replaced
    if isinstance(config, (list, tuple)):
        items = [_float32_config(item) for item in config]
        return type(config)(item for item, _ in items), any(r for _, r in items)
    return config, False


def uses_mixed_precision(model: keras.Model) -> bool:
    """Whether any layer of ``model`` computes in a mixed dtype policy."""
    if model.dtype_policy.name.startswith("mixed_"):
        return True
    try:
        _, replaced = _float32_config(model.get_config())
    except NotImplementedError:
        return False
    return replaced


def as_float32_model(model: keras.Model) -> keras.Model:
    """Returns ``model`` itself when it computes in float32, else a float32 copy.

    The copy is rebuilt from the model's config under a float32 global policy
    (so sublayers created inside custom layers are float32 too) and receives
    the original weights. A model that cannot be rebuilt from its config is
    returned unchanged with a warning: the serving signatures still cast to
    and from float32, only the inner compute stays in half precision.
    """
    if not uses_mixed_precision(model):
        return model
    config, _ = _float32_config(model.get_config())
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        rebuilt = type(model).from_config(config)
    except Exception as error:  # noqa: BLE001 - any rebuild failure has the same remedy
        logging.warning(
            "Could not rebuild %s in float32 (%s: %s); exporting it in its mixed "
            "precision policy with float32 signatures. Pass a float32 model "
            "(efficientnet_tpu.training.trained.load_trained_model returns one) "
            "to serve in full precision.",
            model.name, type(error).__name__, error)
        return model
    finally:
        keras.config.set_dtype_policy(previous_policy)
    rebuilt.set_weights(model.get_weights())
    return rebuilt
