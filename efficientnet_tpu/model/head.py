"""The classifier every family ends with: global pooling, dropout and float32 logits."""

from __future__ import annotations

import keras

from efficientnet_tpu.model.layers import DENSE_INITIALIZER
from efficientnet_tpu.model.specs import ModelSpec


def logits_layer(
    x, num_classes: int, classifier_activation: str | None, kernel_initializer=DENSE_INITIALIZER
):
    """The float32 classifier every family ends with: logits stay float32 under mixed precision."""
    x = keras.layers.Dense(
        num_classes, kernel_initializer=kernel_initializer, dtype="float32", name="predictions"
    )(x)
    if classifier_activation is not None:
        x = keras.layers.Activation(classifier_activation, dtype="float32", name="probabilities")(x)
    return x


def classifier_head(x, spec: ModelSpec, num_classes: int, classifier_activation: str | None):
    """Global pooling, dropout, and the float32 classifier."""
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if spec.dropout_rate > 0:
        x = keras.layers.Dropout(spec.dropout_rate, name="top_dropout")(x)
    return logits_layer(x, num_classes, classifier_activation)
