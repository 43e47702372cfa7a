"""A run resolves the variant's spec and the dataset's facts once, into one RunPlan; the eval crop
has one rule, beside the model spec (ModelSpec.eval_crop_for)."""

from __future__ import annotations

import pytest

from efficientnet_tpu.data import DatasetInfo
from efficientnet_tpu.run import RunPlan, plan_run
from efficientnet_tpu.training import config as config_lib


def facts(native_resolution):
    return DatasetInfo(name="x", num_classes=3, train_split="train", eval_split="validation",
                       num_train_examples=30, num_eval_examples=9, class_names=("a", "b", "c"),
                       native_resolution=native_resolution)


@pytest.mark.parametrize("variant, native, resolution, crop", [
    ("b0", None, None, 224 / 256),        # the reference rule at the variant's resolution
    ("b0", None, 64, 64 / 96),            # ... at the run's resolution
    ("b0", 8, 32, 1.0),                   # data stored small (digits, CIFAR): the whole image
    ("baseline_convnet", None, 32, 1.0),  # the spec's own crop_fraction wins
])
def test_the_eval_crop_is_decided_once_from_the_spec_and_the_data(variant, native, resolution, crop):
    config = config_lib.merge(dict(model_dir="unused", variant=variant, resolution=resolution))
    plan = plan_run(config, facts(native))
    assert isinstance(plan, RunPlan) and plan.spec.name.startswith(variant.split("_")[0])
    assert plan.config.eval_crop_fraction == pytest.approx(crop)
    assert (plan.config.num_classes, plan.config.class_names) == (3, ("a", "b", "c"))
    assert plan.dataset.num_train_examples == 30


def test_a_given_crop_is_kept():
    config = config_lib.merge(dict(model_dir="unused", eval_crop_fraction=0.5))
    assert plan_run(config, facts(None)).config.eval_crop_fraction == 0.5
