"""The exported SavedModel: reloadable by TF and Keras, equal to the Keras model, and
checked by TensorFlow's own saved_model_cli.

One small model (B0 scaled to phi=-4 at 64x64, 5 classes) is exported once per
module; every test reads that export.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import keras

import efficientnet_tpu
from efficientnet_tpu import train
from efficientnet_tpu.data import preprocess_for_eval
from efficientnet_tpu.export import export_saved_model
from helpers import TINY_ARGS


IMAGE_SIZE = 64
CROP_FRACTION = 0.8
CLASS_NAMES = ("cat", "dog", "fox", "owl", "yak")
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")


def _small_model() -> keras.Model:
    """The tiny B0 with its classifier rescaled so that logits are O(1), not O(1e-4)."""
    keras.utils.set_random_seed(7)
    model = efficientnet_tpu.build_model("b0", phi=-4, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                                         num_classes=len(CLASS_NAMES))
    head = model.get_layer("predictions")
    probe = np.random.RandomState(0).uniform(0, 255, (4, IMAGE_SIZE, IMAGE_SIZE, 3))
    scale = 1.0 / float(np.std(model(probe.astype("float32")).numpy()))
    head.kernel.assign(head.kernel.numpy() * scale)
    head.bias.assign(np.linspace(-0.5, 0.5, len(CLASS_NAMES)).astype("float32"))
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = _small_model()
    export_dir = str(tmp_path_factory.mktemp("export") / "saved_model")
    path = export_saved_model(model, export_dir, image_size=IMAGE_SIZE,
                              crop_fraction=CROP_FRACTION, class_names=list(CLASS_NAMES))
    assert path == export_dir
    return model, export_dir, tf.saved_model.load(export_dir)


def _images(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).uniform(0, 255, (batch, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(
        "float32")


def _photo(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth uint8 RGB picture (JPEG-friendly) of the given size."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [np.sin(2 * np.pi * (rng.uniform(0.5, 3) * x + rng.uniform(0.5, 3) * y
                                    + rng.uniform())) for _ in range(3)]
    return (127.5 + 120 * np.stack(channels, axis=-1)).astype("uint8")


def _assert_close_logits(actual, expected):
    expected = np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_serving_default_equals_keras_model(exported):
    model, _, loaded = exported
    images = _images(3)
    expected = model(images, training=False).numpy()
    outputs = loaded.signatures["serving_default"](images=tf.constant(images))
    assert set(outputs) == {"logits", "probabilities", "classes", "class_names"}
    assert outputs["logits"].dtype == tf.float32 and outputs["logits"].shape == (3, 5)
    assert outputs["probabilities"].dtype == tf.float32
    assert outputs["classes"].dtype == tf.int64 and outputs["classes"].shape == (3,)
    assert outputs["class_names"].dtype == tf.string
    _assert_close_logits(outputs["logits"].numpy(), expected)
    np.testing.assert_allclose(outputs["probabilities"].numpy(),
                               tf.nn.softmax(expected).numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(outputs["classes"].numpy(), expected.argmax(axis=-1))
    assert [name.decode() for name in outputs["class_names"].numpy()] == [
        CLASS_NAMES[i] for i in expected.argmax(axis=-1)]
    assert np.std(expected) > 0.1  # logits large enough for the tolerances to mean something
    # The same function as a plain attribute of the loaded object.
    _assert_close_logits(loaded.serving_default(tf.constant(images))["logits"].numpy(), expected)


def test_tfsm_layer_reloads_and_equals_keras_model(exported):
    model, export_dir, _ = exported
    images = _images(2, seed=1)
    layer = keras.layers.TFSMLayer(export_dir, call_endpoint="serving_default")
    outputs = layer(images)
    _assert_close_logits(outputs["logits"].numpy(), model(images, training=False).numpy())
    # It composes with Keras layers like any other layer.
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    wrapped = keras.Model(inputs, layer(inputs)["probabilities"])
    np.testing.assert_allclose(wrapped(images).numpy(), outputs["probabilities"].numpy(), rtol=1e-6)


@pytest.mark.parametrize("encoding", ["jpeg", "png"])
def test_image_bytes_equal_eval_preprocessing_then_serving_default(exported, encoding):
    _, _, loaded = exported
    pictures = [_photo(90, 120, seed=1), _photo(150, 100, seed=2)]
    encode = tf.io.encode_jpeg if encoding == "jpeg" else tf.io.encode_png
    encoded = [encode(tf.constant(picture)).numpy() for picture in pictures]
    from_bytes = loaded.signatures["serve_image_bytes"](image_bytes=tf.constant(encoded))
    evaluated = tf.stack([preprocess_for_eval(tf.constant(data), IMAGE_SIZE, CROP_FRACTION)
                          for data in encoded])
    from_pixels = loaded.signatures["serving_default"](images=evaluated)
    assert set(from_bytes) == set(from_pixels)
    _assert_close_logits(from_bytes["logits"].numpy(), from_pixels["logits"].numpy())
    np.testing.assert_array_equal(from_bytes["classes"].numpy(), from_pixels["classes"].numpy())
    np.testing.assert_array_equal(from_bytes["class_names"].numpy(),
                                  from_pixels["class_names"].numpy())
    # The crop fraction was baked in: the whole-image transform gives other pixels.
    uncropped = preprocess_for_eval(tf.constant(encoded[0]), IMAGE_SIZE, 1.0)
    assert np.abs(uncropped.numpy() - evaluated[0].numpy()).max() > 1.0


def test_malformed_bytes_raise_invalid_argument_naming_the_input(exported):
    _, _, loaded = exported
    good = tf.io.encode_png(tf.constant(_photo(40, 40, seed=3))).numpy()
    serve = loaded.signatures["serve_image_bytes"]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"input image_bytes at batch index \[1\] is not a JPEG or PNG"):
        serve(image_bytes=tf.constant([good, b"definitely not an image"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="(?i)jpeg"):
        serve(image_bytes=tf.constant([b"\xff\xd8\xff\xe0 a truncated JPEG"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes \[\] is not compatible"):
        serve(image_bytes=tf.constant(good))  # a scalar, not a batch
    with pytest.raises(tf.errors.InvalidArgumentError, match="empty batch; send at least one image"):
        serve(image_bytes=tf.zeros([0], tf.string))
    # The server is still usable after the failures.
    assert serve(image_bytes=tf.constant([good]))["logits"].shape == (1, 5)


def test_wrong_shape_or_dtype_gives_a_clear_error(exported):
    _, _, loaded = exported
    signature = loaded.signatures["serving_default"]
    expected = rf"must be float32 of shape \[batch, {IMAGE_SIZE}, {IMAGE_SIZE}, 3\] with batch >= 1"
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected + r".*got shape \[2 32 32 3\]"):
        signature(images=tf.zeros([2, 32, 32, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected + r".*got shape \[64 64 3\]"):
        signature(images=tf.zeros([IMAGE_SIZE, IMAGE_SIZE, 3]))  # batch axis missing
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected + r".*got shape \[0 64 64 3\]"):
        signature(images=tf.zeros([0, IMAGE_SIZE, IMAGE_SIZE, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[1,64,64,3,1\] is not compatible"):
        signature(images=tf.zeros([1, IMAGE_SIZE, IMAGE_SIZE, 3, 1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a float tensor but is a uint8"):
        signature(images=tf.zeros([1, IMAGE_SIZE, IMAGE_SIZE, 3], tf.uint8))
    with pytest.raises(TypeError, match=r"TensorSpec\(shape=\(None, 64, 64, 3\), dtype=tf.float32"):
        loaded.serving_default(tf.zeros([1, 32, 32, 3]))


def _saved_model_cli(*args: str) -> str:
    assert os.path.exists(SAVED_MODEL_CLI), f"saved_model_cli not found next to {sys.executable}"
    result = subprocess.run([SAVED_MODEL_CLI, *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _signature_defs(show_all: str) -> dict[str, dict[str, tuple[str, str]]]:
    """{signature: {"inputs/name" or "outputs/name": (dtype, shape)}} from `show --all`."""
    signatures: dict[str, dict[str, tuple[str, str]]] = {}
    current = None
    pattern = re.compile(r"(inputs|outputs)\['([^']+)'\] tensor_info:\s+dtype: (\w+)\s+shape: ([^\n]+)")
    for block in re.split(r"\nsignature_def\['", show_all.split("Concrete Functions")[0])[1:]:
        current = block.split("'", 1)[0]
        signatures[current] = {f"{kind}/{name}": (dtype, shape.strip())
                               for kind, name, dtype, shape in pattern.findall(block)}
    return signatures


def test_saved_model_cli_show_lists_both_signatures(exported):
    _, export_dir, _ = exported
    signatures = _signature_defs(_saved_model_cli("show", "--dir", export_dir, "--all"))
    outputs = {"outputs/logits": ("DT_FLOAT", "(-1, 5)"),
               "outputs/probabilities": ("DT_FLOAT", "(-1, 5)"),
               "outputs/classes": ("DT_INT64", "(-1)"),
               "outputs/class_names": ("DT_STRING", "(-1)")}
    assert signatures["serving_default"] == {
        "inputs/images": ("DT_FLOAT", f"(-1, {IMAGE_SIZE}, {IMAGE_SIZE}, 3)"), **outputs}
    assert signatures["serve_image_bytes"] == {
        "inputs/image_bytes": ("DT_STRING", "(-1)"), **outputs}


def _printed_array(stdout: str, key: str) -> np.ndarray:
    match = re.search(rf"Result for output key {key}:\n(.*?)(?:\nResult for|\Z)", stdout, re.S)
    assert match, stdout[-2000:]
    return np.array(match.group(1).replace("[", " ").replace("]", " ").split(), dtype=np.float64)


@pytest.mark.slow
def test_saved_model_cli_run_returns_predictions(exported, tmp_path):
    model, export_dir, _ = exported
    images = _images(2, seed=4)
    np.save(tmp_path / "images.npy", images)
    encoded = tf.io.encode_jpeg(tf.constant(_photo(80, 96, seed=5))).numpy()
    np.save(tmp_path / "image_bytes.npy", np.array([encoded], dtype=object))
    stdout = _saved_model_cli("run", "--dir", export_dir, "--tag_set", "serve",
                              "--signature_def", "serving_default",
                              "--inputs", f"images={tmp_path / 'images.npy'}")
    expected = model(images, training=False).numpy()
    _assert_close_logits(_printed_array(stdout, "logits").reshape(expected.shape), expected)
    np.testing.assert_array_equal(_printed_array(stdout, "classes"), expected.argmax(axis=-1))
    stdout = _saved_model_cli("run", "--dir", export_dir, "--tag_set", "serve",
                              "--signature_def", "serve_image_bytes",
                              "--inputs", f"image_bytes={tmp_path / 'image_bytes.npy'}")
    pixels = preprocess_for_eval(tf.constant(encoded), IMAGE_SIZE, CROP_FRACTION)[None]
    expected = model(pixels, training=False).numpy()
    _assert_close_logits(_printed_array(stdout, "logits").reshape(expected.shape), expected)


def _tiny_classifier() -> keras.Model:
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("swish")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, dtype="float32")(x))


def test_mixed_precision_model_exports_float32(tmp_path):
    """A model built under mixed_bfloat16 serves float32 and computes like its float32 twin."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = _tiny_classifier()
    finally:
        keras.config.set_dtype_policy(previous)
    twin = _tiny_classifier()
    twin.set_weights(mixed.get_weights())
    images = np.random.RandomState(5).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    expected = twin(images).numpy()
    assert np.abs(mixed(images).numpy() - expected).max() > 1e-4  # bfloat16 differs visibly

    path = export_saved_model(mixed, str(tmp_path / "mixed"), image_size=16, crop_fraction=1.0)
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures["serving_default"]
    assert signature.structured_input_signature[1]["images"].dtype == tf.float32
    outputs = signature(images=tf.constant(images))
    assert outputs["logits"].dtype == tf.float32 and outputs["probabilities"].dtype == tf.float32
    np.testing.assert_allclose(outputs["logits"].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert "class_names" not in outputs


def test_export_rejects_inconsistent_arguments(tmp_path):
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(4)])
    target = str(tmp_path / "never_written")
    with pytest.raises(ValueError, match="image_size=64 does not match the model's input 32x32"):
        export_saved_model(model, target, image_size=64, crop_fraction=0.875)
    with pytest.raises(ValueError, match="got 3 class_names for a model with 4 outputs"):
        export_saved_model(model, target, image_size=32, crop_fraction=0.875,
                           class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="crop_fraction must be in"):
        export_saved_model(model, target, image_size=32, crop_fraction=1.5)
    with pytest.raises(ValueError, match="not one string"):
        export_saved_model(model, target, image_size=32, crop_fraction=1.0, class_names="abcd")
    assert not os.path.exists(target)


# -- the trainer's export -------------------------------------------------------------------------------------


def test_the_trainer_exports_numbered_versions_for_tf_serving(tmp_path, capsys):
    common = ["train", f"--model_dir={tmp_path}/run", *TINY_ARGS, "--train_steps=1",
              f"--export_dir={tmp_path}/export"]
    assert train.main_cli(common) == 0
    assert f"exported a SavedModel to {tmp_path}/export/1" in capsys.readouterr().out
    assert os.path.exists(tmp_path / "export" / "1" / "saved_model.pb")
    assert train.main_cli(common) == 0  # a rerun adds a version, never overwrites the served one
    assert sorted(os.listdir(tmp_path / "export")) == ["1", "2"]
