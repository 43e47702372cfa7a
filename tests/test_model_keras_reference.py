"""Our stage tables and scaling tables against Keras Applications' own arguments, read without building.

Each Keras constructor (`EfficientNetB3`, `EfficientNetV2S`, ...) passes its
width, depth, default size and dropout to one builder function, which reads
the stage table from the module's `DEFAULT_BLOCKS_ARGS`. Recording that call
gives the outside numbers our specs must equal, so these tests restate nothing.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import keras
import pytest

from efficientnet_tpu import get_spec
from efficientnet_tpu.model.specs import StageSpec
from efficientnet_tpu.model.efficientnet import B0_STAGES, OFFICIAL_SCALING
from efficientnet_tpu.model.weights import KERAS_CONSTRUCTORS


def keras_arguments(constructor: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], Any]:
    """Every argument `keras.applications.<constructor>` gives its builder (defaults included), and its module."""
    public = getattr(keras.applications, constructor)
    module = sys.modules[public.__module__]
    builder_name = "EfficientNetV2" if constructor.startswith("EfficientNetV2") else "EfficientNet"
    signature = inspect.signature(getattr(module, builder_name))
    recorded: dict[str, Any] = {}

    def record(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        recorded.update(bound.arguments)

    with monkeypatch.context() as patch:
        patch.setattr(module, builder_name, record)
        public(weights=None)
    return recorded, module


def rows(stages: tuple[StageSpec, ...]) -> list[tuple]:
    """Our stage table as (block, kernel, stride, expand, in, out, repeats, se): the Keras rows' order."""
    return [
        (s.block, s.kernel_size, s.stride, s.expand_ratio, s.in_channels, s.out_channels, s.repeats, s.se_ratio)
        for s in stages
    ]


@pytest.mark.parametrize("variant", sorted(OFFICIAL_SCALING))
def test_b0_to_b7_scaling_equals_keras(variant, monkeypatch):
    args, module = keras_arguments(KERAS_CONSTRUCTORS[variant], monkeypatch)
    spec = get_spec(variant)
    assert (spec.width_coefficient, spec.depth_coefficient, spec.resolution, spec.dropout_rate) == (
        args["width_coefficient"],
        args["depth_coefficient"],
        args["default_size"],
        args["dropout_rate"],
    )
    assert (spec.drop_connect_rate, spec.depth_divisor) == (args["drop_connect_rate"], args["depth_divisor"])
    assert args["blocks_args"] == "default"
    keys = ("kernel_size", "strides", "expand_ratio", "filters_in", "filters_out", "repeats", "se_ratio")
    keras_rows = [("mbconv", *(b[key] for key in keys)) for b in module.DEFAULT_BLOCKS_ARGS]
    assert rows(B0_STAGES) == keras_rows


V2_VARIANTS = [name for name in KERAS_CONSTRUCTORS if name.startswith("v2_")]


@pytest.mark.parametrize("variant", V2_VARIANTS)
def test_v2_stage_tables_and_scaling_equal_keras(variant, monkeypatch):
    args, module = keras_arguments(KERAS_CONSTRUCTORS[variant], monkeypatch)
    spec = get_spec(variant)
    # Keras' V2 constructors leave dropout at its 0.2 default; ours are the training recipe's
    # (google/automl), which do not change inference.
    assert (spec.width_coefficient, spec.depth_coefficient, spec.resolution) == (
        args["width_coefficient"],
        args["depth_coefficient"],
        args["default_size"],
    )
    assert (spec.bn_momentum, spec.drop_connect_rate, spec.depth_divisor) == (
        args["bn_momentum"],
        args["drop_connect_rate"],
        args["depth_divisor"],
    )
    assert args["blocks_args"] == "default"
    block_types = {0: "mbconv", 1: "fused_mbconv"}
    keys = ("kernel_size", "strides", "expand_ratio", "input_filters", "output_filters", "num_repeat", "se_ratio")
    table = module.DEFAULT_BLOCKS_ARGS[args["name"]]
    keras_rows = [(block_types[b["conv_type"]], *(b[key] for key in keys)) for b in table]
    assert rows(spec.stages) == keras_rows
    assert spec.stem_channels == keras_rows[0][4]  # Keras' stem is as wide as the first stage's input
