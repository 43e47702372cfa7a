"""One writer per directory: a lock file naming its owner (host, pid, start time).

Two trainers on one model_dir would save the same ``ckpt-N`` names over each
other, and two study workers with the same ``--worker_index`` would train the
same trials into the same folders. So a run that writes a model_dir (the chief
alone on multi-worker runs) first creates ``model_dir/.lock`` atomically
(``storage.atomic_write`` with ``overwrite=False``: a hard link on local disks,
an existence check and rename on gs://), and a second run stops with one line
naming the owner.

A lock is stale, and taken over with a note, when its owner is on this host and
its process is gone (kill -9, a crash, a reboot), or when it was written on
another host and not refreshed for ``STALE_AFTER_S`` (the owner refreshes it at
least every ``REFRESH_EVERY_S`` while training, so a live run's lock never
looks that old). ``force=True`` (``--force_unlock``) takes any lock over: for a
lock whose owner is known to be dead on another machine.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import time
import uuid
from typing import Any

import tensorflow as tf

from efficientnet_tpu import storage

LOCK_FILENAME = ".lock"
STALE_AFTER_S = 2 * 3600.0  # a lock from another host unrefreshed this long is taken over
REFRESH_EVERY_S = 300.0


class LockHeld(RuntimeError):
    """Another live process owns the directory (its one-line message names the owner)."""


def _now() -> float:
    return time.time()


def _stamp(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def read_owner(path: str) -> dict[str, Any] | None:
    """The lock file's contents, ``{}`` when it exists but cannot be parsed, None when absent."""
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            text = f.read()
    except tf.errors.NotFoundError:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def describe(owner: dict[str, Any]) -> str:
    if not owner:
        return "an unreadable lock file"
    return (f"pid {owner.get('pid')} on {owner.get('host')} (started {_stamp(float(owner.get('started', 0)))}"
            f"{', ' + owner['what'] if owner.get('what') else ''})")


def stale_reason(owner: dict[str, Any], now: float | None = None) -> str | None:
    """Why the lock's owner is gone (None when it may still be running)."""
    now = _now() if now is None else now
    if not owner:
        return "the lock file is unreadable (a writer died while creating it)"
    if owner.get("host") == socket.gethostname():
        pid = int(owner.get("pid", -1))
        if not pid_alive(pid):
            return f"process {pid} no longer runs on this host"
        return None
    age = now - float(owner.get("refreshed", owner.get("started", 0)))
    if age > STALE_AFTER_S:
        return f"not refreshed for {age / 3600:.1f} h (more than {STALE_AFTER_S / 3600:g} h)"
    return None


class DirectoryLock:
    """``with DirectoryLock(dir, flag='--model_dir'):`` ... one writer at a time; released on exit."""

    def __init__(self, directory: str, *, flag: str = "--model_dir", force: bool = False,
                 filename: str = LOCK_FILENAME, what: str = "", force_flag: str | None = "--force_unlock") -> None:
        self.directory = directory
        self.flag = flag
        self.force = force
        self.path = os.path.join(directory, filename)
        self.what = what
        self.force_flag = force_flag
        self.token = uuid.uuid4().hex
        self.note: str | None = None
        self._held = False
        self._refreshed = 0.0

    def _record(self, started: float) -> str:
        return storage.json_text({"host": socket.gethostname(), "pid": os.getpid(), "started": started,
                                  "started_utc": _stamp(started), "refreshed": _now(),
                                  "token": self.token, "what": self.what}, indent=1)

    def acquire(self) -> str | None:
        """Takes the lock; returns a note when a stale (or forced) lock was taken over.

        Raises ``LockHeld`` when a live process owns it.
        """
        tf.io.gfile.makedirs(self.directory)
        started = _now()
        for _ in range(3):
            try:
                storage.atomic_write(self.path, self._record(started), overwrite=False)
            except FileExistsError:
                owner = read_owner(self.path)
                if owner is None:
                    continue  # released meanwhile: try again
                reason = "--force_unlock given" if self.force else stale_reason(owner)
                if reason is None:
                    dead = (f"rerun with {self.force_flag}" if self.force_flag else
                            f"delete the lock file {self.path}")
                    raise LockHeld(
                        f"{self.flag}={self.directory} is in use by {describe(owner)}; wait for it to finish "
                        f"or use another {self.flag} (if that process is dead on another machine, {dead}; "
                        f"a lock unrefreshed for {STALE_AFTER_S / 3600:g} h is taken over)") from None
                storage.atomic_write(self.path, self._record(started))
                self.note = f"took over the stale lock of {self.directory} held by {describe(owner)}: {reason}"
            if (read_owner(self.path) or {}).get("token") != self.token:
                continue  # another process won a race for a stale lock
            self._held = True
            self._refreshed = _now()
            return self.note
        owner = read_owner(self.path) or {}
        raise LockHeld(f"{self.flag}={self.directory} is in use by {describe(owner)} (lock file {self.path})")

    def refresh(self, force: bool = False) -> None:
        """Rewrites the lock's refresh time (at most every ``REFRESH_EVERY_S`` unless ``force``)."""
        if not self._held or (not force and _now() - self._refreshed < REFRESH_EVERY_S):
            return
        owner = read_owner(self.path) or {}
        if owner.get("token") != self.token:
            raise LockHeld(f"{self.flag}={self.directory}: the lock was taken over by {describe(owner)} "
                           "(--force_unlock elsewhere?); stopping so as not to write over its checkpoints")
        storage.atomic_write(self.path, self._record(float(owner.get("started", _now()))))
        self._refreshed = _now()

    def release(self) -> None:
        """Deletes the lock file if it is still this process's."""
        if not self._held:
            return
        self._held = False
        try:
            if (read_owner(self.path) or {}).get("token") == self.token:
                tf.io.gfile.remove(self.path)
        except tf.errors.OpError:
            pass

    def __enter__(self) -> DirectoryLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
