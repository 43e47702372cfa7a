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


def speed(config: config_lib.TrainConfig, *, batch_size: int = 32, latency_calls: int = 10,
          train_steps: int = 5) -> dict[str, Any]:
    """The record's speed fields on this machine, each on a freshly built float32 network.

    Latency is the median wall time of one graph-mode forward pass at batch 1
    and at ``batch_size``; training images/s is measured at the trial's own
    training batch (capped at ``batch_size`` so a TPU-sized batch does not
    exhaust a CPU host's memory).
    """
    from efficientnet_tpu.benchmarks import model_speed  # pylint: disable=import-outside-toplevel
    from efficientnet_tpu.benchmarks.timing import machine_description  # pylint: disable=import-outside-toplevel

    resolved = architecture(config)
    size = int(resolved.resolution)
    latency_1 = model_speed.inference_latency(build(resolved), 1, size, calls=latency_calls)
    latency_n = model_speed.inference_latency(build(resolved), batch_size, size, calls=latency_calls)
    train_batch = min(batch_size, resolved.train_batch_size)
    images_per_s = model_speed.training_throughput(build(resolved), train_batch, size,
                                                   int(resolved.num_classes), steps=train_steps)
    return {"latency_ms_batch1": round(latency_1.wall_s * 1000, 4),
            "latency_ms_batch": round(latency_n.wall_s * 1000, 4), "latency_batch_size": batch_size,
            "train_images_per_s": round(images_per_s, 3), "machine": machine_description()}
