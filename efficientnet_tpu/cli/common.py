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


HELP_ARGUMENTS = ("--help", "-help", "-h", "--helpshort", "-?", "--helpfull", "--help=true")


def wants_help(argv: Sequence[str]) -> bool:
    """Whether the command line asks for help (absl's own --help would exit with status 1)."""
    return any(argument in HELP_ARGUMENTS for argument in list(argv)[1:])


def help_text(define_flags: Callable[[], None], doc: str | None = None) -> str:
    """The command's docstring and the flags ``define_flags`` defined (not absl's own)."""
    module = sys.modules.get(define_flags.__module__)
    doc = doc if doc is not None else (getattr(module, "__doc__", None) or "")
    names = {define_flags.__module__}
    if define_flags.__module__ == "__main__":
        names.add(sys.argv[0])
        path = getattr(module, "__file__", None)
        if path:
            names.add(path)
    by_module = FLAGS.flags_by_module_dict()
    defined = sorted({flag.name: flag for key in names for flag in by_module.get(key, [])}.values(),
                     key=lambda flag: flag.name)
    lines = [doc.strip(), "", "flags:"]
    for flag in defined:
        default = "" if flag.default is None else f" (default: {flag.default_as_str})"
        lines.append(f"  --{flag.name}: {' '.join(str(flag.help).split())}{default}")
    lines.append("")
    lines.append("absl's own flags (--verbosity, --flagfile, ...): --helpfull")
    return "\n".join(lines)


def print_help(argv: Sequence[str], define_flags: Callable[[], None], doc: str | None = None) -> int:
    """Prints the help on stdout (all flags for --helpfull); returns status 0."""
    if "--helpfull" in argv:
        print(FLAGS.get_help())
    else:
        print(help_text(define_flags, doc))
    return exit_codes.OK


def _flag_error(error: Exception) -> int:
    """absl's parse error as one line (its flagfile errors start with a doubled 'ERROR:: ')."""
    text = exit_codes.one_line(error)
    while text.upper().startswith("ERROR:"):
        text = text[len("ERROR:"):].lstrip(": ")
    return exit_codes.fail(text)


def _unexpected(arguments: Sequence[str]) -> int:
    return exit_codes.fail(f"unexpected arguments {' '.join(arguments)}; every option is a --flag")


def run_in_process(argv: Sequence[str], define_flags: Callable[[], None], execute: Callable[[], int]) -> int:
    """Parses ``argv`` (program name first) afresh and runs ``execute``; returns the exit status."""
    define_flags()
    FLAGS.unparse_flags()
    if wants_help(argv):
        return print_help(argv, define_flags)
    try:
        rest = FLAGS(list(argv))
    except flags.Error as e:
        return _flag_error(e)
    if len(rest) > 1:
        return _unexpected(rest[1:])
    return execute()


def main(define_flags: Callable[[], None], execute: Callable[[], int]) -> None:
    """``python -m ...``: absl's app with the one-line error convention; exits with ``execute``'s status."""
    define_flags()
    if wants_help(sys.argv):
        sys.exit(print_help(sys.argv, define_flags))

    def parse(argv: Sequence[str]) -> list[str]:
        try:
            return FLAGS(list(argv))
        except flags.Error as e:
            sys.exit(_flag_error(e))

    def app_main(argv: list[str]) -> None:
        if not FLAGS["verbosity"].present:
            # Progress and key events are printed; the INFO log (TensorFlow's included) is opt-in with -v 0.
            logging.set_verbosity(logging.WARNING)
        if len(argv) > 1:
            sys.exit(_unexpected(argv[1:]))
        sys.exit(execute())

    app.run(app_main, flags_parser=parse)
