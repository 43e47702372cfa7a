"""The baselines of seed 003's comparison: a small CIFAR ConvNet and ResNet-152 (Keras Applications' layout)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from efficientnet_tpu import build_model, count_macs, get_spec
from helpers import trainable_params


def test_baseline_convnet_matches_the_seed_within_5_percent():
    model = build_model("baseline_convnet", num_classes=10)
    assert model.input_shape == (None, 32, 32, 3)  # its default resolution
    params = trainable_params(model)
    macs = count_macs(model)
    assert params == pytest.approx(1.46e6, rel=0.05)
    assert macs == pytest.approx(39.97e6, rel=0.05)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(convs) == 3 and len(dense) == 3
    assert dense[-1].units == 10


def test_baseline_convnet_spec_and_feature_output():
    spec = get_spec("baseline_convnet")
    assert spec.resolution == 32 and spec.eval_crop_fraction == 1.0  # CIFAR-native: no centre crop
    features = build_model("baseline_convnet", include_top=False)
    assert features.output_shape == (None, 4, 4, 256)
    with pytest.raises(ValueError, match="static input size"):
        build_model("baseline_convnet", input_shape=(None, None, 3))
    with pytest.raises(ValueError, match="takes no phi"):
        get_spec("baseline_convnet", phi=1)


@pytest.fixture(scope="module")
def resnets():
    """Keras Applications' ResNet-152 and ours at 64x64 with 10 classes, sharing random weights."""
    rng = np.random.default_rng(0)
    reference = keras.applications.ResNet152(
        weights=None, classes=10, input_shape=(64, 64, 3), classifier_activation=None
    )
    for weight in reference.weights:  # non-trivial BN statistics, so BN wiring matters
        if weight.path.endswith("moving_mean"):
            weight.assign(rng.normal(0.0, 0.1, weight.shape).astype("float32"))
        elif weight.path.endswith("moving_variance"):
            weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
    ours = build_model("resnet152", num_classes=10, input_shape=(64, 64, 3))
    for layer in reference.layers:
        if layer.weights:
            ours.get_layer(layer.name).set_weights(layer.get_weights())
    return reference, ours


@pytest.mark.slow  # the fixture builds ResNet-152 twice (Keras' and ours)
def test_resnet152_has_keras_parameter_count(resnets):
    reference, ours = resnets
    assert trainable_params(ours) == 58_240_010 == trainable_params(reference)
    assert len(ours.weights) == len(reference.weights)


@pytest.mark.slow
def test_resnet152_outputs_equal_keras_given_the_same_weights(resnets):
    reference, ours = resnets
    images = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    # Keras' ResNet expects caffe-preprocessed input (BGR, mean subtracted); ours normalizes
    # RGB inside. Reversing conv1's input channels makes the two identical.
    caffe = keras.applications.resnet.preprocess_input(images.copy())
    expected = np.asarray(reference(caffe, training=False))
    kernel, bias = ours.get_layer("conv1_conv").get_weights()
    ours.get_layer("conv1_conv").set_weights([kernel[:, :, ::-1, :], bias])
    try:
        got = np.asarray(ours(images, training=False))
    finally:
        ours.get_layer("conv1_conv").set_weights([kernel, bias])
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got / scale, expected / scale, atol=2e-5)


@pytest.mark.slow  # a second ResNet-152 from its config
def test_resnet152_round_trips_through_get_config(resnets):
    _, ours = resnets
    images = np.random.default_rng(2).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    twin = keras.Model.from_config(ours.get_config())
    twin.set_weights(ours.get_weights())
    np.testing.assert_allclose(
        np.asarray(twin(images, training=False)), np.asarray(ours(images, training=False)), rtol=1e-5, atol=1e-4
    )
