"""How fast a Keras model runs here: inference latency and training throughput.

Both run the model as a TensorFlow graph (`tf.function`, no XLA: XLA is
several times slower on CPUs) on random pixels, wait for every result, and
report medians (see `timing`). Imports TensorFlow; `timing` does not.
"""

from __future__ import annotations

import os
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from efficientnet_tpu.benchmarks.timing import Timing, median_timing  # noqa: E402


def random_images(batch_size: int, image_size: int, seed: int = 0) -> tf.Tensor:
    """A batch of float pixels in [0, 255], the models' input range."""
    pixels = np.random.default_rng(seed).uniform(0, 255, (batch_size, image_size, image_size, 3))
    return tf.constant(pixels.astype("float32"))


def compiled_forward(model: keras.Model, batch_size: int, image_size: int) -> Callable[[], None]:
    """A zero-argument callable running one graph-mode inference call and waiting for its result.

    The first call traces the graph; time the calls after it.
    """
    images = random_images(batch_size, image_size)
    forward = tf.function(lambda x: model(x, training=False), jit_compile=False)

    def run() -> None:
        forward(images).numpy()  # .numpy() blocks until the graph has finished

    return run


def compiled_train_step(model: keras.Model, batch_size: int, image_size: int,
                        num_classes: int) -> Callable[[], None]:
    """A zero-argument callable running one forward, backward and RMSProp update, waiting for the loss.

    It changes `model`'s weights. The loss reads the outputs as logits.
    """
    images = random_images(batch_size, image_size)
    labels = tf.constant(np.random.default_rng(1).integers(0, num_classes, batch_size), tf.int32)
    optimizer = keras.optimizers.RMSprop(learning_rate=1e-3, rho=0.9, momentum=0.9, epsilon=1e-3)
    optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=False)
    def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    def run() -> None:
        step(images, labels).numpy()

    return run


def inference_latency(model: keras.Model, batch_size: int, image_size: int, *, calls: int = 10,
                      warmup: int = 2) -> Timing:
    """Median wall and process-CPU seconds of one inference call on a `batch_size` batch.

    The first of the `warmup` untimed calls traces the graph.
    """
    return median_timing(compiled_forward(model, batch_size, image_size), calls, max(warmup, 1))


def training_throughput(model: keras.Model, batch_size: int, image_size: int, num_classes: int, *,
                        steps: int = 5, warmup: int = 2) -> float:
    """Training images per second: `batch_size` over the median wall time of one training step.

    This trains `model` (its weights and batch-norm statistics change), so pass
    a freshly built model that nothing else uses. Its outputs are read as
    logits over `num_classes` classes.
    """
    step = compiled_train_step(model, batch_size, image_size, num_classes)
    return batch_size / median_timing(step, steps, max(warmup, 1)).wall_s
