"""Two replicas (MirroredStrategy over two logical CPUs) train like one replica at the same global batch.

With synchronized batch norm the batch statistics are those of the global
batch, so losses and weights agree step by step up to float rounding.

Logical CPU devices must be configured before TensorFlow initialises its
devices, so this runs in a fresh subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import QUIET, REPO, TINY_ARGS, subprocess_env, train_cli


SCRIPT = r"""
import json, os, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from efficientnet_tpu import data as data_lib
from efficientnet_tpu.training import config as config_lib
from efficientnet_tpu.training.loop import Trainer
from efficientnet_tpu.run import input_fns, precision_policy, resolve, seed_everything
from efficientnet_tpu.training.strategy import resolve_strategy

base = sys.argv[1]
out = {}
# One strategy object per replica count: TensorFlow's collective instance keys restart with
# every new MirroredStrategy, so two of them in one process would collide.
strategies = {n: resolve_strategy("cpu", "", n) for n in (1, 2)}
# The ConvNet baseline (batch norm, no randomness when dropout is 0) for the equality;
# an EfficientNet with dropout and stochastic depth for random state in replica context.
convnet = dict(variant="baseline_convnet", sync_batch_norm=True)
runs = [("one", 1, convnet), ("two", 2, convnet), ("two_resumed", 2, convnet),
        ("two_dropout", 2, dict(variant="b0", phi=-6.0, dropout_rate=0.3, drop_connect_rate=0.3))]
for name, replicas, changes in runs:
    values = dict(model_dir=os.path.join(base, name), resolution=16,
                  dataset="digits", augment="none", train_batch_size=16, eval_batch_size=64,
                  train_steps=4, steps_per_loop=1, precision="float32", optimizer="sgd",
                  momentum=0.9, learning_rate=0.01, lr_reference_batch=None, warmup_epochs=0.0,
                  dropout_rate=0.0, drop_connect_rate=0.0, use_ema=True, ema_decay=0.9,
                  strategy="cpu", num_cpu_replicas=replicas, seed=7, deterministic=True)
    values.update(changes)
    config = config_lib.merge(values)
    with precision_policy(config.precision):
        seed_everything(config)
        info = data_lib.dataset_info(config.dataset)
        config = resolve(config, info)
        strategy = strategies[replicas]
        train_fn, eval_fn = input_fns(config, info, strategy.kind)
        trainer = Trainer(config, strategy, num_train_examples=info.num_train_examples,
                          train_input_fn=train_fn, eval_input_fn=eval_fn, progress=False)
        steps = 2 if name == "two_dropout" else 4
        if name == "two_resumed":
            # Stop after 2 steps and resume in a new Trainer: tf.distribute's iterator cannot
            # be checkpointed, so the deterministic input is replayed to step 2.
            results = [trainer.run_loop(1) for _ in range(2)]
            trainer.save()
            trainer = Trainer(config, strategy, num_train_examples=info.num_train_examples,
                              train_input_fn=train_fn, eval_input_fn=eval_fn, progress=False)
            assert trainer.restore() == 2 and trainer.input_mode == "replay"
            results += [trainer.run_loop(1) for _ in range(2)]
        else:
            results = [trainer.run_loop(1) for _ in range(steps)]
        evaluation = trainer.evaluate(write=False)
        trainer.save()
    out[name] = {
        "replicas": strategy.num_replicas,
        "losses": [r.loss_sum for r in results],
        "examples": [r.examples for r in results],
        "top1": evaluation["top1"], "eval_loss": evaluation["loss"],
        "num_examples": evaluation["num_examples"],
        "kernel": np.asarray(trainer.model.trainable_variables[0].numpy(), np.float64).ravel()[:64].tolist(),
    }
print("RESULT " + json.dumps(out))
"""


@pytest.mark.slow
def test_two_replicas_match_one_replica_at_the_same_global_batch(tmp_path):
    env = subprocess_env(TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=600, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    one, two, dropout, resumed = out["one"], out["two"], out["two_dropout"], out["two_resumed"]
    assert (one["replicas"], two["replicas"], dropout["replicas"]) == (1, 2, 2)
    # Both see all 16 examples of each global batch (2 x 8 with two replicas).
    assert one["examples"] == two["examples"] == [16.0] * 4
    # Same losses step by step (synchronized batch norm makes the statistics global).
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(two["kernel"], one["kernel"], rtol=1e-3, atol=1e-5)
    assert one["num_examples"] == two["num_examples"] == dropout["num_examples"]
    assert abs(two["eval_loss"] - one["eval_loss"]) < 1e-3 and abs(two["top1"] - one["top1"]) < 0.01
    # Resuming a 2-replica run (input replayed, optimizer and weights restored) changes nothing.
    np.testing.assert_allclose(resumed["losses"], two["losses"], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(resumed["kernel"], two["kernel"])
    # Dropout and stochastic depth (random state in replica context) train too.
    assert all(np.isfinite(dropout["losses"]))


# -- the strategy from the command line -----------------------------------------------------------------------


STRATEGY_FIRST = r"""
import importlib, sys
from tensorflow.python.eager import context
from efficientnet_tpu.training import config as config_lib
run_lib = importlib.import_module("efficientnet_tpu.run")

seen = []
def resolve_strategy(*args, **kwargs):
    seen.append(context.context()._initialized)
    raise SystemExit(0 if seen == [False] else 1)

run_lib.resolve_strategy = resolve_strategy
config = config_lib.merge(dict(model_dir=sys.argv[1], dataset="digits", variant="baseline_convnet",
                               resolution=16, train_steps=1, train_batch_size=8, eval_batch_size=64))
run_lib.run(config, progress=False)
raise SystemExit(2)
"""


@pytest.mark.slow
def test_cpu_replicas_work_from_the_command_line(tmp_path):
    done = train_cli(f"--model_dir={tmp_path}/run", *TINY_ARGS, "--train_steps=2", "--strategy=cpu",
                     "--num_cpu_replicas=2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "on 2 replica(s) (cpu)" in done.stdout


def test_the_strategy_is_made_before_tensorflow_starts_its_devices(tmp_path):
    """MultiWorkerMirroredStrategy (collective ops) and logical CPUs must be set up first."""
    done = subprocess.run([sys.executable, "-c", STRATEGY_FIRST, str(tmp_path / "run")],
                          env=subprocess_env(**QUIET), capture_output=True, text=True, timeout=300, cwd=REPO,
                          check=False)
    assert done.returncode == 0, f"TensorFlow's context started before the strategy: {done.stderr[-2000:]}"
