"""The model core against outside numbers: the paper's Table 1 (B0) and the published B0..B7 sizes."""

from __future__ import annotations


import keras
import numpy as np
import pytest

import efficientnet_tpu as et
from efficientnet_tpu.model import layers as L
from efficientnet_tpu.model import build_from_spec
from efficientnet_tpu.model.blocks import MBConv
from efficientnet_tpu.model.specs import resolve_blocks, round_filters, round_repeats
from helpers import trainable_params

# Trainable parameters at 1000 classes, and the G MACs a layer-by-layer count gives (Table 2 of the
# EfficientNet paper rounds them to 0.39, 0.70, 1.0, 1.8, 4.2, 9.9, 19 and 37 B FLOPs).
PINS = {
    "b0": (5_288_548, 0.386),
    "b1": (7_794_184, 0.687),
    "b2": (9_109_994, 0.994),
    "b3": (12_233_232, 1.83),
    "b4": (19_341_616, 4.39),
    "b5": (30_389_784, 10.27),
    "b6": (43_040_704, 19.07),
    "b7": (66_347_960, 37.75),
}
# MACs are counted at the variant's own resolution; from b4 up (380 px and more) that is slow on a CPU.
HEAVY = {"b4", "b5", "b6", "b7"}


@pytest.mark.parametrize("variant", sorted(PINS))
def test_published_variants_pin_params(variant):
    # A conv net's parameters do not depend on its input size, so 64 px pins the published count.
    model = et.build_model(variant, input_shape=(64, 64, 3))
    assert trainable_params(model) == PINS[variant][0]
    logits = np.asarray(model(np.full((1, 64, 64, 3), 128.0, "float32"), training=False))
    assert logits.shape == (1, 1000) and np.all(np.isfinite(logits))


@pytest.mark.parametrize(
    "variant", [pytest.param(v, marks=pytest.mark.slow) if v in HEAVY else v for v in sorted(PINS)]
)
def test_published_variants_pin_macs_at_their_resolution(variant):
    model = et.build_model(variant)
    resolution = et.get_spec(variant).resolution
    assert model.input_shape == (None, resolution, resolution, 3)
    # count_macs runs one forward pass at the variant's own resolution.
    assert et.count_macs(model) / 1e9 == pytest.approx(PINS[variant][1], rel=0.01)


def test_b0_with_ten_classes_is_seed_003s_model():
    assert trainable_params(et.build_model("b0", num_classes=10)) == 4_020_358


def test_compound_scaling_at_phi_one():
    spec = et.get_spec("b0", phi=1)
    assert spec.depth_coefficient == pytest.approx(1.2)
    assert spec.width_coefficient == pytest.approx(1.1)
    assert spec.resolution == 256


def test_negative_and_fractional_phi_build_smaller_and_larger_networks():
    small = et.build_model("b0", phi=-2.5, num_classes=10)
    spec = et.get_spec("b0", phi=-2.5)
    assert spec.resolution == int(round(224 * 1.15**-2.5 / 8)) * 8
    assert all(b.out_channels >= 8 and b.out_channels % 8 == 0 for b in resolve_blocks(spec))
    assert trainable_params(small) < 4_020_358
    larger = et.get_spec("b0", phi=0.5)
    assert 224 < larger.resolution < 256


def test_alpha_beta_gamma_replace_the_coefficients():
    spec = et.get_spec("b0", phi=2, alpha=1.1, beta=1.2, gamma=1.0)
    assert spec.depth_coefficient == pytest.approx(1.21)
    assert spec.width_coefficient == pytest.approx(1.44)
    assert spec.resolution == 224


def test_round_filters_keeps_the_ten_percent_rule_and_v2_drops_it():
    assert round_filters(32, 1.1) == 32  # 35.2 rounds to 32, within 10%
    assert round_filters(16, 0.74) == 16  # 11.84 would round to 8, more than 10% below
    assert round_filters(16, 0.74, rule="v2") == 8
    assert round_filters(16, 0.1) == 8  # never below the divisor
    assert round_repeats(3, 1.2) == 4 and round_repeats(1, 0.5) == 1 and round_repeats(0, 2.0) == 0


def test_stochastic_depth_rate_grows_linearly_over_all_blocks_of_the_scaled_network():
    spec = et.get_spec("b3")
    blocks = resolve_blocks(spec)
    total = len(blocks)
    assert total == 26
    for index, block in enumerate(blocks):
        assert block.drop_rate == pytest.approx(0.2 * index / total)
    model = build_from_spec(spec, input_shape=(64, 64, 3))  # the drop rates do not depend on the size
    layers_by_name = {layer.name: layer for layer in model.layers}
    for index, block in enumerate(blocks):
        layer = layers_by_name[block.name]
        if layer.has_skip and block.drop_rate > 0:
            assert layer.drop.rate == pytest.approx(0.2 * index / total)
        else:
            assert layer.drop is None


def test_errors_name_the_valid_choices():
    with pytest.raises(ValueError, match="valid choices: b0, b1"):
        et.build_model("b9")
    for bad in (float("nan"), float("inf"), "2", True):
        with pytest.raises(ValueError, match="phi must be a finite real number"):
            et.get_spec("b0", phi=bad)
    with pytest.raises(ValueError, match="use variant='b0' with phi=1"):
        et.get_spec("b3", phi=1)
    with pytest.raises(ValueError, match="Unknown spec override 'se_place'"):
        et.get_spec("b0", se_place="end")
    with pytest.raises(ValueError, match="only take effect with a phi"):
        et.get_spec("b0", alpha=1.3)
    with pytest.raises(ValueError, match="se_position must be one of"):
        et.get_spec("b0", se_position="middle")
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        et.build_model("b0", num_classes=0)
    with pytest.raises(ValueError, match="3 channels"):
        et.build_model("b0", input_shape=(64, 64, 1))


def test_spec_carries_metadata_for_training_eval_and_export():
    spec = et.get_spec("b4")
    assert (spec.resolution, spec.dropout_rate, spec.drop_connect_rate) == (380, 0.4, 0.2)
    assert spec.eval_crop_fraction == pytest.approx(380 / 412)
    assert spec.mean == pytest.approx((123.675, 116.28, 103.53))
    assert spec.std == pytest.approx((58.395, 57.12, 57.375))


def test_preprocessing_normalizes_inside_the_model():
    with_norm = et.build_model("b0", phi=-3, num_classes=4, input_shape=(32, 32, 3))
    without = et.build_model(
        "b0", phi=-3, num_classes=4, input_shape=(32, 32, 3), include_preprocessing=False
    )
    without.set_weights(with_norm.get_weights())
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    spec = et.get_spec("b0")
    normalized = (pixels - np.array(spec.mean, "float32")) / np.array(spec.std, "float32")
    np.testing.assert_allclose(
        with_norm(pixels, training=False), without(normalized, training=False), atol=1e-5
    )


def test_feature_maps_at_every_reduction_level():
    backbone = et.build_model("b0", include_top=False, input_shape=(128, 128, 3))
    extractor = et.build_feature_extractor(backbone)
    features = extractor(np.zeros((1, 128, 128, 3), "float32"))
    shapes = {name: tuple(value.shape) for name, value in features.items()}
    assert shapes == {
        "reduction_1": (1, 64, 64, 16),
        "reduction_2": (1, 32, 32, 24),
        "reduction_3": (1, 16, 16, 40),
        "reduction_4": (1, 8, 8, 112),
        "reduction_5": (1, 4, 4, 1280),
    }


def test_mixed_precision_keeps_logits_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = et.build_model("b0", phi=-3, num_classes=3, input_shape=(32, 32, 3))
        logits = model(np.zeros((2, 32, 32, 3), "float32"), training=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert str(logits.dtype) == "float32" or getattr(logits.dtype, "name", "") == "float32"
    assert model.get_layer("stem_conv").compute_dtype == "bfloat16"


def test_model_config_and_keras_file_round_trip(tmp_path):
    model = et.build_model("b0", phi=-2, num_classes=7, swish_beta=1.5, trainable_swish_beta=True)
    pixels = np.random.default_rng(1).uniform(0, 255, (2, *model.input_shape[1:])).astype("float32")
    expected = np.asarray(model(pixels, training=False))

    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(pixels, training=False), expected, atol=1e-5)

    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored(pixels, training=False), expected, atol=1e-5)
    assert any(w.path.endswith("beta") for w in restored.trainable_weights)


def test_layers_round_trip_through_get_config():
    for layer in (
        L.Swish(beta=2.0, trainable_beta=True),
        L.SqueezeExcite(24, 4, activation="relu"),
        L.StochasticDepth(0.3, seed=3),
        L.Normalize(),
        MBConv(16, 24, kernel_size=5, stride=2, expand_ratio=6, se_position="end", drop_rate=0.1),
    ):
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config


def test_swish_matches_its_formula():
    x = np.linspace(-6, 6, 25).astype("float32")
    np.testing.assert_allclose(L.Swish()(x), x / (1 + np.exp(-x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(L.Swish(beta=2.0)(x), x / (1 + np.exp(-2 * x)), rtol=1e-5, atol=1e-6)
    trainable = L.Swish(trainable_beta=True)
    trainable.build(x.shape)
    assert len(trainable.trainable_weights) == 1


def test_stochastic_depth_drops_whole_examples_and_keeps_the_expectation():
    layer = L.StochasticDepth(0.25, seed=0)
    x = np.ones((4000, 2, 2, 3), "float32")
    np.testing.assert_array_equal(layer(x, training=False), x)
    y = np.asarray(layer(x, training=True))
    per_example = y.reshape(4000, -1)
    # Each example is either dropped entirely or kept and scaled by 1 / 0.75.
    dropped = np.all(per_example == 0.0, axis=1)
    kept = np.all(np.isclose(per_example, 1 / 0.75), axis=1)
    assert np.all(dropped | kept)
    assert 0.2 < dropped.mean() < 0.3
    assert per_example.mean() == pytest.approx(1.0, abs=0.05)


def test_mbconv_structure_follows_the_reference():
    block = MBConv(16, 24, kernel_size=3, stride=2, expand_ratio=6, se_ratio=0.25)
    out = block(np.zeros((1, 32, 32, 16), "float32"))
    assert tuple(out.shape) == (1, 16, 16, 24)
    assert block.expand_conv.filters == 96 and not block.expand_conv.use_bias
    assert block.se.squeeze_channels == 4  # max(1, int(16 * 0.25)): of the input, not the expansion
    assert block.se.se_expand.filters == 96
    assert block.bn.momentum == 0.99 and block.bn.epsilon == 1e-3
    assert not block.has_skip
    assert MBConv(16, 16, expand_ratio=1).has_skip
    assert MBConv(16, 16, expand_ratio=1).expand_conv is None


def test_count_macs_equals_tensorflows_profiler_on_b0():
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    model = et.build_model("b0")
    forward = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, 224, 224, 3], tf.float32)
    )
    graph = convert_variables_to_constants_v2(forward).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["account_type_regexes"] = ["Conv2D", "DepthwiseConv2dNative", "MatMul"]
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=graph, cmd="scope", options=options)
    # The profiler counts a multiply-add as two float operations.
    assert profile.total_float_ops // 2 == et.count_macs(model) == 385_814_752


@pytest.mark.parametrize("variant", ["b0", "b0_fused", "b0_meconv", "b0_compact", "b0_compact_conv131"])
def test_every_block_type_has_all_its_weights_from_construction(variant):
    # A trainable swish beta inside any block must exist before the first call,
    # or weights saved from a used model would not fit a freshly built one.
    kwargs = dict(phi=-3, num_classes=3, input_shape=(32, 32, 3), activation="swish", trainable_swish_beta=True)
    model = et.build_model(variant, **kwargs)
    count = len(model.weights)
    model(np.zeros((1, 32, 32, 3), "float32"), training=False)
    assert len(model.weights) == count
    fresh = et.build_model(variant, **kwargs)
    fresh.set_weights(model.get_weights())
    assert sum("beta" in w.path and w.trainable and w.shape == () for w in model.weights) > 0
