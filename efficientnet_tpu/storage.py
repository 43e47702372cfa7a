"""Writing files safely, local or gs://: one atomic-write helper, strict JSON, and storage faults as one line.

Every file the project writes for later reading (config.yaml, eval_results.json,
study records, reports, lock files) goes through ``atomic_write``: the bytes go
to a temporary name beside the target first and are renamed over it, so a
reader never sees half a file and a crash leaves the previous version. On
local disks the rename is atomic (``os.replace``); on object stores
(tf.io.gfile's gs://) it is a copy and a delete, still never a partial object.

``check_writable`` probes a directory before a long job writes into it, and
``storage_fault`` turns the operating system's or TensorFlow's error for a full
disk, a read-only or permission-denied folder, or a path under a regular file
into ``StorageError`` (a ``ValueError``: the CLIs exit 2 with its one line).
TensorFlow is imported lazily: the CLIs use this module before it loads.
"""

from __future__ import annotations

import errno
import json
import math
import os
import socket
import uuid
from typing import Any


class StorageError(ValueError):
    """A directory cannot be written (full, read-only, permission, not a directory)."""


# (errno, what it means for the user)
_ERRNO_TEXT = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a regular file, not a directory",
    errno.EISDIR: "the path is a directory",
}
# Substrings of TensorFlow's (and the OS's) messages for the same faults.
_MESSAGE_TEXT = (
    ("no space left on device", "no space left on the device"),
    ("disk quota exceeded", "the disk quota is exhausted"),
    ("read-only file system", "the file system is read-only"),
    ("permission denied", "permission denied"),
    ("not a directory", "a part of the path is a regular file, not a directory"),
)


def is_remote(path: str) -> bool:
    return "://" in path


def _gfile():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    return tf.io.gfile


def fault_reason(error: BaseException) -> str | None:
    """What a storage fault means in words ('no space left on the device'), or None if it is not one."""
    number = getattr(error, "errno", None)
    if number in _ERRNO_TEXT:
        return _ERRNO_TEXT[number]
    text = str(error).lower()
    for needle, meaning in _MESSAGE_TEXT:
        if needle in text:
            return meaning
    name = type(error).__name__
    if name == "PermissionDeniedError":
        return "permission denied"
    return None


def storage_fault(error: BaseException, path: str, what: str) -> StorageError | None:
    """``StorageError`` naming ``path`` and a fix when ``error`` is a storage fault, else None.

    ``what`` names the path for the user, e.g. ``--model_dir`` or ``the checkpoint``.
    """
    reason = fault_reason(error)
    if reason is None:
        return None
    fix = {
        "no space left on the device": "free space there or choose another location",
        "the disk quota is exhausted": "free space there or choose another location",
        "permission denied": "make it writable for this user or choose another location",
        "the file system is read-only": "choose a writable location",
    }.get(reason, "give a folder path (it is created if missing)")
    return StorageError(f"cannot write {what} {path}: {reason}; {fix}")


def check_writable(directory: str, what: str) -> None:
    """Creates ``directory`` if needed and writes and deletes a small probe file there.

    Raises ``StorageError`` (one line: the path, the fault, the fix) when that fails.
    """
    gfile = _gfile()
    probe = os.path.join(directory, f".write_probe.{socket.gethostname()}.{os.getpid()}")
    try:
        if not is_remote(directory):
            check_not_under_file(directory, what)
        gfile.makedirs(directory)
        if not gfile.isdir(directory):
            raise StorageError(f"cannot write {what} {directory}: it is a regular file, not a directory; "
                               "give a folder path (it is created if missing)")
        with gfile.GFile(probe, "wb") as f:
            f.write(b"probe\n" * 512)  # a few KiB: a full disk fails here, not on the first checkpoint
            f.flush()
        gfile.remove(probe)
    except StorageError:
        raise
    except Exception as e:  # pylint: disable=broad-except
        fault = storage_fault(e, directory, what)
        if fault is None:
            raise
        raise fault from None


def remove_if_empty(directory: str) -> None:
    """Deletes ``directory`` when it exists and holds nothing (a folder a refused run only created)."""
    gfile = _gfile()
    try:
        if gfile.isdir(directory) and not gfile.listdir(directory):
            gfile.rmtree(directory)
    except Exception:  # pylint: disable=broad-except  (tidying up must never mask the run's own error)
        pass


def check_not_under_file(directory: str, what: str) -> None:
    """A local path that is, or is under, a regular file: named exactly (os.makedirs says only ENOTDIR)."""
    path = os.path.abspath(directory)
    while True:
        if os.path.exists(path) and not os.path.isdir(path):
            where = "is" if path == os.path.abspath(directory) else "is under"
            raise StorageError(f"{what} {directory} {where} the regular file {path}; give a folder path "
                               "(it is created if missing)")
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


def temporary_name(path: str) -> str:
    """A name beside ``path`` that no other writer uses (host, pid and a random part)."""
    # Not ``path + suffix``: on prefix-matching stores (tf.io.gfile's ram://) that would make
    # ``path`` itself look like an existing folder while the temporary exists.
    head, name = path.rsplit("/", 1) if "/" in path else ("", path)
    hidden = f".{name}.tmp-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return f"{head}/{hidden}" if head else hidden


def atomic_write(path: str, data: str | bytes, *, overwrite: bool = True) -> str:
    """Writes ``data`` to ``path`` through a temporary file and a rename (local or gs://).

    ``overwrite=False`` fails with ``FileExistsError`` when ``path`` exists (on a local disk
    atomically, with ``os.link``; on object stores checked just before the rename).
    Returns ``path``.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = temporary_name(path)
    if not is_remote(path):
        try:
            with open(tmp, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            if overwrite:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise
                except OSError:  # a file system without hard links: best effort
                    if os.path.exists(path):
                        raise FileExistsError(path) from None
                    os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path
    gfile = _gfile()
    try:
        with gfile.GFile(tmp, "wb") as f:
            f.write(payload)
        if not overwrite and gfile.exists(path):
            raise FileExistsError(path)
        gfile.rename(tmp, path, overwrite=True)
    finally:
        if gfile.exists(tmp):
            gfile.remove(tmp)
    return path


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON's null), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        return finite_or_none(value.item())  # numpy scalars
    return value


def json_text(value: Any, **kwargs: Any) -> str:
    """Strict JSON (RFC 8259: no NaN or Infinity; they become null), with a final newline."""
    return json.dumps(finite_or_none(value), allow_nan=False, **kwargs) + "\n"


def write_json(path: str, value: Any, **kwargs: Any) -> str:
    """``atomic_write`` of ``json_text(value)``; keyword arguments go to ``json.dumps``."""
    return atomic_write(path, json_text(value, **kwargs))
