"""The names and bounds of the data settings, free of TensorFlow.

The config, the flags' help and the pipeline all read them from here, so a
misspelt dataset or augmentation fails when the command line is parsed, and a
new name is added in one place.
"""

from __future__ import annotations

from efficientnet_tpu import settings

DATASET_NAMES = ("imagenet2012", "cifar10", "cifar100", "cifar10_3class", "folder", "tfrecord",
                 "tfrecord_0based", "digits", "synthetic")
AUGMENTATIONS = ("none", "default", "randaugment", "autoaugment", "seed003")
AUGMENT_SEMANTICS = ("reference", "paper")
RESIZE_METHODS = ("bicubic", "bilinear")

# The reference's RandAugment scale is 0-10 (tensorflow/tpu's autoaugment.py, _MAX_LEVEL); up to 3x is accepted.
MAX_LEVEL = 10.0

DATASET = settings.one_of(DATASET_NAMES)
AUGMENT = settings.one_of(AUGMENTATIONS)
SEMANTICS = settings.one_of(AUGMENT_SEMANTICS)
RESIZE_METHOD = settings.one_of(RESIZE_METHODS)
CROP_AREA = settings.between(0.0, 1.0, low_open=True)
CROP_FRACTION = settings.between(0.0, 1.0, low_open=True)
RANDAUGMENT_LAYERS = settings.at_least(0, integer=True)
RANDAUGMENT_MAGNITUDE = settings.between(0.0, 3 * MAX_LEVEL, note="the reference scale is 0-10")
MIX_ALPHA = settings.at_least(0.0, note="0 turns it off")
