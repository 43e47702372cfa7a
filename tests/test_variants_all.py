"""Every named network (docs/variants.md lists them): registered, buildable, runnable, serializable."""

from __future__ import annotations

import gc

import keras
import numpy as np
import pytest

from efficientnet_tpu import build_model, get_spec, list_variants

STUDY_VARIANTS = [
    "b0_seend", "b0_seend_noskip", "b0_seend_hasskip",
    "b0_nose", "b0_nose_noskip", "b0_nose_hasskip",
    "b0_meconv", "b0_meconv_expand_stride2", "b0_meconv_expand_resize", "b0_meconv_expand_out",
    "b0_lite", "b0_lite_nostage2", "b0_compact", "b0_compact_conv131",
    "b0_fused",
    "v2_b0", "v2_b1", "v2_b2", "v2_b3", "v2_s", "v2_m", "v2_l",
    "baseline_convnet", "resnet152",
]  # fmt: skip


def test_every_study_variant_is_registered_under_its_exact_name():
    names = list_variants()
    assert [name for name in names if name in STUDY_VARIANTS] == STUDY_VARIANTS
    assert len(set(names)) == len(names)


# The V2 networks and ResNet-152 are built, run and round-tripped in test_variants_v2.py and
# test_variants_baselines.py, beside their Keras Applications comparisons, so the big ones build once.
ELSEWHERE = {"v2_b0", "v2_b1", "v2_b2", "v2_b3", "v2_s", "v2_m", "v2_l", "resnet152"}


@pytest.mark.parametrize("variant", [name for name in STUDY_VARIANTS if name not in ELSEWHERE])
def test_variant_builds_runs_and_round_trips_through_get_config(variant):
    size = 32  # small on purpose: every network reduces by 32 at most
    model = build_model(variant, num_classes=7, input_shape=(size, size, 3))
    images = np.random.default_rng(0).uniform(0.0, 255.0, (2, size, size, 3)).astype("float32")
    logits = np.asarray(model(images, training=False))
    assert logits.shape == (2, 7) and np.isfinite(logits).all()
    twin = keras.Model.from_config(model.get_config())
    assert [layer.__class__ for layer in twin.layers] == [layer.__class__ for layer in model.layers]
    twin.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(twin(images, training=False)), logits, rtol=1e-5, atol=1e-5)
    del model, twin
    gc.collect()


IMAGENET_MEAN_STD = ((0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255))
SIGNED_UNIT = ((128.0,) * 3, (128.0,) * 3)  # x / 128 - 1
# (eval resolution, classifier dropout, (mean, std) of the [0, 255] input), from each network's source:
# the B0 presets keep the published B0's 224 px and 0.2 (tensorflow/tpu efficientnet_builder.py,
# efficientnet_params) and its ImageNet normalization; EfficientNetV2's eval_size and dropout are
# google/automl efficientnetv2/effnetv2_configs.py's (efficientnetv2_params), its input scaling
# Keras Applications' efficientnet_v2.py's (ImageNet mean/std for B0-B3, Rescaling(1/128, offset=-1) for S/M/L);
# ResNet-152 is Keras Applications' (224 px, no dropout, "caffe" mean subtraction).
SOURCE_METADATA = {
    **{name: (224, 0.2, IMAGENET_MEAN_STD) for name in STUDY_VARIANTS if name.startswith("b0_")},
    "v2_b0": (224, 0.2, IMAGENET_MEAN_STD), "v2_b1": (240, 0.2, IMAGENET_MEAN_STD),
    "v2_b2": (260, 0.3, IMAGENET_MEAN_STD), "v2_b3": (300, 0.3, IMAGENET_MEAN_STD),
    "v2_s": (384, 0.2, SIGNED_UNIT), "v2_m": (480, 0.3, SIGNED_UNIT), "v2_l": (480, 0.4, SIGNED_UNIT),
    "resnet152": (224, 0.0, ((123.68, 116.779, 103.939), (1.0, 1.0, 1.0))),
}


@pytest.mark.parametrize("variant", sorted(SOURCE_METADATA))
def test_variant_resolution_dropout_and_normalization_are_its_sources(variant):
    spec = get_spec(variant)
    resolution, dropout, (mean, std) = SOURCE_METADATA[variant]
    assert spec.name == variant and (spec.resolution, spec.dropout_rate) == (resolution, dropout)
    np.testing.assert_allclose(spec.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(spec.std, std, rtol=1e-6)


@pytest.mark.parametrize("variant", ["b0_seend_noskip", "b0_meconv_expand_out", "b0_compact", "b0_fused"])
def test_b0_presets_take_any_phi(variant):
    small = get_spec(variant, phi=-1.5)
    assert small.resolution < 224 and small.width_coefficient < 1.0
    model = build_model(variant, phi=-1.5, num_classes=3)
    assert model.input_shape == (None, small.resolution, small.resolution, 3)
    assert model.output_shape == (None, 3)
