"""TFLite export: a float flatbuffer whose outputs equal the Keras model's.

Tested on ``b0_lite`` (EfficientNet-lite0), the variant made for mobile.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import tensorflow as tf

import keras

import efficientnet_tpu
from efficientnet_tpu import train
from efficientnet_tpu.export import export_tflite, tflite_converter_available
from helpers import TINY_ARGS


IMAGE_SIZE = 64
CLASS_NAMES = ["ant", "bee", "cow", "elk", "gnu"]

pytestmark = pytest.mark.skipif(
    not tflite_converter_available(),
    reason=f"TensorFlow {tf.__version__} no longer ships tf.lite.TFLiteConverter "
           "(the converter moved to LiteRT); TFLite export is unavailable here")


def _model() -> keras.Model:
    keras.utils.set_random_seed(11)
    model = efficientnet_tpu.build_model("b0_lite", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                                         num_classes=len(CLASS_NAMES))
    # Rescale the classifier so that logits are O(1) and a relative tolerance means something.
    head = model.get_layer("predictions")
    probe = np.random.RandomState(0).uniform(0, 255, (4, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
    head.kernel.assign(head.kernel.numpy() / float(np.std(model(probe).numpy())))
    return model


def _interpreter(path: str) -> "tf.lite.Interpreter":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice (moved to LiteRT)
        return tf.lite.Interpreter(model_path=path)


@pytest.mark.slow
def test_tflite_outputs_equal_keras(tmp_path):
    model = _model()
    path = export_tflite(model, str(tmp_path), image_size=IMAGE_SIZE, class_names=CLASS_NAMES)
    assert path == os.path.join(str(tmp_path), "model.tflite")
    with open(tmp_path / "labels.txt", encoding="utf-8") as labels:
        assert labels.read().splitlines() == CLASS_NAMES
    # Weights are frozen into the file (a 1 M-parameter float model is megabytes, not kilobytes).
    assert os.path.getsize(path) > 4 * model.count_params() * 0.9

    interpreter = _interpreter(path)
    assert interpreter.get_signature_list() == {
        "serving_default": {"inputs": ["images"],
                            "outputs": ["classes", "logits", "probabilities"]}}
    (input_detail,) = interpreter.get_input_details()
    assert input_detail["dtype"] == np.float32
    assert list(input_detail["shape_signature"]) == [-1, IMAGE_SIZE, IMAGE_SIZE, 3]
    images = np.random.RandomState(1).uniform(0, 255, (3, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
    interpreter.resize_tensor_input(input_detail["index"], list(images.shape))
    interpreter.allocate_tensors()
    outputs = interpreter.get_signature_runner("serving_default")(images=images)

    expected = model(images, training=False).numpy()
    assert np.std(expected) > 0.1
    np.testing.assert_allclose(outputs["logits"], expected, rtol=1e-4,
                               atol=1e-4 * np.abs(expected).max())
    np.testing.assert_allclose(outputs["probabilities"], tf.nn.softmax(expected).numpy(),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(outputs["classes"], expected.argmax(axis=-1))


def test_tflite_export_rejects_a_size_the_model_does_not_take(tmp_path):
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="image_size=64 does not match"):
        export_tflite(model, str(tmp_path / "out"), image_size=64)
    assert not os.path.exists(tmp_path / "out")


# -- the trainer's export -------------------------------------------------------------------------------------


def test_the_trainer_exports_tflite_through_the_one_export_path(tmp_path, capsys):
    """export_run is the only export path, so the trainer writes TFLite too."""
    from efficientnet_tpu.export import tflite_converter_available

    if not tflite_converter_available():
        pytest.skip("this TensorFlow build has no TFLite converter")
    assert train.main_cli(["train", f"--model_dir={tmp_path}/run", *TINY_ARGS, "--train_steps=1",
                           f"--export_dir={tmp_path}/export", "--export_format=tflite"]) == 0
    assert f"exported a TFLite model to {tmp_path}/export/model.tflite" in capsys.readouterr().out
    assert os.path.getsize(tmp_path / "export" / "model.tflite") > 0
