"""The native image size of each dataset stored at one small fixed size, by dataset name.

The sources' `DatasetInfo.native_resolution` reads it (evaluation then resizes
the whole image rather than center-cropping), and so does a study's report
(above this size a larger resolution adds computation, not image detail). It
imports nothing, so the report and spec checks ask it without TensorFlow.
"""

from __future__ import annotations

NATIVE_RESOLUTIONS = {"digits": 8, "cifar10": 32, "cifar100": 32, "cifar10_3class": 32}


def native_resolution(name: str) -> int | None:
    """The native size of dataset `name`; None where images come at many sizes (photos, folders) or are random."""
    return NATIVE_RESOLUTIONS.get(name)
