"""int8 TFLite: full-integer for the lite networks (calibrated on the run's eval split), dynamic-range otherwise."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import tensorflow as tf

import efficientnet_tpu
from efficientnet_tpu.export import tflite_converter_available
from efficientnet_tpu.export.from_run import export_run, int8_scheme
from efficientnet_tpu.export.tflite import convert_to_tflite
from efficientnet_tpu.export.tflite_eval import tflite_top1

from helpers import tiny_train_config

pytestmark = pytest.mark.skipif(not tflite_converter_available(), reason="no tf.lite.TFLiteConverter here")
SIZE = 32


def _interpreter(content: bytes) -> "tf.lite.Interpreter":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_content=content)
    interpreter.allocate_tensors()
    return interpreter


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, SIZE, SIZE, 3)).astype("float32")


def test_the_scheme_follows_the_variant():
    assert [int8_scheme(v) for v in ("lite0", "lite4", "b0", "v2_s")] == [
        "full_integer", "full_integer", "dynamic_range", "dynamic_range"]


@pytest.mark.slow
def test_dynamic_range_b0_is_smaller_and_close():
    model = efficientnet_tpu.build_model("b0", phi=-6, input_shape=(SIZE, SIZE, 3), num_classes=5)
    float_model = convert_to_tflite(model, image_size=SIZE)
    int8_model = convert_to_tflite(model, image_size=SIZE, quantization="dynamic_range")
    assert len(int8_model) < 0.45 * len(float_model)
    images = _images(4, 2)
    outputs = []
    for content in (float_model, int8_model):
        runner = _interpreter(content).get_signature_runner("serving_default")
        outputs.append(np.concatenate([runner(images=images[i:i + 1])["logits"] for i in range(4)]))
    assert np.corrcoef(outputs[0].ravel(), outputs[1].ravel())[0, 1] > 0.95


def test_full_integer_needs_a_representative_dataset():
    model = efficientnet_tpu.build_model("lite0", input_shape=(SIZE, SIZE, 3), num_classes=2)
    with pytest.raises(ValueError, match="representative dataset"):
        convert_to_tflite(model, image_size=SIZE, quantization="full_integer")


@pytest.mark.slow
def test_export_run_calibrates_lite_on_its_own_eval_split_and_runs_int8_kernels(tmp_path):
    from efficientnet_tpu.run import run

    config = tiny_train_config(tmp_path / "run", variant="lite0", resolution=SIZE, train_steps=2)
    run(config, progress=False)
    float_path, _ = export_run(str(tmp_path / "run"), str(tmp_path / "float"), format="tflite")
    path, record = export_run(str(tmp_path / "run"), str(tmp_path / "int8"), format="tflite_int8")
    assert record["quantization"] == "full_integer"
    assert os.path.getsize(path) < 0.4 * os.path.getsize(float_path)
    with open(path, "rb") as f:
        interpreter = _interpreter(f.read())
    details = interpreter.get_tensor_details()
    assert np.int8 in {d["dtype"] for d in details}
    # Full-integer: no float convolution kernel is left (only the float32 input and output ends).
    float_kernels = [d["name"] for d in details if d["dtype"] == np.float32 and len(d["shape"]) == 4
                     and d["shape"][0] > 3]
    assert not float_kernels, float_kernels[:3]
    _, count = tflite_top1(path, record)
    assert count == 300  # the digits' held-out split, padding excluded
