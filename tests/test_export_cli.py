"""``python -m efficientnet_tpu.export``: the latest checkpoint of a real (tiny) training run
becomes a SavedModel with the run's EMA weights, resolution, crop and class names; bad
command lines get one error line and a non-zero exit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from efficientnet_tpu.data import preprocess_for_eval
from efficientnet_tpu.export import export_run
from efficientnet_tpu.training import config as config_lib
from efficientnet_tpu.training.trained import load_trained_model
from efficientnet_tpu.run import run
from helpers import REPO, tiny_train_config



@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    """A digits run of B0 at phi=-6, 16 px, for a few steps, keeping an EMA."""
    directory = str(tmp_path_factory.mktemp("run"))
    config = tiny_train_config(directory, variant="b0", phi=-6.0, checkpoint_every_steps=4, learning_rate=1e-2,
                               use_ema=True, ema_decay=0.5, seed=5)
    run(config, progress=False)
    return directory


def _export_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "efficientnet_tpu.export", *args],
                          capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


@pytest.mark.slow
def test_cli_exports_the_latest_checkpoint_with_ema_weights(model_dir, tmp_path):
    export_dir = str(tmp_path / "served")
    done = _export_cli(f"--model_dir={model_dir}", f"--export_dir={export_dir}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "EMA weights" in done.stdout and export_dir in done.stdout
    assert "Traceback" not in done.stderr

    ema_model, info = load_trained_model(model_dir)
    raw_model, _ = load_trained_model(model_dir, use_ema=False)
    assert info["used_ema"] and info["image_size"] == 16
    loaded = tf.saved_model.load(export_dir)
    signature = loaded.signatures["serving_default"]
    assert signature.structured_input_signature[1]["images"].shape.as_list() == [None, 16, 16, 3]
    images = np.random.RandomState(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    outputs = signature(images=tf.constant(images))
    expected = ema_model(images, training=False).numpy()
    np.testing.assert_allclose(outputs["logits"].numpy(), expected, rtol=1e-5,
                               atol=1e-5 * np.abs(expected).max())
    assert np.abs(raw_model(images, training=False).numpy() - expected).max() > 1e-4

    # Class names and the eval crop come from the run's config.yaml.
    class_names = info.get("class_names")
    assert ("class_names" in outputs) == (class_names is not None)
    if class_names is not None:
        assert [name.decode() for name in outputs["class_names"].numpy()] == [
            class_names[i] for i in expected.argmax(axis=-1)]
    picture = tf.cast(tf.random.stateless_uniform([30, 24, 3], [1, 2], 0, 255, tf.int32), tf.uint8)
    encoded = tf.io.encode_png(picture)
    from_bytes = loaded.signatures["serve_image_bytes"](image_bytes=encoded[None])
    pixels = preprocess_for_eval(encoded, 16, info["eval_crop_fraction"])[None]
    np.testing.assert_allclose(from_bytes["logits"].numpy(),
                               ema_model(pixels, training=False).numpy(), rtol=1e-5, atol=1e-6)


def test_tflite_format_writes_model_and_labels(model_dir, tmp_path):
    path, info = export_run(model_dir, str(tmp_path), format="tflite")
    assert path == str(tmp_path / "model.tflite") and os.path.getsize(path) > 0
    labels = tmp_path / "labels.txt"
    assert labels.exists() == (info.get("class_names") is not None)


@pytest.mark.parametrize("args, phrase", [
    ((), "--model_dir is required"),
    (("--model_dir=MODEL_DIR", "--export_dir=OUT", "--format=onnx"),
     "--format=onnx is not supported; use one of saved_model, tflite, tflite_int8"),
    (("--model_dir=EMPTY_RUN", "--export_dir=OUT"), "no checkpoint in"),
])
def test_bad_command_lines_print_one_line_and_fail(model_dir, tmp_path, args, phrase):
    empty_run = tmp_path / "empty_run"
    empty_run.mkdir()
    shutil.copy(config_lib.config_path(model_dir), empty_run)  # a config but no checkpoint
    args = [a.replace("MODEL_DIR", model_dir).replace("EMPTY_RUN", str(empty_run))
             .replace("OUT", str(tmp_path / "out")) for a in args]
    done = _export_cli(*args)
    assert done.returncode == 2  # usage, as in every CLI (efficientnet_tpu.exit_codes)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and phrase in errors[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert not os.path.exists(tmp_path / "out")
