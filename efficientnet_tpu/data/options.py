"""DataOptions: every setting of an input pipeline in one typed, checked value.

The config carries the data settings to the pipeline as one frozen object
instead of twenty keyword arguments, so a new setting is a field here (its
bound declared once, in data/choices.py) and a field of TrainConfig of the
same name, which ``from_config`` copies. It is checked once, when made;
``dataclasses.replace`` makes a stage's or a stream's variant (and checks
it again). Free of TensorFlow: a bad value fails before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from efficientnet_tpu import settings
from efficientnet_tpu.data import choices

OUTPUT_DTYPES = ("float32", "bfloat16", "float16")
_FLAG = settings.one_of((False, True))


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """How a pipeline reads, augments, mixes and types its examples.

    Training reads every field; evaluation reads only ``eval_crop_fraction``,
    ``resize_method`` and ``dtype`` (it is never augmented or mixed).
    """

    augment: str = settings.setting(
        "default", "Training augmentation: none, default (crop and flip), randaugment, autoaugment or seed003.",
        choices.AUGMENT)
    randaugment_num_layers: int = settings.setting(
        2, "RandAugment's N: operations applied per image (augment=randaugment).", choices.RANDAUGMENT_LAYERS)
    randaugment_magnitude: float = settings.setting(
        10.0, "RandAugment's M: their strength on the reference's 0-10 scale.", choices.RANDAUGMENT_MAGNITUDE)
    augment_semantics: str = settings.setting(
        "reference", "randaugment/autoaugment operations: the released checkpoints' code or the paper's.",
        choices.SEMANTICS)
    crop_area_min: float = settings.setting(
        0.08, "Smallest share of the image area the Inception crop of full-size images keeps.", choices.CROP_AREA)
    crop_area_max: float = settings.setting(
        1.0, "Largest share of the image area that crop keeps.", choices.CROP_AREA)
    random_flip: bool = settings.setting(
        True, "Random horizontal flip in training (never on sources that are not mirror-symmetric).", _FLAG)
    eval_crop_fraction: float | None = settings.setting(
        None, "Center crop of the shorter side at eval (and augment none/seed003); None: the reference "
              "image_size / (image_size + 32), or the whole image for native-resolution datasets.",
        choices.CROP_FRACTION)
    resize_method: str = settings.setting(
        "bicubic", "How crops are resized to the output size, in training and eval (the variant's: "
                   "bilinear for the lite networks).", choices.RESIZE_METHOD)
    mixup_alpha: float = settings.setting(0.0, "Mixup strength of each training batch.", choices.MIX_ALPHA)
    cutmix_alpha: float = settings.setting(0.0, "CutMix strength of each training batch.", choices.MIX_ALPHA)
    num_classes: int | None = settings.setting(
        None, "Width of mixed labels; None: the dataset's classes.", settings.at_least(1, integer=True))
    dtype: str = settings.setting("float32", "Dtype of the images.", settings.one_of(OUTPUT_DTYPES))
    seed: int | None = settings.setting(
        None, "Seed of the training order and augmentation; None: fresh each run (0 when deterministic).",
        settings.at_least(0, integer=True))
    deterministic: bool = settings.setting(
        False, "Fixed training order and augmentation, at some cost in speed.", _FLAG)

    def __post_init__(self) -> None:
        # A tf.DType or numpy dtype names itself; the options stay plain strings.
        object.__setattr__(self, "dtype", getattr(self.dtype, "name", self.dtype))
        settings.check_fields(self, prefix="DataOptions.")
        if self.crop_area_min > self.crop_area_max:
            raise ValueError(f"DataOptions.crop_area_min ({self.crop_area_min:g}) must be <= "
                             f"DataOptions.crop_area_max ({self.crop_area_max:g})")

    @property
    def crop_area_range(self) -> tuple[float, float]:
        return float(self.crop_area_min), float(self.crop_area_max)

    @property
    def mixes(self) -> bool:
        return bool(self.mixup_alpha or self.cutmix_alpha)

    @classmethod
    def from_config(cls, config: Any, **changes: Any) -> DataOptions:
        """The options a TrainConfig sets: every field of the same name, then `changes`
        (what the config does not hold: the stream's dtype, the variant's resize method)."""
        values = {field.name: getattr(config, field.name) for field in dataclasses.fields(cls)
                  if hasattr(config, field.name)}
        values.update(changes)
        return cls(**values)


__all__ = ["DataOptions", "OUTPUT_DTYPES"]
