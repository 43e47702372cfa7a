"""The study runner and CLI: skip finished trials, resume, record failures, shard, print commands, report.

Most tests replace the trainer with a stand-in (the runner's one call into
it, ``runner.train``), so they check the bookkeeping in seconds; the
``slow`` ones train real (tiny) networks end to end.
"""

from __future__ import annotations

import json
import os

import pytest

from efficientnet_tpu.cli import study
from efficientnet_tpu.studies import measure, records, runner
from efficientnet_tpu.studies import spec as spec_lib
from efficientnet_tpu.training.loop import TrainingDiverged

TINY = """\
name: tiny
title: A user-written study
base:
  dataset: synthetic
  resolution: 8
  train_steps: 2
  steps_per_loop: 1
  train_batch_size: 4
  eval_batch_size: 500
  checkpoint_every_steps: 1
  use_ema: false
  strategy: cpu
  precision: float32
  optimizer: adam
  learning_rate: 0.001
  model_overrides: {width_coefficient: 0.25, depth_coefficient: 0.25, head_channels: 64}
axes:
  variant: [b0, b0_nose]
  model_overrides.se_position: [after_dw, end]
report:
  table: [params, macs, top1]
  plots: [accuracy_vs_macs, training_curves]
"""


@pytest.fixture
def tiny_spec(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return str(path)


@pytest.fixture
def fake_trainer(monkeypatch):
    """Stands in for training: records which trials ran, fails the ones named in ``fail``."""
    calls, fail = [], {}

    def train(config, progress=True):
        calls.append(config.model_dir)
        os.makedirs(config.model_dir, exist_ok=True)
        for fragment, error in fail.items():
            if fragment in config.model_dir:
                raise error
        return {"eval": {"top1": 0.5, "top5": 0.9, "loss": 1.0}, "config": config}

    monkeypatch.setattr(runner, "train", train)
    monkeypatch.setattr(measure, "describe_size", lambda config: {
        "variant": config.variant, "resolution": 8, "num_classes": 1000, "params": 1, "macs": 2})
    return calls, fail


def _trials(spec_path, study_dir, **kwargs):
    return spec_lib.expand(spec_lib.load_spec(spec_path), None, study_dir=study_dir, **kwargs).trials


def test_a_study_killed_after_its_first_trial_resumes_without_retraining_it(tiny_spec, tmp_path, fake_trainer):
    calls, _ = fake_trainer
    study_dir = str(tmp_path / "s")
    trials = _trials(tiny_spec, study_dir)

    def killed(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run_study(trials, study_dir, profile=None, measure_speed=False, progress=False,
                         on_trial_end=killed)
    assert calls == [trials[0].config.model_dir]
    first = records.read_record(study_dir, trials[0].name)
    assert first["status"] == "done" and first["top1"] == 0.5
    done = runner.run_study(trials, study_dir, profile=None, measure_speed=False, progress=False)
    assert calls == [t.config.model_dir for t in trials]  # the first trial trained once
    assert records.read_record(study_dir, trials[0].name) == first
    assert [r["status"] for r in done] == ["done"] * 4
    assert len(records.collect(study_dir)) == 4


def test_a_failed_trial_is_recorded_and_the_next_one_runs(tiny_spec, tmp_path, fake_trainer):
    calls, fail = fake_trainer
    fail["b0_end"] = RuntimeError("out of memory\n  allocating 3 GiB")
    fail["b0_nose_after_dw"] = TrainingDiverged("the loss became NaN between steps 0 and 1")
    study_dir = str(tmp_path / "s")
    trials = _trials(tiny_spec, study_dir)
    done = runner.run_study(trials, study_dir, profile=None, measure_speed=False, progress=False)
    assert [r["status"] for r in done] == ["done", "failed", "diverged", "done"]
    failed = records.read_record(study_dir, "tiny/b0_end/seed1")
    assert failed["error"] == "RuntimeError: out of memory allocating 3 GiB"
    assert os.path.exists(os.path.join(study_dir, "tiny/b0_end/seed1/error.log"))
    assert records.read_record(study_dir, "tiny/b0_nose_after_dw/seed1")["error"].startswith("the loss became NaN")
    # Rerun: the failed trial is retried, the diverged and done ones are not.
    fail.clear()
    calls.clear()
    runner.run_study(trials, study_dir, profile=None, measure_speed=False, progress=False)
    assert calls == [trials[1].config.model_dir]
    # --force redoes chosen trials from scratch.
    calls.clear()
    runner.run_study(trials, study_dir, profile=None, force=["b0_nose*"], measure_speed=False, progress=False)
    assert calls == [trials[2].config.model_dir, trials[3].config.model_dir]


def test_workers_split_the_study(tiny_spec, tmp_path):
    trials = _trials(tiny_spec, str(tmp_path), repeats=2)
    shares = [runner.shard(trials, 3, i) for i in range(3)]
    assert [len(s) for s in shares] == [3, 3, 2]
    assert sorted(t.name for s in shares for t in s) == sorted(t.name for t in trials)
    with pytest.raises(ValueError, match="worker_index"):
        runner.shard(trials, 2, 2)


def test_cli_print_commands_shards_and_bad_input_exit_2(tiny_spec, tmp_path, capsys):
    assert study.main_cli(["study", f"--study={tiny_spec}", "--print_commands", "--num_workers=2",
                           "--worker_index=1", f"--study_dir={tmp_path}"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("python -m efficientnet_tpu.train ") for line in lines)
    assert "tiny/b0_end/seed1" in lines[0] and "--model_overrides=" in lines[0]
    assert study.main_cli(["study", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 7 and listed[0].startswith("cifar_baselines")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\naxes: {variant: [b0]}\nbase: {epoch: 3}\n")
    for argv, phrase in (([f"--study={bad}"], "unknown key 'epoch'"),
                         (["--study=nope"], "no study named 'nope'"),
                         ([f"--study={tiny_spec}", "--profile=cpu"], "has no profile 'cpu'"),
                         ([f"--study={tiny_spec}", "--num_workers=2", "--worker_index=2"], "--worker_index"),
                         (["--report_only", f"--study_dir={tmp_path / 'empty'}"], "holds no study run"),
                         ([f"--study={tmp_path}"], "is a directory; give --study a shipped study name"),
                         (["--study=configs"], "is a directory"),
                         (["--bogus_flag"], "bogus_flag")):
        assert study.main_cli(["study", *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and phrase in err[0], (argv, err)


@pytest.mark.parametrize("axis, phrase", [
    ("model_overrides.se_postion: [end, none]", "model_overrides.se_postion: unknown key 'se_postion'"),
    ("variant: [b0, b0_lit]", "variant 'b0_lit' is unknown; valid variants: b0, b1"),
])
@pytest.mark.parametrize("mode", [[], ["--dry_run"], ["--print_commands"]])
def test_cli_refuses_a_spec_whose_trials_cannot_be_built_before_any_trains(tmp_path, capsys, fake_trainer, axis,
                                                                           phrase, mode):
    """Once every trial failed one by one and the study exited 0 ("0 done, 4 failed"); --dry_run accepted it."""
    path = tmp_path / "typo.yaml"
    path.write_text(TINY.replace("model_overrides.se_position: [after_dw, end]", axis))
    assert study.main_cli(["study", f"--study={path}", f"--study_dir={tmp_path / 's'}", *mode]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and phrase in err[0], err
    assert "typo.yaml: trial " in err[0] and not captured.out
    calls, _ = fake_trainer
    assert calls == [] and not (tmp_path / "s").exists()


def test_cli_without_the_report_packages_stops_before_training(tiny_spec, tmp_path, capsys, monkeypatch):
    """A study that would train for hours and then fail to draw its report says so first, in one line."""
    from efficientnet_tpu.studies import optional

    monkeypatch.setattr(optional, "missing", lambda packages=optional.REPORT_PACKAGES: ["matplotlib", "tabulate"])
    assert study.main_cli(["study", f"--study={tiny_spec}", f"--study_dir={tmp_path / 's'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "matplotlib, tabulate" in err[0] and ".[studies]" in err[0]
    assert not (tmp_path / "s").exists()
    # Planning needs none of them.
    assert study.main_cli(["study", f"--study={tiny_spec}", "--print_commands", f"--study_dir={tmp_path}"]) == 0

def test_cli_dry_run_shows_params_macs_and_verdicts(tmp_path, capsys):
    path = tmp_path / "g.yaml"
    path.write_text("name: g\nbase: {variant: b0, resolution: 8, num_classes: 10, "
                    "model_overrides: {depth_coefficient: 0.25, width_coefficient: 0.25}}\n"
                    "variables: [k]\naxes: {k: [1, 2, 3]}\nderived: {resolution: '8 * k'}\n"
                    "constraint: {expression: 'k >= 2'}\n")
    assert study.main_cli(["study", f"--study={path}", "--dry_run"]) == 0
    out = capsys.readouterr().out
    assert "g: 2 trial run(s), 1 configuration(s) rejected" in out
    assert "rejected k1: k >= 2: rejected" in out
    row = next(line for line in out.splitlines() if line.startswith("g/k2/seed1"))
    params, macs = measure.params_and_macs(spec_lib.expand(spec_lib.load_spec(str(path)), None,
                                                           study_dir="runs").trials[0].config)
    assert f"{params / 1e6:.2f}" in row and " 16 " in row and "k >= 2: kept" in row


@pytest.mark.slow
def test_user_spec_with_variants_and_an_override_trains_resumes_and_reports(tiny_spec, tmp_path, capsys):
    """Real training of four tiny trials; a rerun trains nothing; the override reaches the network and export."""
    from efficientnet_tpu.training.trained import load_trained_model

    study_dir = str(tmp_path / "s")
    argv = ["study", f"--study={tiny_spec}", f"--study_dir={study_dir}", "--measure_speed=false"]
    assert study.main_cli(argv) == 0
    found = records.collect(study_dir)
    assert [r["status"] for r in found] == ["done"] * 4
    by_trial = {r["trial"]: r for r in found}
    # se_position=end shrinks the network; the preset's own SE choice is what the override replaces.
    assert by_trial["b0_end"]["params"] < by_trial["b0_after_dw"]["params"]
    assert by_trial["b0_nose_after_dw"]["params"] == by_trial["b0_after_dw"]["params"]
    assert by_trial["b0_end"]["config"]["model_overrides"]["se_position"] == "end"
    assert all(r["history"] and r["history"][-1]["step"] == 2 for r in found)
    model, info = load_trained_model(os.path.join(study_dir, "tiny/b0_end/seed1"))
    assert model.count_params() == by_trial["b0_end"]["params"] and info["step"] == 2
    stamps = {r["name"]: os.path.getmtime(records.record_path(study_dir, r["name"])) for r in found}
    capsys.readouterr()
    assert study.main_cli(argv) == 0
    assert "skipped" in capsys.readouterr().out
    assert stamps == {r["name"]: os.path.getmtime(records.record_path(study_dir, r["name"]))
                      for r in records.collect(study_dir)}
    for name in ("results.csv", "results.json", "report.md", "accuracy_vs_macs.png", "training_curves.png"):
        assert os.path.getsize(os.path.join(study_dir, name)) > 0, name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["grid_search", "cifar_baselines"])
def test_shipped_study_runs_end_to_end_in_the_smoke_profile(name, tmp_path, capsys):
    study_dir = str(tmp_path / name)
    assert study.main_cli(["study", f"--study={name}", "--profile=smoke", f"--study_dir={study_dir}",
                           "--measure_speed=false"]) == 0
    found = records.collect(study_dir)
    assert len(found) == {"grid_search": 3, "cifar_baselines": 2}[name]
    assert all(r["status"] == "done" and r["profile"] == "smoke" and r["macs"] > 0 for r in found)
    results = json.loads(open(os.path.join(study_dir, "results.json"), encoding="utf-8").read())
    assert sorted(r["name"] for r in results["runs"]) == [r["name"] for r in found]
    assert {r["name"]: r["top1"] for r in results["runs"]} == {r["name"]: r["top1"] for r in found}
    report = open(os.path.join(study_dir, "report.md"), encoding="utf-8").read()
    assert "smoke" in report
    spec = spec_lib.load_spec(name)
    for plot in spec.report.plots:
        assert os.path.getsize(os.path.join(study_dir, f"{plot}.png")) > 0
    assert os.path.getsize(os.path.join(study_dir, "results.csv")) > 0
    # --report_only rebuilds the same report from the directory alone.
    os.remove(os.path.join(study_dir, "report.md"))
    assert study.main_cli(["study", "--report_only", f"--study_dir={study_dir}"]) == 0
    assert os.path.getsize(os.path.join(study_dir, "report.md")) > 0


def test_speed_fields_are_measured_on_a_fresh_network():
    from efficientnet_tpu.training import config as config_lib

    config = config_lib.merge({"model_dir": "/m", "dataset": "synthetic", "resolution": 8, "train_batch_size": 64,
                               "model_overrides": {"width_coefficient": 0.25, "depth_coefficient": 0.25}})
    fields = measure.speed(config, batch_size=4, latency_calls=2, train_steps=2)
    assert fields["latency_batch_size"] == 4 and fields["machine"]
    assert all(fields[k] > 0 for k in ("latency_ms_batch1", "latency_ms_batch", "train_images_per_s"))
    assert set(fields) <= set(records.RECORD_KEYS)
