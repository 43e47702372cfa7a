"""`python -m efficientnet_tpu.benchmark`: our model against Keras Applications, same process.

    python -m efficientnet_tpu.benchmark --variant=b0 --compare=keras [--batch_size=16]

Both models go through the same Keras harness (`train_on_batch` for a
forward, backward and optimizer update; `predict_on_batch` for inference),
compiled the same way, timed in alternating rounds so drifting machine load
hits both alike. Prints images per second of each and the throughput ratio
ours / Keras (above 1.0: ours is faster), by wall time and by this process's
CPU time.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Callable, Sequence

import keras
import numpy as np
from absl import app, flags

from efficientnet_tpu.machine import cpu_description
from efficientnet_tpu.model import build_model, get_spec
from efficientnet_tpu.model.weights import KERAS_CONSTRUCTORS

FLAGS = flags.FLAGS
flags.DEFINE_string("variant", "b0", "Our variant; needs a Keras Applications twin for --compare=keras.")
flags.DEFINE_enum("compare", "keras", ["keras"], "The reference implementation.")
flags.DEFINE_integer("batch_size", 16, "Images per training step.")
flags.DEFINE_integer("inference_batch_size", 32, "Images per inference call.")
flags.DEFINE_integer("rounds", 5, "Alternating measurement rounds.")
flags.DEFINE_integer("steps", 3, "Timed steps per model per round.")
flags.DEFINE_integer("resolution", None, "Input size; the variant's own by default.")
flags.DEFINE_bool("jit_compile", None, "XLA/jit; default: off on the TensorFlow backend, on for JAX.")


def compile_for_training(model: keras.Model, jit_compile: bool) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=1e-3, rho=0.9, momentum=0.9, epsilon=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def alternate(
    timers: dict[str, Callable[[], None]], rounds: int, steps: int
) -> dict[str, tuple[float, float]]:
    """Median (wall seconds, process CPU seconds) per step of each timer, in alternating order.

    CPU seconds of this process are reported beside wall time because other
    jobs on a shared machine inflate wall time far more than they change the
    work our threads do.
    """
    for run in timers.values():
        run()  # compile / trace
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in timers}
    names = list(timers)
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else reversed(names):
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                timers[name]()
            samples[name].append(
                ((time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps)
            )
    return {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in samples.items()
    }


def main(argv: Sequence[str]) -> int:
    del argv
    constructor = KERAS_CONSTRUCTORS.get(FLAGS.variant)
    if constructor is None:
        print(
            f"error: --compare=keras needs a variant with a Keras Applications twin: "
            f"{', '.join(KERAS_CONSTRUCTORS)}; got {FLAGS.variant!r}.",
            file=sys.stderr,
        )
        return 2
    jit = FLAGS.jit_compile if FLAGS.jit_compile is not None else keras.backend.backend() == "jax"
    resolution = FLAGS.resolution or get_spec(FLAGS.variant).resolution
    shape = (resolution, resolution, 3)
    ours = build_model(FLAGS.variant, input_shape=shape)
    theirs = getattr(keras.applications, constructor)(
        weights=None, input_shape=shape, classifier_activation=None
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (FLAGS.batch_size, *shape)).astype("float32")
    labels = rng.integers(0, 1000, FLAGS.batch_size)
    inference_images = rng.uniform(0, 255, (FLAGS.inference_batch_size, *shape)).astype("float32")

    print(
        f"machine: {cpu_description()}, Keras {keras.__version__} on {keras.backend.backend()}; "
        f"jit_compile={jit}"
    )
    print(f"{FLAGS.variant} at {resolution}px: training batch {FLAGS.batch_size}, "
          f"inference batch {FLAGS.inference_batch_size}, {FLAGS.rounds} rounds x {FLAGS.steps} steps")
    for model in (ours, theirs):
        compile_for_training(model, jit)
    train = alternate(
        {
            "ours": lambda: ours.train_on_batch(images, labels),
            "keras": lambda: theirs.train_on_batch(images, labels),
        },
        FLAGS.rounds,
        FLAGS.steps,
    )
    infer = alternate(
        {
            "ours": lambda: ours.predict_on_batch(inference_images),
            "keras": lambda: theirs.predict_on_batch(inference_images),
        },
        FLAGS.rounds,
        FLAGS.steps,
    )
    for task, timing, batch in (
        ("training", train, FLAGS.batch_size),
        ("inference", infer, FLAGS.inference_batch_size),
    ):
        (ours_wall, ours_cpu), (keras_wall, keras_cpu) = timing["ours"], timing["keras"]
        print(
            f"{task:9s}: ours {batch / ours_wall:8.2f} img/s  keras {batch / keras_wall:8.2f} img/s  "
            f"ratio ours/keras {keras_wall / ours_wall:.3f} (wall), {keras_cpu / ours_cpu:.3f} (CPU time)"
        )
    return 0


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()
