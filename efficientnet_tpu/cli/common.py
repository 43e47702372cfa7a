"""The one command-line layer every CLI of the package shares: absl flags, one-line errors, exit statuses.

Two ways in, one convention:

* ``main`` / ``run_in_process`` (train, study, export, summary): the command
  defines its flags on the global ``flags.FLAGS`` when its command line
  starts, never at import, so absl's ``--flagfile`` and ``--verbosity`` work;
  ``to_define`` refuses a name another command already defined in this
  process instead of silently sharing it with another type.
* ``run_cli`` (doctor, make_tfrecords, the benchmarks): the command defines its
  flags on a fresh ``FlagValues`` per call, so tests, studies and scripts call
  several of them in one process without touching ``flags.FLAGS``.

Either way a bad flag, a stray argument or a ``UsageError`` is one ``error:``
line with ``exit_codes.USAGE``, ``--help`` prints the command's docstring and
its own flags with status 0, and (in ``run_cli``) a bug is one line plus a
traceback file with ``exit_codes.INTERNAL``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import traceback
from typing import Callable, Sequence

from absl import app, flags, logging

from efficientnet_tpu import exit_codes

FLAGS = flags.FLAGS


class UsageError(Exception):
    """Bad flags, names, inputs or paths: the message says what to fix; the status is ``exit_codes.USAGE``."""


@dataclasses.dataclass(frozen=True)
class Wording:
    """How a command words its parse errors; kept per command, since scripts and tests match the lines."""

    hint: str = ""  # appended to absl's message for a bad flag value
    unexpected: str = "unexpected arguments {}; every option is a --flag"
    unknown_flag: str | None = None  # an unknown --flag worded like a stray argument ({}: the argument)


TOOL_WORDING = Wording(hint=" (--help lists the flags)", unexpected="unexpected argument(s) {}; every option is a --flag")


def to_define(module: str, names: Sequence[str]) -> bool:
    """Whether ``module`` has yet to define ``names`` on the global FLAGS (False once it has).

    A name another command-line tool defined in this process is refused: the
    two flags would be one, with one type and one default.
    """
    taken = [name for name in names if name in FLAGS and FLAGS.find_module_defining_flag(name) != module]
    if taken:
        raise RuntimeError(f"flag(s) --{', --'.join(taken)} already defined by another command-line tool in "
                           f"this process; run {module} in its own process")
    return not all(name in FLAGS for name in names)


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
    return "\n".join([*flag_lines(doc, defined), "", "absl's own flags (--verbosity, --flagfile, ...): --helpfull"])


def flag_lines(doc: str, defined: Sequence[flags.Flag]) -> list[str]:
    """The help every command prints: its docstring, then one line per flag of its own."""
    lines = [doc.strip(), "", "flags:"]
    for flag in defined:
        default = "" if flag.default is None else f" (default: {flag.default_as_str})"
        lines.append(f"  --{flag.name}: {' '.join(str(flag.help).split())}{default}")
    return lines


def print_help(argv: Sequence[str], define_flags: Callable[[], None], doc: str | None = None) -> int:
    """Prints the help on stdout (all flags for --helpfull); returns status 0."""
    if "--helpfull" in argv:
        print(FLAGS.get_help())
    else:
        print(help_text(define_flags, doc))
    return exit_codes.OK


def _flag_error(error: Exception, wording: Wording = Wording()) -> int:
    """absl's parse error as one line (its flagfile errors start with a doubled 'ERROR:: ')."""
    if wording.unknown_flag and isinstance(error, flags.UnrecognizedFlagError):
        return exit_codes.fail(wording.unknown_flag.format(error.flagvalue or f"--{error.flagname}"))
    text = exit_codes.one_line(error)
    while text.upper().startswith("ERROR:"):
        text = text[len("ERROR:"):].lstrip(": ")
    return exit_codes.fail(text + wording.hint)


def _unexpected(arguments: Sequence[str], wording: Wording = Wording()) -> int:
    return exit_codes.fail(wording.unexpected.format(" ".join(arguments)))


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


def run_cli(
    doc: str,
    define_flags: Callable[[flags.FlagValues], None],
    body: Callable[[flags.FlagValues], int | None],
    argv: Sequence[str] | None = None,
    wording: Wording = TOOL_WORDING,
) -> int:
    """Parses ``argv`` (default: sys.argv[1:]) into fresh flags, runs ``body``, returns the exit status.

    ``define_flags(values)`` defines the command's flags with ``flag_values=values``;
    ``--help`` prints ``doc`` and those flags. ``body`` returns its status (None: ``exit_codes.OK``).
    """
    values = flags.FlagValues()
    flags.DEFINE_bool("help", False, "Show this help and exit.", short_name="h", flag_values=values)
    define_flags(values)
    program = os.path.basename(sys.argv[0]) if argv is None else "command"
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        rest = values([program, *arguments])
    except flags.Error as error:
        return _flag_error(error, wording)
    if values.help:
        own = sorted({values[name].name: values[name] for name in values if values[name].name != "help"}.values(),
                     key=lambda flag: flag.name)
        print("\n".join(flag_lines(doc, own)))
        return exit_codes.OK
    if rest[1:]:
        return _unexpected(rest[1:], wording)
    try:
        status = body(values)
    except UsageError as error:
        return exit_codes.fail(exit_codes.one_line(error))
    except KeyboardInterrupt:
        return exit_codes.fail("interrupted", exit_codes.INTERRUPTED)
    except Exception as error:  # noqa: BLE001 - one line on the console, the traceback in a file
        command = define_flags.__module__.rpartition(".")[2]
        handle, path = tempfile.mkstemp(prefix=f"efficientnet_tpu_{command}_", suffix=".traceback")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            traceback.print_exc(file=file)
        return exit_codes.fail(f"{exit_codes.one_line(error)} (a bug; traceback in {path})", exit_codes.INTERNAL)
    return exit_codes.OK if status is None else status


def positive_int(values: flags.FlagValues, name: str, default: int | None, help_text: str) -> None:
    """Defines an integer flag that must be at least 1."""
    flags.DEFINE_integer(name, default, help_text, lower_bound=1, flag_values=values)
