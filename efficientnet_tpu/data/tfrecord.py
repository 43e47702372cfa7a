"""ImageNet as TFRecord shards in the layout of the original TPU code and the Cloud TPU tutorials.

DATA_DIR (local or gs://) holds ``train-00000-of-01024`` ... and
``validation-00000-of-00128`` ...: ``tf.train.Example`` records with the
encoded image in ``image/encoded`` and the class in ``image/class/label``.
The reference files number classes from 1 (0 was a background class), so
dataset ``tfrecord`` subtracts one; ``tfrecord_0based`` reads labels as they
are. ``gs://cloud-tpu-test-datasets/fake_imagenet`` has this layout.

Hosts split the files between them (one file is never read by two hosts), so
a pod reads the data once. File shards are not even, so the source reports
its largest shard and the pipeline pads every host's eval stream to it: eval
still counts every example exactly once.

Sizes: ``dataset_info.json`` beside the shards (written by
``python -m efficientnet_tpu.data.make_tfrecords``) gives class names and
per-file counts. Without it, the eval split is counted once (needed for the
exact eval) and the train split is taken as ImageNet's published 1,281,167
when it has the reference's 1024 files, counted otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import re

import tensorflow as tf

from efficientnet_tpu.data.info import DatasetInfo
from efficientnet_tpu.data.sources import Source, shard

DATASETS = ("tfrecord", "tfrecord_0based")
TRAIN_SPLIT = "train"
EVAL_SPLIT = "validation"
METADATA_FILE = "dataset_info.json"
IMAGENET_NUM_CLASSES = 1000
IMAGENET_TRAIN_FILES = 1024
IMAGENET_TRAIN_EXAMPLES = 1_281_167
LAYOUT_HINT = ("expected DATA_DIR/train-00000-of-01024 ... and DATA_DIR/validation-00000-of-00128 ... "
               "(tf.train.Example with image/encoded and image/class/label), as written by the Cloud TPU "
               "ImageNet tools or `python -m efficientnet_tpu.data.make_tfrecords`")
# Files read at once by one host's interleave.
CYCLE_LENGTH = 16

logger = logging.getLogger(__name__)

_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
}


def split_files(data_dir: str, split: str) -> list[str]:
    """The sorted shard files of `split` (``split-*-of-*``) in data_dir."""
    return sorted(tf.io.gfile.glob(os.path.join(data_dir, f"{split}-*-of-*")))


# Every label check's message starts with this, so the error can be found in TensorFlow's.
LABEL_ERROR = "tfrecord labels:"
# The first bytes of the image formats the decoder reads (JPEG, PNG, GIF, BMP).
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")


def looks_like_image(encoded: tf.Tensor) -> tf.Tensor:
    """True where the bytes start like an image the decoder reads (a cheap test, no decoding)."""
    return tf.reduce_any(tf.stack([tf.equal(tf.strings.substr(encoded, 0, len(magic)), magic)
                                   for magic in _IMAGE_MAGIC]))


def _image_bytes(record: tf.Tensor) -> tf.Tensor:
    return tf.io.parse_single_example(record, {"image/encoded": _FEATURES["image/encoded"]})["image/encoded"]


def count_records(files: list[str]) -> list[int]:
    """Records in each file, counted by reading them (in parallel); see ``count_records_and_bad``."""
    return count_records_and_bad(files)[0]


def count_records_and_bad(files: list[str]) -> tuple[list[int], list[int]]:
    """Per file: how many records, and how many of them hold no image (skipped when read)."""
    def count(path: tf.Tensor) -> tf.Tensor:
        def add(totals, record):
            return totals + tf.stack([tf.constant(1, tf.int64),
                                      tf.cast(tf.logical_not(looks_like_image(_image_bytes(record))), tf.int64)])
        return tf.data.TFRecordDataset(path).reduce(tf.zeros([2], tf.int64), add)

    counts = list(tf.data.Dataset.from_tensor_slices(files).map(count, num_parallel_calls=tf.data.AUTOTUNE)
                  .as_numpy_iterator())
    return [int(n) - int(b) for n, b in counts], [int(b) for _, b in counts]


def damaged_shards(data_dir: str) -> list[tuple[str, str]]:
    """(path, TensorFlow's message with the byte offset) of every shard that cannot be read to its end."""
    bad = []
    for split in (TRAIN_SPLIT, EVAL_SPLIT):
        for path in split_files(data_dir, split):
            try:
                tf.data.TFRecordDataset(path).reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)
            except tf.errors.DataLossError as e:
                found = re.search(r"(truncated|corrupted) record at \d+", str(e))
                bad.append((path, found.group(0) if found else " ".join(str(e).split("[[")[0].split())[:200]))
    return bad


def explain_error(error: tf.errors.OpError, data_dir: str | None) -> ValueError | None:
    """A one-line ValueError for a damaged shard or a label outside the classes; None for other errors."""
    text = str(error)
    if LABEL_ERROR in text:
        # TensorFlow prints the assert's message as "[message] [Condition ...] [x ...]".
        message = text[text.index(LABEL_ERROR):].split("\n")[0].split("]")[0].strip()
        return ValueError(message)
    if isinstance(error, tf.errors.DataLossError) and data_dir:
        bad = damaged_shards(data_dir)
        if not bad:
            return ValueError(f"a TFRecord file in {data_dir} is corrupt or truncated "
                              f"({' '.join(text.split('[[')[0].split())[:200]})")
        shown = "; ".join(f"{path}: {message}" for path, message in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        return ValueError(f"{len(bad)} TFRecord shard(s) are truncated or corrupt: {shown}{more}; training "
                          "refuses damaged shards: rewrite them (python -m efficientnet_tpu.data.make_tfrecords) "
                          "or move them out of --data_dir")
    return None


def file_shards(num_files: int, num_shards: int, shard_index: int) -> list[int] | None:
    """The file indices of one host, or None when there are fewer files than hosts."""
    if num_shards > num_files:
        return None
    return list(range(shard_index, num_files, num_shards))


class TFRecordSource(Source):
    """Reference-layout TFRecords; images stay encoded so JPEG crops are fused."""

    encoded = True
    cacheable = False
    shuffle_buffer_size = 8_192
    # Records that hold no image are filtered (and counted) in ``read``; a label outside the
    # classes or a damaged shard is an error in the data to fix, not to skip (see ``explain_error``).
    skips_unreadable = False

    def __init__(self, data_dir: str | None, *, label_offset: int = 1, name: str = "tfrecord") -> None:
        self.name = name
        if not data_dir:
            raise ValueError(f"dataset {name!r} needs data_dir: {LAYOUT_HINT}")
        self.data_dir = data_dir.rstrip("/")
        self.label_offset = label_offset
        self._files: dict[str, list[str]] = {}
        self._counts: dict[str, list[int]] = {}
        self._metadata = self._read_metadata()
        if not self.files(TRAIN_SPLIT) and not self.files(EVAL_SPLIT):
            raise FileNotFoundError(f"no TFRecord shards in {self.data_dir}; {LAYOUT_HINT}")
        names = self._metadata.get("class_names")
        self.class_names = tuple(names) if names else None
        self.num_classes = len(names) if names else int(self._metadata.get("num_classes",
                                                                           IMAGENET_NUM_CLASSES))

    def _read_metadata(self) -> dict:
        path = os.path.join(self.data_dir, METADATA_FILE)
        if not tf.io.gfile.exists(path):
            return {}
        with tf.io.gfile.GFile(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError:
                raise ValueError(f"{path} is not valid JSON") from None
        offset = data.get("label_offset")
        if offset is not None and offset != self.label_offset:
            raise ValueError(
                f"{path} says labels start at {offset}, but dataset {self.name!r} reads labels starting at "
                f"{self.label_offset}; use --dataset={'tfrecord' if offset == 1 else 'tfrecord_0based'}")
        return data

    def files(self, split: str) -> list[str]:
        if split not in self._files:
            self._files[split] = split_files(self.data_dir, split)
        return self._files[split]

    def _file_counts(self, split: str) -> list[int]:
        """Examples per file of `split`, from dataset_info.json or by reading the files."""
        if split not in self._counts:
            files = self.files(split)
            known = self._metadata.get("files", {})
            names = [os.path.basename(path) for path in files]
            if all(name in known for name in names):
                self._counts[split] = [int(known[name]) for name in names]
            else:
                self._counts[split], bad = count_records_and_bad(files)
                if sum(bad):
                    shown = ", ".join(f"{os.path.basename(path)} ({n})" for path, n in zip(files, bad) if n)
                    logger.warning("%s: skipped %d of %d %s records that hold no image (not JPEG, PNG, GIF or "
                                   "BMP): %s", self.data_dir, sum(bad), sum(bad) + sum(self._counts[split]),
                                   split, shown)
        return self._counts[split]

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(split for split in (TRAIN_SPLIT, EVAL_SPLIT) if self.files(split))

    def info(self) -> DatasetInfo:
        eval_split = EVAL_SPLIT if self.files(EVAL_SPLIT) else None
        return DatasetInfo(
            name=self.name, num_classes=self.num_classes, train_split=TRAIN_SPLIT, eval_split=eval_split,
            num_train_examples=self.num_examples(TRAIN_SPLIT) if self.files(TRAIN_SPLIT) else 0,
            num_eval_examples=self.num_examples(eval_split) if eval_split else 0,
            class_names=self.class_names, native_resolution=None, splits=self.splits)

    def check_split(self, split: str) -> str:
        if not isinstance(split, str) or split not in self.splits:
            raise ValueError(f"{self.data_dir} has no TFRecord shards for split {split!r} "
                             f"({split}-*-of-*); it has {', '.join(map(repr, self.splits)) or 'none'}. "
                             f"{LAYOUT_HINT}")
        return split

    def num_examples(self, split: str) -> int:
        files = self.files(split)
        known = self._metadata.get("files", {})
        if (split == TRAIN_SPLIT and len(files) == IMAGENET_TRAIN_FILES
                and not all(os.path.basename(path) in known for path in files)):
            # Counting 140 GB to size an epoch is not worth it: the reference layout is ImageNet.
            return IMAGENET_TRAIN_EXAMPLES
        return sum(self._file_counts(split))

    def largest_shard(self, split: str, num_shards: int) -> int:
        counts = self._file_counts(split)
        indices = file_shards(len(counts), num_shards, 0)
        if indices is None:
            return super().largest_shard(split, num_shards)
        return max(sum(counts[i] for i in file_shards(len(counts), num_shards, index))
                   for index in range(num_shards))

    def _parse(self, record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        parsed = tf.io.parse_single_example(record, _FEATURES)
        label = tf.cast(parsed["image/class/label"], tf.int32) - self.label_offset
        # A wrong label base would train silently on shifted classes: stop instead.
        checks = [
            tf.debugging.assert_non_negative(
                label, message=f"{LABEL_ERROR} a label below {self.label_offset} in {self.data_dir}, which "
                               f"--dataset={self.name} reads as classes counted from {self.label_offset}; these "
                               "files count classes from 0: use --dataset=tfrecord_0based"),
            tf.debugging.assert_less(
                label, self.num_classes,
                message=f"{LABEL_ERROR} a label of {self.num_classes + self.label_offset} or more in "
                        f"{self.data_dir}, outside the {self.num_classes} classes of --dataset={self.name} "
                        f"(classes counted from {self.label_offset}); "
                        + ("if the files count classes from 1 use --dataset=tfrecord, else set --num_classes"
                           if self.label_offset == 0 else "set --num_classes")),
        ]
        with tf.control_dependencies(checks):
            label = tf.identity(label)
        return parsed["image/encoded"], label

    def read(self, split: str, *, num_shards: int, shard_index: int,
             shuffle_files: bool, seed: int | None) -> tf.data.Dataset:
        files = self.files(split)
        indices = file_shards(len(files), num_shards, shard_index)
        if indices is None:
            logger.warning("%s: %d %s files for %d hosts; every host reads all files and keeps every "
                           "%d-th record", self.data_dir, len(files), split, num_shards, num_shards)
            mine = files
        else:
            mine = [files[i] for i in indices]
        dataset = tf.data.Dataset.from_tensor_slices(mine)
        if shuffle_files:
            dataset = dataset.shuffle(len(mine), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.interleave(
            tf.data.TFRecordDataset, cycle_length=min(CYCLE_LENGTH, len(mine)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle_files)
        if indices is None:
            dataset = shard(dataset, num_shards, shard_index)
        # A record that holds no image is dropped here (counted when the split is counted), before
        # the decoder would stop the run; the label checks in _parse still stop it.
        dataset = dataset.map(self._parse, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.filter(lambda encoded, label: looks_like_image(encoded))
