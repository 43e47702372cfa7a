"""Training throughput of our loop against Keras ``Model.fit``, and steps_per_loop 1 against 10.

    python -m efficientnet_tpu.training.benchmark [--batch_size 16 --resolution 224 --rounds 3]

Everything runs in one process on the same synthetic batch (the data
module's synthetic training set repeats one batch generated in the graph,
so input costs nothing), alternating the contenders round by round so that
load from other processes hits them alike. Reported: median images per
second (by wall time and by this process's CPU time) and their ratio. Both
sides use RMSProp without EMA, weight decay or label smoothing, graph mode
(``jit_compile=False``: XLA is much slower on CPUs) and the same number of
steps per host call (``steps_per_execution`` for fit). Fit runs as one long
call whose executions are timed by a callback, which runs our loop between
them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from efficientnet_tpu import data as data_lib  # noqa: E402
from efficientnet_tpu.training import config as config_lib  # noqa: E402
from efficientnet_tpu.training.loop import Trainer  # noqa: E402
from efficientnet_tpu.training.strategy import StrategyInfo  # noqa: E402

NUM_CLASSES = 1000  # the synthetic dataset's
FIT = "keras fit, keras.applications B0"


def _config(model_dir: str, *, variant: str, phi: float | None, resolution: int, batch_size: int,
            steps: int) -> config_lib.TrainConfig:
    return config_lib.merge(dict(
        model_dir=model_dir, variant=variant, phi=phi, resolution=resolution, dataset="synthetic",
        num_classes=NUM_CLASSES, train_batch_size=batch_size, eval_batch_size=batch_size, train_steps=10**6,
        steps_per_loop=steps, precision="float32", optimizer="rmsprop", learning_rate=1e-3,
        lr_reference_batch=None, lr_schedule="constant", warmup_epochs=0.0, label_smoothing=0.0,
        weight_decay=0.0, use_ema=False, preemption_handler="none"))


def _input_fn(resolution: int, batch_size: int):
    def input_fn(context: tf.distribute.InputContext, start_step: int = 0) -> tf.data.Dataset:
        del start_step  # one synthetic batch, repeated
        return data_lib.build_dataset("synthetic", "train", global_batch_size=batch_size, image_size=resolution,
                                      training=True, input_context=context, seed=0)
    return input_fn


def _trainer(model_dir: str, model_fn=None, **kwargs) -> Trainer:
    config = config_lib.replace(_config(model_dir, **kwargs), num_classes=NUM_CLASSES)
    if config.resolution is None:
        raise ValueError("resolution is required")
    return Trainer(config, StrategyInfo(tf.distribute.get_strategy(), "cpu"), num_train_examples=10_000,
                   train_input_fn=_input_fn(config.resolution, config.train_batch_size), progress=False,
                   checkpoint_input=False, model_fn=model_fn)


def _keras_b0(resolution: int) -> keras.Model:
    return keras.applications.EfficientNetB0(weights=None, input_shape=(resolution, resolution, 3),
                                             classes=NUM_CLASSES, classifier_activation=None)


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds): CPU time is disturbed less by other jobs."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def compare_with_fit(batch_size: int, resolution: int, steps: int,
                     rounds: int) -> dict[str, tuple[float, float]]:
    """Median images/s (by wall time, by CPU time) of our loop (our B0 and Keras' B0) and of fit on Keras' B0."""
    with tempfile.TemporaryDirectory() as tmp:
        ours = _trainer(os.path.join(tmp, "ours"), variant="b0", phi=None, resolution=resolution,
                        batch_size=batch_size, steps=steps)
        ours_keras_model = _trainer(os.path.join(tmp, "ours_keras"), model_fn=lambda: _keras_b0(resolution),
                                    variant="b0", phi=None, resolution=resolution, batch_size=batch_size,
                                    steps=steps)
        fit_model = _keras_b0(resolution)
        fit_model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3, rho=0.9, momentum=0.9,
                                                             epsilon=1e-3),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          steps_per_execution=steps, jit_compile=False)
        fit_data = _input_fn(resolution, batch_size)(tf.distribute.InputContext())
        ours_names = ("our loop, our B0", "our loop, keras.applications B0")
        contenders = {ours_names[0]: lambda: ours.run_loop(steps),
                      ours_names[1]: lambda: ours_keras_model.run_loop(steps)}
        for fn in contenders.values():  # warm-up: tracing and first-step allocations
            fn()
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in (*ours_names, FIT)}

        class Alternate(keras.callbacks.Callback):
            """Times each execution of fit's compiled function (one call of `steps` steps)
            inside one long fit() call, and runs our loops between executions, so the
            contenders alternate without charging fit for starting over each time."""

            def on_train_batch_begin(self, batch, logs=None):
                self.start = (time.perf_counter(), time.process_time())

            def on_train_batch_end(self, batch, logs=None):
                wall, cpu = time.perf_counter() - self.start[0], time.process_time() - self.start[1]
                if batch >= steps:  # the first execution traces and compiles
                    times[FIT].append((wall, cpu))
                    for name, fn in contenders.items():
                        times[name].append(_timed(fn))

        fit_model.fit(fit_data, steps_per_epoch=steps * (rounds + 1), epochs=1, verbose=0,
                      callbacks=[Alternate()])
        images = steps * batch_size
        return {name: (images / statistics.median(t[0] for t in values),
                       images / statistics.median(t[1] for t in values)) for name, values in times.items()}


def steps_per_loop_effect(batch_size: int, resolution: int, variant: str, phi: float | None,
                          rounds: int) -> dict[str, float]:
    """Median wall seconds per step with one step per host call against ten steps per call."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = _trainer(tmp, variant=variant, phi=phi, resolution=resolution, batch_size=batch_size, steps=10)
        trainer.run_loop(1)
        trainer.run_loop(10)
        one, ten = [], []
        for _ in range(rounds):
            one.append(_timed(lambda: [trainer.run_loop(1) for _ in range(10)])[0] / 10)
            ten.append(_timed(lambda: trainer.run_loop(10))[0] / 10)
        return {"steps_per_loop=1": statistics.median(one), "steps_per_loop=10": statistics.median(ten)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10, help="steps per host call (and per measurement)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    print(f"B0 at {args.resolution}px, batch {args.batch_size}, {args.steps} steps per call, "
          f"median of {args.rounds} alternating rounds")
    rates = compare_with_fit(args.batch_size, args.resolution, args.steps, args.rounds)
    wall_ref, cpu_ref = rates[FIT]
    for name, (wall, cpu) in rates.items():
        print(f"  {name:34s} {wall:7.2f} images/s, ratio to fit {wall / wall_ref:.2f} by wall time, "
              f"{cpu / cpu_ref:.2f} by CPU time")
    for label, variant, phi, resolution, batch in (
            (f"B0 at {args.resolution}px, batch {args.batch_size}", "b0", None, args.resolution, args.batch_size),
            ("phi=-6 at 32px, batch 8 (host overhead dominates)", "b0", -6.0, 32, 8)):
        times = steps_per_loop_effect(batch, resolution, variant, phi, args.rounds)
        one, ten = times["steps_per_loop=1"], times["steps_per_loop=10"]
        print(f"  {label}: {one * 1e3:.1f} ms/step with steps_per_loop=1, {ten * 1e3:.1f} ms/step with 10 "
              f"(ratio {one / ten:.2f})")


if __name__ == "__main__":
    main()
