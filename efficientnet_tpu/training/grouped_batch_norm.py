"""Batch-norm statistics over groups of replicas, as the reference's
TpuBatchNormalization (tensorflow/tpu, models/official/efficientnet/utils.py)
computes them on TPU slices: each replica alone on up to 8 replicas, else
groups of ``max(8, n // 8)`` consecutive replicas.

The model package stays Keras-only: it builds ``BatchNormalization(
synchronized=True)`` layers, and `apply_grouping` gives each of them grouped
moments in place (the layer's class, weights and saved form are unchanged).
The group sums use one all-reduce of a ``[groups, 2 * channels]`` tensor in
which each replica fills its own group's row, so it works on any
tf.distribute strategy (TPU, mirrored CPU/GPU) and under XLA.
"""

from __future__ import annotations

import types

import keras
import tensorflow as tf


def reference_group_size(num_replicas: int) -> int:
    """utils.py TpuBatchNormalization._moments: 1 up to 8 shards, else max(8, n // 8)."""
    return 1 if num_replicas <= 8 else max(8, num_replicas // 8)


def group_size_for(grouping: str, num_replicas: int) -> int:
    """Replicas per batch-norm group for a ``sync_batch_norm_groups`` setting (its accepted values are the
    field's rule in training/config.py; whether a size divides the replicas is known only here)."""
    if grouping == "all":
        size = num_replicas
    elif grouping == "reference":
        size = reference_group_size(num_replicas)
    else:
        size = int(grouping)
    if size < 1 or num_replicas % size:
        raise ValueError(f"sync_batch_norm_groups={grouping!r}: a group of {size} replicas does not "
                         f"divide the {num_replicas} replicas; use 'all', 'reference' or a divisor")
    return size


def grouped_moments(inputs: tf.Tensor, axes: list[int], group_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean and variance over `axes` and over the replicas of this replica's group.

    Var = E[x^2] - E[x]^2 from the replicas' averaged moments, as the
    reference does (every replica holds the same number of examples).
    """
    mean = tf.reduce_mean(inputs, axis=axes)
    mean_of_square = tf.reduce_mean(tf.square(inputs), axis=axes)
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    if group_size <= 1 or replicas <= 1:
        return mean, mean_of_square - tf.square(mean)
    groups = replicas // group_size
    group = tf.cast(context.replica_id_in_sync_group, tf.int32) // group_size
    moments = tf.concat([mean, mean_of_square], axis=0)
    rows = tf.one_hot(group, groups, dtype=moments.dtype)[:, None] * moments[None, :]
    summed = tf.gather(context.all_reduce(tf.distribute.ReduceOp.SUM, rows), group)
    summed = summed / tf.cast(group_size, summed.dtype)
    group_mean, group_mean_of_square = tf.split(summed, 2)
    return group_mean, group_mean_of_square - tf.square(group_mean)


def apply_grouping(model: keras.Model, group_size: int) -> int:
    """Give every synchronized BatchNormalization in `model` grouped moments; returns how many.

    group_size 1 is the reference on up to 8 replicas: each replica's own
    batch, with no communication at all.
    """
    count = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):  # pylint: disable=protected-access
        if not isinstance(layer, keras.layers.BatchNormalization) or not layer.synchronized:
            continue

        def moments(self, inputs, mask):
            if mask is not None:
                raise ValueError("grouped batch norm does not take a mask")
            return grouped_moments(inputs, list(self._reduction_axes), group_size)

        layer._moments = types.MethodType(moments, layer)  # pylint: disable=protected-access
        count += 1
    return count

