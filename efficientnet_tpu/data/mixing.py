"""Mixup and CutMix: batch-level augmentations that mix images and their labels.

They follow google/automl efficientnetv2/datasets.py (``ImageNetInput.mixup``,
``cutmix_mask``, ``cutmix``, ``mixing``), whose mixup is also tensorflow/tpu's
V1 ``mixup_alpha``:

* mixup: one weight per example, ``lam ~ Beta(alpha, alpha)`` folded to
  ``max(lam, 1 - lam)``; each example is mixed with the batch reversed
  (``x * lam + x[::-1] * (1 - lam)``) and so are the one-hot labels.
* cutmix: one box per example, of area ``1 - Beta(alpha, alpha)`` (sides
  ``sqrt(1 - area)`` of the image's), centred uniformly and clipped at the
  borders, pasted from the reversed batch. The labels are mixed with ONE
  weight for the whole batch, the share of pixels all the boxes cover
  together, as the reference does.
* both: the first half of the batch gets mixup, the second half cutmix,
  each half mixed with itself reversed.

They run on each per-replica batch after batching (a replica mixes only its
own examples, as each TPU host does in the reference). Every draw is
stateless, keyed by the stream's seed and the batch's index in the stream,
so a replayed or resumed stream mixes exactly as the original did.
"""

from __future__ import annotations

import tensorflow as tf

from efficientnet_tpu.data.choices import MIX_ALPHA

# Seed streams of the mixing draws, apart from the per-example streams (0-2).
_MIXUP_STREAM = 101
_CUTMIX_STREAMS = (102, 103, 104)
_SEED_OFFSET = 7_000_003


def check_alpha(name: str, alpha: float) -> float:
    """A mixing strength of a direct caller, checked by the mixup/cutmix options' rule."""
    MIX_ALPHA.check(name, alpha, prefix="")
    return float(alpha)


def sample_beta(shape, alpha: float, seed: tf.Tensor) -> tf.Tensor:
    """Stateless Beta(alpha, alpha) draws, as the ratio of two Gamma(alpha) draws."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    first = tf.random.stateless_gamma(shape, seeds[0], alpha=alpha, dtype=tf.float32)
    second = tf.random.stateless_gamma(shape, seeds[1], alpha=alpha, dtype=tf.float32)
    total = first + second
    # Both draws underflow to 0 for tiny alpha: the weight is then 0 or 1 with equal odds.
    return tf.where(total > 0, first / tf.maximum(total, 1e-30), tf.cast(first >= second, tf.float32))


def mixup(images: tf.Tensor, labels: tf.Tensor, alpha: float, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mixes each example with the batch reversed; ``labels`` are one-hot float32 [B, K]."""
    batch = tf.shape(images)[0]
    weight = sample_beta([batch, 1], alpha, seed)
    weight = tf.maximum(weight, 1.0 - weight)
    image_weight = tf.reshape(weight, [batch, 1, 1, 1])
    mixed = tf.cast(images, tf.float32) * image_weight + tf.cast(images[::-1], tf.float32) * (1.0 - image_weight)
    return tf.cast(mixed, images.dtype), labels * weight + labels[::-1] * (1.0 - weight)


def cutmix_masks(batch: tf.Tensor, height: int, width: int, alpha: float,
                 seeds: tuple[tf.Tensor, tf.Tensor, tf.Tensor]) -> tf.Tensor:
    """Per-example box masks [B, H, W, 1] of 1.0 inside the box (the reference's ``cutmix_mask``)."""
    x_seed, y_seed, area_seed = seeds
    center_x = tf.random.stateless_uniform([batch], x_seed, 0, width, tf.int32)
    center_y = tf.random.stateless_uniform([batch], y_seed, 0, height, tf.int32)
    return box_masks(center_x, center_y, sample_beta([batch], alpha, area_seed), height, width)


def box_masks(center_x: tf.Tensor, center_y: tf.Tensor, area: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Masks [B, H, W, 1] of boxes with sides sqrt(1 - area) of the image's around the centres, clipped."""
    ratio = tf.sqrt(1.0 - tf.cast(area, tf.float32))
    box_w = tf.cast(ratio * float(width), tf.int32)
    box_h = tf.cast(ratio * float(height), tf.int32)
    x1 = tf.clip_by_value(center_x - box_w // 2, 0, width)
    x2 = tf.clip_by_value(center_x + box_w // 2, 0, width)
    y1 = tf.clip_by_value(center_y - box_h // 2, 0, height)
    y2 = tf.clip_by_value(center_y + box_h // 2, 0, height)
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    in_rows = tf.logical_and(rows >= y1[:, None], rows < y2[:, None])  # [B, H]
    in_cols = tf.logical_and(cols >= x1[:, None], cols < x2[:, None])  # [B, W]
    mask = tf.logical_and(in_rows[:, :, None], in_cols[:, None, :])
    return tf.cast(mask, tf.float32)[..., None]


def cutmix(images: tf.Tensor, labels: tf.Tensor, alpha: float,
           seeds: tuple[tf.Tensor, tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """Pastes a box of the reversed batch into each image; labels mixed by the batch's box share."""
    height, width = int(images.shape[1]), int(images.shape[2])
    mask = cutmix_masks(tf.shape(images)[0], height, width, alpha, seeds)
    area = tf.reduce_mean(mask)  # one weight for the batch, as the reference's mix_area
    mixed = (1.0 - mask) * tf.cast(images, tf.float32) + mask * tf.cast(images[::-1], tf.float32)
    return tf.cast(mixed, images.dtype), (1.0 - area) * labels + area * labels[::-1]


def mix_batch(images: tf.Tensor, labels: tf.Tensor, *, num_classes: int, mixup_alpha: float,
              cutmix_alpha: float, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """One batch (images [B, H, W, 3], int labels [B]) -> (mixed images, soft labels float32 [B, K]).

    ``seed`` is a [2] int64 stateless seed (the stream's seed and the batch's index).
    """
    if images.shape[1] is None or images.shape[2] is None:
        raise ValueError("mixup/cutmix need images of a static height and width")
    targets = tf.one_hot(tf.cast(labels, tf.int32), num_classes, dtype=tf.float32)
    seed = tf.cast(seed, tf.int64)

    def stream(offset: int) -> tf.Tensor:
        return tf.stack([seed[0] + offset * _SEED_OFFSET, seed[1]])

    cut_seeds = tuple(stream(s) for s in _CUTMIX_STREAMS)
    if mixup_alpha and cutmix_alpha:
        half = int(images.shape[0]) // 2 if images.shape[0] is not None else tf.shape(images)[0] // 2
        first = mixup(images[:half], targets[:half], mixup_alpha, stream(_MIXUP_STREAM))
        second = cutmix(images[half:], targets[half:], cutmix_alpha, cut_seeds)
        return tf.concat([first[0], second[0]], 0), tf.concat([first[1], second[1]], 0)
    if mixup_alpha:
        return mixup(images, targets, mixup_alpha, stream(_MIXUP_STREAM))
    if cutmix_alpha:
        return cutmix(images, targets, cutmix_alpha, cut_seeds)
    return images, targets


def apply_mixing(dataset: tf.data.Dataset, *, num_classes: int, mixup_alpha: float, cutmix_alpha: float,
                 seed: int) -> tf.data.Dataset:
    """Mixes every batch of a batched (images, labels) stream; no-op when both alphas are 0.

    The batch's position in the stream keys its draws, so the stream must be
    enumerated from its start (replays skip after this).
    """
    mixup_alpha = check_alpha("mixup_alpha", mixup_alpha)
    cutmix_alpha = check_alpha("cutmix_alpha", cutmix_alpha)
    if not (mixup_alpha or cutmix_alpha):
        return dataset
    base = tf.constant(seed, tf.int64)

    def mix(index, batch):
        images, labels = batch
        return mix_batch(images, labels, num_classes=num_classes, mixup_alpha=mixup_alpha,
                         cutmix_alpha=cutmix_alpha, seed=tf.stack([base, index]))

    return dataset.enumerate().map(tf.autograph.experimental.do_not_convert(mix),
                                   num_parallel_calls=tf.data.AUTOTUNE)


__all__ = ["mix_batch", "mixup", "cutmix", "cutmix_masks", "box_masks", "apply_mixing", "sample_beta", "check_alpha"]
