"""What a dataset is, independent of how it is read: the trainer sizes heads,
schedules and exports from this, so it never needs to open the data."""

from __future__ import annotations

import dataclasses

# The reference's eval crop: resolution / (resolution + 32) of the shorter side.
CROP_PADDING = 32


def default_crop_fraction(image_size: int) -> float:
    """The eval crop of the EfficientNet reference for this output size."""
    return image_size / (image_size + CROP_PADDING)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset.

    Split sizes come from the prepared data's metadata (or the source itself)
    when available and otherwise from the dataset's published sizes, so this
    works before the data is downloaded. `native_resolution` is set for
    datasets stored at one small fixed size (CIFAR 32, digits 8): those are
    resized whole for evaluation rather than center-cropped.
    """

    name: str
    num_classes: int
    train_split: str
    eval_split: str | None
    num_train_examples: int
    num_eval_examples: int
    class_names: tuple[str, ...] | None
    native_resolution: int | None
    splits: tuple[str, ...] = ()

    def default_crop_fraction(self, image_size: int) -> float:
        """The eval crop to use (and to export) when none is given: the whole
        image for native-resolution datasets, the reference crop otherwise."""
        if self.native_resolution is not None:
            return 1.0
        return default_crop_fraction(image_size)
