"""Mixup and CutMix against google/automl efficientnetv2/datasets.py (ImageNetInput.mixup, cutmix_mask,
cutmix, mixing) and tensorflow/tpu's V1 mixup; the soft-label loss against Keras' CategoricalCrossentropy
(the loss automl's main_tf2.py compiles); the pipeline's mixing seeded, replayable and per replica.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras
from efficientnet_tpu import data as data_lib
from efficientnet_tpu.data import mixing
from efficientnet_tpu.training import config as config_lib
from efficientnet_tpu.training.loop import cross_entropy, top_k_correct

SEED = tf.constant([7, 3], tf.int64)


def constant_batch(batch: int, size: int = 8, classes: int = 10):
    """Example i is an image of constant value 10 * i with label i % classes: mixing weights are readable."""
    values = 10.0 * np.arange(batch, dtype=np.float32)
    images = np.broadcast_to(values[:, None, None, None], (batch, size, size, 3)).copy()
    return tf.constant(images), tf.constant(np.arange(batch) % classes, tf.int32)


def test_beta_draws_have_the_beta_moments():
    # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)).
    for alpha in (0.2, 1.0):
        draws = mixing.sample_beta([20000], alpha, SEED).numpy()
        assert abs(draws.mean() - 0.5) < 0.01
        assert abs(draws.var() - 1 / (4 * (2 * alpha + 1))) < 0.01
        assert draws.min() >= 0 and draws.max() <= 1


def test_mixup_is_the_references():
    # datasets.py mixup: w ~ Beta(a, a) per example [B, 1], w = max(w, 1 - w),
    # image = x * w + x[::-1] * (1 - w), label = y * w + y[::-1] * (1 - w).
    images, labels = constant_batch(6)
    targets = tf.one_hot(labels, 10)
    mixed, soft = mixing.mixup(images, targets, 0.2, SEED)
    weight = soft.numpy()[np.arange(6), labels.numpy()]  # each example's share of its own label
    assert np.all(weight >= 0.5 - 1e-6) and np.all(weight <= 1 + 1e-6) and len(set(weight.round(6))) > 1
    expected = targets.numpy() * weight[:, None] + targets.numpy()[::-1] * (1 - weight[:, None])
    np.testing.assert_allclose(soft.numpy(), expected, atol=1e-6)
    w = weight[:, None, None, None]
    np.testing.assert_allclose(mixed.numpy(), images.numpy() * w + images.numpy()[::-1] * (1 - w), rtol=1e-5,
                               atol=1e-4)
    # Folded Beta(1, 1) = U(0.5, 1): mean 0.75.
    big, big_labels = constant_batch(4000, size=1)
    _, big_soft = mixing.mixup(big, tf.one_hot(big_labels, 4000), 1.0, SEED)
    assert abs(float(tf.reduce_mean(tf.reduce_max(big_soft, axis=-1))) - 0.75) < 0.02


def reference_cutmix_mask(center_x: int, center_y: int, area: float, h: int, w: int) -> np.ndarray:
    """datasets.py ImageNetInput.cutmix_mask written out in numpy: pad a box of ones."""
    ratio = np.sqrt(1 - area)
    r_w, r_h = int(np.float32(ratio) * np.float32(w)), int(np.float32(ratio) * np.float32(h))
    x1, y1 = np.clip(center_x - r_w // 2, 0, w), np.clip(center_y - r_h // 2, 0, h)
    x2, y2 = np.clip(center_x + r_w // 2, 0, w), np.clip(center_y + r_h // 2, 0, h)
    return np.pad(np.ones((y2 - y1, x2 - x1)), [[y1, max(h - y2, 0)], [x1, max(w - x2, 0)]])


def test_cutmix_boxes_and_label_weight_are_the_references():
    rng = np.random.default_rng(0)
    h, w = 12, 10
    cx, cy, area = rng.integers(0, w, 32), rng.integers(0, h, 32), rng.uniform(0, 1, 32).astype(np.float32)
    masks = mixing.box_masks(tf.constant(cx, tf.int32), tf.constant(cy, tf.int32), tf.constant(area), h, w)
    for i in range(32):
        np.testing.assert_array_equal(masks.numpy()[i, :, :, 0], reference_cutmix_mask(cx[i], cy[i], area[i], h, w))
    # datasets.py cutmix: image = (1 - m) x + m x[::-1]; ONE label weight, the mask's mean over the batch.
    images, labels = constant_batch(6, size=16)
    targets = tf.one_hot(labels, 10)
    seeds = (SEED, SEED + 1, SEED + 2)
    mixed, soft = mixing.cutmix(images, targets, 1.0, seeds)
    mask = mixing.cutmix_masks(6, 16, 16, 1.0, seeds).numpy()
    values = images.numpy()
    np.testing.assert_allclose(mixed.numpy(), (1 - mask) * values + mask * values[::-1])
    share = mask.mean()
    np.testing.assert_allclose(soft.numpy(), (1 - share) * targets.numpy() + share * targets.numpy()[::-1],
                               atol=1e-6)


def test_mixup_and_cutmix_split_the_batch_in_halves():
    # datasets.py mixing: the first half gets mixup, the second cutmix, each half mixed with itself reversed.
    images, labels = constant_batch(8, size=16)
    mixed, soft = mixing.mix_batch(images, labels, num_classes=10, mixup_alpha=0.5, cutmix_alpha=0.5, seed=SEED)
    mixed, soft = mixed.numpy(), soft.numpy()
    for i in range(4):  # mixup partners inside the first half: labels i and 3 - i only
        assert set(np.flatnonzero(soft[i] > 1e-6)) <= {i, 3 - i}
        assert np.ptp(mixed[i]) < 1e-4  # a blend of two constant images is constant
    for i in range(4, 8):  # cutmix partners inside the second half: pixels of images i and 11 - i only
        assert set(np.unique(mixed[i])) <= {10.0 * i, 10.0 * (11 - i)}
        assert set(np.flatnonzero(soft[i] > 1e-6)) <= {i, 11 - i}
    np.testing.assert_allclose(soft.sum(axis=-1), 1.0, rtol=1e-6)


def test_soft_label_loss_composes_with_label_smoothing_as_keras():
    # main_tf2.py compiles CategoricalCrossentropy(label_smoothing, from_logits=True) on the mixed labels.
    rng = np.random.default_rng(1)
    logits = tf.constant(rng.normal(size=(5, 7)), tf.float32)
    soft = rng.dirichlet(np.ones(7), size=5).astype(np.float32)
    for smoothing in (0.0, 0.1):
        keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing,
                                                          reduction=None)(soft, logits)
        np.testing.assert_allclose(cross_entropy(tf.constant(soft), logits, 7, smoothing).numpy(),
                                   np.asarray(keras_loss), rtol=1e-5)
    # One-hot soft labels give the integer-label loss; accuracy reads the largest share as the label.
    ids = tf.constant([0, 3, 6, 2, 1])
    np.testing.assert_allclose(cross_entropy(tf.one_hot(ids, 7), logits, 7, 0.1).numpy(),
                               cross_entropy(ids, logits, 7, 0.1).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(top_k_correct(tf.one_hot(ids, 7) * 0.7 + 0.3 * tf.one_hot(ids[::-1], 7),
                                                logits, 1).numpy(), top_k_correct(ids, logits, 1).numpy())


def first_batches(count: int, skip: int = 0, context=None, **kwargs):
    dataset = data_lib.build_dataset("digits", "train", global_batch_size=8, image_size=16, training=True,
                                     options=data_lib.DataOptions(seed=11, deterministic=True, **kwargs),
                                     input_context=context)
    return [(i.numpy(), l.numpy()) for i, l in dataset.skip(skip).take(count)]


def test_pipeline_mixing_is_seeded_replayable_and_per_replica():
    mixed = first_batches(3, mixup_alpha=0.2, cutmix_alpha=0.2)
    again = first_batches(3, mixup_alpha=0.2, cutmix_alpha=0.2)
    assert mixed[0][1].shape == (8, 10) and mixed[0][1].dtype == np.float32
    for (a, la), (b, lb) in zip(mixed, again):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    # A replay skips batches of the same stream: batch 2 is mixed exactly as in the first pass.
    replayed = first_batches(1, skip=2, mixup_alpha=0.2, cutmix_alpha=0.2)
    np.testing.assert_array_equal(replayed[0][0], mixed[2][0])
    np.testing.assert_array_equal(replayed[0][1], mixed[2][1])
    # Under a 2-replica strategy each replica's batch of 4 mixes only its own examples.
    context = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=2)
    plain = first_batches(2, context=context)
    per_replica = first_batches(2, context=context, mixup_alpha=0.2, cutmix_alpha=0.2)
    for (_, ids), (images, soft) in zip(plain, per_replica):
        assert images.shape[0] == 4 and soft.shape == (4, 10)
        assert set(np.flatnonzero(soft.sum(axis=0) > 1e-6)) <= set(ids.tolist())
    assert not np.array_equal(mixed[0][0], first_batches(1)[0][0])


@pytest.mark.parametrize("alpha", [-0.1, float("nan"), float("inf")])
def test_bad_alphas_fail_in_one_line(alpha):
    with pytest.raises(ValueError, match=r"DataOptions.mixup_alpha must be a finite number >= 0 \(0 turns it off\)"):
        data_lib.DataOptions(mixup_alpha=alpha)
    with pytest.raises(ValueError, match="--cutmix_alpha must be a finite number >= 0"):
        config_lib.merge({"model_dir": "/tmp/x", "cutmix_alpha": alpha})


def test_mixing_is_off_by_default_as_in_both_references():
    # tensorflow/tpu models/official/efficientnet/main.py: flag mixup_alpha, default 0.0 ("0.0 to disable");
    # google/automl efficientnetv2/hparams.py base_config: data.mixup_alpha=0., data.cutmix_alpha=0.
    defaults = config_lib.TrainConfig()
    assert defaults.mixup_alpha == 0.0 and defaults.cutmix_alpha == 0.0 and defaults.progressive == ""
    plain = first_batches(1)
    assert plain[0][1].shape == (8,) and plain[0][1].dtype == np.int32
