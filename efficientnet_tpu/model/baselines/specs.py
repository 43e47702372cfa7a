"""The specs of the two baselines of seed 003's CIFAR comparison, and their variant names. No Keras.

Their architecture lives in `ModelSpec.extra` (conv widths, dense units,
bottleneck repeats), next to the metadata training and export read; their
Keras builders are in `builders.py` beside this file. Kept apart so that every variant can be
named, resolved and checked without loading Keras.
"""

from __future__ import annotations

from typing import Sequence

from efficientnet_tpu.model.specs import ModelSpec
from efficientnet_tpu.model.registry import register

CONVNET_CONV_FILTERS = (64, 128, 256)
CONVNET_DENSE_UNITS = (256, 128)
RESNET152_BLOCKS = (3, 8, 36, 3)
# Keras' "caffe" preprocessing subtracts these (BGR order there); std 1 keeps the pixel scale.
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)


def convnet_spec(
    conv_filters: Sequence[int] = CONVNET_CONV_FILTERS, dense_units: Sequence[int] = CONVNET_DENSE_UNITS
) -> ModelSpec:
    """The ConvNet's spec; other widths give other members of the same family."""
    return ModelSpec(
        name="baseline_convnet",
        family="convnet",
        resolution=32,
        dropout_rate=0.5,
        drop_connect_rate=0.0,
        activation="relu",
        crop_fraction=1.0,
        extra=(("conv_filters", tuple(conv_filters)), ("dense_units", tuple(dense_units))),
    )


def resnet_spec(name: str = "resnet152", blocks: Sequence[int] = RESNET152_BLOCKS) -> ModelSpec:
    """A ResNet v1 spec; `blocks` are the bottleneck repeats of stages conv2..conv5."""
    return ModelSpec(
        name=name,
        family="resnet",
        resolution=224,
        dropout_rate=0.0,
        drop_connect_rate=0.0,
        activation="relu",
        bn_epsilon=1.001e-5,
        mean=CAFFE_MEAN_RGB,
        std=(1.0, 1.0, 1.0),
        extra=(("resnet_blocks", tuple(blocks)),),
    )


register(
    "baseline_convnet",
    "Seed 003's CIFAR baseline: 3 conv (64-128-256) + 3 dense (256-128-classes) layers, 32px",
)(lambda phi, coefficients: convnet_spec())
register("resnet152", "ResNet-152 v1, bottlenecks [3, 8, 36, 3] (Keras Applications layout)")(
    lambda phi, coefficients: resnet_spec()
)
