"""A block type is one layer file plus one declaration: a toy block reaches the specs, builder, MACs and summary.

The toy is the example of docs/extending.md ("Add a block type"), registered
the way a new block is: its name, label and inner-width rule declared with
`register_block_type` (Keras-free), its `ResidualBlock` subclass under
`@register_block`. Nothing else in the package is told.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from efficientnet_tpu import count_macs, get_spec
from efficientnet_tpu.model import ModelSpec, StageSpec, build_from_spec, resolve_blocks
from efficientnet_tpu.model import block_types as blocktypes
from efficientnet_tpu.model.blocks import BLOCK_LAYERS, ConvBN, ResidualBlock, register_block
from efficientnet_tpu.summary import describe_spec, format_table, stage_table


class PlainConv(ResidualBlock):
    """A k x k conv (stride s) to C_out, BN, activation: the smallest block there is."""

    def _steps(self):
        return (ConvBN("spatial", self.out_channels, self.kernel_size, self.stride),)


@pytest.fixture
def plain_conv():
    blocktypes.register_block_type("plain_conv", "PlainConv, k{kernel}x{kernel}")
    register_block("plain_conv")(PlainConv)
    try:
        yield PlainConv
    finally:  # leave the registries as the package defines them
        del BLOCK_LAYERS["plain_conv"], blocktypes.BLOCK_TYPES["plain_conv"]


def toy_spec() -> ModelSpec:
    """Stem (16 channels), one PlainConv 3x3 block 16 -> 16, head (32 channels), at 16 px."""
    return ModelSpec(
        name="plain_conv_net",
        stages=(StageSpec("plain_conv", 3, 1, 1, 16, 16, 1, se_ratio=0.0),),
        stem_channels=16,
        head_channels=32,
        resolution=16,
    )


def test_a_registered_block_builds_runs_and_round_trips(plain_conv):
    model = build_from_spec(toy_spec(), num_classes=10)
    block = model.get_layer("block1a")
    assert isinstance(block, plain_conv) and block.has_skip
    assert [layer.name for layer in block._flatten_layers(include_self=False, recursive=False)] == [
        "spatial_conv", "spatial_bn", "spatial_activation",
    ]  # fmt: skip
    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    logits = np.asarray(model(images, training=False))
    assert logits.shape == (2, 10) and np.isfinite(logits).all()
    twin = keras.Model.from_config(model.get_config())  # register_block made it Keras-serializable
    twin.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(twin(images, training=False)), logits, atol=1e-5)


def test_a_registered_block_is_counted_in_macs_and_summarized(plain_conv):
    model = build_from_spec(toy_spec(), num_classes=10)
    # By hand, at 16 px: the stride-2 stem leaves 8x8 maps.
    stem = 8 * 8 * 16 * (3 * 3 * 3)
    plain = 8 * 8 * 16 * (3 * 3 * 16)  # the toy block's one conv
    head = 8 * 8 * 32 * 16
    classifier = 32 * 10
    assert count_macs(model) == stem + plain + head + classifier

    summary = describe_spec(toy_spec(), num_classes=10)
    assert [(row["stage"], row["operator"], row["layers"]) for row in summary["stages"]] == [
        (1, "Conv3x3, stride 2", 1),
        (2, "PlainConv, k3x3", 1),
        (3, "Conv1x1, pooling, FC", 1),
    ]
    bn = 2  # trainable gamma and beta per channel
    params = (3 * 3 * 3 * 16 + bn * 16) + (3 * 3 * 16 * 16 + bn * 16) + (16 * 32 + bn * 32) + (32 * 10 + 10)
    assert (summary["params"], summary["macs"]) == (params, count_macs(model))
    assert "PlainConv, k3x3" in format_table(summary)


def test_a_registered_block_is_a_valid_stage_knob(plain_conv):
    spec = get_spec("b0", phi=-3, stage_blocks={3: "plain_conv"}, se_position="end")
    stage3 = [block for block in resolve_blocks(spec) if block.stage == 3]
    assert stage3 and all(block.block == "plain_conv" for block in stage3)
    # The default inner-width rule (MBConv's): C_in times the expand ratio.
    assert [block.inner_channels for block in stage3] == [int(block.in_channels * 6) for block in stage3]
    model = build_from_spec(spec, num_classes=3, input_shape=(32, 32, 3))
    assert isinstance(model.get_layer(stage3[0].name), plain_conv)
    # It has no place for SE inside, so the default SE position is refused with the way out.
    with pytest.raises(ValueError, match="no SE step.*se_position 'end' or 'none'"):
        build_from_spec(get_spec("b0", stage_blocks={3: "plain_conv"}))


def test_an_unregistered_block_is_refused_with_the_registered_names():
    with pytest.raises(ValueError, match="Unknown block 'plain_conv'; valid choices: mbconv, fused_mbconv"):
        StageSpec("plain_conv", 3, 1, 1, 16, 16, 1)
    with pytest.raises(ValueError, match="registered twice"):
        register_block("mbconv")(PlainConv)
    with pytest.raises(ValueError, match="registered twice"):
        blocktypes.register_block_type("mbconv", "MBConv")
    with pytest.raises(ValueError, match="label"):
        blocktypes.register_block_type("unlabelled", "")
    with pytest.raises(ValueError, match="not declared; declare it first with .*register_block_type"):
        register_block("undeclared")(type("Undeclared", (ResidualBlock,), {}))


def test_every_declared_block_type_has_a_layer_class():
    assert list(BLOCK_LAYERS) == list(blocktypes.block_names())


@pytest.mark.parametrize("name", list(BLOCK_LAYERS))
def test_every_registered_block_builds_and_has_its_label_in_table_1(name):
    """Read off the registry (no copy of it): each block type builds, runs, and the summary labels it."""
    block_type = BLOCK_LAYERS[name]
    # One stage of one block: 3x3, stride 2, expand 6, 16 -> 24 channels, SE after the depthwise position.
    spec = ModelSpec(name=f"one_{name}", stages=(StageSpec(name, 3, 2, 6, 16, 24, 1),), resolution=16)
    model = build_from_spec(spec, num_classes=3)
    assert type(model.get_layer("block1a")) is block_type
    assert model.get_layer("block1a").se is not None
    assert np.isfinite(np.asarray(model(np.zeros((1, 16, 16, 3), "float32"), training=False))).all()
    label = block_type.label.format(expand=6, kernel=3)
    assert [row.operator for row in stage_table(spec) if row.stage == 2] == [f"{label}, stride 2"]
