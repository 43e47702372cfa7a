"""The one command-line convention of the benchmark tools.

Each tool defines its absl flags on a private `FlagValues` inside its `main`,
never on the global `flags.FLAGS` at import time, so importing or running
several tools in one process (a study, a test) cannot clash or silently reuse
another tool's flag. Bad input ends with one `error: ...` line and a status
from `exit_codes`; a bug writes its traceback to a file and says where.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from typing import Callable, Sequence

from absl import flags

from efficientnet_tpu import exit_codes


class UsageError(Exception):
    """Bad flags, names or paths: the message says what to fix; the status is `exit_codes.USAGE`."""


def run_cli(
    doc: str,
    define_flags: Callable[[flags.FlagValues], None],
    body: Callable[[flags.FlagValues], None],
    argv: Sequence[str] | None = None,
) -> int:
    """Parses `argv` (default: sys.argv[1:]) into fresh flags, runs `body`, returns the exit status.

    `define_flags(values)` defines the tool's flags with `flag_values=values`;
    `--help` prints `doc` and the flags.
    """
    values = flags.FlagValues()
    flags.DEFINE_bool("help", False, "Show this help and exit.", short_name="h", flag_values=values)
    define_flags(values)
    program = os.path.basename(sys.argv[0]) if argv is None else "benchmark"
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        rest = values([program, *arguments])
    except flags.Error as error:
        return exit_codes.fail(f"{exit_codes.one_line(error)} (--help lists the flags)")
    if values.help:
        print(doc.strip() + "\n\nflags:\n" + values.get_help(include_special_flags=False).strip())
        return exit_codes.OK
    if rest[1:]:
        return exit_codes.fail(f"unexpected argument(s) {' '.join(rest[1:])}; every option is a --flag")
    try:
        body(values)
    except UsageError as error:
        return exit_codes.fail(exit_codes.one_line(error))
    except KeyboardInterrupt:
        return exit_codes.fail("interrupted", exit_codes.INTERRUPTED)
    except Exception as error:  # noqa: BLE001 - one line on the console, the traceback in a file
        handle, path = tempfile.mkstemp(prefix="efficientnet_tpu_benchmark_", suffix=".traceback")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            traceback.print_exc(file=file)
        return exit_codes.fail(f"{exit_codes.one_line(error)} (a bug; traceback in {path})", exit_codes.INTERNAL)
    return exit_codes.OK


def positive_int(values: flags.FlagValues, name: str, default: int | None, help_text: str) -> None:
    """Defines an integer flag that must be at least 1."""
    flags.DEFINE_integer(name, default, help_text, lower_bound=1, flag_values=values)
