"""The reference TFRecord layout (dataset tfrecord / tfrecord_0based) on shards the tests write:
labels shifted from 1, file sharding across hosts, exact masked eval, the folder converter, a training run."""

from __future__ import annotations

import io
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from efficientnet_tpu.data import (DataOptions, build_dataset, dataset_info, num_eval_steps,  # noqa: E402
                                   preprocess_for_eval)
from efficientnet_tpu.data import make_tfrecords  # noqa: E402
from efficientnet_tpu.data.tfrecord import TFRecordSource  # noqa: E402

# Records per file: uneven on purpose, so file shards differ in size.
TRAIN_FILES = (3, 2, 3, 2)
VALIDATION_FILES = (4, 1, 2)
NUM_CLASSES = 3


def encoded(identity: int, fmt: str) -> bytes:
    """A flat-colored image whose center pixel encodes `identity` (JPEG keeps flat colors closely)."""
    pixels = np.zeros((20 + identity % 5, 28, 3), np.uint8)
    pixels[...] = (identity * 9 % 256, 40 + identity * 3, 200 - identity * 4)
    buffer = io.BytesIO()
    options = {"quality": 100} if fmt == "JPEG" else {}
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def identity_of(image: np.ndarray) -> int:
    """Inverse of encoded(): the identity from the green channel of the center pixel."""
    green = image[image.shape[0] // 2, image.shape[1] // 2, 1]
    return int(round((float(green) - 40) / 3))


def write_shards(directory, split: str, counts, label_base: int, start: int) -> dict[int, int]:
    """Writes `split-0000i-of-0000n` files; returns {identity: 0-based label}."""
    labels = {}
    identity = start
    for index, count in enumerate(counts):
        path = os.path.join(directory, f"{split}-{index:05d}-of-{len(counts):05d}")
        with tf.io.TFRecordWriter(path) as writer:
            for _ in range(count):
                label = identity % NUM_CLASSES
                example = make_tfrecords.make_example(encoded(identity, "JPEG" if identity % 2 else "PNG"),
                                                      label + label_base, f"class{label}", f"{identity}.img")
                writer.write(example.SerializeToString())
                labels[identity] = label
                identity += 1
    return labels


@pytest.fixture(scope="module")
def reference_shards(tmp_path_factory):
    """Shards as the reference writes them: labels from 1, no dataset_info.json."""
    directory = str(tmp_path_factory.mktemp("tfrecords"))
    train = write_shards(directory, "train", TRAIN_FILES, 1, start=1)
    validation = write_shards(directory, "validation", VALIDATION_FILES, 1, start=20)
    return directory, train, validation


def contexts(num_pipelines: int):
    return [tf.distribute.InputContext(num_pipelines, index, num_pipelines) for index in range(num_pipelines)]


def test_info_counts_and_labels_from_one(reference_shards):
    directory, train, validation = reference_shards
    info = dataset_info("tfrecord", directory)
    assert (info.num_train_examples, info.num_eval_examples) == (sum(TRAIN_FILES), sum(VALIDATION_FILES))
    assert info.num_classes == 1000 and info.eval_split == "validation"  # the reference's ImageNet
    dataset = build_dataset("tfrecord", "validation", global_batch_size=16, image_size=16, training=False,
                            data_dir=directory)
    images, labels, mask = next(iter(dataset))
    real = mask.numpy() > 0
    assert {identity_of(image): int(label) for image, label in zip(images.numpy()[real], labels.numpy()[real])} \
        == validation


@pytest.mark.parametrize("num_hosts", [1, 2, 3])
def test_eval_counts_every_example_once_with_file_shards(reference_shards, num_hosts):
    directory, _, validation = reference_shards
    seen, steps = [], set()
    for context in contexts(num_hosts):
        dataset = build_dataset("tfrecord", "validation", global_batch_size=2 * num_hosts, image_size=16,
                                training=False, data_dir=directory, input_context=context)
        batches = list(dataset.as_numpy_iterator())
        steps.add(len(batches))
        for images, _, mask in batches:
            seen += [identity_of(image) for image, m in zip(images, mask) if m > 0]
    # Every host runs the same number of steps (the largest file shard's), every example counts once.
    assert steps == {num_eval_steps("tfrecord", "validation", global_batch_size=2 * num_hosts,
                                    data_dir=directory, num_input_pipelines=num_hosts)}
    assert sorted(seen) == sorted(validation)


def test_hosts_read_disjoint_files_in_training(reference_shards):
    directory, train, _ = reference_shards
    per_host = []
    for context in contexts(2):
        dataset = build_dataset("tfrecord", "train", global_batch_size=2, image_size=16, training=True,
                                options=DataOptions(augment="none", seed=1), data_dir=directory,
                                input_context=context)
        # Host 0 reads files 0 and 2 (6 records), host 1 files 1 and 3 (4): one epoch each.
        epoch = 6 if context.input_pipeline_id == 0 else 4
        images = np.concatenate([batch[0] for batch in dataset.take(epoch).as_numpy_iterator()])
        per_host.append({identity_of(image) for image in images[:epoch]})
    assert per_host[0] == {1, 2, 3, 6, 7, 8} and per_host[1] == {4, 5, 9, 10}
    assert per_host[0] | per_host[1] == set(train)


def test_same_preprocessing_as_the_other_encoded_sources(reference_shards):
    """Eval images are preprocess_for_eval of the stored bytes; training crops and flips them."""
    directory, _, _ = reference_shards
    source = TFRecordSource(directory)
    raw = next(iter(source.read("validation", num_shards=1, shard_index=0, shuffle_files=False, seed=None)))
    images, _, _ = next(iter(build_dataset("tfrecord", "validation", global_batch_size=4, image_size=16,
                                           training=False, data_dir=directory)))
    np.testing.assert_array_equal(images[0], preprocess_for_eval(raw[0], 16))
    common = dict(global_batch_size=4, image_size=16, training=True, data_dir=directory)
    seeded = dict(seed=2, deterministic=True)
    plain, _ = next(iter(build_dataset("tfrecord", "train", options=DataOptions(augment="none", **seeded),
                                       **common)))
    augmented, _ = next(iter(build_dataset("tfrecord", "train",
                                           options=DataOptions(augment="randaugment", **seeded), **common)))
    assert plain.shape == augmented.shape == (4, 16, 16, 3) and not np.allclose(plain, augmented)


def test_the_wrong_label_base_stops_with_a_clear_error(tmp_path):
    write_shards(str(tmp_path), "train", (3,), 0, start=0)  # labels from 0, including a 0
    dataset = build_dataset("tfrecord", "train", global_batch_size=3, image_size=8, training=True,
                            data_dir=str(tmp_path))
    with pytest.raises(tf.errors.InvalidArgumentError, match="tfrecord_0based"):
        next(iter(dataset))
    _, labels = next(iter(build_dataset("tfrecord_0based", "train", global_batch_size=3, image_size=8,
                                        training=True, data_dir=str(tmp_path))))
    assert sorted(labels.numpy().tolist()) == [0, 1, 2]


def test_missing_shards_are_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-00000-of-01024"):
        dataset_info("tfrecord", str(tmp_path))
    with pytest.raises(ValueError, match="needs data_dir"):
        dataset_info("tfrecord", None)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    identity = 0
    for split, per_class in (("train", 4), ("test", 2)):
        for class_name in ("cat", "dog"):
            os.makedirs(root / split / class_name)
            for index in range(per_class):
                identity += 1
                fmt = "JPEG" if index % 2 else "PNG"
                (root / split / class_name / f"{index}.{fmt.lower()}").write_bytes(encoded(identity, fmt))
    (root / "train" / "cat" / "broken.jpg").write_bytes(b"not an image")
    return str(root)


@pytest.mark.parametrize("zero_based", [False, True])
def test_converter_writes_shards_the_source_reads(image_folder, tmp_path, capsys, zero_based):
    output = str(tmp_path / "shards")
    argv = ["--input_dir", image_folder, "--output_dir", output, "--train_shards", "3",
            "--validation_shards", "2"] + (["--zero_based"] if zero_based else [])
    assert make_tfrecords.main(argv) == 0
    assert "--dataset=tfrecord" in capsys.readouterr().out
    assert sorted(os.listdir(output)) == ["dataset_info.json", "train-00000-of-00003", "train-00001-of-00003",
                                          "train-00002-of-00003", "validation-00000-of-00002",
                                          "validation-00001-of-00002"]
    metadata = json.loads(open(os.path.join(output, "dataset_info.json")).read())
    assert metadata["splits"] == {"train": 8, "validation": 4}  # the broken file skipped
    name = "tfrecord_0based" if zero_based else "tfrecord"
    info = dataset_info(name, output)
    assert info.class_names == ("cat", "dog") and info.num_classes == 2
    assert (info.num_train_examples, info.num_eval_examples) == (8, 4)
    _, labels, mask = next(iter(build_dataset(name, "validation", global_batch_size=4, image_size=8,
                                              training=False, data_dir=output)))
    assert sorted(labels.numpy().tolist()) == [0, 0, 1, 1] and mask.numpy().sum() == 4
    other = "tfrecord" if zero_based else "tfrecord_0based"
    with pytest.raises(ValueError, match=f"--dataset={name}"):
        dataset_info(other, output)
    # Converting into a folder that already holds shards is refused, in one line.
    assert make_tfrecords.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "empty --output_dir" in err and err.count("\n") == 1


def test_a_training_run_reads_tfrecords(image_folder, tmp_path):
    """The trainer on converted shards: train_and_eval counts the 4 validation images exactly."""
    from efficientnet_tpu.training import config as config_lib
    from efficientnet_tpu.run import run

    output = str(tmp_path / "shards")
    make_tfrecords.convert(image_folder, output, train_shards=2, validation_shards=2)
    config = config_lib.merge(dict(
        model_dir=str(tmp_path / "run"), variant="baseline_convnet", resolution=16, dataset="tfrecord",
        data_dir=output, train_batch_size=4, eval_batch_size=4, train_steps=2, steps_per_loop=2,
        precision="float32", optimizer="adam", learning_rate=1e-3, lr_reference_batch=None, warmup_epochs=0.0,
        use_ema=False, preemption_handler="none", mode="train_and_eval"))
    result = run(config, progress=False)
    assert result["step"] == 2 and result["eval"]["num_examples"] == 4
    assert result["config"].class_names == ("cat", "dog")
