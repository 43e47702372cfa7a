"""EfficientNetV2: every variant equals Keras Applications' given the same weights."""

from __future__ import annotations

import gc

import keras
import numpy as np
import pytest

from efficientnet_tpu import build_model, get_spec
from efficientnet_tpu.model.layers import Normalize
from efficientnet_tpu.model.weights import KERAS_CONSTRUCTORS, load_keras_applications
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


# The fast loop keeps v2_b0 and v2_s: both stage-table layouts' wiring and both normalizations.
# The others differ in scaling or in their table, both compared with Keras' own arguments in
# test_model_keras_reference.py; v2_m and v2_l are also the package's largest networks.
HEAVY = {"v2_b1", "v2_b2", "v2_b3", "v2_m", "v2_l"}


@pytest.mark.parametrize(
    "variant", [pytest.param(v, marks=pytest.mark.slow) if v in HEAVY else v for v in V2_VARIANTS]
)
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
    # Resolution, BN momentum and the stage tables are checked against Keras' own constructor
    # arguments in test_model_keras_reference.py; mean and std against its preprocessing above.
    for variant in V2_VARIANTS:
        spec = get_spec(variant)
        assert spec.rounding == "v2"
        assert spec.eval_crop_fraction == pytest.approx(spec.resolution / (spec.resolution + 32))


def test_v2_takes_no_phi():
    with pytest.raises(ValueError, match="takes no phi"):
        get_spec("v2_s", phi=1)
