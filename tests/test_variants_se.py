"""SE placement study (seed 000; its readings in docs/model.md): the knobs, the presets, and the pinned counts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from efficientnet_tpu import build_model, get_spec
from efficientnet_tpu.model import resolve_blocks
from efficientnet_tpu.model.layers import SqueezeExcite
from helpers import trainable_params


@pytest.fixture(scope="module")
def b0_params() -> int:
    return trainable_params(build_model("b0"))


@pytest.mark.parametrize(
    "variant, removed_percent",
    [("b0_nose_noskip", 3.37), ("b0_nose_hasskip", 8.67), ("b0_nose", 12.04)],
)
def test_removing_se_removes_the_counted_share_of_b0(variant, removed_percent, b0_params):
    removed = 100.0 * (1.0 - trainable_params(build_model(variant)) / b0_params)
    assert removed == pytest.approx(removed_percent, abs=0.05)


def test_scopes_split_b0_into_7_noskip_and_9_hasskip_blocks():
    blocks = resolve_blocks(get_spec("b0"))
    assert sum(not b.has_skip for b in blocks) == 7
    assert sum(b.has_skip for b in blocks) == 9
    for variant, moved in (("b0_seend_noskip", False), ("b0_seend_hasskip", True)):
        for block in resolve_blocks(get_spec(variant)):
            expected = "end" if block.has_skip == moved else "after_dw"
            assert block.se_position == expected, (variant, block.name)


def test_se_at_the_end_keeps_the_input_based_squeeze_width():
    model = build_model("b0_seend", input_shape=(64, 64, 3))
    block = model.get_layer("block6b")  # 192 -> 192 channels, expanded to 1152 inside
    assert block.se.squeeze_channels == 48  # int(192 * 0.25), as after the depthwise conv
    assert block.se.channels == 192  # gates the block's output, not the expanded width


def _call_order(block, inputs):
    """Runs `block` once, recording each direct sublayer's name, input and output in call order."""
    calls = []
    sublayers = list(block._flatten_layers(include_self=False, recursive=False))
    for layer in sublayers:
        original = layer.call

        def recorded(*args, _layer=layer, _original=original, **kwargs):
            output = _original(*args, **kwargs)
            calls.append((_layer.name, args[0], output))
            return output

        layer.call = recorded  # an instance attribute shadows the method for this run only
    try:
        block(inputs, training=False)
    finally:
        for layer in sublayers:
            del layer.call
    return calls


@pytest.mark.parametrize("position", ["after_dw", "end"])
def test_se_really_sits_where_se_position_says(position):
    model = build_model("b0", input_shape=(32, 32, 3), se_position=position)
    block = model.get_layer("block4b")  # 80 -> 80, stride 1: has the identity shortcut
    inputs = np.random.default_rng(0).normal(size=(1, 2, 2, 80)).astype("float32")
    calls = _call_order(block, inputs)
    names = [name for name, _, _ in calls]
    se_at = names.index("se")
    assert isinstance(block.se, SqueezeExcite) and names.count("se") == 1
    if position == "after_dw":
        assert names[se_at - 1] == "activation" and names[se_at + 1] == "project_conv"
        fed_by = "activation"
    else:
        # Last on the main path: only stochastic depth (then the residual add) follows.
        assert names[se_at - 1] == "project_bn" and names[se_at + 1 :] == ["drop"]
        fed_by = "project_bn"
    # The SE layer consumes exactly the tensor that layer produced.
    produced = {name: output for name, _, output in calls}
    assert calls[se_at][1] is produced[fed_by]


def test_presets_equal_their_knobs_at_any_phi():
    for phi in (None, -1.0, 2.0):
        preset = get_spec("b0_seend_noskip", phi=phi)
        knobs = get_spec("b0", phi=phi, se_position="end", se_scope="noskip")
        assert dataclasses.replace(preset, name="b0") == knobs


def test_se_knobs_build_on_any_base_and_phi():
    model = build_model("b0", phi=-2, se_position="end", se_scope="hasskip", input_shape=(64, 64, 3))
    spec = get_spec("b0", phi=-2, se_position="end", se_scope="hasskip")
    for block in resolve_blocks(spec):
        layer = model.get_layer(block.name)
        assert layer.se_position == ("end" if block.has_skip else "after_dw")
    v2 = get_spec("v2_b0", se_position="none")
    assert all(block.se_position == "none" for block in resolve_blocks(v2))


def test_bad_se_knobs_are_rejected_with_the_choices():
    with pytest.raises(ValueError, match="after_dw, end, none"):
        get_spec("b0", se_position="middle")
    with pytest.raises(ValueError, match="all, noskip, hasskip"):
        get_spec("b0", se_scope="some")
