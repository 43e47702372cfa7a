"""Train, evaluate and export: ``python -m efficientnet_tpu.train --config=configs/... --model_dir=...``.

Every TrainConfig field is a flag of the same name; ``--config`` reads a YAML
file first and flags given on the command line (or in a ``--flagfile``)
override it. Rerunning the same command resumes from the newest checkpoint.

Exit status (``efficientnet_tpu.exit_codes``, the same in every CLI): 0 done,
2 bad flags/config/data/paths or an unwritable/locked directory, 3 diverged (a NaN/inf loss, eval metric or weight), 130 interrupted,
143 preempted (checkpoint saved; rerun to resume), 1 anything unexpected.
Errors are printed as one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from typing import Sequence

# Keep TensorFlow's C++ start-up chatter out of the console unless asked for.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags, logging  # noqa: E402

from efficientnet_tpu import exit_codes, storage  # noqa: E402
from efficientnet_tpu.cli import common  # noqa: E402
from efficientnet_tpu.exit_codes import fail as _fail, one_line as _one_line  # noqa: E402
from efficientnet_tpu.training import config as config_lib  # noqa: E402  (no TensorFlow import)

FLAGS = flags.FLAGS

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_DIVERGED = (exit_codes.OK, exit_codes.INTERNAL, exit_codes.USAGE,
                                                     exit_codes.DIVERGED)

_defined = False


def define_flags() -> None:
    """``--config`` and one flag per TrainConfig field, with the field's default and help.

    Called on the command-line path (``main``, ``main_cli``), never at import:
    importing this module next to another CLI must not define (or silently
    share) flags of the same name with another type.
    """
    global _defined  # pylint: disable=global-statement
    if _defined:
        return
    names = ["config"] + [name for name in config_lib.FIELDS if name != "class_names"]
    taken = [name for name in names if name in FLAGS]
    if taken:
        raise RuntimeError(f"flag(s) --{', --'.join(taken)} already defined by another command-line tool in "
                           "this process; run efficientnet_tpu.train in its own process")
    flags.DEFINE_string("config", None, "YAML config file (read with yaml.safe_load); command-line flags override it.")
    for flag in config_lib.flag_definitions():  # kind, default and help (with the accepted values)
        getattr(flags, f"DEFINE_{flag.kind}")(flag.name, flag.default, flag.help)
    _defined = True


def config_from_flags() -> config_lib.TrainConfig:
    """defaults < --config YAML < flags present on the command line (or in --flagfile)."""
    layers, sources = [], []
    if FLAGS.config:
        layers.append(config_lib.load_yaml(FLAGS.config))
        sources.append(FLAGS.config)
    given = {name: FLAGS[name].value for name in config_lib.FIELDS
             if name in FLAGS and FLAGS[name].present}
    layers.append(given)
    sources.append("command line")
    return config_lib.merge(*layers, sources=tuple(sources))


def execute() -> int:
    """Builds the config from the parsed flags and runs it; returns the exit status."""
    try:
        config = config_from_flags()
    except (ValueError, FileNotFoundError) as e:
        return _fail(_one_line(e), EXIT_USAGE)
    # Heavy imports only once the flags are known to be sane, without TensorFlow's start-up lines.
    from efficientnet_tpu.tf_startup import import_tensorflow  # pylint: disable=import-outside-toplevel

    tf = import_tensorflow()
    from efficientnet_tpu.training.loop import TrainingDiverged  # pylint: disable=import-outside-toplevel
    from efficientnet_tpu.training.preemption import Preempted  # pylint: disable=import-outside-toplevel
    from efficientnet_tpu.run import run  # pylint: disable=import-outside-toplevel
    from efficientnet_tpu.training.lock import LockHeld  # pylint: disable=import-outside-toplevel

    try:
        run(config)
    except Preempted as e:
        print(str(e), file=sys.stderr, flush=True)  # "preempted at step N; checkpoint ... saved, rerun ..."
        return exit_codes.PREEMPTED
    except TrainingDiverged as e:
        return _fail(_one_line(e), EXIT_DIVERGED)
    except LockHeld as e:
        return _fail(_one_line(e), EXIT_USAGE)
    except tf.errors.ResourceExhaustedError as e:
        logging.debug("Traceback:\n%s", traceback.format_exc())
        fault = storage.storage_fault(e, config.model_dir, "to --model_dir")
        if fault is not None:  # a full disk, not memory
            return _fail(_one_line(fault), EXIT_USAGE)
        return _fail(f"out of memory ({_one_line(e).split(' [[')[0][:200]}); lower --train_batch_size, "
                     "--eval_batch_size or --resolution", EXIT_USAGE)
    except (ValueError, FileNotFoundError, NotImplementedError, tf.errors.NotFoundError,
            tf.errors.PermissionDeniedError) as e:
        logging.debug("Traceback:\n%s", traceback.format_exc())
        return _fail(_one_line(e), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", exit_codes.INTERRUPTED)
    except Exception as e:  # pylint: disable=broad-except
        # A bug, not a usage error: keep the console to one line, keep the traceback in a file.
        fd, path = tempfile.mkstemp(prefix="efficientnet_tpu_train_", suffix=".log")
        with os.fdopen(fd, "w") as f:
            f.write(traceback.format_exc())
        return _fail(f"{type(e).__name__}: {_one_line(e)} (traceback in {path})", EXIT_INTERNAL)
    return EXIT_OK


def main_cli(argv: Sequence[str]) -> int:
    """Parses ``argv`` (program name first) and runs; for tests and scripts in one process."""
    return common.run_in_process(argv, define_flags, execute)


def main() -> None:
    """``python -m efficientnet_tpu.train`` (the shim efficientnet_tpu/train.py)."""
    common.main(define_flags, execute)


if __name__ == "__main__":
    main()
