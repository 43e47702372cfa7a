"""MultiWorkerMirroredStrategy for real: two worker processes on 127.0.0.1 (TF_CONFIG, ports picked here).

1. The same losses and eval as one process with two replicas at the same global batch.
2. The command line on two workers: only the chief writes checkpoints, summaries, config.yaml and
   eval_results.json; SIGTERM to one worker saves a checkpoint and stops both with status 143;
   rerunning both resumes from it.

Every process has a deadline and is killed at the end of its test whatever happens.
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow

DEADLINE_S = 300

WORKER = textwrap.dedent('''
    import json, os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from efficientnet_tpu.training.strategy import resolve_strategy

    kind, replicas, model_dir, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    strategy_info = resolve_strategy(kind, "", replicas)  # first, before TensorFlow is used
    import numpy as np
    import tensorflow as tf
    from efficientnet_tpu import data as data_lib
    from efficientnet_tpu.training import config as config_lib
    from efficientnet_tpu.training.loop import Trainer
    from efficientnet_tpu.run import input_fns, precision_policy, resolve, seed_everything

    config = config_lib.merge(dict(
        model_dir=model_dir, variant="baseline_convnet", resolution=16, dataset="digits", dropout_rate=0.0,
        train_batch_size=16, eval_batch_size=64, train_steps=6, steps_per_loop=2, checkpoint_every_steps=100,
        precision="float32", optimizer="adam", learning_rate=1e-2, lr_reference_batch=None, warmup_epochs=0.0,
        epsilon=1e-7, use_ema=False, preemption_handler="none", seed=7))
    info = data_lib.dataset_info("digits")
    config = resolve(config, info)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (96, 16, 16, 3)).astype("float32")
    labels = rng.integers(0, 10, 96).astype("int32")

    def train_fn(context, start_step=0):
        """Global batch s is rows [16 s, 16 s + 16) whatever the layout: replica k gets its k-th slice."""
        per_replica = context.get_per_replica_batch_size(config.train_batch_size)
        replicas_per_pipeline = context.num_replicas_in_sync // context.num_input_pipelines
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(per_replica).enumerate()
        mine = dataset.filter(lambda index, batch: (index % context.num_replicas_in_sync) // replicas_per_pipeline
                              == context.input_pipeline_id)
        return mine.map(lambda index, batch: batch)

    _, eval_fn = input_fns(config, info, strategy_info.kind)
    seed_everything(config)  # the same initial weights in both layouts
    with precision_policy("float32"):
        trainer = Trainer(config, strategy_info, num_train_examples=96, train_input_fn=train_fn,
                          eval_input_fn=eval_fn, progress=False)
        losses = []
        run_loop = trainer.run_loop

        def recording(steps, _run=run_loop):
            result = _run(steps)
            losses.append(result.loss_sum / steps)
            return result
        trainer.run_loop = recording
        trainer.restore()
        trainer.train()
        results = trainer.evaluate(write=False)
    with open(out, "w") as f:
        json.dump({"losses": losses, "eval": results, "replicas": strategy_info.num_replicas,
                   "kind": strategy_info.kind, "chief": strategy_info.is_chief}, f)
''')


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                       "task": {"type": "worker", "index": index}})


def environment(**extra) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def start_workers(argv_of, tmp_path, name: str) -> list[subprocess.Popen]:
    ports = free_ports(2)
    processes = []
    for index in range(2):
        log = open(tmp_path / f"{name}_{index}.log", "w")
        processes.append(subprocess.Popen(argv_of(index), stdout=log, stderr=subprocess.STDOUT,
                                          env=environment(TF_CONFIG=tf_config(ports, index))))
    return processes


def wait_all(processes, timeout: float = DEADLINE_S) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=max(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            codes.append(None)
    return codes


def stop(processes) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def log_text(tmp_path, name: str) -> str:
    return "\n".join(f"--- {path}\n" + open(path).read()[-3000:]
                     for path in sorted(glob.glob(str(tmp_path / f"{name}_*.log"))))


def test_two_workers_match_one_process_with_two_replicas(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    single = subprocess.run([sys.executable, str(script), "cpu", "2", str(tmp_path / "single"),
                             str(tmp_path / "single.json")], env=environment(), capture_output=True, text=True,
                            timeout=DEADLINE_S)
    assert single.returncode == 0, single.stderr[-3000:]
    workers = start_workers(lambda index: [sys.executable, str(script), "auto", "1", str(tmp_path / "multi"),
                                           str(tmp_path / f"multi_{index}.json")], tmp_path, "equal")
    try:
        codes = wait_all(workers)
    finally:
        stop(workers)
    assert codes == [0, 0], log_text(tmp_path, "equal")
    reference = json.loads((tmp_path / "single.json").read_text())
    assert reference["replicas"] == 2 and reference["kind"] == "cpu"
    for index in range(2):
        got = json.loads((tmp_path / f"multi_{index}.json").read_text())
        assert got["kind"] == "multi_worker" and got["replicas"] == 2 and got["chief"] == (index == 0)
        assert len(got["losses"]) == len(reference["losses"]) == 3
        np.testing.assert_allclose(got["losses"], reference["losses"], rtol=1e-5)
        for key in ("top1", "top5", "loss", "num_examples"):
            np.testing.assert_allclose(got["eval"][key], reference["eval"][key], rtol=1e-5)
    # Only the chief keeps checkpoints; the other worker's scratch copy is removed after each save.
    assert glob.glob(str(tmp_path / "multi" / "ckpt-6.index"))
    assert not glob.glob(str(tmp_path / "multi" / ".worker_*"))


def train_command(model_dir, train_steps: int) -> list[str]:
    return [sys.executable, "-m", "efficientnet_tpu.train", f"--model_dir={model_dir}", "--dataset=digits",
            "--variant=baseline_convnet", "--resolution=16", "--train_batch_size=16", "--eval_batch_size=64",
            f"--train_steps={train_steps}", "--steps_per_loop=1", "--checkpoint_every_steps=100000",
            "--precision=float32", "--optimizer=adam", "--learning_rate=0.001", "--lr_reference_batch=",
            "--warmup_epochs=0", "--use_ema=false", "--mode=train_and_eval", "--eval_every_epochs=1000"]


def test_cli_chief_writes_sigterm_stops_all_and_rerun_resumes(tmp_path):
    model_dir = tmp_path / "run"
    # A long run, stopped by SIGTERM to worker 1 once both are training.
    workers = start_workers(lambda index: train_command(model_dir, 100000), tmp_path, "term")
    chief_pids = [workers[0].pid]
    try:
        deadline = time.monotonic() + DEADLINE_S
        while max(map(int, re.findall(r"step (\d+)/", (tmp_path / "term_0.log").read_text())), default=0) < 5:
            assert time.monotonic() < deadline and all(w.poll() is None for w in workers), log_text(tmp_path, "term")
            time.sleep(0.5)
        workers[1].send_signal(signal.SIGTERM)
        codes = wait_all(workers)
    finally:
        stop(workers)
    assert codes == [143, 143], log_text(tmp_path, "term")
    checkpoints = sorted(int(path.rsplit("-", 1)[1].split(".")[0])
                         for path in glob.glob(str(model_dir / "ckpt-*.index")))
    assert len(checkpoints) == 1 and checkpoints[0] > 0, log_text(tmp_path, "term")
    stopped_at = checkpoints[0]

    # Rerunning both resumes from that checkpoint and finishes two steps later.
    workers = start_workers(lambda index: train_command(model_dir, stopped_at + 2), tmp_path, "resume")
    chief_pids.append(workers[0].pid)
    try:
        codes = wait_all(workers)
    finally:
        stop(workers)
    assert codes == [0, 0], log_text(tmp_path, "resume")
    chief_log = (tmp_path / "resume_0.log").read_text()
    assert f"resuming at step {stopped_at}" in chief_log
    assert f"resuming at step {stopped_at}" not in (tmp_path / "resume_1.log").read_text()  # only the chief prints
    results = json.loads((model_dir / "eval_results.json").read_text())
    assert results["step"] == stopped_at + 2 and results["num_examples"] == 300

    # Only the chief wrote into model_dir: its checkpoints, one summary writer, config.yaml, eval_results.json.
    names = sorted(os.listdir(model_dir))
    assert not [name for name in names if name.startswith(".worker_")], names
    assert {"config.yaml", "eval_results.json", "checkpoint"} <= set(names)
    # Event files name the process that wrote them (events.out.tfevents.TIME.HOST.PID...): chiefs only.
    writers = {int(os.path.basename(path).split(".")[-3])
               for path in glob.glob(str(model_dir / "**" / "events.out.tfevents.*"), recursive=True)}
    assert writers == set(chief_pids), (writers, chief_pids)
