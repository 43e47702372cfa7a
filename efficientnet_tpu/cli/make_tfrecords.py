"""Converts an image folder into TFRecord shards in the reference layout (dataset ``tfrecord``).

    python -m efficientnet_tpu.data.make_tfrecords --input_dir=IMAGES --output_dir=gs://BUCKET/mydata \\
        --train_shards=64 --validation_shards=8

IMAGES is the ``folder`` dataset's layout (train/<class>/*.jpg|png and
validation/<class>/* or test/<class>/*). Each split's files are shuffled
(seeded) and written round-robin to ``train-00000-of-00064`` ... as
``tf.train.Example`` records with ``image/encoded`` (the file's bytes, not
re-encoded), ``image/format``, ``image/filename``, ``image/class/label``
(from 1, as the reference; ``--zero_based`` for 0) and
``image/class/text``. ``dataset_info.json`` beside them records the class
names, the label base and each file's record count, so training needs no
counting pass. Unreadable images are skipped (as the folder dataset does).

Exit status: 0 done, 2 bad arguments or input (one ``error: ...`` line).
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

if __name__ == "__main__":
    # As a program: TensorFlow starts without its start-up lines, as in train.
    from efficientnet_tpu.tf_startup import import_tensorflow

    import_tensorflow()

import tensorflow as tf  # noqa: E402

from efficientnet_tpu.data.folder import EVAL_SPLITS, TRAIN_SPLIT, FolderSource  # noqa: E402
from efficientnet_tpu.data.tfrecord import EVAL_SPLIT, METADATA_FILE  # noqa: E402
from efficientnet_tpu import exit_codes  # noqa: E402
from efficientnet_tpu.cli import common  # noqa: E402
from efficientnet_tpu.storage import write_json  # noqa: E402


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def make_example(image_bytes: bytes, label: int, class_name: str, filename: str) -> tf.train.Example:
    """One record with the reference's feature names."""
    image_format = b"JPEG" if image_bytes[:3] == b"\xff\xd8\xff" else b"PNG"
    return tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": _bytes(image_bytes),
        "image/format": _bytes(image_format),
        "image/filename": _bytes(filename.encode()),
        "image/class/label": _int(label),
        "image/class/text": _bytes(class_name.encode()),
    }))


def shard_name(split: str, index: int, num_shards: int) -> str:
    return f"{split}-{index:05d}-of-{num_shards:05d}"


def write_split(paths: Sequence[str], labels: Sequence[int], class_names: Sequence[str], output_dir: str,
                split: str, num_shards: int, label_offset: int, seed: int) -> dict[str, int]:
    """Writes one split's shards; returns {file name: record count}."""
    order = np.random.default_rng(seed).permutation(len(paths))
    num_shards = max(1, min(num_shards, len(paths)))
    counts: dict[str, int] = {}
    writers = []
    try:
        for index in range(num_shards):
            name = shard_name(split, index, num_shards)
            writers.append(tf.io.TFRecordWriter(os.path.join(output_dir, name)))
            counts[name] = 0
        for position, example_index in enumerate(order):
            path, label = paths[example_index], int(labels[example_index])
            with tf.io.gfile.GFile(path, "rb") as f:
                data = f.read()
            example = make_example(data, label + label_offset, class_names[label], os.path.basename(path))
            writers[position % num_shards].write(example.SerializeToString())
            counts[shard_name(split, position % num_shards, num_shards)] += 1
    finally:
        for writer in writers:
            writer.close()
    return counts


def convert(input_dir: str, output_dir: str, *, train_shards: int = 16, validation_shards: int = 4,
            zero_based: bool = False, seed: int = 0) -> dict:
    """Converts the folder at input_dir; returns the metadata written to dataset_info.json."""
    if train_shards < 1 or validation_shards < 1:
        raise ValueError("--train_shards and --validation_shards must be >= 1")
    source = FolderSource(input_dir)
    tf.io.gfile.makedirs(output_dir)
    existing = tf.io.gfile.glob(os.path.join(output_dir, "*-of-*"))
    if existing:
        raise ValueError(f"{output_dir} already holds TFRecord shards ({os.path.basename(existing[0])}, ...); "
                         "use an empty --output_dir")
    label_offset = 0 if zero_based else 1
    files: dict[str, int] = {}
    splits = {}
    eval_source = next((split for split in EVAL_SPLITS if split in source.splits), None)
    # A folder's test/ becomes the reference's validation split.
    for split, target, shards in ((TRAIN_SPLIT, TRAIN_SPLIT, train_shards),
                                  (eval_source, EVAL_SPLIT, validation_shards)):
        if split is None:
            continue
        paths, labels = source._list(split)  # pylint: disable=protected-access
        written = write_split(list(paths), list(labels), source.class_names, output_dir, target, shards,
                              label_offset, seed)
        files.update(written)
        splits[target] = sum(written.values())
    metadata = {"class_names": list(source.class_names), "label_offset": label_offset,
                "splits": splits, "files": files}
    write_json(os.path.join(output_dir, METADATA_FILE), metadata, indent=1)
    return metadata


def define_flags(values: flags.FlagValues) -> None:
    define = dict(flag_values=values)
    flags.DEFINE_string("input_dir", None, "train/<class>/* and validation/<class>/* (or test/); required", **define)
    flags.DEFINE_string("output_dir", None, "where the shards go (local or gs://), empty; required", **define)
    flags.DEFINE_integer("train_shards", 16, "train files (ImageNet: 1024)", **define)
    flags.DEFINE_integer("validation_shards", 4, "validation files (ImageNet: 128)", **define)
    flags.DEFINE_bool("zero_based", False, "labels from 0 (read with --dataset=tfrecord_0based); default from 1 "
                      "as the reference", **define)
    flags.DEFINE_integer("seed", 0, "seed of the record order", **define)


def execute(values: flags.FlagValues) -> int:
    """Converts what the parsed flags name; returns the exit status."""
    for name in ("input_dir", "output_dir"):
        if not getattr(values, name):
            raise common.UsageError(f"--{name} is required")
    try:
        metadata = convert(values.input_dir, values.output_dir, train_shards=values.train_shards,
                           validation_shards=values.validation_shards, zero_based=values.zero_based,
                           seed=values.seed)
    except (ValueError, FileNotFoundError, tf.errors.OpError) as e:
        return exit_codes.fail(exit_codes.one_line(e), exit_codes.USAGE)
    sizes = ", ".join(f"{split} {count}" for split, count in metadata["splits"].items())
    print(f"wrote {len(metadata['files'])} files ({sizes} records, {len(metadata['class_names'])} classes) "
          f"to {values.output_dir}; train with --dataset={'tfrecord_0based' if values.zero_based else 'tfrecord'} "
          f"--data_dir={values.output_dir}")
    return exit_codes.OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m efficientnet_tpu.data.make_tfrecords`` with ``argv`` (default: sys.argv[1:])."""
    return common.run_cli(__doc__, define_flags, execute, argv)


if __name__ == "__main__":
    sys.exit(main())
