"""Imports TensorFlow without its start-up chatter on the console.

TensorFlow 2.21 writes about seven lines to stderr before any of its log
settings apply: absl's "All log messages before absl::InitializeLog()" notice,
oneDNN and "Could not find cuda drivers" INFO lines at import, and on a
machine without a GPU an ERROR line "failed call to cuInit" when the devices
are first listed. ``TF_CPP_MIN_LOG_LEVEL`` hides none of the INFO lines (they
are printed before it is read) and, at 3, would hide every real error too.
TensorFlow 2.20 prints the same messages with another prefix (a date and the
source path instead of absl's); ``NOISE`` knows both formats.

So the command-line tools import TensorFlow and list its devices with file
descriptor 2 pointed at a temporary file, then write back every line that is
not one of those known messages. Nothing is hidden from a machine with a GPU
(there cuInit succeeds and prints nothing), and ``TF_CPP_MIN_LOG_LEVEL=0`` or
``1`` (asking for TensorFlow's INFO or WARNING logs) turns the filter off.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterator

# The prefix of a TensorFlow C++ log line, in the two formats of the releases we support:
#   2.21 (absl):  "I0000 00:00:1796158315.533253   19949 port.cc:153] ..."
#   2.20 (tsl):   "2026-12-01 20:51:49.915229: I tensorflow/core/util/port.cc:153] ..."
_ABSL = r"{level}\d{{4}} [\d:.]+\s+\d+ "
_TSL = r"\d{{4}}-\d\d-\d\d [\d:.]+: {level} (?:\S+/)?"


def _line(level: str, rest: str) -> re.Pattern:
    """A pattern for one C++ log line of ``level`` (I, W, E) in either release's format."""
    return re.compile(f"^(?:{_ABSL.format(level=level)}|{_TSL.format(level=level)}){rest}")


# The start-up lines dropped; anything else written meanwhile is passed on.
NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    _line("I", r"(port|cudart_stub|cpu_feature_guard)\.cc:\d+\] "),
    _line("E", r"cuda_(platform|executor|diagnostics)\.cc:\d+\] failed call to cuInit"),
    # cpu_feature_guard's second line
    re.compile(r"^To enable the following instructions: .* in other operations, rebuild TensorFlow"),
)


def wants_tensorflow_logs() -> bool:
    """True when the user asked for TensorFlow's INFO or WARNING lines."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() in ("0", "1")


def filter_noise(text: str) -> str:
    """``text`` without the known start-up lines."""
    kept = [line for line in text.splitlines(keepends=True)
            if not any(pattern.search(line.rstrip("\n")) for pattern in NOISE)]
    return "".join(kept)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Runs the block with fd 2 captured, then writes back what is not start-up noise."""
    if wants_tensorflow_logs():
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr (a daemon): nothing to keep clean
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = filter_noise(capture.read().decode("utf-8", "replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def import_tensorflow():
    """``import tensorflow`` and a first look at the devices (where cuInit runs), quietly.

    Without TensorFlow installed, a command-line tool stops here with one
    ``error:`` line naming the install command (usage status 2), not a traceback.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from efficientnet_tpu import exit_codes, tf_install  # pylint: disable=import-outside-toplevel

    with quiet_stderr():
        try:
            import tensorflow as tf  # pylint: disable=import-outside-toplevel
        except ModuleNotFoundError as error:
            if error.name != "tensorflow":
                raise
            tf = None
        else:
            tf.config.list_physical_devices()
    if tf is None:
        raise SystemExit(exit_codes.fail(tf_install.missing_message()))
    return tf
