"""A user's own images: DATA_DIR/train/<class>/*.jpg|png, DATA_DIR/validation/<class>/*
(or test/). Classes are the train subfolders in sorted order.

Every file is decoded once when the split is first listed, so corrupt or
unreadable files are dropped (and counted in one warning) before training
starts instead of failing an epoch halfway, and an eval split's size is exact.
A file that disappears or becomes unreadable later, mid-training, is skipped
(see ``pipeline.skip_unreadable``).
Paths go through tf.io.gfile, so DATA_DIR may be on gs://.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import tensorflow as tf

from efficientnet_tpu.data.info import DatasetInfo
from efficientnet_tpu.data.preprocessing import decode_image
from efficientnet_tpu.data.sources import Source, shard

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
TRAIN_SPLIT = "train"
EVAL_SPLITS = ("validation", "test")

logger = logging.getLogger(__name__)

# Decodability of files already checked in this process, by path, and the
# skipped files already reported, so train and eval builds warn once.
_DECODABLE: dict[str, bool] = {}
_REPORTED: set[tuple[str, ...]] = set()

LAYOUT_HINT = ("expected DATA_DIR/train/<class_name>/*.jpg|*.png and, for evaluation, "
               "DATA_DIR/validation/<class_name>/* or DATA_DIR/test/<class_name>/*")


def _join(*parts: str) -> str:
    return os.path.join(*parts)


def _subfolders(path: str) -> list[str]:
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(path)
                  if tf.io.gfile.isdir(_join(path, name.rstrip("/"))))


def _image_files(path: str) -> list[str]:
    # Filter by name only: one isdir() per file would be one request per file
    # on gs://, whose listings mark folders with a trailing "/".
    return sorted(_join(path, name) for name in tf.io.gfile.listdir(path)
                  if name.lower().endswith(IMAGE_EXTENSIONS))


def find_decodable(paths: list[str]) -> list[bool]:
    """Decode every file once (in parallel) and report which ones succeed."""
    unchecked = [path for path in paths if path not in _DECODABLE]
    if unchecked:
        def check(index: tf.Tensor, path: tf.Tensor) -> tf.Tensor:
            image = decode_image(tf.io.read_file(path), fast_jpeg=True)
            with tf.control_dependencies([tf.debugging.assert_positive(tf.size(image))]):
                return tf.identity(index)

        checks = (tf.data.Dataset.from_tensor_slices(unchecked).enumerate()
                  .map(check, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors())
        good = {int(index) for index in checks.as_numpy_iterator()}
        for index, path in enumerate(unchecked):
            _DECODABLE[path] = index in good
    return [_DECODABLE[path] for path in paths]


class FolderSource(Source):
    """Images in class folders; read as encoded bytes so JPEG crops are fused."""

    encoded = True
    cacheable = False
    shuffle_buffer_size = 0  # the file list itself is shuffled every epoch

    def __init__(self, data_dir: str | None) -> None:
        self.name = "folder"
        if not data_dir:
            raise ValueError(f"dataset 'folder' needs data_dir: {LAYOUT_HINT}")
        self.data_dir = data_dir.rstrip("/")
        if not tf.io.gfile.isdir(self.data_dir):
            raise FileNotFoundError(f"data_dir {self.data_dir} does not exist; {LAYOUT_HINT}")
        train_dir = _join(self.data_dir, TRAIN_SPLIT)
        if not tf.io.gfile.isdir(train_dir):
            raise FileNotFoundError(f"{self.data_dir} has no train/ folder; {LAYOUT_HINT}")
        self.class_names = tuple(_subfolders(train_dir))
        if not self.class_names:
            raise ValueError(f"{train_dir} has no class folders; {LAYOUT_HINT}")
        self.splits = (TRAIN_SPLIT,) + tuple(
            split for split in EVAL_SPLITS if tf.io.gfile.isdir(_join(self.data_dir, split)))
        self._listed: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _list(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The decodable files of a split and their labels, checked once."""
        if split in self._listed:
            return self._listed[split]
        split_dir = _join(self.data_dir, split)
        folders = _subfolders(split_dir)
        unknown = sorted(set(folders) - set(self.class_names))
        if unknown:
            raise ValueError(
                f"{split_dir} has class folders that train/ lacks: {', '.join(unknown)}; the "
                f"classes are train/'s subfolders: {', '.join(self.class_names)}")
        paths: list[str] = []
        labels: list[int] = []
        for label, class_name in enumerate(self.class_names):
            if class_name in folders:
                files = _image_files(_join(split_dir, class_name))
                paths += files
                labels += [label] * len(files)
        if not paths:
            raise ValueError(f"{split_dir} has no .jpg, .jpeg or .png files in its class "
                             f"folders; {LAYOUT_HINT}")
        decodable = find_decodable(paths)
        bad = [path for path, ok in zip(paths, decodable) if not ok]
        if len(bad) == len(paths):
            raise ValueError(f"none of the {len(paths)} image files under {split_dir} could be "
                             "decoded as JPEG or PNG")
        if bad and tuple(bad) not in _REPORTED:
            _REPORTED.add(tuple(bad))
            shown = ", ".join(os.path.relpath(path, split_dir) for path in bad[:5])
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            logger.warning("folder %s: skipped %d of %d image files that could not be decoded "
                           "(corrupt or unreadable): %s%s", split_dir, len(bad), len(paths),
                           shown, more)
        keep = np.asarray(decodable)
        listed = (np.asarray(paths)[keep], np.asarray(labels, np.int32)[keep])
        if split == TRAIN_SPLIT:
            empty = [name for index, name in enumerate(self.class_names)
                     if not np.any(listed[1] == index)]
            if empty and (split_dir, tuple(empty)) not in _REPORTED:
                _REPORTED.add((split_dir, tuple(empty)))
                logger.warning("folder %s: classes with no usable images: %s", split_dir,
                               ", ".join(empty))
        self._listed[split] = listed
        return listed

    def info(self) -> DatasetInfo:
        eval_split = next((split for split in EVAL_SPLITS if split in self.splits), None)
        num_train = self.num_examples(TRAIN_SPLIT)  # the listing's own errors come first
        if len(self.class_names) < 2:
            raise ValueError(f"{_join(self.data_dir, TRAIN_SPLIT)} has one class folder ({self.class_names[0]}); "
                             f"a classifier needs at least two: add one folder per class ({LAYOUT_HINT})")
        return DatasetInfo(
            name=self.name, num_classes=len(self.class_names), train_split=TRAIN_SPLIT,
            eval_split=eval_split, num_train_examples=num_train,
            num_eval_examples=self.num_examples(eval_split) if eval_split else 0,
            class_names=self.class_names, native_resolution=None, splits=self.splits)

    def check_split(self, split: str) -> str:
        if split is None:
            raise ValueError(
                f"folder dataset {self.data_dir} has no evaluation split: expected "
                f"{_join(self.data_dir, 'validation')}/<class_name>/* (or test/); add one, or "
                "train without evaluation (--mode=train)")
        if not isinstance(split, str) or split not in self.splits:
            missing = (f"; {_join(self.data_dir, split)} does not exist"
                       if split in EVAL_SPLITS else "")
            raise ValueError(f"folder dataset {self.data_dir} has no split {split!r}{missing}; "
                             f"it has {', '.join(repr(s) for s in self.splits)} ({LAYOUT_HINT})")
        return split

    def num_examples(self, split: str) -> int:
        return len(self._list(split)[0])

    def read(self, split: str, *, num_shards: int, shard_index: int,
             shuffle_files: bool, seed: int | None) -> tf.data.Dataset:
        paths, labels = self._list(split)
        dataset = shard(tf.data.Dataset.from_tensor_slices((paths, labels)), num_shards,
                        shard_index)
        if shuffle_files:
            dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
        return dataset.map(lambda path, label: (tf.io.read_file(path), label),
                           num_parallel_calls=tf.data.AUTOTUNE)
