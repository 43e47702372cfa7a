"""augment.apply_op(semantics="reference") against the formulas of the code that
trained the released EfficientNet checkpoints, on real photographs.

Every expected image here is computed independently with NumPy / PIL from the
formulas of tensorflow/tpu, models/official/efficientnet/autoaugment.py
(function names cited per op), and of the TensorFlow functions it calls
(tf.image.rgb_to_grayscale, tf.contrib.image.rotate / translate / transform
with their default NEAREST interpolation and zero fill, which the file's
wrap/unwrap turns into (128, 128, 128)). The bar: within one intensity level
on 99.9% of the pixels (float32 rounding may move a truncation by one, or a
nearest-neighbour source at exact half-pixel positions).

The photographs are scikit-learn's bundled sample images (china.jpg,
flower.jpg): real JPEG photographs that ship with an installed package.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
PIL = pytest.importorskip("PIL")
from PIL import Image, ImageOps  # noqa: E402
from sklearn.datasets import load_sample_image  # noqa: E402

from efficientnet_tpu.data import augment  # noqa: E402

AUTOAUGMENT = (250, 100)   # distort_image_with_autoaugment: translate_const, cutout_const
RANDAUGMENT = (100, 40)    # distort_image_with_randaugment
SIGNED = {"Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"}  # _randomly_negate_tensor


def photo(name: str, size: int) -> np.ndarray:
    image = load_sample_image(name)
    side = min(image.shape[:2])
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    square = Image.fromarray(image[top:top + side, left:left + side])
    return np.asarray(square.resize((size, size), Image.BICUBIC), np.uint8)


# -- the reference's formulas, in NumPy -------------------------------------------

def f32(value) -> np.float32:
    return np.float32(value)


def blend(degenerate, image, factor):
    """autoaugment.py blend: degenerate + factor * (image - degenerate), clipped, cast (truncates)."""
    degenerate = degenerate.astype(np.float32)
    mixed = degenerate + f32(factor) * (image.astype(np.float32) - degenerate)
    return np.clip(mixed, 0, 255).astype(np.uint8)


def grayscale(image):
    """tf.image.rgb_to_grayscale on uint8: x / 255 . (0.2989, 0.5870, 0.1140), times 255.5, cast."""
    weights = np.array([0.2989, 0.5870, 0.1140], np.float32)
    gray = (image.astype(np.float32) * f32(1 / 255.0)) @ weights
    return (gray * f32(255.5)).astype(np.uint8)[..., None]


def enhance_factor(level):  # autoaugment.py _enhance_level_to_arg
    return (level / 10.0) * 1.8 + 0.1


def nearest_warp(image, transform):
    """tf.contrib.image.transform, NEAREST: output (x, y) reads input
    ((a0 x + a1 y + a2), (b0 x + b1 y + b2)) rounded half away from zero; outside -> 128
    (autoaugment.py wrap/unwrap with replace [128, 128, 128])."""
    height, width = image.shape[:2]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    a0, a1, a2, b0, b1, b2 = (f32(t) for t in transform[:6])
    source_x = a0 * x + a1 * y + a2
    source_y = b0 * x + b1 * y + b2
    round_away = lambda v: (np.sign(v) * np.floor(np.abs(v) + f32(0.5))).astype(np.int64)  # noqa: E731
    sx, sy = round_away(source_x), round_away(source_y)
    inside = (sx >= 0) & (sx < width) & (sy >= 0) & (sy < height)
    output = np.full_like(image, 128)
    output[inside] = image[sy[inside], sx[inside]]
    return output


def rotate_transform(degrees, height, width):
    """tf.contrib.image.angles_to_projective_transforms in float32."""
    radians = f32(degrees * math.pi / 180.0)
    cos, sin = np.cos(radians), np.sin(radians)
    w1, h1 = f32(width - 1), f32(height - 1)
    x_offset = (w1 - (cos * w1 - sin * h1)) / f32(2)
    y_offset = (h1 - (sin * w1 + cos * h1)) / f32(2)
    return [cos, -sin, x_offset, sin, cos, y_offset]


def expected(name, image, level, sign, constants):
    """One operation of autoaugment.py at `level` (sign: the draw of _randomly_negate_tensor)."""
    translate_const, cutout_const = constants
    height, width = image.shape[:2]
    pil = Image.fromarray(image)
    if name == "AutoContrast":  # autocontrast: per channel x * scale + offset, truncated
        values = image.astype(np.float32)
        low = values.min(axis=(0, 1), keepdims=True)
        high = values.max(axis=(0, 1), keepdims=True)
        scale = f32(255) / np.where(high > low, high - low, f32(1))
        stretched = np.clip(values * scale + (-low * scale), 0, 255).astype(np.uint8)
        return np.where(high > low, stretched, image)
    if name == "Equalize":  # equalize: "Implements Equalize function from PIL"
        return np.asarray(ImageOps.equalize(pil))
    if name == "Invert":  # invert
        return 255 - image
    if name == "Posterize":  # level_to_arg: int(level/10 * 4) bits; posterize: shift 8 - bits
        bits = int((level / 10.0) * 4)
        # The Python int becomes a uint8 in the TF1 graph (wrapping modulo 256) and
        # TensorFlow's shift kernels clamp a uint8 shift to 7.
        shift = min((8 - bits) % 256, 7)
        return np.asarray(ImageOps.posterize(pil, 8 - shift))
    if name == "Solarize":  # level_to_arg: int(level/10 * 256); solarize: image < threshold
        threshold = int((level / 10.0) * 256) % 256  # a uint8 in the graph: 256 wraps to 0
        return np.asarray(ImageOps.solarize(pil, threshold))
    if name == "SolarizeAdd":  # int(level/10 * 110); solarize_add, threshold 128
        added = np.clip(image.astype(np.int64) + int((level / 10.0) * 110), 0, 255).astype(np.uint8)
        return np.where(image < 128, added, image)
    if name == "Color":  # color: blend with grayscale_to_rgb(rgb_to_grayscale(image))
        return blend(np.repeat(grayscale(image), 3, axis=-1), image, enhance_factor(level))
    if name == "Contrast":  # contrast: "mean" = sum(histogram) / 256 = pixels / 256
        mean = min(height * width / 256.0, 255.0)
        return blend(np.full_like(image, int(mean)), image, enhance_factor(level))
    if name == "Brightness":  # brightness: blend with zeros
        return blend(np.zeros_like(image), image, enhance_factor(level))
    if name == "Sharpness":  # sharpness: SMOOTH kernel, VALID, cast; border from the image
        # The smoothed value is an integer sum / 13. Where it is a whole number, the
        # float32 convolution may land just below it and truncate one lower: both count.
        values = image.astype(np.int64)
        weights = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]])
        sums = sum(weights[i, j] * values[i:height - 2 + i, j:width - 2 + j]
                   for i in range(3) for j in range(3))
        results = []
        for smooth in (sums // 13, np.where(sums % 13 == 0, sums // 13 - 1, sums // 13)):
            degenerate = image.copy()
            degenerate[1:-1, 1:-1] = np.clip(smooth, 0, 255).astype(np.uint8)
            results.append(blend(degenerate, image, enhance_factor(level)))
        return np.stack(results)
    if name == "Rotate":  # _rotate_level_to_arg: level/10 * 30 degrees; rotate
        return nearest_warp(image, rotate_transform(sign * level / 10.0 * 30.0, height, width))
    if name == "ShearX":  # _shear_level_to_arg: level/10 * 0.3; shear_x [1, level, 0, 0, 1, 0]
        return nearest_warp(image, [1, sign * level / 10.0 * 0.3, 0, 0, 1, 0])
    if name == "ShearY":
        return nearest_warp(image, [1, 0, 0, sign * level / 10.0 * 0.3, 1, 0])
    pixels = sign * (level / 10.0) * float(translate_const)  # _translate_level_to_arg
    if name == "TranslateX":  # translate_x: contrib translate([-pixels, 0]) -> [1, 0, pixels, ...]
        return nearest_warp(image, [1, 0, pixels, 0, 1, 0])
    if name == "TranslateY":
        return nearest_warp(image, [1, 0, 0, 0, 1, pixels])
    raise KeyError(name)


def cutout_expected(image, output, level, cutout_const):
    """cutout: rows [cy - pad, cy + pad) x columns [cx - pad, cx + pad), clipped, set to 128,
    pad = int(level/10 * cutout_const). The random center is read off the output."""
    pad = int((level / 10.0) * cutout_const)
    height, width = image.shape[:2]
    changed = np.any(output != image, axis=-1)
    result = image.copy()
    if pad == 0 or not changed.any():
        return result
    rows, columns = np.nonzero(changed.any(axis=1))[0], np.nonzero(changed.any(axis=0))[0]

    def extent(first, last, length):
        center = first + pad if first > 0 else last + 1 - pad
        return max(0, center - pad), min(length, center + pad)

    top, bottom = extent(rows[0], rows[-1], height)
    left, right = extent(columns[0], columns[-1], width)
    result[top:bottom, left:right] = 128
    return result


def close_fraction(output, wanted) -> float:
    """Share of values within one level of `wanted` (or of the nearest of a stack of candidates)."""
    wanted = wanted.astype(np.int32)
    if wanted.ndim == output.ndim + 1:
        difference = np.min(np.abs(output.astype(np.int32)[None] - wanted), axis=0)
    else:
        difference = np.abs(output.astype(np.int32) - wanted)
    return float(np.mean(difference <= 1))


# -- the code under test -----------------------------------------------------------

_RUNNERS: dict = {}


def run_op(image, name, level, seed, constants):
    """augment.apply_op under tf.function (as tf.data runs it), one trace per shape and constants."""
    key = (image.shape, constants)
    if key not in _RUNNERS:
        _RUNNERS[key] = tf.function(
            lambda image, index, level, seed: augment.apply_op(
                image, index, level, seed, semantics="reference",
                translate_const=constants[0], cutout_const=constants[1]),
            input_signature=[tf.TensorSpec(image.shape, tf.uint8), tf.TensorSpec([], tf.int32),
                             tf.TensorSpec([], tf.float64), tf.TensorSpec([2], tf.int64)])
    return _RUNNERS[key](image, augment.OP_NAMES.index(name), level,
                         tf.constant([seed, 17], tf.int64)).numpy()


def check_op(name, image, level, constants):
    """Matches the reference at `level`; for signed ops both signs occur and each matches."""
    if name == "Cutout":
        for seed in range(3):
            output = run_op(image, name, level, seed, constants)
            wanted = cutout_expected(image, output, level, constants[1])
            assert close_fraction(output, wanted) >= 0.999, (name, level, seed)
        return
    if name not in SIGNED:
        output = run_op(image, name, level, 0, constants)
        fraction = close_fraction(output, expected(name, image, level, 1, constants))
        assert fraction >= 0.999, (name, level, fraction)
        return
    candidates = {sign: expected(name, image, level, sign, constants) for sign in (1, -1)}
    seen = set()
    for seed in range(12):
        output = run_op(image, name, level, seed, constants)
        fractions = {sign: close_fraction(output, wanted) for sign, wanted in candidates.items()}
        sign = max(fractions, key=fractions.get)
        assert fractions[sign] >= 0.999, (name, level, seed, fractions)
        seen.add(sign)
        if len(seen) == 2:
            break
    # Level 0, or a shift past the whole image (250 px at 224), looks the same either way.
    same = close_fraction(candidates[1], candidates[-1]) >= 0.999
    assert seen == {1, -1} or same, (name, level, seen)


OPS = sorted(augment.OP_NAMES)


@pytest.mark.parametrize("name", OPS)
def test_op_at_autoaugment_levels_0_to_10_on_photographs(name):
    """AutoAugment's constants (250 / 100 px), 224 px photographs, every level of the policy scale."""
    for photo_name in ("china.jpg", "flower.jpg"):
        image = photo(photo_name, 224)
        for level in range(11):
            check_op(name, image, float(level), AUTOAUGMENT)


@pytest.mark.parametrize("name", OPS)
def test_op_at_randaugment_magnitudes_up_to_30_at_224_and_600_px(name):
    """RandAugment's constants (100 / 40 px), magnitudes past 10 (B5's 17, B7's 28, the bound 30)."""
    for size, magnitudes in ((224, (5.0, 9.0, 17.0, 28.0, 30.0)), (600, (9.0, 17.0, 28.0, 30.0))):
        image = photo("china.jpg" if size == 224 else "flower.jpg", size)
        for magnitude in magnitudes:
            check_op(name, image, magnitude, RANDAUGMENT)


def test_reference_quirks_the_checkpoints_were_trained_with():
    """The numbers that differ most from the paper's semantics, spelled out."""
    image = photo("china.jpg", 600)
    # B7's TranslateX at magnitude 28 shifts 280 px of 600: 280 / 600 of the pixels gray, not all.
    shifted = run_op(image, "TranslateX", 28.0, 0, RANDAUGMENT)
    gray = np.mean(np.all(shifted == 128, axis=-1))
    assert abs(gray - 280 / 600) < 0.01
    # Cutout at 28: a square of side 2 * int(2.8 * 40) = 224 px, at most 14% of 600 x 600.
    patched = run_op(image, "Cutout", 28.0, 3, RANDAUGMENT)
    assert 0 < np.mean(np.any(patched != image, axis=-1)) <= 224 * 224 / 600 ** 2 + 1e-9
    # Solarize at level 10: int(256) wraps to 0 in uint8, so every pixel is inverted.
    np.testing.assert_array_equal(run_op(image, "Solarize", 10.0, 0, AUTOAUGMENT), 255 - image)
    # Posterize at level 2: int(0.8) = 0 bits, shift 8 clamped to 7: one bit kept, not black.
    np.testing.assert_array_equal(run_op(image, "Posterize", 2.0, 0, AUTOAUGMENT), image & 128)
    # Contrast's degenerate gray is pixels / 256 (196 at 224 px), not the mean intensity.
    small = photo("flower.jpg", 224)
    np.testing.assert_array_equal(run_op(small, "Contrast", 0.0, 0, AUTOAUGMENT),
                                  blend(np.full_like(small, 196), small, 0.1))


def test_autoaugment_and_randaugment_use_the_reference_constants():
    """distort_image_with_autoaugment's policy 'test' ([TranslateX 1.0 4, Equalize 1.0 10])
    translates 100 px (250 * 0.4) then equalizes; RandAugment's TranslateX at 10 moves 100 px."""
    image = photo("flower.jpg", 224)
    policy = ((("TranslateX", 1.0, 4), ("Equalize", 1.0, 10)),)
    wanted = {sign: np.asarray(ImageOps.equalize(Image.fromarray(
        expected("TranslateX", image, 4.0, sign, AUTOAUGMENT)))) for sign in (1, -1)}
    for seed in range(3):
        output = augment.autoaugment(tf.constant(image), tf.constant([seed, 5], tf.int64),
                                     policy=policy).numpy()
        assert max(close_fraction(output, w) for w in wanted.values()) >= 0.999
    candidates = [expected(name, image, 10.0, sign, RANDAUGMENT)
                  for name in augment.RANDAUGMENT_OPS if name != "Cutout" for sign in (1, -1)]
    for seed in range(4):
        output = augment.randaugment(tf.constant(image), tf.constant([seed, 3], tf.int64),
                                     num_layers=1, magnitude=10.0).numpy()
        is_cutout = np.all(output[np.any(output != image, axis=-1)] == 128)
        assert is_cutout or max(close_fraction(output, c) for c in candidates) >= 0.999


def test_paper_semantics_stay_available_and_scale_with_the_image():
    """The deliberate deviation: translation is a fraction of the side (45% at level 10)."""
    image = photo("china.jpg", 224)
    index = tf.constant(augment.OP_NAMES.index("TranslateX"))
    output = augment.apply_op(tf.constant(image), index, 10.0, tf.constant([0, 1], tf.int64),
                              semantics="paper").numpy()
    gray_columns = np.mean(np.all(output == 128, axis=(0, 2)))
    assert abs(gray_columns - 0.45) < 0.02
    with pytest.raises(ValueError, match="semantics"):
        augment.apply_op(tf.constant(image), index, 1.0, tf.constant([0, 1], tf.int64),
                         semantics="exact")


def test_the_crop_reaches_the_policies_truncated_as_in_preprocessing_py():
    """preprocessing.py preprocess_for_train: clip to [0, 255], then cast to uint8 (truncation)."""
    from efficientnet_tpu.data import reference_ops

    values = tf.constant([[[-3.0, 0.9, 254.99], [255.7, 127.5, 128.2]]])
    np.testing.assert_array_equal(reference_ops.to_uint8(values).numpy(), [[[0, 0, 254], [255, 127, 128]]])
