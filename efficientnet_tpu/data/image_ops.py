"""Photometric and geometric image operations for AutoAugment and RandAugment.

Each takes and returns a uint8 `[h, w, 3]` image (the domain the policies
were searched in), keeps the static shape so the ops can be branches of one
`tf.switch_case`, and is written with plain TF ops so it runs inside
tf.data on any host.
"""

from __future__ import annotations

import tensorflow as tf

# Pixels uncovered by a geometric op, and the cutout patch, are mid-gray as in the reference.
FILL_VALUE = 128


def _to_uint8(image: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def _same_shape(result: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    result.set_shape(like.shape)
    return result


def blend(degenerate: tf.Tensor, image: tf.Tensor, factor: tf.Tensor | float) -> tf.Tensor:
    """Interpolate (factor in [0, 1]) or extrapolate (factor > 1) from degenerate to image."""
    degenerate = tf.cast(degenerate, tf.float32)
    mixed = degenerate + factor * (tf.cast(image, tf.float32) - degenerate)
    return _same_shape(_to_uint8(mixed), image)


# -- photometric -------------------------------------------------------------

def invert(image: tf.Tensor) -> tf.Tensor:
    return 255 - image


def solarize(image: tf.Tensor, threshold: float) -> tf.Tensor:
    """Invert every pixel at or above threshold (256: no change, 0: full inversion)."""
    return tf.where(tf.cast(image, tf.float32) < threshold, image, 255 - image)


def solarize_add(image: tf.Tensor, addition: float, threshold: float = 128.0) -> tf.Tensor:
    """Brighten every pixel below threshold by `addition`."""
    values = tf.cast(image, tf.float32)
    return tf.where(values < threshold, _to_uint8(values + addition), image)


def posterize(image: tf.Tensor, bits: tf.Tensor | int) -> tf.Tensor:
    """Keep the `bits` most significant bits (1-8) of every channel."""
    shift = tf.cast(8 - tf.clip_by_value(tf.cast(bits, tf.int32), 1, 8), tf.uint8)
    return tf.bitwise.left_shift(tf.bitwise.right_shift(image, shift), shift)


def _grayscale(image: tf.Tensor) -> tf.Tensor:
    return tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))


def color(image: tf.Tensor, factor: float) -> tf.Tensor:
    """Saturation: 0 gives grayscale, 1 the image, above 1 more saturated."""
    gray = tf.image.grayscale_to_rgb(_grayscale(image))
    return blend(gray, image, factor)


def contrast(image: tf.Tensor, factor: float) -> tf.Tensor:
    """Contrast against the image's mean gray level."""
    mean = tf.reduce_mean(_grayscale(image))
    return blend(tf.fill(tf.shape(image), mean), image, factor)


def brightness(image: tf.Tensor, factor: float) -> tf.Tensor:
    return blend(tf.zeros_like(image), image, factor)


def sharpness(image: tf.Tensor, factor: float) -> tf.Tensor:
    """Blend with a smoothed copy (PIL's SMOOTH kernel); border pixels are left as they are."""
    values = tf.cast(image, tf.float32)
    kernel = tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])
    smooth = tf.nn.depthwise_conv2d(values[None], kernel, [1, 1, 1, 1], "VALID")[0]
    interior = tf.pad(tf.ones_like(smooth, tf.bool), [[1, 1], [1, 1], [0, 0]])
    degenerate = tf.where(interior, tf.pad(tf.round(smooth), [[1, 1], [1, 1], [0, 0]]), values)
    return blend(degenerate, image, factor)


def autocontrast(image: tf.Tensor) -> tf.Tensor:
    """Stretch each channel so its darkest pixel is 0 and its brightest 255."""
    values = tf.cast(image, tf.float32)
    low = tf.reduce_min(values, axis=[0, 1], keepdims=True)
    high = tf.reduce_max(values, axis=[0, 1], keepdims=True)
    stretched = (values - low) * (255.0 / tf.maximum(high - low, 1.0))
    return _same_shape(_to_uint8(tf.where(high > low, stretched, values)), image)


def _equalize_channel(channel: tf.Tensor) -> tf.Tensor:
    """PIL-style histogram equalization of one uint8 channel."""
    values = tf.cast(channel, tf.int32)
    histogram = tf.math.bincount(values, minlength=256, maxlength=256)
    last_used_level = tf.reduce_max(tf.where(histogram > 0, tf.range(256), 0))
    step = (tf.reduce_sum(histogram) - histogram[last_used_level]) // 255
    safe_step = tf.maximum(step, 1)
    lookup = (tf.cumsum(histogram) + safe_step // 2) // safe_step
    lookup = tf.clip_by_value(tf.concat([[0], lookup[:-1]], axis=0), 0, 255)
    # A channel with (almost) a single level has nothing to equalize.
    return tf.where(step > 0, tf.cast(tf.gather(lookup, values), tf.uint8), channel)


def equalize(image: tf.Tensor) -> tf.Tensor:
    channels = [_equalize_channel(image[:, :, c]) for c in range(3)]
    return _same_shape(tf.stack(channels, axis=-1), image)


def cutout(image: tf.Tensor, half_size: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Fill a square of side 2 * half_size, centered at a random pixel, with gray."""
    shape = tf.shape(image)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    center_y = tf.random.stateless_uniform([], seeds[0], 0, shape[0], tf.int32)
    center_x = tf.random.stateless_uniform([], seeds[1], 0, shape[1], tf.int32)
    inside_y = tf.abs(tf.range(shape[0]) - center_y) < half_size
    inside_x = tf.abs(tf.range(shape[1]) - center_x) < half_size
    inside = tf.logical_and(inside_y[:, None], inside_x[None, :])[:, :, None]
    return tf.where(inside, tf.constant(FILL_VALUE, tf.uint8), image)


# -- geometric ---------------------------------------------------------------

def projective_transform(image: tf.Tensor, transform: tf.Tensor, *, fill_mode: str = "CONSTANT",
                         fill_value: float = FILL_VALUE,
                         interpolation: str = "BILINEAR") -> tf.Tensor:
    """Apply an 8-parameter transform mapping output pixels to input pixels.

    Works on uint8 or float images and returns the same dtype. NEAREST rounds
    the source coordinate half away from zero, as tf.contrib.image did.
    """
    shape = tf.shape(image)
    output = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(image, tf.float32)[None],
        transforms=tf.cast(transform, tf.float32)[None],
        output_shape=shape[:2], fill_value=tf.constant(fill_value, tf.float32),
        interpolation=interpolation, fill_mode=fill_mode)[0]
    output = _to_uint8(output) if image.dtype == tf.uint8 else tf.cast(output, image.dtype)
    return _same_shape(output, image)


def affine_matrix(shape: tf.Tensor, *, angle: tf.Tensor | float = 0.0,
                  scale: tf.Tensor | float = 1.0, shift_y: tf.Tensor | float = 0.0,
                  shift_x: tf.Tensor | float = 0.0) -> tf.Tensor:
    """Rotate by `angle` radians (counterclockwise) and zoom by `scale` about the
    center, then shift by (shift_y, shift_x) pixels, as an output-to-input map."""
    height = tf.cast(shape[0], tf.float32)
    width = tf.cast(shape[1], tf.float32)
    center_x, center_y = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    angle = tf.cast(angle, tf.float32)
    scale = tf.cast(scale, tf.float32)
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    # input = center + R(-angle) / scale * (output - center - shift)
    moved_x = center_x + tf.cast(shift_x, tf.float32)
    moved_y = center_y + tf.cast(shift_y, tf.float32)
    return tf.stack([cos, sin, center_x - (cos * moved_x + sin * moved_y),
                     -sin, cos, center_y - (-sin * moved_x + cos * moved_y), 0.0, 0.0])


def rotate(image: tf.Tensor, degrees: tf.Tensor | float) -> tf.Tensor:
    radians = tf.cast(degrees, tf.float32) * (3.141592653589793 / 180.0)
    return projective_transform(image, affine_matrix(tf.shape(image), angle=radians))


def shear_x(image: tf.Tensor, level: tf.Tensor | float) -> tf.Tensor:
    level = tf.cast(level, tf.float32)
    return projective_transform(image, tf.stack([1.0, level, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]))


def shear_y(image: tf.Tensor, level: tf.Tensor | float) -> tf.Tensor:
    level = tf.cast(level, tf.float32)
    return projective_transform(image, tf.stack([1.0, 0.0, 0.0, level, 1.0, 0.0, 0.0, 0.0]))


def translate(image: tf.Tensor, shift_y: tf.Tensor | float,
              shift_x: tf.Tensor | float) -> tf.Tensor:
    return projective_transform(
        image, affine_matrix(tf.shape(image), shift_y=shift_y, shift_x=shift_x))
