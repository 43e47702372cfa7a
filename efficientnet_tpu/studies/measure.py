"""Size and speed of a trial's network: params, MACs, latency and training images/s.

Params and MACs are counted on a freshly built float32 network at the
trial's resolution (cached per architecture, so a constraint check and the
record agree and a dry run builds each network once). Speed is measured on
the machine the trial runs on, with the benchmark toolkit's timers.
"""

from __future__ import annotations

import json
from typing import Any

import keras

import efficientnet_tpu
from efficientnet_tpu import data as data_lib
from efficientnet_tpu.training import config as config_lib
from efficientnet_tpu.training import modeling

_SIZE_CACHE: dict[str, tuple[int, int]] = {}


def architecture(config: config_lib.TrainConfig) -> config_lib.TrainConfig:
    """The config with resolution and class count filled in (from the variant and the dataset)."""
    num_classes = config.num_classes
    if num_classes is None:
        num_classes = data_lib.dataset_info(config.dataset, config.data_dir).num_classes
    return config_lib.replace(config, num_classes=num_classes, resolution=modeling.image_size(config))


def _key(config: config_lib.TrainConfig) -> str:
    return json.dumps({k: getattr(config, k) for k in config_lib.ARCHITECTURE_KEYS}, sort_keys=True, default=str)


def build(config: config_lib.TrainConfig) -> keras.Model:
    """The trial's network in float32, as training builds it (without synchronized batch norm)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        return modeling.build_network(architecture(config), for_training=False)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def params_and_macs(config: config_lib.TrainConfig) -> tuple[int, int]:
    """(parameters, multiply-adds of one image) of the trial's network; cached per architecture."""
    config = architecture(config)
    key = _key(config)
    if key not in _SIZE_CACHE:
        model = build(config)
        _SIZE_CACHE[key] = (int(model.count_params()), int(efficientnet_tpu.count_macs(model)))
        del model
    return _SIZE_CACHE[key]


def describe_size(config: config_lib.TrainConfig) -> dict[str, Any]:
    """The record's size fields: variant, resolution, num_classes, params, macs."""
    resolved = architecture(config)
    params, macs = params_and_macs(resolved)
    return {"variant": resolved.variant, "resolution": resolved.resolution, "num_classes": resolved.num_classes,
            "params": params, "macs": macs}
