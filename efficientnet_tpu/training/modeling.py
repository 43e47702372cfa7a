"""Turns a TrainConfig into the network, one place for training, eval and export."""

from __future__ import annotations

from typing import Any

import keras

import efficientnet_tpu
from efficientnet_tpu.training.config import TrainConfig


def spec_overrides(config: TrainConfig) -> dict[str, Any]:
    """The ``build_model`` / ``get_spec`` keywords a config asks for beyond variant and phi."""
    overrides: dict[str, Any] = {}
    for name in ("alpha", "beta", "gamma"):
        if getattr(config, name) is not None:
            overrides[name] = getattr(config, name)
    if config.bn_momentum is not None:
        overrides["bn_momentum"] = config.bn_momentum
    return overrides


def model_spec(config: TrainConfig):
    """The variant's ModelSpec (validates variant, phi and the coefficients)."""
    return efficientnet_tpu.get_spec(config.variant, config.phi, **spec_overrides(config))


def image_size(config: TrainConfig) -> int:
    return config.resolution or model_spec(config).resolution


def build_network(config: TrainConfig, *, for_training: bool = True) -> keras.Model:
    """Builds the classifier the config describes; logits out, float32 under any policy.

    Synchronized batch norm only matters while training, so exported models
    are built without it.
    """
    if config.num_classes is None:
        raise ValueError("num_classes is not resolved; resolve the config against the dataset first")
    size = image_size(config)
    overrides = spec_overrides(config)
    if for_training and config.sync_batch_norm:
        overrides["sync_batch_norm"] = True
    return efficientnet_tpu.build_model(
        config.variant,
        phi=config.phi,
        num_classes=config.num_classes,
        input_shape=(size, size, 3),
        dropout_rate=config.dropout_rate,
        drop_connect_rate=config.drop_connect_rate,
        **overrides,
    )
