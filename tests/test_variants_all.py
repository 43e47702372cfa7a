"""Every named network of VARIANTS.md sections 3-7: registered, buildable, runnable, serializable."""

from __future__ import annotations

import gc
import math

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


@pytest.mark.parametrize("variant", STUDY_VARIANTS)
def test_variant_spec_metadata_is_sensible(variant):
    spec = get_spec(variant)
    assert spec.name == variant
    assert 32 <= spec.resolution <= 600
    assert 0.0 <= spec.dropout_rate < 1.0 and 0.0 <= spec.drop_connect_rate < 1.0
    assert 0.0 < spec.eval_crop_fraction <= 1.0
    assert len(spec.mean) == len(spec.std) == 3 and all(s > 0 and math.isfinite(s) for s in spec.std)


@pytest.mark.parametrize("variant", ["b0_seend_noskip", "b0_meconv_expand_out", "b0_compact", "b0_fused"])
def test_b0_presets_take_any_phi(variant):
    small = get_spec(variant, phi=-1.5)
    assert small.resolution < 224 and small.width_coefficient < 1.0
    model = build_model(variant, phi=-1.5, num_classes=3)
    assert model.input_shape == (None, small.resolution, small.resolution, 3)
    assert model.output_shape == (None, 3)
