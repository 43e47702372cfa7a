"""Turns a TrainConfig into the network, one place for training, eval and export."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping

import keras

import efficientnet_tpu
from efficientnet_tpu.training.config import TrainConfig


_SCALAR_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def check_model_overrides(overrides: Mapping[str, Any] | None, source: str = "model_overrides") -> None:
    """Rejects an unknown ModelSpec key or a value of the wrong type with one line naming the valid keys.

    Stage knobs (``stage_blocks``, ``remove_stages``, ...) check their own
    values when applied; plain fields are checked against ModelSpec's types.
    """
    from efficientnet_tpu.model.overrides import overridable_fields  # pylint: disable=import-outside-toplevel
    from efficientnet_tpu.model.specs import ModelSpec  # pylint: disable=import-outside-toplevel

    valid = overridable_fields()
    hints = typing.get_type_hints(ModelSpec)
    plain = {f.name for f in dataclasses.fields(ModelSpec)}
    for key, value in (overrides or {}).items():
        if key in ("alpha", "beta", "gamma", "phi"):
            raise ValueError(f"{source}: {key!r} is a TrainConfig field, not a ModelSpec one; "
                             f"set it as --{key} (or {key}: in the YAML), not in model_overrides")
        if key not in valid:
            raise ValueError(f"{source}: unknown key {key!r}; valid keys: {', '.join(valid)}")
        if key not in plain or value is None:
            continue
        hint = hints[key]
        options = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        names = [getattr(typing.get_origin(a) or a, "__name__", str(a)) for a in options]
        allowed = tuple(t for n in names for t in _SCALAR_TYPES.get(n, (object,)))
        is_bool_for_number = isinstance(value, bool) and bool not in allowed
        if is_bool_for_number or not isinstance(value, allowed):
            raise ValueError(f"{source}: {key} must be {' or '.join(names)}, got {value!r}")


# TrainConfig fields that are also ModelSpec fields: either spelling sets the spec's value.
SHARED_FIELDS = ("dropout_rate", "drop_connect_rate")


def _shared_field(config: TrainConfig, name: str) -> Any:
    """The one value of a field that both TrainConfig and model_overrides may set (None: the variant's).

    A model_overrides value wins over the field left at its default; two
    different values set on purpose are refused, naming both.
    """
    field, override = getattr(config, name), (config.model_overrides or {}).get(name)
    if override is None or field is None or field == override:
        return field if override is None else override
    if field == getattr(TrainConfig(model_dir=""), name):
        return override
    raise ValueError(f"{name} is set twice: {name}={field} (the TrainConfig field, --{name}) and "
                     f"model_overrides.{name}={override}; set one of them")


def spec_overrides(config: TrainConfig) -> dict[str, Any]:
    """The ``build_model`` / ``get_spec`` keywords a config asks for beyond variant and phi.

    The one place the config's model settings meet: the coefficients, the
    model overrides and the fields shared with ModelSpec (``SHARED_FIELDS``),
    so the spec that run planning reads is the one the network is built from.
    """
    overrides: dict[str, Any] = {}
    for name in ("alpha", "beta", "gamma"):
        if getattr(config, name) is not None:
            overrides[name] = getattr(config, name)
    if config.input_normalization:  # what released weights need (AdvProp, lite), recorded in config.yaml
        from efficientnet_tpu.released.published import NORMALIZATIONS  # pylint: disable=import-outside-toplevel

        overrides["mean"], overrides["std"] = NORMALIZATIONS[config.input_normalization]
    if config.model_overrides:
        check_model_overrides(config.model_overrides)
        overrides.update(config.model_overrides)
    for name in SHARED_FIELDS:
        overrides.pop(name, None)
        value = _shared_field(config, name)
        if value is not None:
            overrides[name] = value
    return overrides


def model_spec(config: TrainConfig):
    """The variant's ModelSpec (validates variant, phi and the coefficients)."""
    return efficientnet_tpu.get_spec(config.variant, config.phi, **spec_overrides(config))


def image_size(config: TrainConfig) -> int:
    return config.resolution or model_spec(config).resolution


def build_network(config: TrainConfig, *, for_training: bool = True) -> keras.Model:
    """Builds the classifier the config describes; logits out, float32 under any policy.

    Synchronized batch norm only matters while training, so exported models
    are built without it (and keep a static input size); ``sync_batch_norm_groups``
    other than "all" gives its layers the reference's grouped moments
    (training/grouped_batch_norm.py).
    """
    if config.num_classes is None:
        raise ValueError("num_classes is not resolved; resolve the config against the dataset first")
    size = image_size(config)
    # Progressive learning trains at each stage's size: the training network takes any size.
    shape = (None, None, 3) if (for_training and config.progressive) else (size, size, 3)
    overrides = spec_overrides(config)
    if for_training and config.sync_batch_norm:
        overrides["sync_batch_norm"] = True
    model = efficientnet_tpu.build_model(
        config.variant,
        phi=config.phi,
        num_classes=config.num_classes,
        input_shape=shape,
        **overrides,
    )
    if for_training and config.sync_batch_norm and config.sync_batch_norm_groups != "all":
        # The strategy in scope (the trainer builds the network inside it) gives the replica count.
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        from efficientnet_tpu.training import grouped_batch_norm  # pylint: disable=import-outside-toplevel
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        grouped_batch_norm.apply_grouping(
            model, grouped_batch_norm.group_size_for(config.sync_batch_norm_groups, replicas))
    return model
