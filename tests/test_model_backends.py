"""The model code is plain Keras 3: the same weights give the same outputs on the JAX backend."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import efficientnet_tpu as et

JAX_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    import efficientnet_tpu as et
    model = et.build_model("b0", phi=-2, num_classes=5, input_shape=(64, 64, 3), se_position="end")
    model.load_weights(sys.argv[1])
    images = np.load(sys.argv[2])
    np.save(sys.argv[3], np.asarray(model(images, training=False)))
    model(images, training=True)  # the training path (stochastic depth, batch statistics) runs too
    """
)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install jax)")
@pytest.mark.slow
def test_jax_backend_gives_the_tensorflow_outputs(tmp_path):
    model = et.build_model("b0", phi=-2, num_classes=5, input_shape=(64, 64, 3), se_position="end")
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    weights, inputs, outputs = tmp_path / "m.weights.h5", tmp_path / "x.npy", tmp_path / "y.npy"
    model.save_weights(weights)
    np.save(inputs, images)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, str(weights), str(inputs), str(outputs)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(np.load(outputs), model(images, training=False), atol=1e-4, rtol=1e-4)
