"""The per-example transforms: eval crop, Inception crop, resize, augmentation ops."""

import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from efficientnet_tpu.data import augment, image_ops, preprocess_for_eval  # noqa: E402
from efficientnet_tpu.data.preprocessing import inception_crop  # noqa: E402


def encode(image: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt)
    return buffer.getvalue()


def random_image(height=48, width=64, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_eval_center_crop_keeps_only_the_center():
    # 40x80 image: the center square of half the shorter side is rows 10-29,
    # columns 30-49; it alone is 200, all else 0.
    image = np.zeros((40, 80, 3), np.uint8)
    image[10:30, 30:50] = 200
    output = preprocess_for_eval(image, 16, crop_fraction=0.5).numpy()
    assert output.shape == (16, 16, 3) and output.dtype == np.float32
    np.testing.assert_allclose(output, 200.0, atol=1e-3)
    # The whole image contains the zeros.
    assert preprocess_for_eval(image, 16, crop_fraction=1.0).numpy().min() < 1.0


def test_eval_default_crop_is_resolution_over_resolution_plus_32():
    image = random_image()
    default = preprocess_for_eval(image, 32)
    explicit = preprocess_for_eval(image, 32, crop_fraction=32 / 64)
    np.testing.assert_array_equal(default.numpy(), explicit.numpy())


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_eval_on_bytes_equals_eval_on_the_decoded_image(fmt):
    data = encode(random_image(75, 101), fmt)
    decoded = tf.io.decode_image(data, channels=3)
    from_bytes = preprocess_for_eval(tf.constant(data), 40, 0.8).numpy()
    np.testing.assert_array_equal(from_bytes, preprocess_for_eval(decoded, 40, 0.8).numpy())
    assert from_bytes.min() >= 0.0 and from_bytes.max() <= 255.0


def test_eval_accepts_grayscale_and_rgba():
    gray = random_image()[:, :, :1]
    rgba = np.concatenate([random_image(), np.full((48, 64, 1), 255, np.uint8)], axis=-1)
    assert preprocess_for_eval(gray, 24).shape == (24, 24, 3)
    np.testing.assert_array_equal(preprocess_for_eval(rgba, 24).numpy(),
                                  preprocess_for_eval(rgba[:, :, :3], 24).numpy())


@pytest.mark.parametrize("kwargs, message", [
    ({"image_size": 0}, "image_size"),
    ({"image_size": 8, "crop_fraction": 0.0}, "crop_fraction"),
    ({"image_size": 8, "crop_fraction": 1.5}, "crop_fraction"),
])
def test_eval_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        preprocess_for_eval(random_image(), **kwargs)


def test_resize_keeps_bicubic_overshoot_inside_0_255():
    checkerboard = np.indices((16, 16)).sum(axis=0) % 2 * 255
    image = np.repeat(checkerboard[..., None], 3, axis=-1).astype(np.uint8)
    output = preprocess_for_eval(image, 37, crop_fraction=1.0).numpy()
    assert output.min() >= 0.0 and output.max() <= 255.0


def test_inception_crop_is_seeded_and_static():
    data = tf.constant(encode(random_image(120, 160), "JPEG"))
    first = inception_crop(data, 32, tf.constant([1, 2], tf.int64))
    assert first.shape == (32, 32, 3)
    np.testing.assert_array_equal(first.numpy(),
                                  inception_crop(data, 32, tf.constant([1, 2], tf.int64)).numpy())
    others = [inception_crop(data, 32, tf.constant([1, s], tf.int64)).numpy() for s in range(3, 7)]
    assert any(not np.array_equal(first.numpy(), other) for other in others)


def test_inception_crop_falls_back_to_the_center_crop():
    # A 2x900 strip has no box of aspect 3/4-4/3 covering 8% of it: every
    # attempt fails, and the reference takes the eval center crop instead.
    strip = encode(random_image(2, 900), "PNG")
    cropped = inception_crop(tf.constant(strip), 8, tf.constant([3, 4], tf.int64))
    np.testing.assert_array_equal(cropped.numpy(), preprocess_for_eval(strip, 8).numpy())


# -- augmentation --------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(augment.OPS))
def test_every_operation_keeps_shape_and_dtype(name):
    image = tf.constant(random_image(24, 32))
    output = augment.OPS[name](image, tf.constant(7.0), tf.constant([5, 6], tf.int64))
    assert output.dtype == tf.uint8 and output.shape == (24, 32, 3)


def test_operations_do_what_they_say():
    image = tf.constant(random_image(24, 32))
    seed = tf.constant([1, 1], tf.int64)
    np.testing.assert_array_equal(image_ops.invert(image_ops.invert(image)).numpy(), image.numpy())
    np.testing.assert_array_equal(image_ops.solarize(image, 256.0).numpy(), image.numpy())
    np.testing.assert_array_equal(image_ops.solarize(image, 0.0).numpy(), 255 - image.numpy())
    assert np.all(image_ops.posterize(image, 4).numpy() % 16 == 0)
    np.testing.assert_array_equal(image_ops.rotate(image, 0.0).numpy(), image.numpy())
    np.testing.assert_array_equal(image_ops.translate(image, 0.0, 0.0).numpy(), image.numpy())
    np.testing.assert_array_equal(image_ops.brightness(image, 1.0).numpy(), image.numpy())
    np.testing.assert_array_equal(image_ops.color(image, 1.0).numpy(), image.numpy())
    dull = tf.constant(np.random.default_rng(0).integers(100, 120, (24, 32, 3), dtype=np.uint8))
    stretched = image_ops.autocontrast(dull).numpy()
    assert stretched.min() == 0 and stretched.max() == 255
    assert np.ptp(image_ops.equalize(dull).numpy()) > 200
    shifted = image_ops.translate(image, 0.0, 5.0).numpy()  # content moves 5 px right
    np.testing.assert_array_equal(shifted[:, 5:], image.numpy()[:, :-5])
    assert np.all(shifted[:, :5] == image_ops.FILL_VALUE)
    patched = image_ops.cutout(image, tf.constant(4), seed).numpy()
    assert np.sum(np.all(patched == image_ops.FILL_VALUE, axis=-1)) >= 16


@pytest.mark.parametrize("policy", ["randaugment", "autoaugment", "seed003"])
def test_policies_are_seeded_and_change_images(policy):
    image = tf.constant(random_image(32, 32))
    apply = {
        "randaugment": lambda seed: augment.randaugment(image, seed, 2, 9.0),
        "autoaugment": lambda seed: augment.autoaugment(image, seed),
        "seed003": lambda seed: augment.random_rotate_shift_zoom(tf.cast(image, tf.float32), seed),
    }[policy]
    seed = tf.constant([4, 2], tf.int64)
    np.testing.assert_array_equal(apply(seed).numpy(), apply(seed).numpy())
    outputs = [apply(tf.constant([s, 9], tf.int64)).numpy() for s in range(4)]
    assert all(output.shape == (32, 32, 3) for output in outputs)
    assert any(not np.allclose(output, image.numpy()) for output in outputs)


def test_autoaugment_policy_is_the_imagenet_policy_v0():
    assert len(augment.AUTOAUGMENT_POLICY_V0) == 25
    assert augment.AUTOAUGMENT_POLICY_V0[0] == (("Equalize", 0.8, 1), ("ShearY", 0.8, 4))
    assert all(name in augment.OPS for sub in augment.AUTOAUGMENT_POLICY_V0 for name, _, _ in sub)
    assert set(augment.RANDAUGMENT_OPS) == set(augment.OPS)


@pytest.mark.parametrize("layers, magnitude", [(-1, 5.0), (2, -1.0), (2, 31.0), (1.5, 5.0)])
def test_randaugment_rejects_bad_settings(layers, magnitude):
    from efficientnet_tpu.data.options import DataOptions

    with pytest.raises(ValueError, match="randaugment"):
        DataOptions(randaugment_num_layers=layers, randaugment_magnitude=magnitude)
