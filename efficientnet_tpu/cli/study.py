"""Run a study of the seed documents: ``python -m efficientnet_tpu.study --study=NAME --profile=cpu --study_dir=DIR``.

    --list                          the shipped studies, one line each
    --study=NAME|path.yaml          a shipped study (configs/studies/NAME.yaml) or your own spec file
    --profile=smoke|cpu|cifar|paper the spec's profile (data and length); default: the spec's base alone
    --dry_run                       the trials, their params and MACs and the constraint's verdicts; trains nothing
    --print_commands                one ``python -m efficientnet_tpu.train`` command per trial, for any launcher
    --report_only --study_dir=DIR   collect the finished trials again into tables and figures
    --num_workers=N --worker_index=i   this machine runs every N-th trial (SLURM arrays, indexed Jobs, TPU VMs)
    --force=PATTERN[,PATTERN]       redo the trials whose name matches a glob ('all' for every trial)

Rerunning the same command skips finished trials and resumes unfinished ones
from their checkpoints. Exit status (efficientnet_tpu.exit_codes): 0 the study
ran (failed trials are recorded, counted on the last line and in the report),
2 a bad spec or flag (one ``error:`` line), 143 preempted (rerun to resume),
130 interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from efficientnet_tpu import exit_codes  # noqa: E402
from efficientnet_tpu.cli import common  # noqa: E402

if TYPE_CHECKING:
    from efficientnet_tpu.studies.spec import StudySpec

FLAGS = flags.FLAGS

NAMES = ("list", "study", "profile", "study_dir", "dry_run", "report_only", "repeats", "force", "num_workers",
         "worker_index", "print_commands", "measure_speed", "latency_batch_size")


def define_flags() -> None:
    """The study flags; defined on first use so that importing this module defines nothing."""
    if not common.to_define(__name__, NAMES):
        return
    flags.DEFINE_boolean("list", False, "List the shipped studies and exit.")
    flags.DEFINE_string("study", None, "A shipped study name (see --list) or the path of a study YAML file.")
    flags.DEFINE_string("profile", None, "Profile of the spec: smoke (synthetic, seconds), cpu (digits, minutes), "
                                         "cifar (TFDS CIFAR), paper (the ImageNet recipe); default: the base.")
    flags.DEFINE_string("study_dir", None, "Where trials, records and the report go (local or gs://); "
                                           "default runs/studies/<study>_<profile>.")
    flags.DEFINE_boolean("dry_run", False, "Print the trials with params, MACs and constraint verdicts; no training.")
    flags.DEFINE_boolean("report_only", False, "Collect the records in --study_dir into the report; no training.")
    flags.DEFINE_integer("repeats", None, "Train every trial with this many seeds (default: the spec's repeats).")
    flags.DEFINE_list("force", [], "Redo these trials from scratch: globs on the trial name (b0_seend*) or the "
                                   "full name (se_placement/b0/seed1), or 'all'.")
    flags.DEFINE_integer("num_workers", 1, "How many machines share the study.")
    flags.DEFINE_integer("worker_index", 0, "This machine's index in [0, num_workers): it runs every "
                                            "num_workers-th trial from this one.")
    flags.DEFINE_boolean("print_commands", False, "Print one train command per trial (this worker's share); "
                                                  "no training.")
    flags.DEFINE_boolean("measure_speed", True, "Measure inference latency and training images/s of every "
                                                "finished trial on this machine.")
    flags.DEFINE_integer("latency_batch_size", 32, "The batch of the batched latency measurement.")


def write_report(study_dir: str, spec: StudySpec, found: list[dict[str, Any]],
                 profile: str | None) -> dict[str, str]:
    """The one call into the report module (results.csv/json, report.md, figures, HParams)."""
    from efficientnet_tpu.studies import report  # pylint: disable=import-outside-toplevel

    return report.write_report(study_dir, spec, found, profile=profile or "base")


def usage_error(error: Exception) -> int:
    """``error:`` lines for a bad spec (one per problem) or one line for anything else; status 2."""
    for problem in getattr(error, "problems", None) or [exit_codes.one_line(error)]:
        exit_codes.fail(problem)
    return exit_codes.USAGE


def _fmt(number: float | None, scale: float = 1.0, digits: int = 2) -> str:
    return "-" if number is None else f"{number / scale:.{digits}f}"


def dry_run(expansion, spec_name: str) -> None:
    """One line per trial: params, MACs, their ratio to the first trial, the constraint verdict."""
    from efficientnet_tpu.studies import measure  # pylint: disable=import-outside-toplevel

    print(f"{spec_name}: {len(expansion.trials)} trial run(s), {len(expansion.rejected)} configuration(s) "
          "rejected by the constraint")
    print(f"{'trial':52s} {'res':>4s} {'params (M)':>10s} {'MACs (M)':>10s}  constraint")
    for trial in expansion.trials:
        try:
            size = measure.describe_size(trial.config)
            cells = f"{size['resolution']:>4d} {_fmt(size['params'], 1e6):>10s} {_fmt(size['macs'], 1e6, 1):>10s}"
        except ValueError as e:
            cells = f"error: {exit_codes.one_line(e)}"
        print(f"{trial.name:52s} {cells}  {trial.constraint or ''}".rstrip())
    for name, verdict in expansion.rejected:
        print(f"rejected {name}: {verdict}")


def execute() -> int:
    """Runs what the parsed flags ask for; returns the exit status."""
    # TensorFlow first, without its start-up lines on the console (as train and export do).
    from efficientnet_tpu.tf_startup import import_tensorflow  # pylint: disable=import-outside-toplevel

    import_tensorflow()
    from efficientnet_tpu.studies import optional, records, spec as spec_lib  # pylint: disable=import-outside-toplevel

    if FLAGS.list:
        for name, title in spec_lib.list_studies():
            print(f"{name:26s} {title}")
        return exit_codes.OK
    if FLAGS.num_workers < 1 or not 0 <= FLAGS.worker_index < FLAGS.num_workers:
        return exit_codes.fail(f"--worker_index must be in [0, --num_workers); got {FLAGS.worker_index} "
                               f"of {FLAGS.num_workers}")
    if FLAGS.repeats is not None and FLAGS.repeats < 1:
        return exit_codes.fail(f"--repeats must be >= 1, got {FLAGS.repeats}")
    if not (FLAGS.dry_run or FLAGS.print_commands):
        try:  # before any trial trains: the report at the end needs them
            optional.check("the study report")
        except optional.MissingPackage as e:
            return exit_codes.fail(exit_codes.one_line(e))
    if FLAGS.report_only:
        return report_only(records, spec_lib)
    if not FLAGS.study:
        return exit_codes.fail("give --study=NAME (see --list) or --study=path/to/spec.yaml, "
                               "or --report_only --study_dir=DIR")
    try:
        spec = spec_lib.load_spec(FLAGS.study)
        if FLAGS.profile is not None and FLAGS.profile not in spec.profiles:
            raise spec_lib.SpecError([f"study {spec.name!r} has no profile {FLAGS.profile!r}; its profiles: "
                                      f"{', '.join(spec.profiles) or 'none'}"])
        study_dir = FLAGS.study_dir or os.path.join("runs", "studies", f"{spec.name}_{FLAGS.profile or 'base'}")
        from efficientnet_tpu.studies import measure  # pylint: disable=import-outside-toplevel

        expansion = spec_lib.expand(spec, FLAGS.profile, study_dir=study_dir, repeats=FLAGS.repeats,
                                    macs_fn=measure.params_and_macs)
    except (ValueError, FileNotFoundError) as e:
        return usage_error(e)
    if FLAGS.dry_run:
        dry_run(expansion, spec.name)
        return exit_codes.OK
    if FLAGS.print_commands:
        from efficientnet_tpu.studies.runner import shard  # pylint: disable=import-outside-toplevel

        for trial in shard(expansion.trials, FLAGS.num_workers, FLAGS.worker_index):
            print(trial.command())
        return exit_codes.OK
    return run(spec, expansion, study_dir, records)


def run(spec: StudySpec, expansion, study_dir: str, records) -> int:
    from efficientnet_tpu import storage  # pylint: disable=import-outside-toplevel
    from efficientnet_tpu.training.lock import DirectoryLock, LockHeld  # pylint: disable=import-outside-toplevel

    # One process per worker index: a second one with the same --worker_index would train the same
    # trials into the same folders (each trial's model_dir lock would stop it too, trial by trial).
    lock = DirectoryLock(study_dir, flag="--study_dir", filename=f".lock-worker-{FLAGS.worker_index}-of-"
                         f"{FLAGS.num_workers}", what=f"study worker {FLAGS.worker_index} of {FLAGS.num_workers}", force_flag=None)
    try:
        storage.check_writable(study_dir, "--study_dir")
        note = lock.acquire()
    except LockHeld as e:
        return exit_codes.fail(f"{exit_codes.one_line(e)} (--worker_index={FLAGS.worker_index} already runs)")
    except ValueError as e:
        return exit_codes.fail(exit_codes.one_line(e))
    if note:
        print(f"note: {note}", flush=True)
    try:
        return _run_locked(spec, expansion, study_dir, records)
    finally:
        lock.release()


def _run_locked(spec: StudySpec, expansion, study_dir: str, records) -> int:
    """``run`` once this worker holds its study_dir lock."""
    from efficientnet_tpu.studies import runner  # pylint: disable=import-outside-toplevel
    from efficientnet_tpu.training.lock import LockHeld  # pylint: disable=import-outside-toplevel
    from efficientnet_tpu.training.preemption import Preempted  # pylint: disable=import-outside-toplevel

    try:
        runner.save_study(study_dir, spec, FLAGS.profile)
        done = runner.run_study(expansion.trials, study_dir, profile=FLAGS.profile, force=FLAGS.force,
                                num_workers=FLAGS.num_workers, worker_index=FLAGS.worker_index,
                                measure_speed=FLAGS.measure_speed, latency_batch_size=FLAGS.latency_batch_size)
    except Preempted as e:
        print(f"preempted: {e}; rerun the same command to resume", file=sys.stderr, flush=True)
        return exit_codes.PREEMPTED
    except KeyboardInterrupt:
        return exit_codes.fail("interrupted; rerun the same command to resume", exit_codes.INTERRUPTED)
    except (ValueError, LockHeld) as e:
        return exit_codes.fail(exit_codes.one_line(e))
    found = [r for r in records.collect(study_dir) if r.get("study") == spec.name]
    outputs = write_report(study_dir, spec, found, FLAGS.profile)
    counts = {s: sum(r.get("status") == s for r in done) for s in ("done", "failed", "diverged")}
    print(f"{spec.name}: this worker: {counts['done']} done, {counts['failed']} failed, "
          f"{counts['diverged']} diverged; report: {outputs.get('report', '-')}", flush=True)
    return exit_codes.OK


def report_only(records, spec_lib) -> int:
    """Collects whatever has finished in --study_dir into the report."""
    from efficientnet_tpu.studies import runner  # pylint: disable=import-outside-toplevel

    if not FLAGS.study_dir:
        return exit_codes.fail("--report_only needs --study_dir (the directory a study ran in)")
    try:
        saved = runner.load_study(FLAGS.study_dir) if not FLAGS.study else None
        spec = spec_lib.load_spec(FLAGS.study) if FLAGS.study else saved["spec"]
        profile = FLAGS.profile if FLAGS.profile is not None or saved is None else saved.get("profile")
    except (ValueError, FileNotFoundError) as e:
        return usage_error(e)
    found = [r for r in records.collect(FLAGS.study_dir) if r.get("study") == spec.name]
    if not found:
        return exit_codes.fail(f"{FLAGS.study_dir} holds no trial records of study {spec.name!r} yet")
    outputs = write_report(FLAGS.study_dir, spec, found, profile)
    print(f"{spec.name}: {len(found)} record(s); report: {outputs.get('report', '-')}", flush=True)
    return exit_codes.OK


def main_cli(argv: Sequence[str]) -> int:
    """Parses ``argv`` (program name first) and runs; for tests and scripts in one process."""
    return common.run_in_process(argv, define_flags, execute)


def main() -> None:
    """``python -m efficientnet_tpu.study`` (the shim efficientnet_tpu/study.py)."""
    common.main(define_flags, execute)


if __name__ == "__main__":
    main()
