"""``python -m efficientnet_tpu.export``: export the latest checkpoint of a training run.

Everything the export needs besides the weights (variant, resolution, eval
crop, class names) comes from the run's ``model_dir/config.yaml`` through
``export_run`` (the trainer's own export path too), so nothing is passed twice and nothing can disagree
with training.

Exit status (``efficientnet_tpu.exit_codes``, shared by every CLI): 0 exported,
2 bad command line or inputs (no run or checkpoint in model_dir, an unreadable
checkpoint, an unwritable export_dir), 1 an unexpected failure (a bug).
Failures are one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import logging as std_logging
from typing import Sequence

from absl import flags, logging

from efficientnet_tpu import exit_codes
from efficientnet_tpu.cli import common
from efficientnet_tpu.cli.common import UsageError
from efficientnet_tpu.export.from_run import FORMATS, described, is_file_format

FLAGS = flags.FLAGS

NAMES = ("model_dir", "export_dir", "format", "use_ema", "checkpoint_path")


def define_flags() -> None:
    """Defines the export flags (only when run as a program, never on import)."""
    if not common.to_define(__name__, NAMES):
        return
    flags.DEFINE_string("model_dir", None, "model_dir of a training run (holds config.yaml "
                        "and checkpoints; local or gs://).")
    flags.DEFINE_string("export_dir", None, "Where to write the SavedModel (or model.tflite).")
    flags.DEFINE_string("format", "saved_model", f"One of {', '.join(FORMATS)}.")
    flags.DEFINE_bool("use_ema", None, "Export the EMA weights (true) or the raw ones (false); "
                      "default: the EMA weights when the run kept them.")
    flags.DEFINE_string("checkpoint_path", None, "Export this checkpoint instead of the newest "
                        "readable one in model_dir.")


def _check_flags() -> None:
    if not FLAGS.model_dir:
        raise UsageError("--model_dir is required: the model_dir of a training run")
    if not FLAGS.export_dir:
        raise UsageError("--export_dir is required: where to write the exported model")
    if FLAGS.format not in FORMATS:
        raise UsageError(f"--format={FLAGS.format} is not supported; use one of "
                         f"{', '.join(FORMATS)}")


def _quiet_logs() -> None:
    """Saving a SavedModel logs a dozen INFO lines: keep warnings and up.

    ``--verbosity=0`` brings the INFO lines back, ``--verbosity=1`` adds the
    traceback of an unexpected failure.
    """
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
        std_logging.getLogger("tensorflow").setLevel(std_logging.WARNING)


def execute() -> int:
    """Exports what the parsed flags name; returns the exit status."""
    _quiet_logs()
    try:
        _check_flags()
    except UsageError as error:
        return exit_codes.fail(str(error))
    from efficientnet_tpu.tf_startup import import_tensorflow  # pylint: disable=import-outside-toplevel

    tf = import_tensorflow()
    from efficientnet_tpu.export.from_run import export_run  # pylint: disable=import-outside-toplevel

    try:
        path, record = export_run(FLAGS.model_dir, FLAGS.export_dir,
                                  format=FLAGS.format, use_ema=FLAGS.use_ema,
                                  checkpoint_path=FLAGS.checkpoint_path)
    except (FileNotFoundError, ValueError, OSError, NotImplementedError, tf.errors.NotFoundError,
            tf.errors.PermissionDeniedError) as error:
        return exit_codes.fail(exit_codes.one_line(error), exit_codes.USAGE)
    except Exception as error:  # noqa: BLE001 - the CLI reports one line, never a traceback
        logging.debug("export failed", exc_info=True)
        return exit_codes.fail(f"export failed with {type(error).__name__}: {exit_codes.one_line(error)} "
                               "(run with --verbosity=1 for the traceback)", exit_codes.INTERNAL)
    weights = "EMA weights" if record.get("used_ema") else "raw weights"
    size = f", {tf.io.gfile.stat(path).length / 1e6:.2f} MB" if is_file_format(FLAGS.format) else ""
    scheme = f", {record['quantization'].replace('_', '-')} quantization" if "quantization" in record else ""
    print(f"exported {described(FLAGS.format)} of {record.get('checkpoint')} (step {record.get('step')}, "
          f"{weights}{scheme}{size}) to {path}")
    return exit_codes.OK


def main_cli(argv: Sequence[str]) -> int:
    """Parses ``argv`` (program name first) and exports; for tests and scripts in one process."""
    return common.run_in_process(argv, define_flags, execute)


def main() -> None:
    """``python -m efficientnet_tpu.export`` (efficientnet_tpu/export/__main__.py)."""
    common.main(define_flags, execute)
