"""The study blocks (Fused-MBConv, MEConv, Conv31, Conv131) and the B0 presets built from them."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from efficientnet_tpu import build_model, get_spec
from efficientnet_tpu.model import resolve_blocks
from efficientnet_tpu.model.blocks import Conv31, Conv131, FusedMBConv, MEConv
from helpers import trainable_params


def _kernels(layer) -> dict[str, tuple[int, ...]]:
    """Conv kernel shapes by sublayer name (SE convs excluded)."""
    return {
        sub.name: tuple(sub.kernel.shape)
        for sub in layer._flatten_layers(include_self=False, recursive=False)
        if isinstance(sub, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
    }


@pytest.mark.parametrize(
    "cls, kwargs, expected",
    [
        # expand 4: k x k conv 16 -> 64 (stride 2), then a 1x1 projection
        (FusedMBConv, dict(expand_ratio=4, stride=2), {"expand_conv": (3, 3, 16, 64), "project_conv": (1, 1, 64, 24)}),
        # expand 1: the k x k conv maps straight to C_out and there is no 1x1
        (FusedMBConv, dict(expand_ratio=1, stride=2), {"project_conv": (3, 3, 16, 24)}),
        (
            MEConv,
            dict(inner_channels=24, stride=2),
            {
                "expand_conv": (1, 1, 16, 24),
                "dwconv": (3, 3, 24, 1),
                "mid_conv": (1, 1, 24, 24),
                "dwconv_2": (3, 3, 24, 1),
                "project_conv": (1, 1, 24, 24),
            },
        ),
        (Conv31, dict(inner_channels=24, stride=2), {"spatial_conv": (3, 3, 16, 24), "project_conv": (1, 1, 24, 24)}),
        (
            Conv131,
            dict(inner_channels=24, stride=2),
            {"expand_conv": (1, 1, 16, 24), "spatial_conv": (3, 3, 24, 24), "project_conv": (1, 1, 24, 24)},
        ),
    ],
)
def test_block_layers_shapes_and_config_round_trip(cls, kwargs, expected):
    block = cls(16, 24, kernel_size=3, se_ratio=0.0, name="block", **kwargs)
    inputs = np.random.default_rng(0).normal(size=(2, 16, 16, 16)).astype("float32")
    outputs = block(inputs, training=False)
    assert tuple(outputs.shape) == (2, 8, 8, 24)
    assert _kernels(block) == expected
    twin = cls.from_config(block.get_config())
    twin.build(inputs.shape)
    twin.set_weights(block.get_weights())
    np.testing.assert_allclose(twin(inputs, training=False), outputs, atol=1e-6)


def test_fused_mbconv_without_expansion_ends_with_an_activation():
    """Keras Applications' quirk we match: the e == 1 Fused-MBConv activates after its BN."""
    block = FusedMBConv(8, 16, kernel_size=3, expand_ratio=1, se_ratio=0.0, activation="relu6", name="b")
    inputs = np.random.default_rng(0).normal(size=(1, 8, 8, 8)).astype("float32") * 50
    outputs = np.asarray(block(inputs, training=False))
    assert not block.has_skip
    # relu6 after the projection BN clips both ways; a linear projection would not.
    assert outputs.min() == 0.0 and outputs.max() == 6.0


@pytest.mark.parametrize("cls", [FusedMBConv, MEConv, Conv31, Conv131])
@pytest.mark.parametrize("position", ["after_dw", "end"])
def test_every_block_takes_se_at_both_positions(cls, position):
    block = cls(16, 16, kernel_size=3, expand_ratio=2, se_ratio=0.25, se_position=position, name="b")
    outputs = block(np.ones((1, 8, 8, 16), "float32"), training=False)
    assert tuple(outputs.shape) == (1, 8, 8, 16)
    assert block.se.squeeze_channels == 4
    assert block.se.channels == (block.inner_channels if position == "after_dw" else 16)


def test_b0_lite_pin_and_structure():
    model = build_model("b0_lite")
    assert trainable_params(model) == 4_652_008
    spec = get_spec("b0_lite")
    assert spec.activation == "relu6" and not spec.scale_stem_head
    assert all(block.se_position == "none" for block in resolve_blocks(spec))
    assert all(layer.se is None for layer in model.layers if layer.name.startswith("block"))
    # Stem and head stay 32 / 1280 wide when the lite network is widened.
    scaled = get_spec("b0_lite", phi=2)
    assert (scaled.stem_out, scaled.head_out) == (32, 1280)
    assert scaled.round_filters(320) > 320


def test_b0_compact_has_no_stage_2_and_conv31_at_stage_3():
    spec = get_spec("b0_compact")
    blocks = resolve_blocks(spec)
    assert not [b for b in blocks if b.stage == 2]
    stage3 = [b for b in blocks if b.stage == 3]
    assert [b.block for b in stage3] == ["conv31", "conv31"]
    # Inner width C_out (the reading), input straight from the 32-channel stem.
    assert [(b.in_channels, b.inner_channels, b.out_channels, b.stride) for b in stage3] == [
        (32, 24, 24, 2),
        (24, 24, 24, 1),
    ]
    assert all(b.block == "mbconv" for b in blocks if b.stage > 3)
    model = build_model("b0_compact", input_shape=(64, 64, 3))
    assert isinstance(model.get_layer("block2a"), Conv31)
    assert not any(layer.name.startswith("block1") for layer in model.layers)


def test_compact_ablations():
    nostage2 = resolve_blocks(get_spec("b0_lite_nostage2"))
    assert {b.stage for b in nostage2} == {3, 4, 5, 6, 7, 8}
    assert all(b.block == "mbconv" for b in nostage2)
    conv131 = [b for b in resolve_blocks(get_spec("b0_compact_conv131")) if b.stage == 3]
    assert [b.block for b in conv131] == ["conv131", "conv131"]
    assert [b.inner_channels for b in conv131] == [24, 24]
    # The expand-ratio knob widens them.
    wide = [b for b in resolve_blocks(get_spec("b0_compact", stage_expand_ratios={3: 6})) if b.stage == 3]
    assert [b.inner_channels for b in wide] == [144, 144]


@pytest.mark.parametrize(
    "variant, inner",
    [
        # Stage-by-stage MEConv width M of (first block, second block) of stages 3 and 6:
        # stage 3: 16 -> 24 stride 2; stage 6: 80 -> 112 stride 1 (changes width only).
        ("b0_meconv", {"block2a": 24, "block2b": 24, "block5a": 112, "block5b": 112}),
        ("b0_meconv_expand_stride2", {"block2a": 96, "block2b": 24, "block5a": 112, "block5b": 112}),
        ("b0_meconv_expand_resize", {"block2a": 96, "block2b": 24, "block5a": 480, "block5b": 112}),
        ("b0_meconv_expand_out", {"block2a": 144, "block2b": 24, "block5a": 672, "block5b": 112}),
    ],
)
def test_meconv_expansion_rules(variant, inner):
    blocks = {b.name: b for b in resolve_blocks(get_spec(variant))}
    assert {name: blocks[name].inner_channels for name in inner} == inner
    assert blocks["block1a"].block == "mbconv"  # the MBConv1 stage stays MBConv
    assert all(b.block == "meconv" for b in blocks.values() if b.stage >= 3)


def test_b0_fused_uses_fused_mbconv_without_se_in_stages_2_to_4():
    blocks = resolve_blocks(get_spec("b0_fused"))
    for block in blocks:
        early = block.stage <= 4
        assert block.block == ("fused_mbconv" if early else "mbconv")
        assert (block.se_position == "none") == early
    model = build_model("b0_fused", input_shape=(64, 64, 3))
    stem_block = model.get_layer("block1a")
    assert _kernels(stem_block) == {"project_conv": (3, 3, 32, 16)}
    assert _kernels(model.get_layer("block3a"))["expand_conv"] == (5, 5, 24, 144)


def test_stage_knobs_compose_on_any_base():
    spec = get_spec("b0", phi=1, stage_blocks={"3": "conv131"}, remove_stages=[2], stage_se_ratios={3: 0})
    stage3 = [b for b in resolve_blocks(spec) if b.stage == 3]
    assert stage3 and all(b.block == "conv131" and b.se_position == "none" for b in stage3)
    v2 = get_spec("v2_s", stage_blocks={2: "meconv"})
    assert {b.block for b in resolve_blocks(v2) if b.stage == 2} == {"meconv"}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"stage_blocks": {9: "conv31"}}, "2..8"),
        ({"stage_blocks": {3: "conv33"}}, "valid choices"),
        ({"stage_blocks": "conv31"}, "mapping"),
        ({"remove_stages": (2, 3, 4, 5, 6, 7, 8)}, "at least one"),
        ({"stage_expand_ratios": {3: 0}}, "positive"),
        ({"stage_se_ratios": {3: 2}}, "at most 1"),
        ({"meconv_expand": "twice"}, "none, stride2, resize, out"),
    ],
)
def test_bad_stage_knobs_say_what_is_valid(overrides, message):
    with pytest.raises(ValueError, match=message):
        get_spec("b0", **overrides)


def test_stage_knobs_on_a_network_without_stages_are_rejected():
    with pytest.raises(ValueError, match="has none"):
        get_spec("resnet152", remove_stages=(2,))
