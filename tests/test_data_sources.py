"""Every dataset: TFDS ones under mock_data (and a tiny prepared TFDS dataset
for the real sharding path), the 3-class CIFAR-10, the digits, a folder, and
every error message. Nothing here touches the network."""

import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from PIL import Image  # noqa: E402

from efficientnet_tpu.data import DataOptions, build_dataset, dataset_info  # noqa: E402
from efficientnet_tpu.data.digits import load_digits_splits  # noqa: E402
from efficientnet_tpu.data.tfds_sources import TfdsSource, missing_imagenet_message  # noqa: E402


MOCK_EXAMPLES = 10


def mock_tfds(num_examples=MOCK_EXAMPLES):
    return tfds.testing.mock_data(num_examples=num_examples,
                                  policy=tfds.testing.MockPolicy.USE_CODE)


def served_count(name, split):
    """What mock_data actually serves (its split metadata is not the real one)."""
    return sum(1 for _ in tfds.builder(name).as_dataset(split=split))


def eval_batches(name, split, **kwargs):
    kwargs.setdefault("image_size", 32)
    return list(build_dataset(name, split, training=False, **kwargs).as_numpy_iterator())


# -- TFDS datasets under mock_data -----------------------------------------------


@pytest.mark.parametrize("name, num_classes, eval_split", [
    ("cifar10", 10, "test"), ("cifar100", 100, "test"), ("imagenet2012", 1000, "validation")])
def test_tfds_dataset_shapes_labels_and_exact_eval(name, num_classes, eval_split):
    with mock_tfds():
        info = dataset_info(name)
        assert (info.num_classes, info.eval_split) == (num_classes, eval_split)
        train = build_dataset(name, "train", global_batch_size=4, image_size=40, training=True,
                              options=DataOptions(dtype=tf.bfloat16, seed=0, deterministic=True))
        images_spec, labels_spec = train.element_spec
        assert images_spec.shape == (4, 40, 40, 3) and images_spec.dtype == tf.bfloat16
        assert labels_spec.shape == (4,) and labels_spec.dtype == tf.int32
        for images, labels in train.take(3).as_numpy_iterator():  # more than one epoch of 10
            assert np.all((labels >= 0) & (labels < num_classes))
            assert 0.0 <= float(images.min()) and float(images.max()) <= 255.0
        # Crop and flip (CIFAR: pad-and-crop at 32, ImageNet: fused Inception crop) move
        # pixels. Fresh datasets: a second pass over one reshuffles.
        (images, labels), (plain_images, plain_labels) = (next(iter(build_dataset(
            name, "train", global_batch_size=4, image_size=40, training=True,
            options=DataOptions(seed=0, deterministic=True, augment=augment)))) for augment in ("default", "none"))
        np.testing.assert_array_equal(labels, plain_labels)
        assert not np.allclose(images, plain_images)

        served = served_count(name, eval_split)
        batches = eval_batches(name, eval_split, global_batch_size=4)
        assert served == MOCK_EXAMPLES and len(batches) == 3  # 10 examples + 2 padding
        assert all(b[0].shape == (4, 32, 32, 3) and b[2].dtype == np.float32 for b in batches)
        assert sum(float(b[2].sum()) for b in batches) == served
        assert np.all(batches[-1][2] == [1, 1, 0, 0])


def test_cifar10_3class_keeps_only_cat_deer_dog_relabelled():
    with mock_tfds(num_examples=60):
        cifar = eval_batches("cifar10", "test", global_batch_size=8)
        three = eval_batches("cifar10_3class", "test", global_batch_size=8)
        assert dataset_info("cifar10_3class").class_names == ("cat", "deer", "dog")
        train = build_dataset("cifar10_3class", "train", global_batch_size=8, image_size=32,
                              training=True, options=DataOptions(seed=0))
        train_labels = np.concatenate([labels for _, labels in train.take(4).as_numpy_iterator()])

    def real(batches):
        images = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
        mask = np.concatenate([b[2] for b in batches]).astype(bool)
        return images[mask], labels[mask]

    cifar_images, cifar_labels = real(cifar)
    three_images, three_labels = real(three)
    kept = np.isin(cifar_labels, [3, 4, 5])  # CIFAR-10: 3 cat, 4 deer, 5 dog
    assert 0 < kept.sum() < len(cifar_labels)
    np.testing.assert_array_equal(three_images, cifar_images[kept])
    np.testing.assert_array_equal(three_labels, cifar_labels[kept] - 3)
    assert set(train_labels) <= {0, 1, 2}


def test_imagenet_missing_data_says_how_to_prepare_it(tmp_path):
    # No mock: an empty data_dir. The source never asks TFDS to download.
    with pytest.raises(FileNotFoundError) as error:
        build_dataset("imagenet2012", "train", global_batch_size=2, image_size=32, training=True,
                      data_dir=str(tmp_path))
    message = str(error.value)
    for expected in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar",
                     f"{tmp_path}/downloads/manual/",
                     f"tfds build imagenet2012 --data_dir={tmp_path}", "gsutil -m cp -r",
                     "--data_dir=gs://"):
        assert expected in message
    # Before the data exists, the facts still do.
    info = dataset_info("imagenet2012", data_dir=str(tmp_path))
    assert (info.num_classes, info.num_train_examples, info.num_eval_examples) == (
        1000, 1_281_167, 50_000)


def test_imagenet_message_for_a_bucket():
    message = missing_imagenet_message("gs://my-bucket/tfds")
    assert "LOCAL_DIR/downloads/manual/" in message
    assert "gsutil -m cp -r LOCAL_DIR/imagenet2012 gs://my-bucket/tfds/" in message
    assert "--data_dir=gs://my-bucket/tfds" in message


def test_cifar_missing_data_says_how_to_prepare_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"tfds build cifar10 --data_dir={tmp_path}"):
        build_dataset("cifar10_3class", "test", global_batch_size=2, image_size=32,
                      training=False, data_dir=str(tmp_path))


# -- the real TFDS read path: a tiny dataset prepared offline ---------------------


class EfficientnetTpuTinyImages(tfds.core.GeneratorBasedBuilder):
    """11 JPEG validation images whose height encodes their index."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
            "label": tfds.features.ClassLabel(num_classes=3)}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(7), "validation": self._generate_examples(11)}

    def _generate_examples(self, count):
        for index in range(count):
            yield index, {"image": np.full((10 + index, 12, 3), 9 * index, np.uint8),
                          "label": index % 3}


def test_prepared_tfds_shards_are_disjoint_covering_and_padded_alike(tmp_path):
    EfficientnetTpuTinyImages(data_dir=str(tmp_path)).download_and_prepare()
    source = TfdsSource("efficientnet_tpu_tiny_images", str(tmp_path), train_split="train",
                        eval_split="validation", encoded=True, native_resolution=None,
                        cacheable=False, shuffle_buffer_size=8)
    assert source.num_examples("validation") == 11
    assert source.num_examples(source.check_split("validation[:50%]")) == 6  # TFDS rounds up

    def heights(num_shards, index):
        dataset = source.read("validation", num_shards=num_shards, shard_index=index,
                              shuffle_files=False, seed=None)
        return [int(tf.image.extract_jpeg_shape(image)[0]) for image, _ in dataset]

    for num_shards in (2, 3):
        shards = [heights(num_shards, index) for index in range(num_shards)]
        every = sorted(h for shard in shards for h in shard)
        assert every == list(range(10, 21))  # each example exactly once
        assert max(map(len, shards)) - min(map(len, shards)) <= 1

    from efficientnet_tpu.data import pipeline
    from efficientnet_tpu.data.sources import Stream

    # Three hosts, one replica each, batch 2: shards of 4, 4, 3 all padded to 2 steps.
    per_shard = [list(pipeline._eval_dataset(
        source, "validation", Stream(training=False, num_shards=3, shard_index=index, batch_size=2,
                                     shard_batch=2, image_size=8, dtype=tf.float32, seed=None),
        DataOptions(), crop_fraction=1.0).as_numpy_iterator())
        for index in range(3)]
    assert [len(batches) for batches in per_shard] == [2, 2, 2]
    assert sum(float(b[2].sum()) for batches in per_shard for b in batches) == 11


# -- digits ------------------------------------------------------------------------


def test_digits_split_is_fixed_stratified_and_disjoint():
    info = dataset_info("digits")
    assert (info.num_train_examples, info.num_eval_examples, info.native_resolution) == (
        1497, 300, 8)
    splits = load_digits_splits()
    test_images, test_labels = splits["test"]
    assert np.array_equal(np.bincount(test_labels), [30] * 10)
    assert test_images.dtype == np.uint8 and test_images.shape[1:] == (8, 8, 3)
    assert test_images.max() == 255
    train_rows = {image.tobytes() for image in splits["train"][0]}
    assert sum(image.tobytes() in train_rows for image in test_images) < 5  # duplicates only
    batches = eval_batches("digits", "test", global_batch_size=64, image_size=16)
    assert len(batches) == 5 and sum(float(b[2].sum()) for b in batches) == 300


def test_digits_without_scikit_learn_says_what_to_install(monkeypatch):
    load_digits_splits.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    try:
        with pytest.raises(ImportError, match=r"pip install 'efficientnet_tpu\[digits\]'"):
            dataset_info("digits")
    finally:
        load_digits_splits.cache_clear()


# -- folder ------------------------------------------------------------------------


def write_folder(root, layout, size=(20, 30)):
    """layout: {split: {class: count}}; every image is a distinct flat color."""
    color = 0
    for split, classes in layout.items():
        for class_name, count in classes.items():
            os.makedirs(root / split / class_name, exist_ok=True)
            for index in range(count):
                color += 1
                pixels = np.full(size + (3,), (color * 7 % 256, color // 36 * 40, 90), np.uint8)
                fmt = "PNG" if index % 2 else "JPEG"
                Image.fromarray(pixels).save(
                    root / split / class_name / f"{index}.{'png' if index % 2 else 'jpg'}", fmt)
    return root


def test_folder_skips_corrupt_files_with_one_warning(tmp_path, caplog):
    root = write_folder(tmp_path, {"train": {"dog": 3, "cat": 4},
                                   "validation": {"cat": 2, "dog": 3}})
    (root / "train" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    good = (root / "train" / "dog" / "0.jpg").read_bytes()
    (root / "train" / "dog" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "train" / "dog" / "empty.png").write_bytes(b"")
    (root / "train" / "dog" / "notes.txt").write_text("ignored: not an image extension")
    with caplog.at_level(logging.WARNING):
        info = dataset_info("folder", str(root))
    assert info.class_names == ("cat", "dog") and info.num_classes == 2
    assert (info.num_train_examples, info.num_eval_examples, info.eval_split) == (
        7, 5, "validation")
    warnings = [r.getMessage() for r in caplog.records if "could not be decoded" in r.getMessage()]
    assert len(warnings) == 1 and "skipped 3 of 10" in warnings[0]

    train = build_dataset("folder", "train", global_batch_size=4, image_size=24, training=True,
                          data_dir=str(root), options=DataOptions(seed=0))
    labels = np.concatenate([l for _, l in train.take(6).as_numpy_iterator()])  # > 3 epochs
    assert set(labels) == {0, 1}
    batches = eval_batches("folder", "validation", global_batch_size=4, data_dir=str(root))
    assert sum(float(b[2].sum()) for b in batches) == 5
    real_labels = np.concatenate([b[1][b[2] == 1] for b in batches])
    assert sorted(real_labels) == [0, 0, 1, 1, 1]


def test_folder_uses_test_when_there_is_no_validation(tmp_path):
    root = write_folder(tmp_path, {"train": {"a": 2, "b": 2}, "test": {"b": 1}})
    info = dataset_info("folder", str(root))
    assert info.eval_split == "test" and info.num_eval_examples == 1
    batches = eval_batches("folder", "test", global_batch_size=2, data_dir=str(root))
    assert [list(b[1]) for b in batches] == [[1, 0]] and list(batches[0][2]) == [1, 0]


@pytest.mark.parametrize("setup, error, message", [
    (None, ValueError, "needs data_dir"),
    ("missing", FileNotFoundError, "does not exist"),
    ("no_train", FileNotFoundError, "has no train/ folder"),
    ("no_classes", ValueError, "has no class folders"),
    ("no_images", ValueError, "has no .jpg, .jpeg or .png files"),
    ("all_corrupt", ValueError, "none of the 2 image files"),
    ("unknown_eval_class", ValueError, "class folders that train/ lacks: zebra"),
    ("no_eval_split", ValueError, "has no split 'validation'"),
])
def test_folder_errors_say_what_is_wrong(tmp_path, setup, error, message):
    data_dir = None if setup is None else str(tmp_path / "data")
    split = "train"
    if setup == "no_train":
        os.makedirs(tmp_path / "data" / "validation")
    elif setup == "no_classes":
        os.makedirs(tmp_path / "data" / "train")
    elif setup == "no_images":
        os.makedirs(tmp_path / "data" / "train" / "cat")
        (tmp_path / "data" / "train" / "cat" / "readme.txt").write_text("x")
    elif setup == "all_corrupt":
        os.makedirs(tmp_path / "data" / "train" / "cat")
        for name in ("a.jpg", "b.png"):
            (tmp_path / "data" / "train" / "cat" / name).write_bytes(b"garbage")
    elif setup == "unknown_eval_class":
        write_folder(tmp_path / "data", {"train": {"cat": 1}, "validation": {"zebra": 1}})
        split = "validation"
    elif setup == "no_eval_split":
        write_folder(tmp_path / "data", {"train": {"cat": 1}})
        split = "validation"
    with pytest.raises(error, match=message):
        build_dataset("folder", split, global_batch_size=2, image_size=16,
                      training=split == "train", data_dir=data_dir)


# -- argument errors ---------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "mnist"}, "unknown dataset 'mnist'; choose one of 'imagenet2012'"),
    ({"split": "validation"}, "has no split 'validation'; choose one of 'train', 'test'"),
    ({"global_batch_size": 0}, "global_batch_size must be a positive int"),
    ({"image_size": -3}, "image_size must be a positive int"),
    ({"input_context": tf.distribute.InputContext(1, 0, 3)}, "divisible by the 3 replicas"),
])
def test_bad_arguments_are_clear_value_errors(kwargs, message):
    """What only the pipeline knows; a bad option fails when DataOptions is made (test_data_options.py)."""
    arguments = dict(name="digits", split="train", global_batch_size=4, image_size=16,
                     training=True)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        build_dataset(arguments.pop("name"), arguments.pop("split"), **arguments)


# -- the folder dataset when files change under it ------------------------------------------------------------


def test_a_folder_image_deleted_mid_training_is_skipped(tmp_path):
    import tensorflow as tf

    from efficientnet_tpu.data import build_dataset

    for split, count in (("train", 6), ("validation", 3)):
        for label in ("a", "b"):
            os.makedirs(tmp_path / split / label)
            for index in range(count):
                pixels = np.full((12, 12, 3), 20 * index + (label == "b") * 100, np.uint8)
                (tmp_path / split / label / f"{index}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    train_set = build_dataset("folder", "train", global_batch_size=4, image_size=16, training=True,
                              data_dir=str(tmp_path), options=DataOptions(seed=0))
    eval_set = build_dataset("folder", "validation", global_batch_size=4, image_size=16, training=False,
                             data_dir=str(tmp_path))
    os.remove(tmp_path / "train" / "a" / "3.png")  # after the up-front check, before reading
    (tmp_path / "validation" / "b" / "1.png").write_bytes(b"no longer an image")
    labels = np.concatenate([labels for _, labels in train_set.take(8).as_numpy_iterator()])
    assert len(labels) == 32 and set(labels) == {0, 1}
    counted = sum(float(mask.sum()) for _, _, mask in eval_set.as_numpy_iterator())
    assert counted == 5
