"""Keras Applications weights load into our models and give the same outputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import efficientnet_tpu as et
from efficientnet_tpu.model.weights import load_keras_applications

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def randomize(model: keras.Model, seed: int) -> None:
    """Random BN statistics, scales, shifts and biases on top of the random kernels.

    Every weight then differs from its initial value, so a wrong mapping cannot
    hide, while gammas near 1 keep the signal alive through the whole network.
    """
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        path = weight.path
        if "seed_generator" in path or "normalization" in path or path.endswith("kernel"):
            continue
        if path.endswith(("gamma", "moving_variance")):
            value = rng.uniform(0.5, 1.5, weight.shape)
        else:  # beta, moving_mean, bias
            value = rng.normal(0.0, 0.1, weight.shape)
        weight.assign(value.astype("float32"))


def set_keras_normalization(model: keras.Model, variance: np.ndarray) -> None:
    norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    norm.adapt_mean.assign(IMAGENET_MEAN)
    norm.adapt_variance.assign(variance)
    norm.finalize_state()


def block6a(model: keras.Model, keras_applications: bool) -> keras.Model:
    """The output of block 6a (no shortcut, so Keras' project BN output equals our block's)."""
    name = "block6a_project_bn" if keras_applications else "block6a"
    return keras.Model(model.input, model.get_layer(name).output)


def pixels(shape, seed=0) -> np.ndarray:
    """Two unlike images: uniform noise, and a dark-to-bright reddish gradient."""
    height, width, _ = shape
    noise = np.random.default_rng(seed).uniform(0, 255, shape)
    ramp = np.linspace(0.0, 1.0, width)[None, :, None] * np.array([255.0, 120.0, 30.0])
    gradient = np.broadcast_to(ramp, shape)
    return np.stack([noise, gradient]).astype("float32")


@pytest.mark.parametrize(
    "variant, constructor",
    [("b0", "EfficientNetB0"), pytest.param("b3", "EfficientNetB3", marks=pytest.mark.slow)],  # b3: 300 px, twice
)
def test_outputs_equal_keras_applications(variant, constructor):
    source = getattr(keras.applications, constructor)(weights=None, classifier_activation=None)
    randomize(source, seed=1)
    # The same (correct) input normalization on both sides.
    set_keras_normalization(source, IMAGENET_STD**2)
    ours = load_keras_applications(et.build_model(variant), source)
    images = pixels(ours.input_shape[1:])
    # A deep feature map first (block6a has no shortcut, so Keras' project_bn output is
    # our block's output): it depends strongly on the input, so equality means something.
    theirs_features, ours_features = block6a(source, True), block6a(ours, False)
    expected_features = np.asarray(theirs_features(images, training=False))
    # at least ten times the tolerance below
    assert np.std(expected_features[0] - expected_features[1]) > 1e-3
    np.testing.assert_allclose(
        ours_features(images, training=False), expected_features, atol=1e-4, rtol=1e-4
    )
    np.testing.assert_allclose(
        ours(images, training=False), source(images, training=False), atol=1e-4, rtol=1e-4
    )


def test_weights_file_with_the_std_as_variance_quirk_predicts_correctly(tmp_path, caplog):
    shape = (64, 64, 3)
    source = keras.applications.EfficientNetB0(
        weights=None, include_top=True, classes=10, input_shape=shape, classifier_activation=None
    )
    randomize(source, seed=2)
    # What the released files hold: the standard deviation in the variance slot.
    set_keras_normalization(source, IMAGENET_STD)
    path = tmp_path / "efficientnetb0.weights.h5"
    source.save_weights(path)

    ours = et.build_model("b0", num_classes=10, input_shape=shape)
    with caplog.at_level("WARNING"):
        load_keras_applications(ours, str(path))
    assert "standard deviation as the variance" in caplog.text

    images = pixels(shape)
    # The correct result: the convolutions applied to (x / 255 - mean) / std.
    set_keras_normalization(source, IMAGENET_STD**2)
    correct_logits = np.asarray(source(images, training=False))
    correct_features = np.asarray(block6a(source, True)(images, training=False))
    np.testing.assert_allclose(ours(images, training=False), correct_logits, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(
        block6a(ours, False)(images, training=False), correct_features, atol=1e-4, rtol=1e-4
    )
    # Keras itself, loading the file by path, normalizes with sqrt(std) and gets it wrong.
    quirky = keras.applications.EfficientNetB0(
        weights=str(path), classes=10, input_shape=shape, classifier_activation=None
    )
    quirky_features = np.asarray(block6a(quirky, True)(images, training=False))
    assert np.max(np.abs(quirky_features - correct_features)) > 1e-3  # ten times the tolerance


def test_a_different_architecture_is_refused():
    source = keras.applications.EfficientNetB0(weights=None, input_shape=(64, 64, 3), classes=10)
    with pytest.raises(ValueError, match="architectures differ|different architecture"):
        load_keras_applications(et.build_model("b1", num_classes=10, input_shape=(64, 64, 3)), source)
    with pytest.raises(ValueError, match="Shape mismatch"):
        load_keras_applications(et.build_model("b0", num_classes=5, input_shape=(64, 64, 3)), source)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_keras_applications(et.build_model("b0"), "/nonexistent/weights.h5")
