"""Static-shape batching for evaluation that still counts every example once.

Each shard (one per input pipeline, i.e. per host) is padded with masked
examples up to the same multiple of its batch: the largest shard's size,
rounded up to whole steps. Every replica therefore runs the same number of
steps (a replica that runs out early would hang the others in a distributed
eval), and the masks add up to exactly the split's size over all shards.
"""

from __future__ import annotations

import tensorflow as tf


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def eval_examples_per_shard(num_examples: int, num_shards: int, shard_batch: int,
                            largest_shard: int | None = None) -> int:
    """Real plus padding examples each shard yields.

    Shards are even by default (the largest holds ceil(N / num_shards));
    sources sharded by file pass their `largest_shard`. `shard_batch` is what
    one shard feeds per step: the per-replica batch times the replicas that
    read from it.
    """
    if largest_shard is None:
        largest_shard = ceil_div(num_examples, num_shards)
    return ceil_div(largest_shard, shard_batch) * shard_batch


def eval_steps_for(num_examples: int, global_batch_size: int, num_input_pipelines: int = 1,
                   largest_shard: int | None = None) -> int:
    """Steps of `global_batch_size` that an eval pass over `num_examples` takes."""
    shard_batch = global_batch_size // num_input_pipelines
    return eval_examples_per_shard(num_examples, num_input_pipelines, shard_batch,
                                   largest_shard) // shard_batch


def pad_and_batch_eval(dataset: tf.data.Dataset, *, examples_per_shard: int, batch_size: int,
                       image_size: int, dtype: tf.DType) -> tf.data.Dataset:
    """(image, label) -> batches of (image, label, mask) padded to examples_per_shard."""
    real = dataset.map(lambda image, label: (image, label, tf.constant(1.0, tf.float32)))
    padding = tf.data.Dataset.from_tensors((
        tf.zeros([image_size, image_size, 3], dtype), tf.constant(0, tf.int32),
        tf.constant(0.0, tf.float32))).repeat()
    # take() also stops at the exact size: a shard never yields a partial extra step.
    return real.concatenate(padding).take(examples_per_shard).batch(batch_size,
                                                                    drop_remainder=True)
