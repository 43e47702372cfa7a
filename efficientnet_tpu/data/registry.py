"""Dataset names and the source that reads each."""

from __future__ import annotations

from efficientnet_tpu.data.choices import DATASET_NAMES
from efficientnet_tpu.data.sources import Source

__all__ = ["DATASET_NAMES", "get_source"]


def get_source(name: str, data_dir: str | None = None) -> Source:
    """The source for `name`; a ValueError names the valid choices."""
    # Local imports: a run on the digits or a folder never imports tensorflow_datasets.
    if name == "imagenet2012":
        from efficientnet_tpu.data.tfds_sources import imagenet_source
        return imagenet_source(data_dir)
    if name in ("cifar10", "cifar100"):
        from efficientnet_tpu.data.tfds_sources import cifar_source
        return cifar_source(name, data_dir)
    if name == "cifar10_3class":
        from efficientnet_tpu.data.tfds_sources import Cifar10ThreeClassSource
        return Cifar10ThreeClassSource(data_dir)
    if name == "folder":
        from efficientnet_tpu.data.folder import FolderSource
        return FolderSource(data_dir)
    if name in ("tfrecord", "tfrecord_0based"):
        from efficientnet_tpu.data.tfrecord import TFRecordSource
        return TFRecordSource(data_dir, label_offset=1 if name == "tfrecord" else 0, name=name)
    if name == "digits":
        from efficientnet_tpu.data.digits import DigitsSource
        return DigitsSource()
    if name == "synthetic":
        from efficientnet_tpu.data.synthetic import SyntheticSource
        return SyntheticSource()
    raise ValueError(f"unknown dataset {name!r}; choose one of "
                     f"{', '.join(repr(n) for n in DATASET_NAMES)}")
