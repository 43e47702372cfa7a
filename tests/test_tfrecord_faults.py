"""Bad TFRecord input: records skipped and counted, damaged shards named, label conventions said (issue 15, item 8).

Documented in docs/data.md: a record that holds no image is skipped (counted in
a warning when the split is counted); a truncated or corrupt shard is refused
with one line naming the file and TensorFlow's byte offset; a label outside
[0, num_classes) names the other dataset convention.
"""

from __future__ import annotations

import io
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from efficientnet_tpu import train
from efficientnet_tpu.data import build_dataset, dataset_info
from efficientnet_tpu.data import make_tfrecords, tfrecord


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((12, 12, 3), seed * 20 % 256, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def write(path, items) -> list[int]:
    """Writes (bytes, label) records; returns the byte offset where each record starts."""
    offsets, position = [], 0
    with tf.io.TFRecordWriter(str(path)) as writer:
        for data, label in items:
            serialized = make_tfrecords.make_example(data, label, f"class{label}", "x.png").SerializeToString()
            writer.write(serialized)
            offsets.append(position)
            position += len(serialized) + 16  # length, its CRC, the data, its CRC
    return offsets


def test_records_that_hold_no_image_are_skipped_and_counted(tmp_path, caplog):
    items = [(png(i), 1 + i % 2) for i in range(6)]
    items[2] = (b"this is not an image", 1)
    write(tmp_path / "train-00000-of-00001", items)
    write(tmp_path / "validation-00000-of-00001", items)
    with caplog.at_level(logging.WARNING, logger="efficientnet_tpu.data.tfrecord"):
        info = dataset_info("tfrecord", str(tmp_path))
    assert info.num_train_examples == 5 and info.num_eval_examples == 5
    assert "skipped 1 of 6 validation records that hold no image" in caplog.text
    assert "validation-00000-of-00001 (1)" in caplog.text
    batches = build_dataset("tfrecord", "train", global_batch_size=5, image_size=8, training=False,
                            data_dir=str(tmp_path))
    images, labels, mask = next(iter(batches))
    assert int(tf.reduce_sum(mask)) == 5  # every good record once, the bad one dropped, no crash


def test_a_truncated_shard_is_refused_naming_the_file_and_offset(tmp_path, capsys):
    items = [(png(i), 1 + i % 2) for i in range(8)]
    write(tmp_path / "train-00000-of-00002", items)
    offsets = write(tmp_path / "train-00001-of-00002", items)
    write(tmp_path / "validation-00000-of-00001", items[:4])
    damaged = tmp_path / "train-00001-of-00002"
    damaged.write_bytes(damaged.read_bytes()[:offsets[5] + 30])  # cut inside the sixth record
    status = train.main_cli(["train", "--dataset=tfrecord", f"--data_dir={tmp_path}", "--variant=baseline_convnet",
                             "--resolution=16", "--train_batch_size=4", "--eval_batch_size=4", "--steps_per_loop=2",
                             "--train_steps=2", "--precision=float32", "--preemption_handler=none",
                             "--mode=train", f"--model_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert f"{damaged}: " in err[0] and f"truncated record at {offsets[5]}" in err[0]
    assert "training refuses damaged shards" in err[0] and "train-00000" not in err[0]


def test_a_corrupt_record_is_named_with_its_shard(tmp_path):
    offsets = write(tmp_path / "train-00000-of-00001", [(png(i), 1) for i in range(4)])
    data = bytearray((tmp_path / "train-00000-of-00001").read_bytes())
    data[offsets[2] + 20] ^= 0xFF  # a flipped byte inside the third record's data
    (tmp_path / "train-00000-of-00001").write_bytes(bytes(data))
    bad = tfrecord.damaged_shards(str(tmp_path))
    assert [path for path, _ in bad] == [str(tmp_path / "train-00000-of-00001")]
    # TensorFlow's reader names the offset of the record's data (after its 12-byte header).
    assert bad[0][1] == f"corrupted record at {offsets[2] + 12}"


@pytest.mark.parametrize("dataset, labels, hint", [
    ("tfrecord", [0, 1, 2], "use --dataset=tfrecord_0based"),
    ("tfrecord_0based", [1, 2, 3], "if the files count classes from 1 use --dataset=tfrecord"),
])
def test_a_label_outside_the_classes_says_which_convention_to_use(tmp_path, dataset, labels, hint):
    import json

    write(tmp_path / "train-00000-of-00001", [(png(i), label) for i, label in enumerate(labels)])
    (tmp_path / "dataset_info.json").write_text(json.dumps({"num_classes": 3}))
    batches = build_dataset(dataset, "train", global_batch_size=3, image_size=8, training=False,
                            data_dir=str(tmp_path))
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        next(iter(batches))
    explained = tfrecord.explain_error(raised.value, str(tmp_path))
    text = str(explained)
    assert text.startswith(tfrecord.LABEL_ERROR) and hint in text and "\n" not in text
    assert "Condition" not in text and "[[" not in text
