"""The absl entry point that ``train`` and ``study`` share.

Both define their flags on the global ``flags.FLAGS`` when their command line
starts (never at import), report a bad flag or a stray argument as one
``error:`` line with the usage status, keep absl's INFO log opt-in, and can be
driven in one process by tests and scripts through ``run_in_process``.
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from absl import app, flags, logging

from efficientnet_tpu import exit_codes

FLAGS = flags.FLAGS


def _unexpected(arguments: Sequence[str]) -> int:
    return exit_codes.fail(f"unexpected arguments {' '.join(arguments)}; every option is a --flag")


def run_in_process(argv: Sequence[str], define_flags: Callable[[], None], execute: Callable[[], int]) -> int:
    """Parses ``argv`` (program name first) afresh and runs ``execute``; returns the exit status."""
    define_flags()
    FLAGS.unparse_flags()
    try:
        rest = FLAGS(list(argv))
    except flags.Error as e:
        return exit_codes.fail(exit_codes.one_line(e))
    if len(rest) > 1:
        return _unexpected(rest[1:])
    return execute()


def main(define_flags: Callable[[], None], execute: Callable[[], int]) -> None:
    """``python -m ...``: absl's app with the one-line error convention; exits with ``execute``'s status."""
    define_flags()

    def parse(argv: Sequence[str]) -> list[str]:
        try:
            return FLAGS(list(argv))
        except flags.Error as e:
            sys.exit(exit_codes.fail(exit_codes.one_line(e)))

    def app_main(argv: list[str]) -> None:
        if not FLAGS["verbosity"].present:
            # Progress and key events are printed; the INFO log (TensorFlow's included) is opt-in with -v 0.
            logging.set_verbosity(logging.WARNING)
        if len(argv) > 1:
            sys.exit(_unexpected(argv[1:]))
        sys.exit(execute())

    app.run(app_main, flags_parser=parse)
