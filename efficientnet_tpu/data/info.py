"""What a dataset is, independent of how it is read: the trainer sizes heads,
schedules and exports from this, so it never needs to open the data."""

from __future__ import annotations

import dataclasses

# The eval crop rule lives beside the model spec (ModelSpec.eval_crop_for); this
# is its reference default for callers of the data API that give no crop.
from efficientnet_tpu.model.specs import CROP_PADDING  # noqa: F401  (re-exported)
from efficientnet_tpu.model.specs import reference_crop_fraction as default_crop_fraction


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset.

    Split sizes come from the prepared data's metadata (or the source itself)
    when available and otherwise from the dataset's published sizes, so this
    works before the data is downloaded. `native_resolution` is set for
    datasets stored at one small fixed size (CIFAR 32, digits 8: the table in
    `data/native.py`): those are resized whole for evaluation rather than
    center-cropped.
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
