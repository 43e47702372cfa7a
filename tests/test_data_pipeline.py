"""build_dataset as the trainer uses it: static shapes, shards per input
context, exact masked eval, augmentation only in training, seeded determinism,
and a real 2-replica MirroredStrategy run."""

import dataclasses
import os
import subprocess
import sys
import textwrap

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from efficientnet_tpu.data import (DataOptions, build_dataset, dataset_info,  # noqa: E402
                                   num_eval_steps, preprocess_for_eval)
from helpers import subprocess_env  # noqa: E402



@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """13 train and 7 validation images, each a distinct flat color (its identity)."""
    root = tmp_path_factory.mktemp("folder")
    identity = 0
    for split, counts in (("train", (6, 7)), ("validation", (3, 4))):
        for class_name, count in zip(("a", "b"), counts):
            os.makedirs(root / split / class_name)
            for index in range(count):
                identity += 1
                pixels = np.zeros((24 + identity, 40, 3), np.uint8)
                pixels[...] = (identity * 11 % 256, identity * 3, 255 - identity * 5)
                Image.fromarray(pixels).save(root / split / class_name / f"{index}.png")
    return str(root)


@pytest.fixture(scope="module")
def textured_folder(tmp_path_factory):
    """Random-noise JPEGs and PNGs, where every crop, flip or warp shows."""
    root = tmp_path_factory.mktemp("textured")
    rng = np.random.default_rng(0)
    for split, count in (("train", 5), ("validation", 2)):
        for class_name in ("a", "b"):
            os.makedirs(root / split / class_name)
            for index in range(count):
                pixels = rng.integers(0, 256, (30 + index, 36, 3), dtype=np.uint8)
                suffix = "png" if index % 2 else "jpg"
                Image.fromarray(pixels).save(root / split / class_name / f"{index}.{suffix}")
    return str(root)


def identities(images):
    """Hashable identity of each flat-colored image: its center pixel."""
    return [tuple(np.round(image[image.shape[0] // 2, image.shape[1] // 2]).astype(int))
            for image in images]


def contexts(num_pipelines, replicas_per_pipeline=1):
    return [tf.distribute.InputContext(num_pipelines, index,
                                       num_pipelines * replicas_per_pipeline)
            for index in range(num_pipelines)]


def test_element_specs_are_static_in_training_and_eval(folder):
    for name, data_dir in (("digits", None), ("folder", folder), ("synthetic", None)):
        train = build_dataset(name, "train", global_batch_size=8, image_size=24, training=True,
                              data_dir=data_dir, input_context=contexts(2)[1])
        assert train.element_spec[0].shape == (4, 24, 24, 3)
        assert train.element_spec[1].shape == (4,) and train.element_spec[1].dtype == tf.int32
        info = dataset_info(name, data_dir)
        evaluation = build_dataset(name, info.eval_split, global_batch_size=8, image_size=24,
                                   training=False, data_dir=data_dir, options=DataOptions(dtype="bfloat16"))
        images, labels, mask = evaluation.element_spec
        assert images.shape == (8, 24, 24, 3) and images.dtype == tf.bfloat16
        assert labels.shape == (8,) and mask.shape == (8,) and mask.dtype == tf.float32


@pytest.mark.parametrize("num_pipelines, replicas_per_pipeline, global_batch", [
    (1, 1, 64), (2, 1, 64), (2, 2, 32), (3, 1, 48)])
def test_eval_masks_count_every_digit_once_over_all_shards(num_pipelines, replicas_per_pipeline,
                                                           global_batch):
    per_shard = [list(build_dataset("digits", "test", global_batch_size=global_batch,
                                    image_size=8, training=False,
                                    input_context=context).as_numpy_iterator())
                 for context in contexts(num_pipelines, replicas_per_pipeline)]
    # Every shard yields the same number of batches, a whole number of steps for its replicas.
    lengths = {len(batches) for batches in per_shard}
    assert len(lengths) == 1 and lengths.pop() % replicas_per_pipeline == 0
    assert sum(float(b[2].sum()) for batches in per_shard for b in batches) == 300
    steps = num_eval_steps("digits", "test", global_batch_size=global_batch,
                           num_input_pipelines=num_pipelines)
    assert steps * replicas_per_pipeline == len(per_shard[0])
    # The real examples of all shards are exactly the test split.
    real = np.concatenate([b[0][b[2] == 1] for batches in per_shard for b in batches])
    expected = np.concatenate([b[0][b[2] == 1] for b in build_dataset(
        "digits", "test", global_batch_size=300, image_size=8,
        training=False).as_numpy_iterator()])
    as_keys = lambda images: sorted(map(bytes, images.astype(np.uint8)))  # noqa: E731
    assert as_keys(real) == as_keys(expected)


def test_folder_shards_are_disjoint_and_cover_the_split(folder):
    train_shards, eval_shards = [], []
    for context in contexts(2):
        train = build_dataset("folder", "train", global_batch_size=2, image_size=16,
                              training=True, options=DataOptions(augment="none", seed=3), data_dir=folder,
                              input_context=context)
        # A shard holds 6 or 7 files: 7 single-image batches are one epoch (or a repeat).
        train_shards.append(set(identities(np.concatenate(
            [images for images, _ in train.take(7).as_numpy_iterator()]))))
        evaluation = build_dataset("folder", "validation", global_batch_size=2, image_size=16,
                                   training=False, data_dir=folder, input_context=context)
        eval_shards.append(identities(np.concatenate(
            [b[0][b[2] == 1] for b in evaluation.as_numpy_iterator()])))
    assert not train_shards[0] & train_shards[1]
    assert len(train_shards[0] | train_shards[1]) == 13
    assert not set(eval_shards[0]) & set(eval_shards[1])
    assert len(eval_shards[0]) + len(eval_shards[1]) == 7


@pytest.mark.parametrize("name", ["digits", "folder"])
@pytest.mark.parametrize("augment", ["default", "randaugment", "autoaugment", "seed003"])
def test_augmentation_changes_training_images_only(textured_folder, name, augment):
    data_dir = textured_folder if name == "folder" else None
    common = dict(global_batch_size=16, image_size=16, data_dir=data_dir)
    seeded = dict(seed=5, deterministic=True)
    plain_images, plain_labels = next(iter(build_dataset(
        name, "train", training=True, options=DataOptions(augment="none", **seeded), **common)))
    images, labels = next(iter(build_dataset(name, "train", training=True,
                                             options=DataOptions(augment=augment, **seeded), **common)))
    # Same seed: same examples in the same order, only the pixels differ.
    np.testing.assert_array_equal(labels, plain_labels)
    assert not np.allclose(images, plain_images)

    info = dataset_info(name, data_dir)
    evaluation = build_dataset(name, info.eval_split, training=False,
                               options=DataOptions(augment=augment, **seeded), **common)
    plain_eval = build_dataset(name, info.eval_split, training=False,
                               options=DataOptions(augment="none", **dict(seeded, seed=9)), **common)
    for (a, _, _), (b, _, _) in zip(evaluation, plain_eval):
        np.testing.assert_array_equal(a, b)


def test_eval_images_are_exactly_preprocess_for_eval(folder):
    evaluation = build_dataset("folder", "validation", global_batch_size=8, image_size=20,
                               training=False, data_dir=folder, options=DataOptions(eval_crop_fraction=0.75))
    images, labels, mask = next(iter(evaluation))
    first = os.path.join(folder, "validation", "a", "0.png")
    expected = preprocess_for_eval(tf.io.read_file(first), 20, 0.75)
    np.testing.assert_array_equal(images[0], expected)
    assert int(mask.numpy().sum()) == 7


def test_seeded_deterministic_training_repeats_itself(folder):
    def first_batches(seed):
        dataset = build_dataset("folder", "train", global_batch_size=4, image_size=16,
                                training=True, data_dir=folder,
                                options=DataOptions(seed=seed, deterministic=True))
        return [images for images, _ in dataset.take(3).as_numpy_iterator()]

    once, again, other = first_batches(1), first_batches(1), first_batches(2)
    for a, b in zip(once, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(once, other))


def test_synthetic_data_needs_nothing_and_masks_exactly():
    train = build_dataset("synthetic", "train", global_batch_size=4, image_size=8,
                          training=True, options=DataOptions(dtype=tf.bfloat16))
    images, labels = next(iter(train))
    assert images.dtype == tf.bfloat16 and images.shape == (4, 8, 8, 3)
    assert 0 <= int(tf.reduce_min(labels)) and int(tf.reduce_max(labels)) < 1000
    total = sum(float(b[2].sum()) for context in contexts(3) for b in build_dataset(
        "synthetic", "validation", global_batch_size=96, image_size=4, training=False,
        input_context=context).as_numpy_iterator())
    assert total == dataset_info("synthetic").num_eval_examples == 1000


def test_two_replica_mirrored_strategy_reads_per_replica_batches():
    """distribute_datasets_from_function on two logical CPUs: per-replica
    batches in training, and an eval whose masks sum to the split (no hang)."""
    script = textwrap.dedent("""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from efficientnet_tpu.data import build_dataset, num_eval_steps
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

        def make(training):
            return strategy.distribute_datasets_from_function(
                lambda context: build_dataset("digits", "train" if training else "test",
                                              global_batch_size=64, image_size=8,
                                              training=training, input_context=context))

        images, labels = next(iter(make(True)))
        shapes = [tuple(t.shape) for t in strategy.experimental_local_results(images)]
        assert shapes == [(32, 8, 8, 3)] * 2, shapes

        @tf.function
        def count(batch):
            per_replica = strategy.run(lambda images, labels, mask: tf.reduce_sum(mask), args=batch)
            return strategy.reduce("SUM", per_replica, axis=None)

        steps, total = 0, 0.0
        for batch in make(False):
            steps, total = steps + 1, total + float(count(batch))
        assert total == 300.0, total
        assert steps == num_eval_steps("digits", "test", global_batch_size=64), steps
        print("OK", steps, total)
    """)
    environment = subprocess_env(TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK 5 300.0" in result.stdout


def test_crop_area_range_and_flip_are_settings(textured_folder):
    """A full-area crop without flip is the eval transform; the flip mirrors some images."""
    common = dict(global_batch_size=10, image_size=16, data_dir=textured_folder, training=True)
    seeded = DataOptions(seed=3, deterministic=True)
    plain, plain_labels = next(iter(build_dataset(
        "folder", "train", options=dataclasses.replace(seeded, augment="none"), **common)))
    whole_area = dataclasses.replace(seeded, crop_area_min=1.0, crop_area_max=1.0)
    whole, labels = next(iter(build_dataset(
        "folder", "train", options=dataclasses.replace(whole_area, random_flip=False), **common)))
    np.testing.assert_array_equal(labels, plain_labels)
    np.testing.assert_allclose(whole, plain, atol=1e-3)
    flipped, _ = next(iter(build_dataset("folder", "train", options=whole_area, **common)))
    mirrored = [not np.allclose(a, b, atol=1e-3) for a, b in zip(flipped, plain)]
    for image, reference, is_mirrored in zip(flipped.numpy(), plain.numpy(), mirrored):
        np.testing.assert_allclose(image, reference[:, ::-1] if is_mirrored else reference,
                                   atol=1e-3)
    assert 0 < sum(mirrored) < len(mirrored)
    cropped, _ = next(iter(build_dataset(
        "folder", "train", options=dataclasses.replace(seeded, random_flip=False), **common)))
    assert not np.allclose(cropped, plain)
