"""Grouped batch norm: the grouping rule of the reference's TpuBatchNormalization
(tensorflow/tpu, models/official/efficientnet/utils.py, _moments:
``1 if num_shards <= 8 else max(8, num_shards // 8)`` consecutive shards per
group, moments averaged with Var = E[x^2] - E[x]^2), checked on CPU replicas.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from efficientnet_tpu.training import grouped_batch_norm
from helpers import REPO, subprocess_env


@pytest.mark.parametrize("replicas, size", [(1, 1), (8, 1), (16, 8), (32, 8), (64, 8), (128, 16),
                                            (256, 32), (1024, 128), (2048, 256)])
def test_reference_group_size_is_tpu_batch_normalizations(replicas, size):
    # utils.py: num_shards <= 8 -> 1 (a 2x2 slice normalizes per core), else max(8, n // 8).
    assert grouped_batch_norm.reference_group_size(replicas) == size


def test_group_size_setting():
    assert grouped_batch_norm.group_size_for("all", 32) == 32
    assert grouped_batch_norm.group_size_for("reference", 32) == 8
    assert grouped_batch_norm.group_size_for("2", 4) == 2
    with pytest.raises(ValueError, match="divide"):
        grouped_batch_norm.group_size_for("3", 4)


SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
import keras
from efficientnet_tpu.training import grouped_batch_norm
from efficientnet_tpu.training.strategy import configure_cpu_replicas

configure_cpu_replicas(4)
# Reduction through one device: the collective all-reduce cannot run inside XLA on logical CPUs.
strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(4)],
                                          cross_device_ops=tf.distribute.ReductionToOneDevice())
rng = np.random.default_rng(0)
# Four replicas' batches with different means and spreads, so every grouping differs.
data = [rng.normal(3.0 * r, 1.0 + r, size=(3, 4, 4, 5)).astype(np.float32) for r in range(4)]
out = {}
for group_size in (1, 2, 4):
    for jit in (False, True):
        with strategy.scope():
            model = keras.Sequential([keras.Input((4, 4, 5)), keras.layers.BatchNormalization(
                synchronized=True, center=False, scale=False, epsilon=1e-3, momentum=0.0)])
            count = grouped_batch_norm.apply_grouping(model, group_size)
        values = strategy.experimental_distribute_values_from_function(
            lambda context: tf.constant(data[context.replica_id_in_sync_group]))
        if jit:
            # XLA on logical CPUs cannot read a mirrored variable of another device, so the
            # compiled step is the grouped moments alone (all-reduce included); on a TPU
            # the whole train step compiles.
            step = tf.function(lambda x: tf.concat(grouped_batch_norm.grouped_moments(
                x, [0, 1, 2], group_size), 0), jit_compile=True)
        else:
            step = lambda x: model(x, training=True)
        result = tf.function(lambda v: strategy.run(step, args=(v,)))(values)
        outputs = [np.asarray(t) for t in strategy.experimental_local_results(result)]
        out[f"{group_size}-{jit}"] = {"count": count, "outputs": [o.tolist() for o in outputs],
                                      "moving_mean": np.asarray(model.layers[0].moving_mean).tolist()}
print("RESULT " + json.dumps({"data": [d.tolist() for d in data], "out": out}))
"""


@pytest.mark.slow
def test_moments_are_each_groups_batch_statistics_on_four_cpu_replicas():
    """4 replicas in groups of 2 (and 1, 4), eager tf.function and XLA: each replica's output is
    its input normalized with the mean and variance of its group's pooled batch."""
    import numpy as np

    done = subprocess.run([sys.executable, "-c", SCRIPT], env=subprocess_env(TF_CPP_MIN_LOG_LEVEL="2"),
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    data = [np.asarray(d, np.float64) for d in result["data"]]
    for group_size in (1, 2, 4):
        for jit in (False, True):
            run = result["out"][f"{group_size}-{jit}"]
            assert run["count"] == 1
            for replica, output in enumerate(run["outputs"]):
                first = replica // group_size * group_size
                pooled = np.concatenate(data[first:first + group_size])
                mean, var = pooled.mean(axis=(0, 1, 2)), pooled.var(axis=(0, 1, 2))
                wanted = (np.concatenate([mean, var]) if jit
                          else (data[replica] - mean) / np.sqrt(var + 1e-3))
                np.testing.assert_allclose(np.asarray(output), wanted, rtol=1e-4, atol=1e-4,
                                           err_msg=f"group {group_size}, jit {jit}, replica {replica}")
            if jit:
                continue
            # momentum 0: the moving mean is replica 0's group mean
            first_group = np.concatenate(data[:group_size])
            np.testing.assert_allclose(run["moving_mean"], first_group.mean(axis=(0, 1, 2)),
                                       rtol=1e-4, atol=1e-4)


def test_every_batch_norm_of_an_efficientnet_gets_grouped_moments():
    """Blocks keep their batch norms inside: all of them are found; one replica normalizes alone."""
    import keras
    import numpy as np

    import efficientnet_tpu

    model = efficientnet_tpu.build_model("b0", phi=-4.0, num_classes=3, input_shape=(32, 32, 3),
                                         sync_batch_norm=True)
    norms = [layer for layer in model._flatten_layers()  # pylint: disable=protected-access
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert grouped_batch_norm.apply_grouping(model, 1) == len(norms) > 10
    logits = model(np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32"),
                   training=True)
    assert np.all(np.isfinite(np.asarray(logits)))
