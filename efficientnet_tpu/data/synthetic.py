"""Random images and labels made inside the input graph: benchmarks and smoke
runs with no data at all.

Training repeats one random batch generated once in the graph, so the input
costs nothing per step and a model benchmark measures the model alone (it
also makes a quick check that a model can memorize a batch). Evaluation is a
finite split of per-example random images, batched and masked like real data.
"""

from __future__ import annotations

import tensorflow as tf

from efficientnet_tpu.data.batching import eval_examples_per_shard, pad_and_batch_eval
from efficientnet_tpu.data.info import DatasetInfo
from efficientnet_tpu.data.native import native_resolution
from efficientnet_tpu.data.sources import Source, Stream

NUM_CLASSES = 1000
NUM_TRAIN_EXAMPLES = 10_000  # a nominal epoch
NUM_EVAL_EXAMPLES = 1_000


class SyntheticSource(Source):
    """Facts about the synthetic dataset; make_batches() makes its batches."""

    def __init__(self) -> None:
        self.name = "synthetic"

    def info(self) -> DatasetInfo:
        return DatasetInfo(
            name=self.name, num_classes=NUM_CLASSES, train_split="train",
            eval_split="validation", num_train_examples=NUM_TRAIN_EXAMPLES,
            num_eval_examples=NUM_EVAL_EXAMPLES, class_names=None,
            native_resolution=native_resolution(self.name), splits=("train", "validation"))

    def num_examples(self, split: str) -> int:
        return NUM_TRAIN_EXAMPLES if split == "train" else NUM_EVAL_EXAMPLES

    def read(self, split: str, *, num_shards: int, shard_index: int,
             shuffle_files: bool, seed: int | None) -> tf.data.Dataset:
        """Indices of this shard's examples; make_batches() turns them into images."""
        return tf.data.Dataset.range(self.num_examples(split)).shard(num_shards, shard_index)

    def make_batches(self, split: str, stream: Stream) -> tf.data.Dataset:
        """Random images of the stream's size and dtype, seeded per shard (seed 0 when unseeded)."""
        batch_size, image_size, dtype = stream.batch_size, stream.image_size, stream.dtype
        shard_index, seed = stream.shard_index, stream.shard_seed(default=0)
        if stream.training:
            def random_batch(_: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                images = tf.random.stateless_uniform(
                    [batch_size, image_size, image_size, 3], [seed, shard_index], 0.0, 255.0)
                labels = tf.random.stateless_uniform(
                    [batch_size], [seed + 1, shard_index], 0, NUM_CLASSES, tf.int32)
                return tf.cast(images, dtype), labels
            return tf.data.Dataset.range(1).map(random_batch).cache().repeat()

        def random_example(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            example_seed = tf.stack([tf.constant(seed, tf.int64), index])
            image = tf.random.stateless_uniform([image_size, image_size, 3], example_seed,
                                                0.0, 255.0)
            label = tf.random.stateless_uniform([], example_seed + 1, 0, NUM_CLASSES, tf.int32)
            return tf.cast(image, dtype), label

        examples = self.read(split, num_shards=stream.num_shards, shard_index=shard_index,
                             shuffle_files=False, seed=None)
        examples = examples.map(random_example, num_parallel_calls=tf.data.AUTOTUNE)
        return pad_and_batch_eval(
            examples, examples_per_shard=eval_examples_per_shard(
                self.num_examples(split), stream.num_shards, stream.shard_batch),
            batch_size=batch_size, image_size=image_size, dtype=dtype)
