"""The reference EfficientNet preprocessing, as pure per-example TF functions.

Training crops an Inception-style random box (area 0.08-1, aspect 3/4-4/3,
10 attempts, center-crop fallback) and decodes only that box of a JPEG
(`decode_and_crop_jpeg`), which is most of the pipeline's speed. Eval takes a
center square of `crop_fraction` of the shorter side. Both resize bicubically
(the lite networks bilinearly, in training, eval and serving: their
reference's resize) to the output size and keep pixels as floats in [0, 255]: normalization
belongs to the model. Randomness is stateless (an explicit `[2]` seed per
example) so a seeded pipeline is reproducible whatever the parallelism.
"""

from __future__ import annotations

import numbers
from typing import Callable

import tensorflow as tf

from efficientnet_tpu.data.choices import CROP_FRACTION, RESIZE_METHODS
from efficientnet_tpu.data.info import default_crop_fraction

# Inception crop parameters of the reference.
CROP_AREA_RANGE = (0.08, 1.0)
CROP_ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)
CROP_MIN_OBJECT_COVERED = 0.1
CROP_MAX_ATTEMPTS = 10

Window = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]  # offset_y, offset_x, height, width


def is_int(value) -> bool:
    """Python or numpy integers (from configs), not bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_image_size(image_size: int) -> int:
    if not (is_int(image_size) and image_size >= 1):
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    return int(image_size)


def check_crop_fraction(crop_fraction: float) -> float:
    """The eval crop of a direct caller (export, serving), checked by the option's own rule."""
    CROP_FRACTION.check("crop_fraction", crop_fraction, prefix="")
    return float(crop_fraction)


def decode_image(image_bytes: tf.Tensor, *, fast_jpeg: bool = False) -> tf.Tensor:
    """Decode JPEG, PNG (or BMP/GIF) bytes to uint8 `[h, w, 3]`.

    `fast_jpeg` decodes JPEGs at 1/8 scale: every byte is still parsed, so it
    is a cheap way to check a file is intact.
    """
    def jpeg() -> tf.Tensor:
        return tf.image.decode_jpeg(image_bytes, channels=3, ratio=8 if fast_jpeg else 1)

    def other() -> tf.Tensor:
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False,
                                   dtype=tf.uint8)
        image.set_shape([None, None, 3])
        return image

    return tf.cond(tf.io.is_jpeg(image_bytes), jpeg, other)


def _decode_and_crop(image_bytes: tf.Tensor,
                     window_fn: Callable[[tf.Tensor], Window]) -> tf.Tensor:
    """Decode only the window of a JPEG (fused); decode then slice other formats."""
    def jpeg() -> tf.Tensor:
        offset_y, offset_x, height, width = window_fn(tf.image.extract_jpeg_shape(image_bytes))
        window = tf.stack([offset_y, offset_x, height, width])
        return tf.image.decode_and_crop_jpeg(image_bytes, window, channels=3)

    def other() -> tf.Tensor:
        image = decode_image(image_bytes)
        return _crop(image, window_fn(tf.shape(image)))

    return tf.cond(tf.io.is_jpeg(image_bytes), jpeg, other)


def _crop(image: tf.Tensor, window: Window) -> tf.Tensor:
    offset_y, offset_x, height, width = window
    return image[offset_y:offset_y + height, offset_x:offset_x + width]


def center_crop_window(shape: tf.Tensor, crop_fraction: float) -> Window:
    """A centered square of crop_fraction of the shorter side (the reference eval crop)."""
    height, width = shape[0], shape[1]
    size = tf.cast(crop_fraction * tf.cast(tf.minimum(height, width), tf.float32), tf.int32)
    size = tf.maximum(size, 1)
    return (height - size + 1) // 2, (width - size + 1) // 2, size, size


def inception_crop_window(shape: tf.Tensor, seed: tf.Tensor, image_size: int,
                          area_range: tuple[float, float] = CROP_AREA_RANGE) -> Window:
    """A random box of `area_range` of the area (reference: 8%-100%) and aspect 3/4-4/3.

    When all 10 attempts fail the sampler returns the whole image; the
    reference then falls back to the eval center crop, and so do we.
    """
    whole_image = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4])
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, bounding_boxes=whole_image, seed=seed,
        min_object_covered=CROP_MIN_OBJECT_COVERED,
        aspect_ratio_range=CROP_ASPECT_RATIO_RANGE, area_range=area_range,
        max_attempts=CROP_MAX_ATTEMPTS, use_image_if_no_bounding_boxes=True)
    random_window = (begin[0], begin[1], size[0], size[1])
    failed = tf.logical_and(tf.equal(size[0], shape[0]), tf.equal(size[1], shape[1]))
    center_window = center_crop_window(shape, default_crop_fraction(image_size))
    return tuple(tf.where(failed, center, chosen)
                 for center, chosen in zip(center_window, random_window))


def resize(image: tf.Tensor, image_size: int, method: str = "bicubic") -> tf.Tensor:
    """Resize to `[image_size, image_size, 3]` float32, clipped to [0, 255].

    Bicubic (the reference's default) overshoots at edges; clipping keeps the
    promised pixel range. The lite networks' reference pipeline is bilinear
    (`ModelSpec.resize_method`, carried as `DataOptions.resize_method`).
    """
    if method not in RESIZE_METHODS:
        raise ValueError(f"resize method must be one of {', '.join(RESIZE_METHODS)}, got {method!r}")
    static = image.shape
    if static[0] == image_size and static[1] == image_size:
        resized = tf.cast(image, tf.float32)
    else:
        resized = tf.image.resize(image, [image_size, image_size], method=method)
        resized = tf.clip_by_value(resized, 0.0, 255.0)
    return tf.ensure_shape(resized, [image_size, image_size, 3])


def _as_rgb(image: tf.Tensor) -> tf.Tensor:
    """A decoded image as `[h, w, 3]`: grayscale tiled, alpha dropped."""
    if image.shape.rank != 3:
        raise ValueError(f"expected an image [height, width, channels], got shape {image.shape}")
    channels = image.shape[-1]
    if channels == 1:
        return tf.image.grayscale_to_rgb(image)
    if channels == 4:
        return image[..., :3]
    if channels != 3:
        raise ValueError(f"expected 1, 3 or 4 channels, got shape {image.shape}")
    return image


def preprocess_for_eval(image: tf.Tensor, image_size: int,
                        crop_fraction: float | None = None, resize_method: str = "bicubic") -> tf.Tensor:
    """The eval transform, shared by the eval pipeline and the exported model.

    `image` is encoded JPEG/PNG bytes (decoded fused with the crop) or a
    decoded `[h, w, c]` image with values in [0, 255]. The result is float32
    `[image_size, image_size, 3]` in [0, 255]. `crop_fraction=None` means the
    reference's image_size / (image_size + 32); use 1.0 for the whole image.
    """
    image_size = check_image_size(image_size)
    crop_fraction = check_crop_fraction(
        default_crop_fraction(image_size) if crop_fraction is None else crop_fraction)
    image = tf.convert_to_tensor(image)
    window_fn = lambda shape: center_crop_window(shape, crop_fraction)  # noqa: E731
    if image.dtype == tf.string:
        cropped = _decode_and_crop(image, window_fn)
    else:
        image = _as_rgb(image)
        cropped = image if crop_fraction == 1.0 else _crop(image, window_fn(tf.shape(image)))
    return resize(cropped, image_size, resize_method)


def inception_crop(image_bytes: tf.Tensor, image_size: int, seed: tf.Tensor,
                   flip_seed: tf.Tensor | None = None,
                   area_range: tuple[float, float] = CROP_AREA_RANGE, method: str = "bicubic") -> tf.Tensor:
    """Training crop of encoded bytes: random box decoded alone, then resized by `method`.

    `area_range` bounds the box's share of the image area (checked by
    DataOptions): the reference's (0.08, 1) suits photographs; small centred
    objects keep more, e.g. (0.5, 1).

    With `flip_seed`, a random horizontal flip of the crop before resizing:
    the same result as flipping after, on fewer, smaller (uint8) pixels.
    """
    cropped = _decode_and_crop(
        image_bytes, lambda shape: inception_crop_window(shape, seed, image_size, area_range))
    if flip_seed is not None:
        cropped = random_flip(cropped, flip_seed)
    return resize(cropped, image_size, method)


def pad_and_random_crop(image: tf.Tensor, padding: int, seed: tf.Tensor) -> tf.Tensor:
    """The CIFAR training crop: zero-pad each side, take a random crop of the original size."""
    if padding == 0:
        return image
    shape = tf.shape(image)
    padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    return tf.image.stateless_random_crop(padded, tf.stack([shape[0], shape[1], 3]), seed=seed)


def random_flip(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    return tf.image.stateless_random_flip_left_right(image, seed=seed)


def to_uint8(image: tf.Tensor) -> tf.Tensor:
    """Round float pixels to uint8 (the domain of the AutoAugment/RandAugment ops)."""
    if image.dtype == tf.uint8:
        return image
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
