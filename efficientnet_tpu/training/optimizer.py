"""Optimizers and weight decay from the config.

Weight decay is an L2 term added to the loss, as in the reference
implementation, over every trainable variable except batch-norm scales and
offsets: conv and dense kernels and biases (the reference decays all
variables whose name lacks "batch_normalization"); EfficientNetV2, as
automl's trainer, leaves biases out too. The optional trainable
swish beta, which the reference does not have, is a scalar and is left alone.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from efficientnet_tpu.model.v2 import V2_TABLE
from efficientnet_tpu.training.config import TrainConfig


def decays_biases(variant: str) -> bool:
    """Whether the variant's reference decays biases: V1's does, EfficientNetV2's does not.

    tensorflow/tpu efficientnet main.py ``model_fn`` decays every variable whose
    name lacks "batch_normalization"; google/automl efficientnetv2 main.py
    ``model_fn`` skips ``hparams.base_config.train.weight_decay_exclude``,
    ``'.*(bias|gamma|beta).*'`` (its main_tf2.py decays kernels only, the same set).
    """
    return variant not in V2_TABLE


def decayed_variables(model: keras.Model, *, biases: bool = True) -> list:
    """Trainable variables outside batch-norm layers: kernels and (``biases``) biases, not scalars."""
    batch_norm = {
        id(variable)
        for layer in model._flatten_layers(include_self=False, recursive=True)  # pylint: disable=protected-access
        if isinstance(layer, keras.layers.BatchNormalization)
        for variable in layer.trainable_variables
    }
    return [v for v in model.trainable_variables if id(v) not in batch_norm and len(v.shape) >= 1
            and (biases or len(v.shape) > 1)]


def l2_penalty(variables: list, weight_decay: float) -> tf.Tensor:
    """``weight_decay * sum(v**2) / 2`` in float32 (the reference's ``tf.nn.l2_loss`` form)."""
    if not variables or weight_decay == 0:
        return tf.constant(0.0, tf.float32)
    return weight_decay * tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in variables])


def build_optimizer(config: TrainConfig, learning_rate) -> keras.optimizers.Optimizer:
    """RMSProp (the paper's), Adam (seed 003's CIFAR recipe) or SGD with momentum.

    Under mixed_float16 the optimizer is wrapped in a dynamic loss-scale
    optimizer; bfloat16 has float32's range and needs no loss scaling.
    """
    if config.optimizer == "rmsprop":
        optimizer = keras.optimizers.RMSprop(learning_rate=learning_rate, rho=config.rmsprop_decay,
                                             momentum=config.momentum, epsilon=config.epsilon)
    elif config.optimizer == "adam":
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=config.adam_beta_1,
                                          beta_2=config.adam_beta_2, epsilon=config.epsilon)
    elif config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=config.momentum,
                                         nesterov=True)
    else:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; choose rmsprop, adam or sgd")
    if config.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def inner_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    return getattr(optimizer, "inner_optimizer", optimizer)


def initialize_slots(optimizer: keras.optimizers.Optimizer, variables: list) -> None:
    """Creates the optimizer's slots now (so a checkpoint can restore them).

    RMSProp's mean-square accumulators start at one, as in the reference
    (TF1's RMSPropOptimizer); Keras starts them at zero, which makes the
    first updates up to ``1/sqrt(epsilon)`` times larger.
    """
    optimizer.build(variables)
    inner = inner_optimizer(optimizer)
    if isinstance(inner, keras.optimizers.RMSprop):
        for velocity in inner._velocities:  # pylint: disable=protected-access
            velocity.assign(tf.ones_like(velocity))
