"""The builders of the two baselines of seed 003's CIFAR comparison: a small ConvNet and ResNet-152.

Their specs and variant names live in `specs.py` beside this file (no Keras
there); each family's builder registers here (`register_family_builder`), so
`build_model`, the summary and the trainer treat them like any EfficientNet.
The builders read the architecture from `ModelSpec.extra`.

* `baseline_convnet`: three 3x3 conv layers (64, 128, 256 channels; each conv,
  BN, ReLU, 2x2 max-pool) and three fully connected layers (256, 128,
  classes; dropout before the last two). At 32x32 with 10 classes: 1,454,282
  parameters and 40.6 M MACs, the seed's 1.46 M and 39.97 MMac within 2%.
* `resnet152`: ResNet v1 with bottleneck blocks [3, 8, 36, 3], written here
  with Keras Applications' layer names, padding and conv biases, so both have
  58,240,010 parameters at 10 classes and the same outputs given the same weights.
"""

from __future__ import annotations

from typing import Any

import keras

from efficientnet_tpu.model.family_builders import register_family_builder
from efficientnet_tpu.model.head import classifier_head, logits_layer
from efficientnet_tpu.model.layers import CONV_INITIALIZER, Normalize, batch_norm, conv2d
from efficientnet_tpu.model.specs import ModelSpec

RESNET_BOTTLENECK_WIDTHS = (64, 128, 256, 512)  # stages conv2..conv5; outputs are 4x wider


def _extra(spec: ModelSpec, key: str) -> Any:
    values = dict(spec.extra)
    if key not in values:
        raise ValueError(f"The {spec.family} spec {spec.name!r} lacks {key!r} in its `extra` settings.")
    return values[key]


def _bn(spec: ModelSpec, name: str) -> keras.layers.Layer:
    return batch_norm(spec.bn_momentum, spec.bn_epsilon, spec.sync_batch_norm, name=name)


def _preprocess(spec: ModelSpec, inputs, include_preprocessing: bool):
    return Normalize(spec.mean, spec.std, name="normalization")(inputs) if include_preprocessing else inputs


def _logits(x, num_classes: int, classifier_activation: str | None):
    # Keras' default initializer, as Keras Applications' ResNet has.
    return logits_layer(x, num_classes, classifier_activation, kernel_initializer="glorot_uniform")


def build_convnet(
    spec: ModelSpec,
    inputs,
    *,
    num_classes: int,
    include_top: bool,
    include_preprocessing: bool,
    classifier_activation: str | None,
):
    """Conv-BN-ReLU-maxpool three times, then three dense layers; `include_top=False` stops at the last pool."""
    x = _preprocess(spec, inputs, include_preprocessing)
    for index, filters in enumerate(_extra(spec, "conv_filters"), start=1):
        x = conv2d(filters, 3, name=f"conv{index}_conv")(x)
        x = _bn(spec, f"conv{index}_bn")(x)
        x = keras.layers.ReLU(name=f"conv{index}_relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"conv{index}_pool")(x)
    if not include_top:
        return x
    if any(size is None for size in x.shape[1:]):
        raise ValueError(
            f"baseline_convnet flattens its feature map into dense layers, so it needs a static "
            f"input size; got input shape {tuple(inputs.shape[1:])}. Pass e.g. input_shape=(32, 32, 3)."
        )
    x = keras.layers.Flatten(name="flatten")(x)
    for index, units in enumerate(_extra(spec, "dense_units"), start=1):
        x = keras.layers.Dense(units, kernel_initializer="he_normal", name=f"fc{index}")(x)
        x = keras.layers.ReLU(name=f"fc{index}_relu")(x)
        if spec.dropout_rate > 0:
            x = keras.layers.Dropout(spec.dropout_rate, name=f"fc{index}_dropout")(x)
    return _logits(x, num_classes, classifier_activation)


def _bottleneck(spec: ModelSpec, x, filters: int, stride: int, projection: bool, name: str):
    """ResNet v1 bottleneck as Keras Applications builds it: the stride sits in the first 1x1 conv."""
    if projection:
        shortcut = conv2d(4 * filters, 1, stride, name=f"{name}_0_conv", use_bias=True)(x)
        shortcut = _bn(spec, f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = conv2d(filters, 1, stride, name=f"{name}_1_conv", use_bias=True)(x)
    x = keras.layers.ReLU(name=f"{name}_1_relu")(_bn(spec, f"{name}_1_bn")(x))
    x = conv2d(filters, 3, name=f"{name}_2_conv", use_bias=True)(x)
    x = keras.layers.ReLU(name=f"{name}_2_relu")(_bn(spec, f"{name}_2_bn")(x))
    x = conv2d(4 * filters, 1, name=f"{name}_3_conv", use_bias=True)(x)
    x = _bn(spec, f"{name}_3_bn")(x)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.ReLU(name=f"{name}_out")(x)


def build_resnet(
    spec: ModelSpec,
    inputs,
    *,
    num_classes: int,
    include_top: bool,
    include_preprocessing: bool,
    classifier_activation: str | None,
):
    """ResNet v1: 7x7/2 stem, 3x3/2 max-pool, four stages of bottlenecks, global pool, dense."""
    x = _preprocess(spec, inputs, include_preprocessing)
    # Symmetric padding then VALID, as Keras does: "same" would pad (2, 3) and shift the grid.
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = keras.layers.Conv2D(64, 7, strides=2, kernel_initializer=CONV_INITIALIZER, name="conv1_conv")(x)
    x = keras.layers.ReLU(name="conv1_relu")(_bn(spec, "conv1_bn")(x))
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, repeats) in enumerate(zip(RESNET_BOTTLENECK_WIDTHS, _extra(spec, "resnet_blocks")), start=2):
        for index in range(1, repeats + 1):
            stride = 2 if index == 1 and stage > 2 else 1
            x = _bottleneck(spec, x, filters, stride, index == 1, name=f"conv{stage}_block{index}")
    if not include_top:
        return x
    return classifier_head(x, spec, num_classes, classifier_activation)


register_family_builder("convnet", build_convnet)
register_family_builder("resnet", build_resnet)
