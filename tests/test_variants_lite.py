"""EfficientNet-lite0..lite4 against the reference's lite builder.

The numbers come from tensorflow/tpu models/official/efficientnet/lite/efficientnet_lite_builder.py
(`efficientnet_lite_params`, `efficientnet_lite`, MEAN_RGB / STDDEV_RGB) and
efficientnet_model.py (`Model._build`: fix_head_stem keeps the first and last stage's repeats).
"""

from __future__ import annotations

import numpy as np
import pytest

from efficientnet_tpu import build_model, get_spec, list_variants
from efficientnet_tpu.model.specs import resolve_blocks

# Trainable parameters of the reference lite builder with 1000 classes (issue 16).
REFERENCE_PARAMS = {
    "lite0": (224, 4_652_008),
    "lite1": (240, 5_416_680),
    "lite2": (260, 6_092_072),
    "lite3": (280, 8_197_096),
    "lite4": (300, 13_006_568),
}
# efficientnet_lite_params: (width, depth, resolution, dropout).
REFERENCE_PARAMS_TABLE = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3),
    "lite4": (1.4, 1.8, 300, 0.3),
}
B0_REPEATS = (1, 2, 2, 3, 3, 4, 1)  # _DEFAULT_BLOCKS_ARGS of the lite builder


def _trainable(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def test_lite_variants_are_registered_by_name_and_b0_lite_stays():
    names = list_variants()
    assert [n for n in names if n.startswith("lite")] == list(REFERENCE_PARAMS)
    assert "b0_lite" in names


@pytest.mark.parametrize("name", ["lite0", "lite2", "lite4"])
def test_lite_parameter_count_equals_the_reference_builder(name):
    resolution, params = REFERENCE_PARAMS[name]
    model = build_model(name)
    assert model.input_shape[1:3] == (resolution, resolution)
    assert _trainable(model) == params


def test_lite1_and_lite3_parameter_counts_from_the_spec():
    # The builder's counts without building the two mid-size graphs: the same weights, counted per block.
    for name in ("lite1", "lite3"):
        resolution, params = REFERENCE_PARAMS[name]
        model = build_model(name, input_shape=(32, 32, 3))  # weights do not depend on the input size
        assert get_spec(name).resolution == resolution
        assert _trainable(model) == params


@pytest.mark.parametrize("name", list(REFERENCE_PARAMS))
def test_lite_metadata_is_the_reference_builders(name):
    width, depth, resolution, dropout = REFERENCE_PARAMS_TABLE[name]
    spec = get_spec(name)
    assert (spec.width_coefficient, spec.depth_coefficient, spec.resolution, spec.dropout_rate) == (
        width, depth, resolution, dropout)
    assert spec.drop_connect_rate == pytest.approx(0.2)  # survival_prob 0.8
    assert spec.mean == (127.0, 127.0, 127.0) and spec.std == (128.0, 128.0, 128.0)
    assert spec.resize_method == "bilinear"
    assert spec.activation == "relu6"
    blocks = resolve_blocks(spec)
    assert all(b.se_position == "none" and b.se_ratio == 0 for b in blocks)
    assert (spec.stem_out, spec.head_out) == (32, 1280)
    per_stage = [sum(1 for b in blocks if b.stage == s) for s in range(2, 9)]
    # First and last stage keep their repeats; the others are ceil(depth * repeats).
    expected = [B0_REPEATS[0]] + [int(np.ceil(depth * r)) for r in B0_REPEATS[1:-1]] + [B0_REPEATS[-1]]
    assert per_stage == expected


def test_lite4_differs_from_scaled_b0_lite_in_the_fixed_stages():
    lite4 = [b.stage for b in resolve_blocks(get_spec("lite4"))]
    assert lite4.count(2) == 1 and lite4.count(8) == 1
    # b0_lite has the study's scaling (every stage), so it stays a different network.
    assert get_spec("b0_lite").resize_method == "bicubic"


def test_lite_normalization_is_inside_the_model():
    model = build_model("lite0", input_shape=(32, 32, 3), num_classes=3)
    norm = model.get_layer("normalization")
    assert norm.mean == (127.0,) * 3 and norm.std == (128.0,) * 3


def test_lite_eval_and_serving_resize_bilinearly():
    import tensorflow as tf

    from efficientnet_tpu.data import preprocess_for_eval

    image = np.random.default_rng(0).uniform(0, 255, (40, 56, 3)).astype("float32")
    bilinear = np.asarray(preprocess_for_eval(image, 24, 1.0, get_spec("lite0").resize_method))
    expected = np.clip(tf.image.resize(image, [24, 24], method="bilinear").numpy(), 0, 255)
    np.testing.assert_allclose(bilinear, expected, atol=1e-4)
    bicubic = np.asarray(preprocess_for_eval(image, 24, 1.0, get_spec("b0").resize_method))
    assert np.abs(bicubic - bilinear).max() > 1.0
    with pytest.raises(ValueError, match="resize method"):
        preprocess_for_eval(image, 24, 1.0, "nearest")
