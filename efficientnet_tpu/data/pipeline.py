"""build_dataset: one tf.data pipeline for every dataset, ready for TPU pods.

Shapes are static (training drops the remainder, eval pads and masks), each
input pipeline reads only its shard of the data (the input context of
`strategy.distribute_datasets_from_function`), decoding runs in parallel with
AUTOTUNE, and a seed makes the whole stream reproducible.
"""

from __future__ import annotations

import random

import tensorflow as tf

from efficientnet_tpu.data import augment as augment_lib
from efficientnet_tpu.data import reference_ops
from efficientnet_tpu.data import mixing as mixing_lib
from efficientnet_tpu.data.choices import AUGMENTATIONS
from efficientnet_tpu.data.batching import (eval_examples_per_shard, eval_steps_for,
                                            pad_and_batch_eval)
from efficientnet_tpu.data.info import DatasetInfo, default_crop_fraction
from efficientnet_tpu.data.preprocessing import (CROP_AREA_RANGE, check_area_range,
                                                 check_crop_fraction, check_image_size,
                                                 inception_crop, is_int, pad_and_random_crop,
                                                 preprocess_for_eval, random_flip, resize,
                                                 to_uint8)
from efficientnet_tpu.data.registry import get_source
from efficientnet_tpu.data.sources import Source
from efficientnet_tpu.data.synthetic import SyntheticSource

OUTPUT_DTYPES = (tf.float32, tf.bfloat16, tf.float16)
# Input pipelines of one run draw augmentation seeds from distinct streams.
_SHARD_SEED_STRIDE = 1_000_003


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


def _check_arguments(global_batch_size: int, augment: str, dtype: tf.DType, seed: int | None,
                     randaugment_num_layers: int, randaugment_magnitude: float) -> tf.DType:
    if not (is_int(global_batch_size) and global_batch_size >= 1):
        raise ValueError(f"global_batch_size must be a positive int, got {global_batch_size!r}")
    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augment {augment!r}; choose one of "
                         f"{', '.join(repr(a) for a in AUGMENTATIONS)}")
    try:
        output_dtype = tf.as_dtype(dtype)
    except TypeError:
        output_dtype = None
    if output_dtype not in OUTPUT_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(d.name for d in OUTPUT_DTYPES)}, "
                         f"got {dtype!r}")
    if seed is not None and not (is_int(seed) and seed >= 0):
        raise ValueError(f"seed must be None or an int >= 0, got {seed!r}")
    augment_lib.check_randaugment(randaugment_num_layers, randaugment_magnitude)
    return output_dtype


def _layout(global_batch_size: int,
            input_context: tf.distribute.InputContext | None) -> tuple[int, int, int, int]:
    """(num_shards, shard_index, per-replica batch, examples one shard feeds per step)."""
    if input_context is None:
        return 1, 0, global_batch_size, global_batch_size
    replicas = input_context.num_replicas_in_sync
    if global_batch_size % replicas:
        raise ValueError(f"global_batch_size {global_batch_size} must be divisible by the "
                         f"{replicas} replicas in sync")
    batch_size = input_context.get_per_replica_batch_size(global_batch_size)
    num_shards = input_context.num_input_pipelines
    replicas_per_shard = max(1, replicas // num_shards)
    return num_shards, input_context.input_pipeline_id, batch_size, batch_size * replicas_per_shard


def _train_transform(source: Source, *, image_size: int, augment: str, crop_fraction: float,
                     randaugment_num_layers: int, randaugment_magnitude: float, dtype: tf.DType,
                     seed: int, crop_area_range: tuple[float, float], flip: bool,
                     augment_semantics: str = "reference"):
    """(index, (image, label)) -> (augmented image of `dtype`, label).

    The random draws for the example at position `index` of the stream depend
    only on `seed` and `index`, so a seeded stream is reproducible however
    the map is parallelized.
    """
    base_seed = tf.constant(seed, tf.int64)
    flip = flip and source.flip_invariant

    def policy(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        if augment == "randaugment":
            return augment_lib.randaugment(image, seed, randaugment_num_layers,
                                           randaugment_magnitude, semantics=augment_semantics)
        if augment == "autoaugment":
            return augment_lib.autoaugment(image, seed, semantics=augment_semantics)
        return image

    def transform(index, example):
        image, label = example
        native_side = None if source.encoded else image.shape[0]
        if not source.encoded and native_side is None:
            raise ValueError(f"source {source.name!r} must yield images of a static size")
        # Independent stateless streams per example: [stream + base, index].
        crop_seed, flip_seed, policy_seed = (tf.stack([base_seed + stream, index])
                                             for stream in range(3))
        if augment == "none":
            output = preprocess_for_eval(image, image_size, crop_fraction)
        elif augment == "seed003":
            if source.encoded:
                output = augment_lib.random_rotate_shift_zoom(
                    preprocess_for_eval(image, image_size, crop_fraction), crop_seed)
            else:  # warp at the native size, then resize: far cheaper than the reverse
                output = resize(augment_lib.random_rotate_shift_zoom(
                    tf.cast(image, tf.float32), crop_seed), image_size)
        elif source.encoded:
            output = inception_crop(image, image_size, crop_seed, flip_seed if flip else None,
                                    area_range=crop_area_range)
            if augment in ("randaugment", "autoaugment"):
                # The reference truncates the crop to uint8; the paper semantics round.
                as_uint8 = reference_ops.to_uint8 if augment_semantics == "reference" else to_uint8
                output = tf.cast(policy(as_uint8(output), policy_seed), tf.float32)
        else:
            # Small fixed-size images (CIFAR, digits): pad by 1/8 of the side and
            # crop back, flip, augment at the native size, then resize.
            output = pad_and_random_crop(image, native_side // 8, crop_seed)
            if flip:
                output = random_flip(output, flip_seed)
            output = resize(policy(output, policy_seed), image_size)
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


def _training_dataset(source: Source, split: str, *, batch_size: int, image_size: int,
                      augment: str, crop_fraction: float, num_shards: int, shard_index: int,
                      seed: int | None, dtype: tf.DType, randaugment_num_layers: int,
                      randaugment_magnitude: float, crop_area_range: tuple[float, float],
                      flip: bool, augment_semantics: str = "reference") -> tf.data.Dataset:
    dataset = source.read(split, num_shards=num_shards, shard_index=shard_index,
                          shuffle_files=True, seed=seed)
    if source.cacheable:
        dataset = dataset.cache()
    if source.shuffle_buffer_size:
        dataset = dataset.shuffle(source.shuffle_buffer_size, seed=seed,
                                  reshuffle_each_iteration=True)
    if seed is None:  # a fresh stream of augmentations every run
        seed = random.SystemRandom().randrange(2**62)
    transform = _train_transform(
        source, image_size=image_size, augment=augment, crop_fraction=crop_fraction,
        randaugment_num_layers=randaugment_num_layers,
        randaugment_magnitude=randaugment_magnitude, dtype=dtype, seed=seed,
        crop_area_range=crop_area_range, flip=flip, augment_semantics=augment_semantics)
    dataset = dataset.repeat().enumerate().map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return skip_unreadable(source, dataset).batch(batch_size, drop_remainder=True)


def _eval_dataset(source: Source, split: str, *, batch_size: int, shard_batch: int,
                  image_size: int, crop_fraction: float, num_shards: int, shard_index: int,
                  dtype: tf.DType, resize_method: str = "bicubic") -> tf.data.Dataset:
    num_examples = source.num_examples(split)
    if num_examples == 0:
        raise ValueError(f"split {split!r} of dataset {source.name!r} has no examples")
    dataset = source.read(split, num_shards=num_shards, shard_index=shard_index,
                          shuffle_files=False, seed=None)
    if source.cacheable:
        dataset = dataset.cache()
    dataset = dataset.map(
        lambda image, label: (tf.cast(preprocess_for_eval(image, image_size, crop_fraction,
                                                          resize_method), dtype), label),
        num_parallel_calls=tf.data.AUTOTUNE)
    return pad_and_batch_eval(
        skip_unreadable(source, dataset), examples_per_shard=eval_examples_per_shard(
            num_examples, num_shards, shard_batch, source.largest_shard(split, num_shards)),
        batch_size=batch_size, image_size=image_size, dtype=dtype)


def build_dataset(name: str, split: str, *, global_batch_size: int, image_size: int,
                  training: bool, augment: str = "default", data_dir: str | None = None,
                  input_context: tf.distribute.InputContext | None = None,
                  dtype: tf.DType | str = tf.float32, seed: int | None = None,
                  deterministic: bool = False, crop_fraction: float | None = None,
                  randaugment_num_layers: int = 2,
                  randaugment_magnitude: float = 10.0,
                  crop_area_range: tuple[float, float] = CROP_AREA_RANGE,
                  flip: bool = True, augment_semantics: str = "reference", resize_method: str = "bicubic",
                  mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0,
                  num_classes: int | None = None) -> tf.data.Dataset:
    """The input pipeline of `split` of dataset `name`.

    Training yields `(images [B, S, S, 3] of dtype in [0, 255], labels int32 [B])`
    forever, with augmentation `augment`. Eval yields `(images, labels, mask)`
    with mask float32 [B] (1 real, 0 padding), once through the split: over
    all input pipelines every example appears exactly once. B is the
    per-replica batch when `input_context` is given (call this from
    `strategy.distribute_datasets_from_function`), else `global_batch_size`.

    `crop_fraction` is the eval center crop (also used by augment 'none' and
    'seed003'); None means the reference image_size / (image_size + 32), or
    the whole image for native-resolution datasets (CIFAR, digits).
    `crop_area_range` bounds the Inception crop of full-size images (ImageNet,
    folders, TFRecords) as a share of the area; `flip=False` turns the random
    horizontal flip off (never applied to datasets that are not mirror-symmetric).
    `augment_semantics` chooses the randaugment/autoaugment operations'
    semantics: "reference" (the released checkpoints' code) or "paper".
    `mixup_alpha` / `cutmix_alpha` > 0 mix each training batch (data/mixing.py)
    and make its labels float32 [B, num_classes] (default: the dataset's classes).
    `resize_method` is the eval resize (the spec's: bilinear for the lite networks); training
    crops resize bicubically.
    `deterministic=True` fixes the training order and augmentation (seed 0
    unless `seed` is given) at some cost in speed; eval is always in the
    split's stored order.
    """
    dtype = _check_arguments(global_batch_size, augment, dtype, seed, randaugment_num_layers,
                             randaugment_magnitude)
    augment_lib.check_semantics(augment_semantics)
    image_size = check_image_size(image_size)
    mixup_alpha = mixing_lib.check_alpha("mixup_alpha", mixup_alpha)
    cutmix_alpha = mixing_lib.check_alpha("cutmix_alpha", cutmix_alpha)
    crop_area_range = check_area_range(crop_area_range)
    if crop_fraction is not None:
        check_crop_fraction(crop_fraction)
    num_shards, shard_index, batch_size, shard_batch = _layout(int(global_batch_size),
                                                               input_context)
    if deterministic and seed is None:
        seed = 0
    shard_seed = None if seed is None else seed + _SHARD_SEED_STRIDE * shard_index

    source = get_source(name, data_dir)
    split = source.check_split(split)
    if crop_fraction is None:
        crop_fraction = default_crop_fraction(image_size) if source.encoded else 1.0

    if isinstance(source, SyntheticSource):
        dataset = source.build(split, batch_size=batch_size, image_size=image_size,
                               training=training, num_shards=num_shards, shard_index=shard_index,
                               shard_batch=shard_batch, dtype=dtype,
                               seed=(seed or 0) + _SHARD_SEED_STRIDE * shard_index)
    elif training:
        dataset = _training_dataset(
            source, split, batch_size=batch_size, image_size=image_size, augment=augment,
            crop_fraction=crop_fraction, num_shards=num_shards, shard_index=shard_index,
            seed=shard_seed, dtype=dtype, randaugment_num_layers=randaugment_num_layers,
            randaugment_magnitude=randaugment_magnitude, crop_area_range=crop_area_range,
            flip=bool(flip), augment_semantics=augment_semantics)
    else:
        dataset = _eval_dataset(
            source, split, batch_size=batch_size, shard_batch=shard_batch, image_size=image_size,
            crop_fraction=crop_fraction, num_shards=num_shards, shard_index=shard_index,
            dtype=dtype, resize_method=resize_method)

    if training and (mixup_alpha or cutmix_alpha):
        mix_seed = (random.SystemRandom().randrange(2**40) if seed is None else seed)
        dataset = mixing_lib.apply_mixing(
            dataset, num_classes=int(num_classes or source.info().num_classes), mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha, seed=mix_seed + _SHARD_SEED_STRIDE * shard_index)

    options = tf.data.Options()
    # Eval keeps the stored order (cheap, and predictions line up with examples).
    options.deterministic = deterministic or not training
    if input_context is not None:
        # Already sharded per input pipeline; tf.distribute must not shard again.
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF)
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
