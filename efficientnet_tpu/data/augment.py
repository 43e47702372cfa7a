"""Training augmentations beyond crop and flip: RandAugment, AutoAugment
(ImageNet policy v0) and seed 003's rotation / shift / zoom.

Two semantics for the sixteen operations. "reference" (the default) is the
code that trained the released EfficientNet checkpoints, operation for
operation (see reference_ops.py). "paper" is a deliberate deviation that
follows the AutoAugment paper's descriptions and scales with the image.

Magnitudes are levels on the reference's 0-10 scale (RandAugment allows up
to 30, as the reference does). In the paper semantics geometric operations,
posterize (fewer bits kept), solarize (a lower threshold) and solarize-add
grow stronger with the level; color, contrast, brightness and sharpness blend
with a factor 0.1 + 1.8 * level / 10 (1 leaves the image as it is).
Translation and cutout are fractions of the image side, so the same level
means the same thing at 32 and at 600 pixels.
All randomness is stateless from the per-example seed.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable

import tensorflow as tf

from efficientnet_tpu.data import choices, image_ops, reference_ops
from efficientnet_tpu.data.reference_ops import AUTOAUGMENT_CONSTANTS, RANDAUGMENT_CONSTANTS

SEMANTICS = choices.AUGMENT_SEMANTICS
MAX_LEVEL = choices.MAX_LEVEL
ROTATE_MAX_DEGREES = 30.0
SHEAR_MAX = 0.3
# Translation at level 10: 45% of the side (the reference's 100 px at 224, and
# the AutoAugment paper's 150 px at 331).
TRANSLATE_MAX_FRACTION = 0.45
# Cutout half-side at level 10: the reference's 40 px at 224.
CUTOUT_MAX_FRACTION = 40.0 / 224.0
SOLARIZE_ADD_MAX = 110.0
POSTERIZE_MAX_BITS_REMOVED = 4

# Seed 003 names random rotation, shift and zoom without amounts; these are
# the usual Keras ImageDataGenerator settings for CIFAR.
SEED003_ROTATION_DEGREES = 15.0
SEED003_SHIFT_FRACTION = 0.1
SEED003_ZOOM_RANGE = (0.9, 1.1)

# (uint8 image, float32 scalar level, seed) -> uint8 image.
Op = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


def _random_sign(value: tf.Tensor | float, seed: tf.Tensor) -> tf.Tensor:
    negate = tf.random.stateless_uniform([], seed) < 0.5
    value = tf.cast(value, tf.float32)
    return tf.where(negate, -value, value)


def _enhance_factor(level: tf.Tensor) -> tf.Tensor:
    """0.1 .. 1.9: below 1 weakens the property, above 1 exaggerates it."""
    return level / MAX_LEVEL * 1.8 + 0.1


def _side_fraction(image: tf.Tensor, axis: int, fraction: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.shape(image)[axis], tf.float32) * fraction


def _autocontrast(image, level, seed):
    return image_ops.autocontrast(image)


def _equalize(image, level, seed):
    return image_ops.equalize(image)


def _invert(image, level, seed):
    return image_ops.invert(image)


def _rotate(image, level, seed):
    return image_ops.rotate(image, _random_sign(level / MAX_LEVEL * ROTATE_MAX_DEGREES, seed))


def _posterize(image, level, seed):
    bits_removed = tf.round(tf.minimum(level, MAX_LEVEL) / MAX_LEVEL * POSTERIZE_MAX_BITS_REMOVED)
    return image_ops.posterize(image, 8 - tf.cast(bits_removed, tf.int32))


def _solarize(image, level, seed):
    return image_ops.solarize(image, tf.maximum(256.0 * (1.0 - level / MAX_LEVEL), 0.0))


def _solarize_add(image, level, seed):
    return image_ops.solarize_add(image, tf.minimum(level / MAX_LEVEL * SOLARIZE_ADD_MAX, 255.0))


def _color(image, level, seed):
    return image_ops.color(image, _enhance_factor(level))


def _contrast(image, level, seed):
    return image_ops.contrast(image, _enhance_factor(level))


def _brightness(image, level, seed):
    return image_ops.brightness(image, _enhance_factor(level))


def _sharpness(image, level, seed):
    return image_ops.sharpness(image, _enhance_factor(level))


def _shear_x(image, level, seed):
    return image_ops.shear_x(image, _random_sign(level / MAX_LEVEL * SHEAR_MAX, seed))


def _shear_y(image, level, seed):
    return image_ops.shear_y(image, _random_sign(level / MAX_LEVEL * SHEAR_MAX, seed))


def _translate_x(image, level, seed):
    shift = _side_fraction(image, 1, level / MAX_LEVEL * TRANSLATE_MAX_FRACTION)
    return image_ops.translate(image, 0.0, _random_sign(shift, seed))


def _translate_y(image, level, seed):
    shift = _side_fraction(image, 0, level / MAX_LEVEL * TRANSLATE_MAX_FRACTION)
    return image_ops.translate(image, _random_sign(shift, seed), 0.0)


def _cutout(image, level, seed):
    shape = tf.shape(image)
    shorter = tf.cast(tf.minimum(shape[0], shape[1]), tf.float32)
    half_size = tf.maximum(
        tf.cast(tf.round(shorter * level / MAX_LEVEL * CUTOUT_MAX_FRACTION), tf.int32), 1)
    return image_ops.cutout(image, half_size, seed)


# The "paper" semantics.
OPS: dict[str, Op] = {
    "AutoContrast": _autocontrast, "Equalize": _equalize, "Invert": _invert,
    "Rotate": _rotate, "Posterize": _posterize, "Solarize": _solarize,
    "SolarizeAdd": _solarize_add, "Color": _color, "Contrast": _contrast,
    "Brightness": _brightness, "Sharpness": _sharpness, "ShearX": _shear_x,
    "ShearY": _shear_y, "TranslateX": _translate_x, "TranslateY": _translate_y,
    "Cutout": _cutout,
}

# The reference RandAugment draws from all sixteen operations.
RANDAUGMENT_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize",
                   "Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY",
                   "TranslateX", "TranslateY", "Cutout", "SolarizeAdd")

# AutoAugment's ImageNet policy ("v0" in the EfficientNet reference): 25
# sub-policies of two (operation, probability, level) steps.
AUTOAUGMENT_POLICY_V0: tuple[tuple[tuple[str, float, int], ...], ...] = (
    (("Equalize", 0.8, 1), ("ShearY", 0.8, 4)),
    (("Color", 0.4, 9), ("Equalize", 0.6, 3)),
    (("Color", 0.4, 1), ("Rotate", 0.6, 8)),
    (("Solarize", 0.8, 3), ("Equalize", 0.4, 7)),
    (("Solarize", 0.4, 2), ("Solarize", 0.6, 2)),
    (("Color", 0.2, 0), ("Equalize", 0.8, 8)),
    (("Equalize", 0.4, 8), ("SolarizeAdd", 0.8, 3)),
    (("ShearX", 0.2, 9), ("Rotate", 0.6, 8)),
    (("Color", 0.6, 1), ("Equalize", 1.0, 2)),
    (("Invert", 0.4, 9), ("Rotate", 0.6, 0)),
    (("Equalize", 1.0, 9), ("ShearY", 0.6, 3)),
    (("Color", 0.4, 7), ("Equalize", 0.6, 0)),
    (("Posterize", 0.4, 6), ("AutoContrast", 0.4, 7)),
    (("Solarize", 0.6, 8), ("Color", 0.6, 9)),
    (("Solarize", 0.2, 4), ("Rotate", 0.8, 9)),
    (("Rotate", 1.0, 7), ("TranslateY", 0.8, 9)),
    (("ShearX", 0.0, 0), ("Solarize", 0.8, 4)),
    (("ShearY", 0.8, 0), ("Color", 0.6, 4)),
    (("Color", 1.0, 0), ("Rotate", 0.6, 2)),
    (("Equalize", 0.8, 4), ("Equalize", 0.0, 8)),
    (("Equalize", 1.0, 4), ("AutoContrast", 0.6, 2)),
    (("ShearY", 0.4, 7), ("SolarizeAdd", 0.6, 7)),
    (("Posterize", 0.8, 2), ("Solarize", 0.6, 10)),
    (("Solarize", 0.6, 8), ("Equalize", 0.6, 1)),
    (("Color", 0.8, 6), ("Rotate", 0.4, 5)),
)


OP_NAMES = tuple(OPS)
_OP_INDEX = {name: index for index, name in enumerate(OP_NAMES)}
_IDENTITY = len(OP_NAMES)  # the switch index that leaves the image as it is


def check_semantics(semantics: str) -> None:
    """The operations' semantics, checked by the augment_semantics option's rule (a direct caller's
    mistake fails here rather than as a missing operation)."""
    choices.SEMANTICS.check("augment_semantics", semantics, prefix="")


def operations(semantics: str = "reference", translate_const: float = RANDAUGMENT_CONSTANTS[0],
               cutout_const: float = RANDAUGMENT_CONSTANTS[1]) -> dict[str, Op]:
    """The sixteen operations (in OP_NAMES order) under `semantics`; the
    constants are the reference's absolute pixels and only matter there."""
    check_semantics(semantics)
    if semantics == "paper":
        return OPS
    ops = reference_ops.make_ops(translate_const, cutout_const)
    return {name: ops[name] for name in OP_NAMES}


def apply_op(image: tf.Tensor, op_index: tf.Tensor, level: tf.Tensor, seed: tf.Tensor,
             semantics: str = "reference",
             translate_const: float = RANDAUGMENT_CONSTANTS[0],
             cutout_const: float = RANDAUGMENT_CONSTANTS[1]) -> tf.Tensor:
    """Operation OP_NAMES[op_index] at `level` on a uint8 image, or nothing
    for op_index == len(OP_NAMES).

    `translate_const` / `cutout_const` are the reference's translation and
    cutout sizes in pixels at level 10 (AutoAugment 250 / 100, RandAugment
    100 / 40, the defaults); the "paper" semantics ignore them.
    One switch over the sixteen operations, whatever the policy: a graph this
    size traces in about a second inside tf.data, where a branch per
    sub-policy took many.
    """
    ops = operations(semantics, translate_const, cutout_const)
    # The reference computes levels as Python floats; float64 truncates alike.
    dtype = tf.float64 if semantics == "reference" else tf.float32
    level = (tf.constant(float(level), dtype) if isinstance(level, numbers.Real)
             else tf.cast(level, dtype))
    branches = [lambda op=op: op(image, level, seed) for op in ops.values()]
    branches.append(lambda: image)
    op_index = tf.cast(op_index, tf.int32)  # a Python int names an operation too
    return tf.ensure_shape(tf.switch_case(op_index, branches), image.shape)


def randaugment(image: tf.Tensor, seed: tf.Tensor, num_layers: int = 2,
                magnitude: float = 10.0, semantics: str = "reference") -> tf.Tensor:
    """RandAugment: `num_layers` operations drawn uniformly, each at `magnitude`
    (the reference's distort_image_with_randaugment: every drawn operation is applied).
    Their bounds are DataOptions' (randaugment_num_layers, randaugment_magnitude)."""
    check_semantics(semantics)
    candidates = tf.constant([_OP_INDEX[name] for name in RANDAUGMENT_OPS], tf.int32)
    for layer in range(num_layers):
        select_seed, op_seed = tf.unstack(tf.random.experimental.stateless_split(
            tf.random.experimental.stateless_fold_in(seed, layer), 2))
        choice = tf.random.stateless_uniform([], select_seed, 0, len(RANDAUGMENT_OPS), tf.int32)
        image = apply_op(image, tf.gather(candidates, choice), float(magnitude), op_seed, semantics,
                         *RANDAUGMENT_CONSTANTS)
    return image


def autoaugment(image: tf.Tensor, seed: tf.Tensor, policy=AUTOAUGMENT_POLICY_V0,
                semantics: str = "reference") -> tf.Tensor:
    """AutoAugment: one sub-policy drawn uniformly, each of its steps applied
    with its probability."""
    check_semantics(semantics)
    steps = len(policy[0])
    op_table = tf.constant([[_OP_INDEX[name] for name, _, _ in sub] for sub in policy], tf.int32)
    probability_table = tf.constant([[p for _, p, _ in sub] for sub in policy], tf.float32)
    level_table = tf.constant([[float(level) for _, _, level in sub] for sub in policy],
                              tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 1 + 2 * steps)
    chosen = tf.random.stateless_uniform([], seeds[0], 0, len(policy), tf.int32)
    for step in range(steps):
        applied = tf.random.stateless_uniform([], seeds[1 + 2 * step]) < (
            probability_table[chosen, step])
        op_index = tf.where(applied, op_table[chosen, step], _IDENTITY)
        image = apply_op(image, op_index, level_table[chosen, step], seeds[2 + 2 * step],
                         semantics, *AUTOAUGMENT_CONSTANTS)
    return image


def random_rotate_shift_zoom(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Seed 003's augmentation as one affine warp; uncovered pixels repeat the nearest edge."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    degrees = tf.random.stateless_uniform([], seeds[0], -SEED003_ROTATION_DEGREES,
                                          SEED003_ROTATION_DEGREES)
    shift = tf.random.stateless_uniform([2], seeds[1], -SEED003_SHIFT_FRACTION,
                                        SEED003_SHIFT_FRACTION)
    zoom = tf.random.stateless_uniform([], seeds[2], *SEED003_ZOOM_RANGE)
    shape = tf.shape(image)
    transform = image_ops.affine_matrix(
        shape, angle=degrees * (math.pi / 180.0), scale=zoom,
        shift_y=shift[0] * tf.cast(shape[0], tf.float32),
        shift_x=shift[1] * tf.cast(shape[1], tf.float32))
    return image_ops.projective_transform(image, transform, fill_mode="NEAREST")
