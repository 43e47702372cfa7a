"""Preemption end to end through the command line: SIGKILL, SIGTERM, resume, identical weights.

One uninterrupted deterministic run is the reference. A second run is
killed with SIGKILL after a checkpoint, restarted and stopped with SIGTERM
(it must save and exit with 143), then restarted again to the end: its
final weights, EMA and step must equal the reference's exactly, which needs
optimizer, EMA, random-generator and input-pipeline state all restored.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import yaml

from efficientnet_tpu import train
from helpers import REPO, TINY_ARGS, error_lines, subprocess_env


TOTAL_STEPS = 48


def command(model_dir: str) -> list[str]:
    return [sys.executable, "-m", "efficientnet_tpu.train", f"--model_dir={model_dir}", "--mode=train",
            "--dataset=digits", "--variant=b0", "--phi=-6", "--resolution=16", "--augment=default",
            "--train_batch_size=8", "--eval_batch_size=64", f"--train_steps={TOTAL_STEPS}",
            "--steps_per_loop=1", "--checkpoint_every_steps=6", "--keep_checkpoints=3",
            "--precision=float32", "--optimizer=adam", "--learning_rate=0.001", "--lr_reference_batch=",
            "--warmup_epochs=0", "--epsilon=1e-7", "--dropout_rate=0.2", "--drop_connect_rate=0.2",
            "--use_ema", "--ema_decay=0.9", "--deterministic", "--seed=5"]


def environment() -> dict[str, str]:
    # GCE_METADATA_IP points TensorFlow's "am I on Google Cloud?" probe at a closed local
    # port, so the preemption handler's platform check never leaves this machine.
    return subprocess_env(TF_CPP_MIN_LOG_LEVEL="2", GCE_METADATA_IP="127.0.0.1:9")


def latest_step(model_dir: str) -> int:
    path = os.path.join(model_dir, "checkpoint")
    if not os.path.exists(path):
        return -1
    with open(path, encoding="utf-8") as f:
        match = re.search(r'^model_checkpoint_path: ".*ckpt-(\d+)"', f.read(), re.M)
    return int(match.group(1)) if match else -1


def start_and_wait(model_dir: str, past_step: int, timeout: float = 300) -> subprocess.Popen:
    """Starts a run and returns once it has saved a checkpoint beyond ``past_step``."""
    process = subprocess.Popen(command(model_dir), env=environment(), cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while latest_step(model_dir) <= past_step:
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"run ended early ({process.returncode}): {err[-3000:]}")
        assert time.monotonic() < deadline, "no checkpoint appeared in time"
        time.sleep(0.05)
    return process


def final_variables(model_dir: str) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
    names = [name for name, _ in tf.train.list_variables(tf.train.latest_checkpoint(model_dir))
             if name.startswith(("model/", "optimizer/", "ema/", "step/", "rng/"))]
    return {name: reader.get_tensor(name) for name in names}


@pytest.mark.slow
def test_killed_and_preempted_run_resumes_to_identical_weights(tmp_path):
    reference_dir, interrupted_dir = str(tmp_path / "reference"), str(tmp_path / "interrupted")
    reference = subprocess.run(command(reference_dir), env=environment(), cwd=REPO, capture_output=True,
                               text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]
    assert latest_step(reference_dir) == TOTAL_STEPS

    # 1. SIGKILL right after the first checkpoint: no chance to save anything more.
    killed = start_and_wait(interrupted_dir, past_step=0)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    killed_at = latest_step(interrupted_dir)
    assert 0 < killed_at < TOTAL_STEPS

    # 2. Rerun the same command; once it has moved on, SIGTERM it (a preemption notice).
    preempted = start_and_wait(interrupted_dir, past_step=killed_at)
    preempted.send_signal(signal.SIGTERM)
    out, err = preempted.communicate(timeout=120)
    assert preempted.returncode == 143, err[-3000:]
    match = re.search(r"preempted at step (\d+); checkpoint \S+ saved", err)
    assert match, err[-3000:]
    assert "restored" in out and f"(step {killed_at})" in out
    preempted_at = int(match.group(1))
    assert killed_at < preempted_at < TOTAL_STEPS and latest_step(interrupted_dir) == preempted_at

    # 3. Rerun again: it finishes at the right step with the reference's exact weights.
    finished = subprocess.run(command(interrupted_dir), env=environment(), cwd=REPO, capture_output=True,
                              text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert latest_step(interrupted_dir) == TOTAL_STEPS
    expected, actual = final_variables(reference_dir), final_variables(interrupted_dir)
    assert set(actual) == set(expected) and any(name.startswith("ema/") for name in expected)
    assert any(name.startswith("rng/") for name in expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(actual[name], value, err_msg=name)


# -- resuming with another configuration ----------------------------------------------------------------------


def test_another_optimizer_on_a_model_dir_is_one_line_and_keeps_its_config(tmp_path, capsys):
    model_dir = tmp_path / "run"
    assert train.main_cli(["train", f"--model_dir={model_dir}", *TINY_ARGS, "--train_steps=1",
                           "--optimizer=rmsprop"]) == 0
    capsys.readouterr()
    status = train.main_cli(["train", f"--model_dir={model_dir}", *TINY_ARGS, "--train_steps=2",
                             "--optimizer=sgd"])
    err = capsys.readouterr().err
    assert status == 2
    assert len(error_lines(err)) == 1 and "optimizer='rmsprop'" in error_lines(err)[0] and "--optimizer=rmsprop" in err
    assert len(err.strip().splitlines()) <= 3, err
    assert yaml.safe_load((model_dir / "config.yaml").read_text())["optimizer"] == "rmsprop"


def test_turning_the_ema_on_resumes_from_the_newest_checkpoint(tmp_path, capsys):
    model_dir = tmp_path / "run"
    common = ["train", f"--model_dir={model_dir}", *TINY_ARGS, "--checkpoint_every_steps=1", "--optimizer=adam"]
    assert train.main_cli(common + ["--train_steps=2", "--use_ema=false"]) == 0
    capsys.readouterr()
    assert train.main_cli(common + ["--train_steps=3", "--use_ema=true"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"restored \S+ckpt-2 \(step 2\)", out), out
    assert "the average starts from the restored weights" in out
    import tensorflow as tf

    names = [name for name, _ in tf.train.list_variables(str(model_dir / "ckpt-3"))]
    assert any(name.startswith("ema/") for name in names)


def test_a_checkpoint_of_another_configuration_is_not_skipped_for_an_older_one(tmp_path):
    """Files that read but do not fit are a configuration change, not corruption: no silent fallback."""
    import tensorflow as tf

    from efficientnet_tpu.training.checkpoint import restore_newest_readable

    directory = str(tmp_path)
    old = tf.train.Checkpoint(a=tf.Variable(1.0))
    manager = tf.train.CheckpointManager(old, directory, max_to_keep=3)
    manager.save(checkpoint_number=1)
    new = tf.train.Checkpoint(a=tf.Variable(2.0), b=tf.Variable(3.0))
    tf.train.CheckpointManager(new, directory, max_to_keep=3).save(checkpoint_number=2)
    wanted = tf.train.Checkpoint(a=tf.Variable(0.0), c=tf.Variable(0.0))
    with pytest.raises(ValueError, match="ckpt-2 was saved by a run configured differently"):
        restore_newest_readable(wanted, directory)
