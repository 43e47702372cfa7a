"""The interface every dataset implements, so the pipeline treats ImageNet,
CIFAR, a folder of images and the digits alike.

A source reads one shard of one split as `(image, label)` pairs, where the
image is either encoded bytes (`encoded=True`: JPEG/PNG, decoded later fused
with the crop) or a uint8 `[h, w, 3]` array at the dataset's native size.
Shards are even (sizes differ by at most one, the largest is
ceil(N / num_shards)) unless the source says otherwise through
`largest_shard` (TFRecords sharded by file), which is what lets the pipeline
pad every shard of an eval split to the same number of batches.

The pipeline reads, augments and batches those examples for every source;
a source that makes its batches itself (synthetic data) says so by
overriding `make_batches`, never by the pipeline asking which source it is.
"""

from __future__ import annotations

import abc
import dataclasses

import tensorflow as tf

from efficientnet_tpu.data.info import DatasetInfo

# Input pipelines of one run draw their random streams from distinct seeds.
SHARD_SEED_STRIDE = 1_000_003


@dataclasses.dataclass(frozen=True)
class Stream:
    """What one input pipeline makes: its shard of the split, its batches, and their images."""

    training: bool
    num_shards: int
    shard_index: int
    batch_size: int  # per replica
    shard_batch: int  # examples this shard feeds per step: the batch times the replicas it feeds
    image_size: int
    dtype: tf.DType
    seed: int | None  # the run's; None: not seeded

    def shard_seed(self, default: int | None = None) -> int | None:
        """This shard's seed (`default` when the run has none; None stays None)."""
        seed = default if self.seed is None else self.seed
        return None if seed is None else seed + SHARD_SEED_STRIDE * self.shard_index


class Source(abc.ABC):
    """One dataset: its facts, its exact split sizes and a sharded reader."""

    name: str
    # True: read() yields encoded image bytes; False: uint8 arrays of native size.
    encoded: bool = False
    # Small datasets are cached decoded in memory and shuffled whole.
    cacheable: bool = False
    # Record-level shuffle buffer for training (0: the reader already shuffles).
    shuffle_buffer_size: int = 0
    # Digits are not mirror-symmetric, photographs are.
    flip_invariant: bool = True
    # Encoded sources: drop an example whose file became unreadable (pipeline.skip_unreadable).
    skips_unreadable: bool = True

    @abc.abstractmethod
    def info(self) -> DatasetInfo:
        """Facts about the dataset; must not require the data to be present."""

    @abc.abstractmethod
    def num_examples(self, split: str) -> int:
        """The exact number of examples read() yields for `split` over all shards."""

    @abc.abstractmethod
    def read(self, split: str, *, num_shards: int, shard_index: int,
             shuffle_files: bool, seed: int | None) -> tf.data.Dataset:
        """Shard `shard_index` of `num_shards` of `split`: `(image, int32 label)`."""

    def largest_shard(self, split: str, num_shards: int) -> int:
        """Examples in the largest of `num_shards` shards of `split` (even shards by default)."""
        return -(-self.num_examples(split) // num_shards)

    def make_batches(self, split: str, stream: Stream) -> tf.data.Dataset | None:
        """This source's own batches of `split` for `stream`, or None (the default): the
        pipeline then reads, augments and batches what read() yields. Mixing, the
        tf.data options and prefetching apply either way."""
        del split, stream
        return None

    def check_split(self, split: str) -> str:
        """Return `split` if this source has it, else a ValueError naming the choices."""
        splits = self.info().splits
        if not isinstance(split, str) or split not in splits:
            raise ValueError(
                f"dataset {self.name!r} has no split {split!r}; "
                f"choose one of {', '.join(repr(s) for s in splits)}")
        return split


def shard(dataset: tf.data.Dataset, num_shards: int, shard_index: int) -> tf.data.Dataset:
    """Every num_shards-th element starting at shard_index: disjoint, covering, even."""
    if num_shards == 1:
        return dataset
    return dataset.shard(num_shards, shard_index)


def count_examples(dataset: tf.data.Dataset) -> int:
    """Exact size of a finite dataset: its cardinality when known, else by reading it."""
    cardinality = int(dataset.cardinality())
    if cardinality >= 0:
        return cardinality
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, *_: count + 1))
