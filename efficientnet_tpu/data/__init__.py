"""Input pipelines: ImageNet and CIFAR through TFDS, seed 003's 3-class
CIFAR-10, a folder of images, scikit-learn's digits and synthetic data, all
behind one entry point with static shapes for TPUs.

    options = DataOptions(augment="randaugment", seed=0)
    dataset = strategy.distribute_datasets_from_function(
        lambda context: build_dataset("imagenet2012", "train", global_batch_size=1024,
                                      image_size=224, training=True, options=options,
                                      input_context=context))

The names load on first use (they import TensorFlow), so that
``python -m efficientnet_tpu.data.make_tfrecords`` can quiet TensorFlow's
start-up lines before it loads, as the other command-line tools do.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from efficientnet_tpu.data.info import DatasetInfo, default_crop_fraction
    from efficientnet_tpu.data.options import DataOptions
    from efficientnet_tpu.data.pipeline import AUGMENTATIONS, build_dataset, dataset_info, num_eval_steps
    from efficientnet_tpu.data.preprocessing import preprocess_for_eval
    from efficientnet_tpu.data.registry import DATASET_NAMES

_HOMES = {
    "AUGMENTATIONS": "pipeline",
    "DATASET_NAMES": "registry",
    "DataOptions": "options",
    "DatasetInfo": "info",
    "build_dataset": "pipeline",
    "dataset_info": "pipeline",
    "default_crop_fraction": "info",
    "num_eval_steps": "pipeline",
    "preprocess_for_eval": "preprocessing",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"efficientnet_tpu.data.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'efficientnet_tpu.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
