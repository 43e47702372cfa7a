"""One writer per model_dir and per study worker (issue 15, item 2).

The lock file names its owner (host, pid, start time) and is created atomically;
a second trainer stops with one line naming the owner, a stale lock (its
process gone on this host, or unrefreshed past the timeout elsewhere) is taken
over with a note, and ``--force_unlock`` takes any lock. Study workers with the
same ``--worker_index`` collide on a study_dir lock.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from efficientnet_tpu import train
from efficientnet_tpu.training import lock as lock_lib

TINY = ["--dataset=digits", "--variant=baseline_convnet", "--resolution=16", "--train_batch_size=8",
        "--eval_batch_size=64", "--steps_per_loop=2", "--checkpoint_every_steps=2", "--precision=float32",
        "--learning_rate=0.01", "--lr_reference_batch=", "--warmup_epochs=0", "--preemption_handler=none",
        "--mode=train", "--train_steps=2"]


def dead_pid() -> int:
    """The pid of a process that has exited (reaped), so no process has it now."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_lock(directory, **fields) -> str:
    os.makedirs(directory, exist_ok=True)
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), "token": "other"}
    owner.update(fields)
    path = os.path.join(directory, lock_lib.LOCK_FILENAME)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(owner, f)
    return path


def test_the_lock_file_names_its_owner_and_a_second_lock_is_refused(tmp_path):
    first = lock_lib.DirectoryLock(str(tmp_path), what="a test")
    assert first.acquire() is None
    owner = json.loads((tmp_path / lock_lib.LOCK_FILENAME).read_text())
    assert owner["host"] == socket.gethostname() and owner["pid"] == os.getpid()
    assert abs(owner["started"] - time.time()) < 3600 and owner["started_utc"].endswith("UTC")
    with pytest.raises(lock_lib.LockHeld, match=f"in use by pid {os.getpid()} on {socket.gethostname()}"):
        lock_lib.DirectoryLock(str(tmp_path)).acquire()
    first.release()
    assert not (tmp_path / lock_lib.LOCK_FILENAME).exists()
    # No temporaries are left beside it.
    assert os.listdir(tmp_path) == []


def test_a_second_trainer_stops_with_one_line_naming_the_owner(tmp_path, capsys):
    model_dir = tmp_path / "run"
    held = lock_lib.DirectoryLock(str(model_dir))
    held.acquire()
    try:
        assert train.main_cli(["train", *TINY, f"--model_dir={model_dir}"]) == 2
    finally:
        held.release()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--model_dir={model_dir} is in use by pid {os.getpid()}" in err[0]
    assert "--force_unlock" in err[0]
    assert not any(name.startswith("ckpt-") for name in os.listdir(model_dir))
    assert not (model_dir / "config.yaml").exists()


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over_with_a_note(tmp_path, capsys):
    model_dir = tmp_path / "run"
    pid = dead_pid()
    write_lock(model_dir, pid=pid)
    assert train.main_cli(["train", *TINY, f"--model_dir={model_dir}"]) == 0
    out = capsys.readouterr().out
    assert f"note: took over the stale lock of {model_dir} held by pid {pid}" in out
    assert "no longer runs on this host" in out
    assert (model_dir / "ckpt-2.index").exists()
    assert not (model_dir / lock_lib.LOCK_FILENAME).exists()  # released at the end


def test_locks_from_other_hosts_expire_after_the_documented_timeout(tmp_path):
    fresh = {"host": "another-host", "pid": 1, "started": time.time() - 60}
    assert lock_lib.stale_reason(fresh) is None
    old = dict(fresh, refreshed=time.time() - lock_lib.STALE_AFTER_S - 60)
    assert "not refreshed for" in lock_lib.stale_reason(old)
    # A live run refreshes its lock, so a long run elsewhere is not taken over.
    long_running = dict(fresh, started=time.time() - 10 * lock_lib.STALE_AFTER_S, refreshed=time.time() - 60)
    assert lock_lib.stale_reason(long_running) is None
    assert lock_lib.REFRESH_EVERY_S < lock_lib.STALE_AFTER_S / 4


def test_force_unlock_takes_over_a_live_lock_from_another_host(tmp_path, capsys):
    model_dir = tmp_path / "run"
    write_lock(model_dir, host="another-host", pid=1)
    assert train.main_cli(["train", *TINY, f"--model_dir={model_dir}"]) == 2
    assert "in use by pid 1 on another-host" in capsys.readouterr().err
    assert train.main_cli(["train", *TINY, f"--model_dir={model_dir}", "--force_unlock"]) == 0
    assert "--force_unlock given" in capsys.readouterr().out


def test_refresh_notices_a_lock_taken_over_elsewhere(tmp_path):
    held = lock_lib.DirectoryLock(str(tmp_path))
    held.acquire()
    write_lock(tmp_path, host="another-host", token="theirs")
    with pytest.raises(lock_lib.LockHeld, match="taken over"):
        held.refresh(force=True)
    held.release()
    assert (tmp_path / lock_lib.LOCK_FILENAME).exists()  # not ours: left alone


def test_a_study_trial_held_by_another_process_is_not_recorded_as_failed(monkeypatch, tmp_path):
    from efficientnet_tpu.studies import runner

    def held(config, progress=True):
        raise lock_lib.LockHeld("--model_dir=x is in use by pid 1 on h")

    monkeypatch.setattr(runner, "train", held)
    monkeypatch.setattr(runner.measure, "describe_size", lambda config: {})
    trial = type("T", (), {"study": "s", "trial": "t", "name": "s/t", "group": "g", "repeat": 0, "axes": {},
                           "config": type("C", (), {"dataset": "digits", "variant": "b0",
                                                    "model_dir": str(tmp_path / "t"),
                                                    "to_dict": lambda self: {}})()})()
    with pytest.raises(lock_lib.LockHeld):
        runner.run_trial(trial, str(tmp_path), profile=None, measure_speed=False)
    assert not os.path.exists(os.path.join(tmp_path, "records"))


def test_two_study_workers_with_the_same_index_collide(tmp_path, capsys):
    from efficientnet_tpu import study

    study_dir = tmp_path / "study"
    held = lock_lib.DirectoryLock(str(study_dir), filename=".lock-worker-0-of-2")
    held.acquire()
    try:
        args = ["study", "--study=se_placement", "--profile=smoke", f"--study_dir={study_dir}", "--num_workers=2",
                "--worker_index=0", "--measure_speed=false"]
        assert study.main_cli(args) == 2
    finally:
        held.release()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is in use by pid" in err[0] and "--worker_index=0 already runs" in err[0]
    assert not (study_dir / "study.yaml").exists()  # stopped before anything was written


def test_the_lock_and_the_atomic_writer_work_on_a_tf_io_gfile_file_system():
    """gs:// goes through tf.io.gfile; its in-memory ram:// file system stands in for it here."""
    from efficientnet_tpu import storage

    directory = f"ram://lock_test_{os.getpid()}"
    storage.check_writable(directory, "--model_dir")
    held = lock_lib.DirectoryLock(directory)
    held.acquire()
    owner = lock_lib.read_owner(f"{directory}/{lock_lib.LOCK_FILENAME}")
    assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
    with pytest.raises(lock_lib.LockHeld):
        lock_lib.DirectoryLock(directory).acquire()
    with pytest.raises(FileExistsError):
        storage.atomic_write(f"{directory}/{lock_lib.LOCK_FILENAME}", "x", overwrite=False)
    held.release()
    import tensorflow as tf

    assert tf.io.gfile.listdir(directory) == []
