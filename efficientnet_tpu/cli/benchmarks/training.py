"""Training throughput of our loop against Keras ``Model.fit``, and steps_per_loop 1 against 10.

    python -m efficientnet_tpu.benchmarks.training [--batch_size=16 --resolution=224 --steps=10 --rounds=3]

Everything runs in one process on the same synthetic batch (the data
module's synthetic training set repeats one batch generated in the graph,
so input costs nothing), alternating the contenders round by round (see
`timing`). Reported: median images per second and the ratio to fit, the
median of same-round ratios, by wall time and by this process's CPU time.
Both sides use RMSProp without EMA, weight decay or label smoothing, graph
mode (``jit_compile=False``: XLA is much slower on CPUs) and the same number
of steps per host call (``steps_per_execution`` for fit). Fit runs as one
long call whose executions are timed by a callback, which runs our loop
between them, so fit is not charged for starting over.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Callable, Sequence

from absl import flags

from efficientnet_tpu.cli import common
from efficientnet_tpu.benchmarks.timing import Stopwatch, Timing, alternating_rounds, machine_description, \
    median, rotated, speedups, time_call

NUM_CLASSES = 1000  # the synthetic dataset's
FIT = "keras fit, keras.applications B0"
OURS = ("our loop, our B0", "our loop, keras.applications B0")


def _config(model_dir: str, *, variant: str, phi: float | None, resolution: int, batch_size: int, steps: int):
    from efficientnet_tpu.training import config as config_lib

    return config_lib.merge(dict(
        model_dir=model_dir, variant=variant, phi=phi, resolution=resolution, dataset="synthetic",
        num_classes=NUM_CLASSES, train_batch_size=batch_size, eval_batch_size=batch_size, train_steps=10**6,
        steps_per_loop=steps, precision="float32", optimizer="rmsprop", learning_rate=1e-3,
        lr_reference_batch=None, lr_schedule="constant", warmup_epochs=0.0, label_smoothing=0.0,
        weight_decay=0.0, use_ema=False, preemption_handler="none"))


def _input_fn(resolution: int, batch_size: int):
    from efficientnet_tpu import data as data_lib

    def input_fn(context, start_step: int = 0):
        del start_step  # one synthetic batch, repeated
        return data_lib.build_dataset("synthetic", "train", global_batch_size=batch_size, image_size=resolution,
                                      training=True, options=data_lib.DataOptions(seed=0), input_context=context)
    return input_fn


def _trainer(model_dir: str, model_fn=None, **kwargs):
    import tensorflow as tf

    from efficientnet_tpu.training import config as config_lib
    from efficientnet_tpu.training.loop import Trainer
    from efficientnet_tpu.training.strategy import StrategyInfo

    config = config_lib.replace(_config(model_dir, **kwargs), num_classes=NUM_CLASSES)
    return Trainer(config, StrategyInfo(tf.distribute.get_strategy(), "cpu"), num_train_examples=10_000,
                   train_input_fn=_input_fn(config.resolution, config.train_batch_size), progress=False,
                   checkpoint_input=False, model_fn=model_fn)


def _keras_b0(resolution: int):
    import keras

    return keras.applications.EfficientNetB0(weights=None, input_shape=(resolution, resolution, 3),
                                             classes=NUM_CLASSES, classifier_activation=None)


def compare_with_fit(batch_size: int, resolution: int, steps: int, rounds: int) -> dict[str, list[Timing]]:
    """Per contender, the time of one call of `steps` steps in each round: our loop on our B0 and on
    Keras' B0, and fit on Keras' B0."""
    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        common = dict(variant="b0", phi=None, resolution=resolution, batch_size=batch_size, steps=steps)
        ours = _trainer(os.path.join(tmp, "ours"), **common)
        ours_keras_model = _trainer(os.path.join(tmp, "ours_keras"), model_fn=lambda: _keras_b0(resolution),
                                    **common)
        fit_model = _keras_b0(resolution)
        fit_model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3, rho=0.9, momentum=0.9,
                                                             epsilon=1e-3),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          steps_per_execution=steps, jit_compile=False)
        fit_data = _input_fn(resolution, batch_size)(tf.distribute.InputContext())
        contenders: dict[str, Callable[[], object]] = {OURS[0]: lambda: ours.run_loop(steps),
                                                       OURS[1]: lambda: ours_keras_model.run_loop(steps)}
        for fn in contenders.values():  # warm-up: tracing and first-step allocations
            fn()
        times: dict[str, list[Timing]] = {name: [] for name in (*OURS, FIT)}

        class Alternate(keras.callbacks.Callback):
            """Times each execution of fit's compiled function (one call of `steps` steps) inside one
            long fit() call and runs one round of our loops after it, so the contenders alternate
            without charging fit for starting over each time."""

            stopwatch = Stopwatch()

            def on_train_batch_begin(self, batch, logs=None):
                self.stopwatch.start()

            def on_train_batch_end(self, batch, logs=None):
                elapsed = self.stopwatch.elapsed()
                if batch >= steps:  # the first execution traces and compiles
                    for name in rotated(OURS, len(times[FIT])):
                        times[name].append(time_call(contenders[name]))
                    times[FIT].append(elapsed)

        fit_model.fit(fit_data, steps_per_epoch=steps * (rounds + 1), epochs=1, verbose=0, shuffle=False,
                      callbacks=[Alternate()])
        return times


def steps_per_loop_effect(batch_size: int, resolution: int, variant: str, phi: float | None,
                          rounds: int) -> dict[str, list[Timing]]:
    """Time per step with one step per host call against ten steps per call, 10 steps per measurement."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = _trainer(tmp, variant=variant, phi=phi, resolution=resolution, batch_size=batch_size, steps=10)
        trainer.run_loop(1)
        trainer.run_loop(10)
        return alternating_rounds({
            "steps_per_loop=1": lambda: time_call(lambda: [trainer.run_loop(1) for _ in range(10)]).per(10),
            "steps_per_loop=10": lambda: time_call(lambda: trainer.run_loop(10)).per(10),
        }, rounds)


def _define_flags(values: flags.FlagValues) -> None:
    common.positive_int(values, "batch_size", 16, "Images per training step.")
    common.positive_int(values, "resolution", 224, "Input size of B0 in the comparison with fit.")
    common.positive_int(values, "steps", 10, "Steps per host call (and per measurement).")
    common.positive_int(values, "rounds", 3, "Alternating measurement rounds.")


def _run(values: flags.FlagValues) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    print(f"machine: {machine_description()}, TensorFlow {tf.__version__}, Keras {keras.__version__}")
    print(f"B0 at {values.resolution}px, batch {values.batch_size}, {values.steps} steps per call, "
          f"median of {values.rounds} alternating rounds")
    times = compare_with_fit(values.batch_size, values.resolution, values.steps, values.rounds)
    ratios = speedups(times, FIT)
    images = values.steps * values.batch_size
    for name, series in times.items():
        print(f"  {name:34s} {images / median(series).wall_s:7.2f} images/s, ratio to fit "
              f"{ratios[name].wall:.2f} by wall time, {ratios[name].cpu:.2f} by CPU time")
    for label, variant, phi, resolution, batch in (
            (f"B0 at {values.resolution}px, batch {values.batch_size}", "b0", None, values.resolution,
             values.batch_size),
            ("phi=-6 at 32px, batch 8 (host overhead dominates)", "b0", -6.0, 32, 8)):
        series = steps_per_loop_effect(batch, resolution, variant, phi, values.rounds)
        one, ten = median(series["steps_per_loop=1"]).wall_s, median(series["steps_per_loop=10"]).wall_s
        ratio = speedups(series, "steps_per_loop=1")["steps_per_loop=10"].wall
        print(f"  {label}: {one * 1e3:.1f} ms/step with steps_per_loop=1, {ten * 1e3:.1f} ms/step with 10 "
              f"(ratio {ratio:.2f})")


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_cli(__doc__, _define_flags, _run, argv)


if __name__ == "__main__":
    sys.exit(main())
