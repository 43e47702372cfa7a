"""scikit-learn's 1,797 real 8x8 handwritten digits: real data that needs no
download, for a first run and for tests that a model actually learns.

The split is fixed and stratified: 30 images of each digit (300) are the test
split, chosen with numpy's default_rng(0); the other 1,497 are train.
Pixels (0-16 in scikit-learn) are scaled to 0-255 and repeated over 3 channels.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from efficientnet_tpu.data.info import DatasetInfo
from efficientnet_tpu.data.native import native_resolution
from efficientnet_tpu.data.sources import Source, shard

TEST_PER_CLASS = 30
SPLIT_SEED = 0
NUM_CLASSES = 10
NATIVE_RESOLUTION = native_resolution("digits")  # 8


@functools.lru_cache(maxsize=1)
def load_digits_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train': (images, labels), 'test': (images, labels)}; images uint8 [n, 8, 8, 3]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            "the 'digits' dataset needs scikit-learn: pip install 'efficientnet_tpu[digits]' "
            "(or pip install scikit-learn)") from error
    digits = load_digits()
    pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    images = np.repeat(pixels[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int32)
    rng = np.random.default_rng(SPLIT_SEED)
    is_test = np.zeros(len(labels), bool)
    for digit in range(NUM_CLASSES):
        members = np.flatnonzero(labels == digit)
        is_test[rng.permutation(members)[:TEST_PER_CLASS]] = True
    return {"train": (images[~is_test], labels[~is_test]),
            "test": (images[is_test], labels[is_test])}


class DigitsSource(Source):
    """The digits as uint8 8x8x3 arrays, resized by the pipeline."""

    encoded = False
    cacheable = True
    shuffle_buffer_size = 2_000
    flip_invariant = False  # a mirrored digit is not the same digit

    def __init__(self) -> None:
        self.name = "digits"

    def info(self) -> DatasetInfo:
        splits = load_digits_splits()
        return DatasetInfo(
            name=self.name, num_classes=NUM_CLASSES, train_split="train", eval_split="test",
            num_train_examples=len(splits["train"][1]), num_eval_examples=len(splits["test"][1]),
            class_names=tuple(str(digit) for digit in range(NUM_CLASSES)),
            native_resolution=NATIVE_RESOLUTION, splits=("train", "test"))

    def num_examples(self, split: str) -> int:
        return len(load_digits_splits()[split][1])

    def read(self, split: str, *, num_shards: int, shard_index: int,
             shuffle_files: bool, seed: int | None) -> tf.data.Dataset:
        images, labels = load_digits_splits()[split]
        return shard(tf.data.Dataset.from_tensor_slices((images, labels)), num_shards,
                     shard_index)
