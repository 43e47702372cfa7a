"""EfficientNetV2 (VARIANTS.md section 6): every variant equals Keras Applications' given the same weights."""

from __future__ import annotations

import gc

import keras
import numpy as np
import pytest

from efficientnet_tpu import build_model, get_spec
from efficientnet_tpu.model.layers import Normalize
from efficientnet_tpu.weights import KERAS_CONSTRUCTORS, load_keras_applications
from helpers import trainable_params

V2_VARIANTS = ["v2_b0", "v2_b1", "v2_b2", "v2_b3", "v2_s", "v2_m", "v2_l"]
PINNED = {"v2_b0": 7_139_704, "v2_s": 21_458_488}
SIZE = 64  # parameters do not depend on the input size; outputs compare at any size


def _randomize_batch_norm_statistics(model: keras.Model, rng: np.random.Generator) -> None:
    """Fresh BN statistics are 0 / 1, which would hide a mismatch in the BN wiring."""
    for weight in model.weights:
        if weight.path.endswith("moving_mean"):
            weight.assign(rng.normal(0.0, 0.1, weight.shape).astype("float32"))
        elif weight.path.endswith("moving_variance"):
            weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))


@pytest.mark.parametrize("variant", V2_VARIANTS)
def test_v2_matches_keras_applications(variant):
    rng = np.random.default_rng(0)
    reference = getattr(keras.applications, KERAS_CONSTRUCTORS[variant])(
        weights=None, input_shape=(SIZE, SIZE, 3), classifier_activation=None
    )
    _randomize_batch_norm_statistics(reference, rng)
    # Ours without its Normalize layer: the trunk is fed Keras' own preprocessed tensor, so any
    # difference is the network's. (Normalizing in one float32 step instead of Keras' two differs
    # in the last bit, which a random-weight net can amplify past any fixed tolerance.)
    ours = build_model(variant, input_shape=(SIZE, SIZE, 3), include_preprocessing=False)
    assert trainable_params(ours) == trainable_params(reference)
    if variant in PINNED:
        assert trainable_params(ours) == PINNED[variant]
    load_keras_applications(ours, reference)  # raises unless every weight maps one to one

    images = rng.uniform(0.0, 255.0, (2, SIZE, SIZE, 3)).astype("float32")
    keras_preprocessing = keras.Model(reference.input, reference.get_layer("stem_conv").input)
    preprocessed = np.asarray(keras_preprocessing(images))
    spec = get_spec(variant)
    # The spec's mean/std reproduce Keras' preprocessing, so include_preprocessing=True matches it.
    np.testing.assert_allclose(Normalize(spec.mean, spec.std)(images), preprocessed, atol=1e-5)

    expected = np.asarray(reference(images, training=False))
    got = np.asarray(ours(preprocessed, training=False))
    scale = max(1.0, float(np.abs(expected).max()))  # random BN statistics make deep nets grow large
    np.testing.assert_allclose(got / scale, expected / scale, atol=1e-5)
    # And the model survives a get_config round trip (test_variants_all.py leaves V2 to this test).
    twin = keras.Model.from_config(ours.get_config())
    twin.set_weights(ours.get_weights())
    np.testing.assert_allclose(np.asarray(twin(preprocessed, training=False)) / scale, got / scale, atol=1e-5)
    del reference, ours, twin, keras_preprocessing
    gc.collect()


def test_v2_specs_carry_keras_metadata():
    resolutions = {"v2_b0": 224, "v2_b1": 240, "v2_b2": 260, "v2_b3": 300, "v2_s": 384, "v2_m": 480, "v2_l": 480}
    for variant, resolution in resolutions.items():
        spec = get_spec(variant)
        assert spec.resolution == resolution
        assert spec.bn_momentum == 0.9 and spec.rounding == "v2"
        assert spec.eval_crop_fraction == pytest.approx(resolution / (resolution + 32))
    # B variants keep ImageNet mean/std; S/M/L map [0, 255] to [-1, 1] as Keras' x / 128 - 1.
    assert get_spec("v2_b0").mean == get_spec("b0").mean
    assert get_spec("v2_s").mean == (128.0, 128.0, 128.0) and get_spec("v2_s").std == (128.0, 128.0, 128.0)


def test_v2_takes_no_phi():
    with pytest.raises(ValueError, match="takes no phi"):
        get_spec("v2_s", phi=1)
