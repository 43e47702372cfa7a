"""Our model against its Keras Applications twin, in the same process and the same harness.

    python -m efficientnet_tpu.benchmarks.keras_compare --variant=b0 --compare=keras [--batch_size=16]

Both models go through the same Keras harness (`train_on_batch` for a
forward, backward and optimizer update; `predict_on_batch` for inference),
compiled the same way, timed in alternating rounds (see `timing`). Prints
images per second of each and the throughput ratio ours / Keras (above 1.0:
ours is faster), the median of same-round ratios, by wall time and by this
process's CPU time.
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from absl import flags

from efficientnet_tpu.cli import common
from efficientnet_tpu.benchmarks.timing import Timing, alternating_rounds, machine_description, median, \
    speedups, time_call


def _define_flags(values: flags.FlagValues) -> None:
    flags.DEFINE_string("variant", "b0", "Our variant; needs a Keras Applications twin for --compare=keras.",
                        flag_values=values)
    flags.DEFINE_enum("compare", "keras", ["keras"], "The reference implementation.", flag_values=values)
    common.positive_int(values, "batch_size", 16, "Images per training step.")
    common.positive_int(values, "inference_batch_size", 32, "Images per inference call.")
    common.positive_int(values, "rounds", 5, "Alternating measurement rounds.")
    common.positive_int(values, "steps", 3, "Timed steps per model per round.")
    common.positive_int(values, "resolution", None, "Input size; the variant's own by default.")
    flags.DEFINE_bool("jit_compile", None, "XLA/jit; default: off on the TensorFlow backend, on for JAX.",
                      flag_values=values)


def compile_for_training(model, jit_compile: bool):
    import keras

    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=1e-3, rho=0.9, momentum=0.9, epsilon=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def alternate(steps_by_name: dict[str, Callable[[], object]], rounds: int, steps: int) -> dict[str, list[Timing]]:
    """Per contender, its time per step in each round (`steps` steps per measurement), after one warm-up step."""
    for step in steps_by_name.values():
        step()  # compile / trace

    def measure(step: Callable[[], object]) -> Callable[[], Timing]:
        return lambda: time_call(lambda: [step() for _ in range(steps)]).per(steps)

    return alternating_rounds({name: measure(step) for name, step in steps_by_name.items()}, rounds)


def _run(values: flags.FlagValues) -> None:
    import keras
    import numpy as np

    from efficientnet_tpu.model import build_model, get_spec
    from efficientnet_tpu.model.weights import KERAS_CONSTRUCTORS

    constructor = KERAS_CONSTRUCTORS.get(values.variant)
    if constructor is None:
        raise common.UsageError(f"--compare=keras needs a variant with a Keras Applications twin: "
                             f"{', '.join(KERAS_CONSTRUCTORS)}; got {values.variant!r}")
    jit = values.jit_compile if values.jit_compile is not None else keras.backend.backend() == "jax"
    resolution = values.resolution or get_spec(values.variant).resolution
    shape = (resolution, resolution, 3)
    ours = build_model(values.variant, input_shape=shape)
    theirs = getattr(keras.applications, constructor)(weights=None, input_shape=shape, classifier_activation=None)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (values.batch_size, *shape)).astype("float32")
    labels = rng.integers(0, 1000, values.batch_size)
    inference_images = rng.uniform(0, 255, (values.inference_batch_size, *shape)).astype("float32")

    print(f"machine: {machine_description()}, Keras {keras.__version__} on {keras.backend.backend()}; "
          f"jit_compile={jit}")
    print(f"{values.variant} at {resolution}px: training batch {values.batch_size}, "
          f"inference batch {values.inference_batch_size}, {values.rounds} rounds x {values.steps} steps")
    for model in (ours, theirs):
        compile_for_training(model, jit)
    train = alternate({"ours": lambda: ours.train_on_batch(images, labels),
                       "keras": lambda: theirs.train_on_batch(images, labels)}, values.rounds, values.steps)
    infer = alternate({"ours": lambda: ours.predict_on_batch(inference_images),
                       "keras": lambda: theirs.predict_on_batch(inference_images)}, values.rounds, values.steps)
    for task, series, batch in (("training", train, values.batch_size),
                                ("inference", infer, values.inference_batch_size)):
        ratio = speedups(series, "keras")["ours"]
        ours_rate, keras_rate = (batch / median(series[name]).wall_s for name in ("ours", "keras"))
        print(f"{task:9s}: ours {ours_rate:8.2f} img/s  keras {keras_rate:8.2f} img/s  "
              f"ratio ours/keras {ratio.wall:.3f} (wall), {ratio.cpu:.3f} (CPU time)")


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_cli(__doc__, _define_flags, _run, argv)


if __name__ == "__main__":
    sys.exit(main())
