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


def _plan(**fields):
    config = config_lib.merge(dict(model_dir="unused", variant="b0", phi=-4, resolution=32, **fields))
    return plan_run(config, facts(None))


@pytest.mark.parametrize("fields, dropout, drop_connect", [
    (dict(model_overrides="dropout_rate=0.3"), 0.3, 0.2),            # the spelling of the bug report
    (dict(dropout_rate=0.4), 0.4, 0.2),                               # the TrainConfig field
    (dict(dropout_rate=0.3, model_overrides={"dropout_rate": 0.3}), 0.3, 0.2),  # both, agreeing
    (dict(model_overrides={"drop_connect_rate": 0.1}), 0.2, 0.1),     # over the field's default
    (dict(), 0.2, 0.2),                                               # the variant's dropout, the field's rate
])
def test_dropout_set_either_way_reaches_the_plan_once(fields, dropout, drop_connect):
    plan = _plan(**fields)
    assert (plan.spec.dropout_rate, plan.spec.drop_connect_rate) == (dropout, drop_connect)
    assert (plan.config.dropout_rate, plan.config.drop_connect_rate) == (dropout, drop_connect)


def test_dropout_in_model_overrides_builds_the_network_with_it():
    """`--model_overrides=dropout_rate=0.3` once gave: build_model() got multiple values for 'dropout_rate'."""
    from efficientnet_tpu.training.modeling import build_network  # pylint: disable=import-outside-toplevel

    plan = _plan(model_overrides="dropout_rate=0.3,drop_connect_rate=0.1")
    dropout, drop_connect = 0.3, 0.1
    model = build_network(plan.config, for_training=False)
    assert model.get_layer("top_dropout").rate == pytest.approx(dropout)
    blocks = [layer for layer in model.layers if layer.name.startswith("block")]
    # Stochastic depth grows linearly to drop_connect_rate * (n - 1) / n at the last of n blocks.
    assert blocks[-1].drop_rate == pytest.approx(drop_connect * (len(blocks) - 1) / len(blocks))


def test_two_different_dropout_rates_are_refused_naming_both():
    with pytest.raises(ValueError, match=r"dropout_rate is set twice: dropout_rate=0.5 .*model_overrides.dropout_rate="
                                         r"0.3; set one"):
        _plan(dropout_rate=0.5, model_overrides={"dropout_rate": 0.3})
