"""The one exit-status table every command-line tool of the package uses.

A script, a scheduler or a study runner decides what to do next from the
status alone (retry, fix the command, resume), so every CLI must mean the same
thing by the same number.
"""

from __future__ import annotations

import re
import sys

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

OK = 0
INTERNAL = 1  # a bug: the traceback goes to a file, the console gets one line
USAGE = 2  # bad flags, config, spec, data or paths, a full/read-only/locked directory: the line says the fix
DIVERGED = 3  # the training loss, an eval metric or a weight became NaN or infinite
INTERRUPTED = 130  # Ctrl-C
PREEMPTED = 143  # SIGTERM or a TPU maintenance event: a checkpoint was saved, rerun to resume

TABLE = {
    OK: "done",
    INTERNAL: "unexpected error (a bug; the traceback is written to a file)",
    USAGE: "bad flags, config, spec, data or paths; an unwritable or locked directory",
    DIVERGED: "training diverged: a NaN or inf loss, eval metric or weight (the last good checkpoint is kept)",
    INTERRUPTED: "interrupted (Ctrl-C)",
    PREEMPTED: "preempted: a checkpoint was saved; rerun the same command to resume",
}


def one_line(error: BaseException) -> str:
    """An exception's message squeezed onto one line (its type name when it has none)."""
    return " ".join(_ANSI.sub("", str(error)).split()) or type(error).__name__


def fail(message: str, code: int = USAGE) -> int:
    """Prints ``error: message`` on stderr and returns ``code`` for the caller to exit with."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code
