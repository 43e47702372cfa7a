"""AutoAugment / RandAugment operations with the semantics of the code that
trained the released EfficientNet checkpoints (tensorflow/tpu,
models/official/efficientnet/autoaugment.py), reproduced from its formulas.

These differ from the AutoAugment paper's descriptions (augment.py's "paper"
semantics) in ways that change what the network sees:

- levels map to arguments as that file's ``level_to_arg`` does, with Python
  ``int()`` truncation: Solarize's threshold is ``int(level / 10 * 256)``
  (a higher level solarizes *less*, and 256 wraps to 0 in uint8, so level 10
  inverts everything), Posterize keeps ``int(level / 10 * 4)`` bits (the
  shift ``8 - bits`` wraps to uint8 and TensorFlow's shift kernels clamp it
  to 7, so levels 0-2 keep one bit), SolarizeAdd adds ``int(level / 10 * 110)``;
- translations are absolute pixels, ``level / 10 * translate_const`` (250 in
  AutoAugment, 100 in RandAugment), and Cutout a square of side
  ``2 * int(level / 10 * cutout_const)`` (100 / 40), whatever the image size;
- rotate, shear and translate sample the nearest pixel and fill uncovered
  pixels with (128, 128, 128); Cutout fills with 128 too;
- blends truncate to uint8 instead of rounding; Contrast blends towards a
  constant ``num_pixels / 256`` (the reference sums a histogram and divides
  by its bin count, which is not the mean intensity).

Levels are computed in float64, as Python floats in the reference, so that
``int()`` truncates at the same values. The random sign of the geometric ops
and the cutout position are stateless draws from the per-op seed.
"""

from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf

from efficientnet_tpu.data import image_ops

MAX_LEVEL = 10.0
REPLACE_VALUE = 128
# (translate_const, cutout_const) of distort_image_with_autoaugment and
# distort_image_with_randaugment.
AUTOAUGMENT_CONSTANTS = (250, 100)
RANDAUGMENT_CONSTANTS = (100, 40)

Op = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


# -- primitives ----------------------------------------------------------------

def _truncate_to_uint8(values: tf.Tensor) -> tf.Tensor:
    """Clip, then cast: the cast truncates, as the reference's ``tf.cast`` does."""
    return tf.cast(tf.clip_by_value(values, 0.0, 255.0), tf.uint8)


def to_uint8(image: tf.Tensor) -> tf.Tensor:
    """preprocessing.py's hand-over to the policies: clip to [0, 255] and cast (truncating)."""
    return image if image.dtype == tf.uint8 else _truncate_to_uint8(tf.cast(image, tf.float32))


def blend(degenerate: tf.Tensor, image: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """The reference's ``blend``: factor 0 gives `degenerate`, 1 the image; truncates."""
    degenerate = tf.cast(degenerate, tf.float32)
    mixed = degenerate + tf.cast(factor, tf.float32) * (tf.cast(image, tf.float32) - degenerate)
    return tf.ensure_shape(_truncate_to_uint8(mixed), image.shape)


def color(image: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    gray = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))
    return blend(gray, image, factor)


def contrast(image: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """Blend towards a constant gray of ``sum(histogram) / 256`` = pixels / 256 (the reference's quirk)."""
    shape = tf.shape(image)
    histogram_total = tf.cast(shape[0] * shape[1], tf.float32)
    degenerate = _truncate_to_uint8(tf.fill(shape, histogram_total / 256.0))
    return blend(degenerate, image, factor)


def brightness(image: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    return blend(tf.zeros_like(image), image, factor)


def sharpness(image: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """Blend with PIL's SMOOTH kernel (truncated to uint8); the border keeps the image's pixels."""
    values = tf.cast(image, tf.float32)
    kernel = tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])
    smooth = tf.nn.depthwise_conv2d(values[None], kernel, [1, 1, 1, 1], "VALID")[0]
    smooth = tf.pad(_truncate_to_uint8(smooth), [[1, 1], [1, 1], [0, 0]])
    interior = tf.pad(tf.ones(tf.shape(smooth) - [2, 2, 0], tf.bool), [[1, 1], [1, 1], [0, 0]])
    return blend(tf.where(interior, smooth, image), image, factor)


def autocontrast(image: tf.Tensor) -> tf.Tensor:
    """Per channel ``x * scale + offset`` with scale 255 / (hi - lo), offset -lo * scale; truncates."""
    values = tf.cast(image, tf.float32)
    low = tf.reduce_min(values, axis=[0, 1], keepdims=True)
    high = tf.reduce_max(values, axis=[0, 1], keepdims=True)
    scale = 255.0 / tf.where(high > low, high - low, 1.0)
    stretched = _truncate_to_uint8(values * scale + (-low * scale))
    return tf.ensure_shape(tf.where(high > low, stretched, image), image.shape)


def posterize(image: tf.Tensor, bits: tf.Tensor) -> tf.Tensor:
    """Shift right then left by ``8 - bits`` as a uint8 (negative shifts wrap; the kernels clamp to 7)."""
    shift = tf.cast(tf.math.floormod(8 - tf.cast(bits, tf.int64), 256), tf.uint8)
    return tf.bitwise.left_shift(tf.bitwise.right_shift(image, shift), shift)


def solarize(image: tf.Tensor, threshold: tf.Tensor) -> tf.Tensor:
    """Invert pixels at or above `threshold`, which is a uint8 as in the reference (256 wraps to 0)."""
    threshold = tf.cast(tf.math.floormod(tf.cast(threshold, tf.int64), 256), tf.uint8)
    return tf.where(image < threshold, image, 255 - image)


def solarize_add(image: tf.Tensor, addition: tf.Tensor, threshold: int = 128) -> tf.Tensor:
    added = tf.clip_by_value(tf.cast(image, tf.int64) + tf.cast(addition, tf.int64), 0, 255)
    return tf.where(image < threshold, tf.cast(added, tf.uint8), image)


def cutout(image: tf.Tensor, pad_size: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Gray rows [cy - pad, cy + pad) x columns [cx - pad, cx + pad), clipped to the image;
    the center is uniform over all pixels. pad_size 0 changes nothing."""
    shape = tf.shape(image)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    center_y = tf.random.stateless_uniform([], seeds[0], 0, shape[0], tf.int32)
    center_x = tf.random.stateless_uniform([], seeds[1], 0, shape[1], tf.int32)
    pad_size = tf.cast(pad_size, tf.int32)

    def span(length, center):
        index = tf.range(length)
        return (index >= center - pad_size) & (index < center + pad_size)

    inside = (span(shape[0], center_y)[:, None] & span(shape[1], center_x)[None, :])[:, :, None]
    return tf.where(inside, tf.constant(REPLACE_VALUE, tf.uint8), image)


def _nearest_transform(image: tf.Tensor, transform: tf.Tensor) -> tf.Tensor:
    # The reference's wrap/unwrap grays exactly the pixels whose nearest source
    # is outside the image; with nearest sampling that is a constant fill.
    return image_ops.projective_transform(image, transform, interpolation="NEAREST",
                                          fill_value=float(REPLACE_VALUE))


def rotate(image: tf.Tensor, radians: tf.Tensor) -> tf.Tensor:
    """tf.contrib.image.rotate's transform: counterclockwise about the image center."""
    shape = tf.shape(image)
    height = tf.cast(shape[0], tf.float32)
    width = tf.cast(shape[1], tf.float32)
    radians = tf.cast(radians, tf.float32)
    cos, sin = tf.cos(radians), tf.sin(radians)
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    return _nearest_transform(image, tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0]))


def translate(image: tf.Tensor, pixels_x: tf.Tensor, pixels_y: tf.Tensor) -> tf.Tensor:
    """Output pixel (x, y) reads input (x + pixels_x, y + pixels_y): positive moves content left/up."""
    return _nearest_transform(image, tf.stack(
        [1.0, 0.0, tf.cast(pixels_x, tf.float32), 0.0, 1.0, tf.cast(pixels_y, tf.float32), 0.0, 0.0]))


def shear_x(image: tf.Tensor, level: tf.Tensor) -> tf.Tensor:
    return _nearest_transform(image, tf.stack(
        [1.0, tf.cast(level, tf.float32), 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]))


def shear_y(image: tf.Tensor, level: tf.Tensor) -> tf.Tensor:
    return _nearest_transform(image, tf.stack(
        [1.0, 0.0, 0.0, tf.cast(level, tf.float32), 1.0, 0.0, 0.0, 0.0]))


# -- levels to arguments (the reference's level_to_arg) --------------------------

def random_sign(value: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """`value` or `-value` with probability 1/2 each (``_randomly_negate_tensor``)."""
    negate = tf.random.stateless_uniform([], seed) < 0.5
    return tf.where(negate, -value, value)


def _fraction(level: tf.Tensor, scale: float) -> tf.Tensor:
    """``level / 10 * scale`` in float64, as the reference computes it in Python."""
    return level / MAX_LEVEL * scale


def _int(value: tf.Tensor) -> tf.Tensor:
    return tf.cast(value, tf.int64)  # truncation toward zero, like Python's int()


def _enhance(level: tf.Tensor) -> tf.Tensor:
    return _fraction(level, 1.8) + 0.1


def make_ops(translate_const: float, cutout_const: float) -> dict[str, Op]:
    """The sixteen operations as (uint8 image, level, seed) -> uint8 image."""

    def geometric(function, scale):
        def op(image, level, seed):
            return function(image, tf.cast(random_sign(_fraction(level, scale), seed), tf.float32))
        return op

    def rotate_op(image, level, seed):
        degrees = random_sign(_fraction(level, 30.0), seed)
        return rotate(image, degrees * (math.pi / 180.0))

    def translate_x_op(image, level, seed):
        return translate(image, random_sign(_fraction(level, float(translate_const)), seed), 0.0)

    def translate_y_op(image, level, seed):
        return translate(image, 0.0, random_sign(_fraction(level, float(translate_const)), seed))

    return {
        "AutoContrast": lambda image, level, seed: autocontrast(image),
        "Equalize": lambda image, level, seed: image_ops.equalize(image),
        "Invert": lambda image, level, seed: image_ops.invert(image),
        "Rotate": rotate_op,
        "Posterize": lambda image, level, seed: posterize(image, _int(_fraction(level, 4.0))),
        "Solarize": lambda image, level, seed: solarize(image, _int(_fraction(level, 256.0))),
        "SolarizeAdd": lambda image, level, seed: solarize_add(
            image, _int(_fraction(level, 110.0))),
        "Color": lambda image, level, seed: color(image, _enhance(level)),
        "Contrast": lambda image, level, seed: contrast(image, _enhance(level)),
        "Brightness": lambda image, level, seed: brightness(image, _enhance(level)),
        "Sharpness": lambda image, level, seed: sharpness(image, _enhance(level)),
        "ShearX": geometric(shear_x, 0.3),
        "ShearY": geometric(shear_y, 0.3),
        "TranslateX": translate_x_op,
        "TranslateY": translate_y_op,
        "Cutout": lambda image, level, seed: cutout(
            image, _int(_fraction(level, float(cutout_const))), seed),
    }
