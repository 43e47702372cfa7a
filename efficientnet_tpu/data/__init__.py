"""Input pipelines: ImageNet and CIFAR through TFDS, seed 003's 3-class
CIFAR-10, a folder of images, scikit-learn's digits and synthetic data, all
behind one entry point with static shapes for TPUs.

    dataset = strategy.distribute_datasets_from_function(
        lambda context: build_dataset("imagenet2012", "train", global_batch_size=1024,
                                      image_size=224, training=True, input_context=context))
"""

from efficientnet_tpu.data.info import DatasetInfo, default_crop_fraction
from efficientnet_tpu.data.pipeline import (AUGMENTATIONS, build_dataset, dataset_info,
                                            num_eval_steps)
from efficientnet_tpu.data.preprocessing import preprocess_for_eval
from efficientnet_tpu.data.registry import DATASET_NAMES

__all__ = [
    "AUGMENTATIONS",
    "DATASET_NAMES",
    "DatasetInfo",
    "build_dataset",
    "dataset_info",
    "default_crop_fraction",
    "num_eval_steps",
    "preprocess_for_eval",
]
