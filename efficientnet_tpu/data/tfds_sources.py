"""ImageNet and CIFAR through TensorFlow Datasets, and seed 003's 3-class CIFAR-10.

TFDS is never asked to download: on a TPU pod every host would race to
prepare the same directory, and ImageNet cannot be downloaded at all. Missing
data is a FileNotFoundError that says how to prepare it.
"""

from __future__ import annotations

import functools

import tensorflow as tf
import tensorflow_datasets as tfds

from efficientnet_tpu.data.info import DatasetInfo
from efficientnet_tpu.data.native import native_resolution
from efficientnet_tpu.data.sources import Source, count_examples, shard

# Published split sizes, used by dataset_info() before the data is prepared.
PUBLISHED_SPLIT_SIZES: dict[str, dict[str, int]] = {
    "imagenet2012": {"train": 1_281_167, "validation": 50_000},
    "cifar10": {"train": 50_000, "test": 10_000},
    "cifar100": {"train": 50_000, "test": 10_000},
    "cifar10_3class": {"train": 15_000, "test": 3_000},
}

# Seed 003's 3-class set: CIFAR-10 labels 3 (cat), 4 (deer), 5 (dog) -> 0, 1, 2.
CIFAR10_3CLASS_NAMES = ("cat", "deer", "dog")
CIFAR10_3CLASS_LABELS = (3, 4, 5)


def _data_dir_root(data_dir: str | None) -> str:
    return data_dir or tfds.core.constants.get_default_data_dir()


def missing_imagenet_message(data_dir: str | None) -> str:
    """How to prepare ImageNet, for a local data_dir and for a gs:// bucket."""
    root = _data_dir_root(data_dir).rstrip("/")
    if root.startswith("gs://"):
        return (
            f"imagenet2012 is not prepared in {root}. TFDS cannot download ImageNet and is best "
            "prepared on a local disk: put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar "
            "(from https://image-net.org) in LOCAL_DIR/downloads/manual/, run "
            "`tfds build imagenet2012 --data_dir=LOCAL_DIR` on that machine or a VM (python: "
            "tfds.builder('imagenet2012', data_dir='LOCAL_DIR').download_and_prepare()), copy it "
            f"with `gsutil -m cp -r LOCAL_DIR/imagenet2012 {root}/`, then pass --data_dir={root}.")
    return (
        f"imagenet2012 is not prepared in {root}. TFDS cannot download ImageNet: put "
        "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar (from https://image-net.org) in "
        f"{root}/downloads/manual/, then run `tfds build imagenet2012 --data_dir={root}` (python: "
        f"tfds.builder('imagenet2012', data_dir='{root}').download_and_prepare()). For a gs:// "
        "bucket, prepare it locally or on a VM the same way, copy it with "
        f"`gsutil -m cp -r {root}/imagenet2012 gs://BUCKET/tensorflow_datasets/`, then pass "
        "--data_dir=gs://BUCKET/tensorflow_datasets.")


def missing_download_message(tfds_name: str, data_dir: str | None) -> str:
    """How to prepare a dataset TFDS can download itself (CIFAR)."""
    root = _data_dir_root(data_dir).rstrip("/")
    if root.startswith("gs://"):
        return (
            f"{tfds_name} is not prepared in {root}: run `tfds build {tfds_name} "
            f"--data_dir=LOCAL_DIR` on a machine with internet access, copy it with "
            f"`gsutil -m cp -r LOCAL_DIR/{tfds_name} {root}/`, then pass --data_dir={root}.")
    return (
        f"{tfds_name} is not prepared in {root}: run `tfds build {tfds_name} --data_dir={root}` "
        f"once on a machine with internet access (python: tfds.builder('{tfds_name}', "
        f"data_dir='{root}').download_and_prepare()). For a gs:// bucket, build it locally and "
        f"copy it with `gsutil -m cp -r {root}/{tfds_name} gs://BUCKET/tensorflow_datasets/`.")


class TfdsSource(Source):
    """A TFDS image-classification dataset with `image` and `label` features."""

    def __init__(self, name: str, data_dir: str | None, *, train_split: str, eval_split: str,
                 encoded: bool, native_resolution: int | None, cacheable: bool,
                 shuffle_buffer_size: int, tfds_name: str | None = None) -> None:
        self.name = name
        self.tfds_name = tfds_name or name
        self.data_dir = data_dir
        self.encoded = encoded
        self.cacheable = cacheable
        self.shuffle_buffer_size = shuffle_buffer_size
        self._train_split = train_split
        self._eval_split = eval_split
        self._native_resolution = native_resolution

    @functools.cached_property
    def builder(self) -> tfds.core.DatasetBuilder:
        return tfds.builder(self.tfds_name, data_dir=self.data_dir)

    def missing_data_message(self) -> str:
        if self.tfds_name == "imagenet2012":
            return missing_imagenet_message(self.data_dir)
        return missing_download_message(self.tfds_name, self.data_dir)

    # -- facts ---------------------------------------------------------------

    def _class_names(self) -> tuple[str, ...]:
        return tuple(self.builder.info.features["label"].names)

    def _metadata_size(self, split: str) -> int | None:
        """The split size from the prepared data's metadata, or None without it."""
        splits = self.builder.info.splits
        if not splits or split.split("[", 1)[0] not in splits:
            return None
        return int(splits[split].num_examples)

    def _split_size_for_info(self, split: str) -> int:
        size = self._metadata_size(split)
        return size if size is not None else PUBLISHED_SPLIT_SIZES[self.name][split]

    def info(self) -> DatasetInfo:
        names = self._class_names()
        return DatasetInfo(
            name=self.name, num_classes=len(names), train_split=self._train_split,
            eval_split=self._eval_split,
            num_train_examples=self._split_size_for_info(self._train_split),
            num_eval_examples=self._split_size_for_info(self._eval_split),
            class_names=names, native_resolution=self._native_resolution,
            splits=(self._train_split, self._eval_split))

    def check_split(self, split: str) -> str:
        """A split name, optionally sliced the TFDS way ('train[:10%]')."""
        splits = (self._train_split, self._eval_split)
        if not isinstance(split, str) or split.split("[", 1)[0] not in splits:
            raise ValueError(
                f"dataset {self.name!r} has no split {split!r}; choose one of "
                f"{', '.join(repr(s) for s in splits)} (TFDS slices such as "
                f"'{self._train_split}[:10%]' work too)")
        return split

    # -- reading -------------------------------------------------------------

    def _as_dataset(self, split, shuffle_files: bool, seed: int | None,
                    decode_images: bool | None = None) -> tf.data.Dataset:
        """The raw TFDS records; images stay encoded for encoded sources (and
        when only labels are needed) so decoding can be fused with the crop."""
        if decode_images is None:
            decode_images = not self.encoded
        decoders = None if decode_images else {"image": tfds.decode.SkipDecoding()}
        read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
        try:
            return self.builder.as_dataset(split=split, shuffle_files=shuffle_files,
                                           decoders=decoders, read_config=read_config)
        except AssertionError as error:  # TFDS: "could not find data in ..."
            raise FileNotFoundError(self.missing_data_message()) from error

    @staticmethod
    def _to_pair(example: dict) -> tuple[tf.Tensor, tf.Tensor]:
        return example["image"], tf.cast(example["label"], tf.int32)

    def num_examples(self, split: str) -> int:
        size = self._metadata_size(split)
        if size is not None:
            return size
        # No metadata (e.g. under tfds.testing.mock_data): count what is served.
        return count_examples(self._as_dataset(split, False, None))

    def read(self, split: str, *, num_shards: int, shard_index: int,
             shuffle_files: bool, seed: int | None) -> tf.data.Dataset:
        if num_shards > 1 and self._metadata_size(split) is not None:
            # Each host reads only its own even part of the records (TFDS skips
            # the rest at file level), so a pod does not read the data N times.
            split = tfds.even_splits(split, n=num_shards)[shard_index]
            dataset = self._as_dataset(split, shuffle_files, seed)
        else:
            dataset = shard(self._as_dataset(split, shuffle_files, seed), num_shards, shard_index)
        return dataset.map(self._to_pair, num_parallel_calls=tf.data.AUTOTUNE)


class Cifar10ThreeClassSource(TfdsSource):
    """CIFAR-10 restricted to cat, deer and dog, relabelled 0, 1, 2 (seed 003)."""

    def __init__(self, data_dir: str | None) -> None:
        super().__init__("cifar10_3class", data_dir, train_split="train", eval_split="test",
                         encoded=False, native_resolution=native_resolution("cifar10_3class"),
                         cacheable=True, shuffle_buffer_size=15_000, tfds_name="cifar10")
        self._counts: dict[str, int] = {}

    def _class_names(self) -> tuple[str, ...]:
        return CIFAR10_3CLASS_NAMES

    def _filtered(self, split: str, shuffle_files: bool, seed: int | None) -> tf.data.Dataset:
        """Filter on the label first, then decode only the kept 30% of the images."""
        dataset = self._as_dataset(split, shuffle_files, seed, decode_images=False).map(
            self._to_pair, num_parallel_calls=tf.data.AUTOTUNE)
        kept = tf.constant(CIFAR10_3CLASS_LABELS, tf.int32)
        dataset = dataset.filter(lambda image, label: tf.reduce_any(tf.equal(label, kept)))
        decode = self.builder.info.features["image"].decode_example  # keeps the static 32x32x3
        # Labels 3, 4, 5 become 0, 1, 2.
        return dataset.map(lambda image, label: (decode(image), label - CIFAR10_3CLASS_LABELS[0]),
                           num_parallel_calls=tf.data.AUTOTUNE)

    def _split_size_for_info(self, split: str) -> int:
        if self._metadata_size(split) is None:
            return PUBLISHED_SPLIT_SIZES[self.name][split]
        return self.num_examples(split)

    def num_examples(self, split: str) -> int:
        if split not in self._counts:
            kept = tf.constant(CIFAR10_3CLASS_LABELS, tf.int64)
            labels = self._as_dataset(split, False, None, decode_images=False)
            self._counts[split] = count_examples(
                labels.filter(lambda example: tf.reduce_any(tf.equal(example["label"], kept))))
        return self._counts[split]

    def read(self, split: str, *, num_shards: int, shard_index: int,
             shuffle_files: bool, seed: int | None) -> tf.data.Dataset:
        # Filtering makes per-file sizes unknown, so shard after it; CIFAR is
        # small enough for every host to read it whole.
        return shard(self._filtered(split, shuffle_files, seed), num_shards, shard_index)


def imagenet_source(data_dir: str | None) -> TfdsSource:
    return TfdsSource("imagenet2012", data_dir, train_split="train", eval_split="validation",
                      encoded=True, native_resolution=native_resolution("imagenet2012"), cacheable=False,
                      shuffle_buffer_size=8_192)


def cifar_source(name: str, data_dir: str | None) -> TfdsSource:
    return TfdsSource(name, data_dir, train_split="train", eval_split="test", encoded=False,
                      native_resolution=native_resolution(name), cacheable=True, shuffle_buffer_size=50_000)
