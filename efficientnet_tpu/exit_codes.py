"""The one exit-status table every command-line tool of the package uses.

A script, a scheduler or a study runner decides what to do next from the
status alone (retry, fix the command, resume), so every CLI must mean the same
thing by the same number.
"""

from __future__ import annotations

import sys

OK = 0
INTERNAL = 1  # a bug: the traceback goes to a file, the console gets one line
USAGE = 2  # bad flags, config, spec, data or paths: the one line says how to fix it
DIVERGED = 3  # the training loss became NaN or infinite
INTERRUPTED = 130  # Ctrl-C
PREEMPTED = 143  # SIGTERM or a TPU maintenance event: a checkpoint was saved, rerun to resume

TABLE = {
    OK: "done",
    INTERNAL: "unexpected error (a bug; the traceback is written to a file)",
    USAGE: "bad flags, config, spec, data or paths",
    DIVERGED: "the training loss diverged (NaN or inf)",
    INTERRUPTED: "interrupted (Ctrl-C)",
    PREEMPTED: "preempted: a checkpoint was saved; rerun the same command to resume",
}


def one_line(error: BaseException) -> str:
    """An exception's message squeezed onto one line (its type name when it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


def fail(message: str, code: int = USAGE) -> int:
    """Prints ``error: message`` on stderr and returns ``code`` for the caller to exit with."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code
