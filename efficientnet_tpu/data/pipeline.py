"""build_dataset: one tf.data pipeline for every dataset, ready for TPU pods.

Shapes are static (training drops the remainder, eval pads and masks), each
input pipeline reads only its shard of the data (the input context of
`strategy.distribute_datasets_from_function`), decoding runs in parallel with
AUTOTUNE, and a seed makes the whole stream reproducible. How examples are
augmented, mixed, cropped, resized and typed is one checked DataOptions
(options.py); this module checks only what it alone sees.
"""

from __future__ import annotations

import random

import tensorflow as tf

from efficientnet_tpu.data import augment as augment_lib
from efficientnet_tpu.data import reference_ops
from efficientnet_tpu.data import mixing as mixing_lib
from efficientnet_tpu.data.choices import AUGMENTATIONS  # noqa: F401  (the package's name for them)
from efficientnet_tpu.data.batching import (eval_examples_per_shard, eval_steps_for,
                                            pad_and_batch_eval)
from efficientnet_tpu.data.info import DatasetInfo, default_crop_fraction
from efficientnet_tpu.data.options import DataOptions
from efficientnet_tpu.data.preprocessing import (check_image_size, inception_crop, is_int,
                                                 pad_and_random_crop, preprocess_for_eval,
                                                 random_flip, resize, to_uint8)
from efficientnet_tpu.data.registry import get_source
from efficientnet_tpu.data.sources import Source, Stream


def dataset_info(name: str, data_dir: str | None = None) -> DatasetInfo:
    """Facts about a dataset (classes, splits, sizes); works before TFDS data is prepared."""
    return get_source(name, data_dir).info()


def num_eval_steps(name: str, split: str, *, global_batch_size: int, data_dir: str | None = None,
                   num_input_pipelines: int = 1) -> int:
    """How many global steps build_dataset's eval stream for `split` yields."""
    source = get_source(name, data_dir)
    split = source.check_split(split)
    return eval_steps_for(source.num_examples(split), global_batch_size, num_input_pipelines,
                          source.largest_shard(split, num_input_pipelines))


def _stream(global_batch_size: int, image_size: int, training: bool, options: DataOptions,
            input_context: tf.distribute.InputContext | None) -> Stream:
    """This input pipeline's shard, batch and images (what only the pipeline knows, checked here)."""
    if not isinstance(options, DataOptions):
        raise TypeError(f"options must be a DataOptions (efficientnet_tpu.data.DataOptions), got {options!r}")
    if not (is_int(global_batch_size) and global_batch_size >= 1):
        raise ValueError(f"global_batch_size must be a positive int, got {global_batch_size!r}")
    global_batch_size = int(global_batch_size)
    num_shards, shard_index, batch_size = 1, 0, global_batch_size
    shard_batch = global_batch_size
    if input_context is not None:
        replicas = input_context.num_replicas_in_sync
        if global_batch_size % replicas:
            raise ValueError(f"global_batch_size {global_batch_size} must be divisible by the "
                             f"{replicas} replicas in sync")
        batch_size = input_context.get_per_replica_batch_size(global_batch_size)
        num_shards, shard_index = input_context.num_input_pipelines, input_context.input_pipeline_id
        shard_batch = batch_size * max(1, replicas // num_shards)
    seed = 0 if options.deterministic and options.seed is None else options.seed
    return Stream(training=bool(training), num_shards=num_shards, shard_index=shard_index,
                  batch_size=batch_size, shard_batch=shard_batch,
                  image_size=check_image_size(image_size), dtype=tf.as_dtype(options.dtype), seed=seed)


def _train_transform(source: Source, stream: Stream, options: DataOptions, crop_fraction: float, seed: int):
    """(index, (image, label)) -> (augmented image of the stream's dtype, label).

    The random draws for the example at position `index` of the stream depend
    only on `seed` and `index`, so a seeded stream is reproducible however
    the map is parallelized.
    """
    base_seed = tf.constant(seed, tf.int64)
    augment, semantics, method = options.augment, options.augment_semantics, options.resize_method
    image_size, dtype = stream.image_size, stream.dtype
    flip = options.random_flip and source.flip_invariant

    def policy(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        if augment == "randaugment":
            return augment_lib.randaugment(image, seed, options.randaugment_num_layers,
                                           options.randaugment_magnitude, semantics=semantics)
        if augment == "autoaugment":
            return augment_lib.autoaugment(image, seed, semantics=semantics)
        return image

    def transform(index, example):
        image, label = example
        native_side = None if source.encoded else image.shape[0]
        if not source.encoded and native_side is None:
            raise ValueError(f"source {source.name!r} must yield images of a static size")
        # Independent stateless streams per example: [stream + base, index].
        crop_seed, flip_seed, policy_seed = (tf.stack([base_seed + offset, index])
                                             for offset in range(3))
        if augment == "none":
            output = preprocess_for_eval(image, image_size, crop_fraction, method)
        elif augment == "seed003":
            if source.encoded:
                output = augment_lib.random_rotate_shift_zoom(
                    preprocess_for_eval(image, image_size, crop_fraction, method), crop_seed)
            else:  # warp at the native size, then resize: far cheaper than the reverse
                output = resize(augment_lib.random_rotate_shift_zoom(
                    tf.cast(image, tf.float32), crop_seed), image_size, method)
        elif source.encoded:
            output = inception_crop(image, image_size, crop_seed, flip_seed if flip else None,
                                    area_range=options.crop_area_range, method=method)
            if augment in ("randaugment", "autoaugment"):
                # The reference truncates the crop to uint8; the paper semantics round.
                as_uint8 = reference_ops.to_uint8 if semantics == "reference" else to_uint8
                output = tf.cast(policy(as_uint8(output), policy_seed), tf.float32)
        else:
            # Small fixed-size images (CIFAR, digits): pad by 1/8 of the side and
            # crop back, flip, augment at the native size, then resize.
            output = pad_and_random_crop(image, native_side // 8, crop_seed)
            if flip:
                output = random_flip(output, flip_seed)
            output = resize(policy(output, policy_seed), image_size, method)
        return tf.cast(output, dtype), label

    # Plain TF code: skipping AutoGraph's conversion saves seconds of tracing.
    return tf.autograph.experimental.do_not_convert(transform)


def skip_unreadable(source: Source, dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Drops examples whose file cannot be read or decoded any more (sources read from files).

    The files were all decoded once up front; one deleted or unreadable since
    (a shared disk or bucket) is skipped rather than crashing the run and
    losing the steps since the last checkpoint. TensorFlow logs each skip
    ("Ignoring error"); an eval split is padded to its size as a short last
    batch is, so the skipped example only drops out of the count.
    """
    return dataset.ignore_errors(log_warning=True) if source.encoded and source.skips_unreadable else dataset


def _training_dataset(source: Source, split: str, stream: Stream, options: DataOptions,
                      crop_fraction: float) -> tf.data.Dataset:
    seed = stream.shard_seed()
    dataset = source.read(split, num_shards=stream.num_shards, shard_index=stream.shard_index,
                          shuffle_files=True, seed=seed)
    if source.cacheable:
        dataset = dataset.cache()
    if source.shuffle_buffer_size:
        dataset = dataset.shuffle(source.shuffle_buffer_size, seed=seed,
                                  reshuffle_each_iteration=True)
    if seed is None:  # a fresh stream of augmentations every run
        seed = random.SystemRandom().randrange(2**62)
    transform = _train_transform(source, stream, options, crop_fraction, seed)
    dataset = dataset.repeat().enumerate().map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return skip_unreadable(source, dataset).batch(stream.batch_size, drop_remainder=True)


def _eval_dataset(source: Source, split: str, stream: Stream, options: DataOptions,
                  crop_fraction: float) -> tf.data.Dataset:
    num_examples = source.num_examples(split)
    if num_examples == 0:
        raise ValueError(f"split {split!r} of dataset {source.name!r} has no examples")
    dataset = source.read(split, num_shards=stream.num_shards, shard_index=stream.shard_index,
                          shuffle_files=False, seed=None)
    if source.cacheable:
        dataset = dataset.cache()
    image_size, dtype = stream.image_size, stream.dtype
    dataset = dataset.map(
        lambda image, label: (tf.cast(preprocess_for_eval(image, image_size, crop_fraction,
                                                          options.resize_method), dtype), label),
        num_parallel_calls=tf.data.AUTOTUNE)
    return pad_and_batch_eval(
        skip_unreadable(source, dataset), examples_per_shard=eval_examples_per_shard(
            num_examples, stream.num_shards, stream.shard_batch,
            source.largest_shard(split, stream.num_shards)),
        batch_size=stream.batch_size, image_size=image_size, dtype=dtype)


def build_dataset(name: str, split: str, *, global_batch_size: int, image_size: int, training: bool,
                  options: DataOptions = DataOptions(), data_dir: str | None = None,
                  input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """The input pipeline of `split` of dataset `name`, as `options` (data/options.py) set it.

    Training yields `(images [B, S, S, 3] of options.dtype in [0, 255], labels int32 [B])`
    forever, augmented by `options.augment`, or with float32 [B, num_classes]
    labels when mixup or cutmix is on. Eval yields `(images, labels, mask)`
    with mask float32 [B] (1 real, 0 padding), once through the split in its
    stored order: over all input pipelines every example appears exactly once.
    B is the per-replica batch when `input_context` is given (call this from
    `strategy.distribute_datasets_from_function`), else `global_batch_size`.
    Every source goes this one way: its own batches when it makes them
    (`Source.make_batches`, synthetic data), else its examples read, augmented
    and batched here; then mixing, the tf.data options and prefetching.
    """
    stream = _stream(global_batch_size, image_size, training, options, input_context)
    source = get_source(name, data_dir)
    split = source.check_split(split)
    crop_fraction = options.eval_crop_fraction
    if crop_fraction is None:
        crop_fraction = default_crop_fraction(stream.image_size) if source.encoded else 1.0

    dataset = source.make_batches(split, stream)
    if dataset is None:
        make = _training_dataset if training else _eval_dataset
        dataset = make(source, split, stream, options, crop_fraction)

    if training and options.mixes:
        dataset = mixing_lib.apply_mixing(
            dataset, num_classes=int(options.num_classes or source.info().num_classes),
            mixup_alpha=options.mixup_alpha, cutmix_alpha=options.cutmix_alpha,
            seed=stream.shard_seed(default=random.SystemRandom().randrange(2**40)))

    tf_options = tf.data.Options()
    # Eval keeps the stored order (cheap, and predictions line up with examples).
    tf_options.deterministic = options.deterministic or not training
    if input_context is not None:
        # Already sharded per input pipeline; tf.distribute must not shard again.
        tf_options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF)
    return dataset.with_options(tf_options).prefetch(tf.data.AUTOTUNE)
