"""Bad command lines end with one clear ``error:`` line and a non-zero status, never a traceback."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from efficientnet_tpu import train
from helpers import QUIET, REPO, TINY_ARGS, error_lines, subprocess_env, train_cli


def test_unknown_variant_from_a_real_command_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "efficientnet_tpu.train", "--variant=b9", "--dataset=digits",
         f"--model_dir={tmp_path}"],
        env=subprocess_env(TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "b9" in errors[0] and "b0" in errors[0], done.stderr[-2000:]
    assert not os.path.exists(tmp_path / "config.yaml")


@pytest.mark.parametrize("arguments, status, phrase", [
    (["--variant=b3", "--phi=1"], 2, "takes no phi"),
    (["--tpu=local", "--strategy=cpu"], 2, "contradicts --strategy=cpu"),
    (["--dataset=imagenet2012", "--data_dir={tmp}/no_data"], 2, "imagenet2012 is not prepared"),
    (["--dataset=mnist"], 2, "mnist"),
    (["--no_such_flag=1"], 2, "no_such_flag"),
    (["--train_batch_size=lots"], 2, "train_batch_size"),
    (["--config={tmp}/missing.yaml"], 2, "does not exist"),
    (["--mode=eval", "--dataset=digits"], 2, "holds no checkpoint"),
    (["--alpha=1.3"], 2, "needs --phi"),
    (["stray_argument"], 2, "unexpected arguments"),
])
def test_bad_flags_exit_with_one_error_line(tmp_path, capsys, arguments, status, phrase):
    argv = ["train", f"--model_dir={tmp_path}/run"] + [a.format(tmp=tmp_path) for a in arguments]
    assert train.main_cli(argv) == status
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and phrase in errors[0], err
    assert "Traceback" not in err
    assert not os.path.exists(tmp_path / "run" / "config.yaml")


def test_flagfile_and_yaml_config_with_overrides(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("dataset: digits\nvariant: baseline_convnet\nresolution: 16\n"
                                     "train_batch_size: 8\neval_batch_size: 64\ntrain_steps: 2\n"
                                     "steps_per_loop: 2\nprecision: float32\nmode: train\n"
                                     "use_ema: false\noptimizer: sgd\n")
    (tmp_path / "flags.txt").write_text(f"--config={tmp_path}/c.yaml\n--model_dir={tmp_path}/run\n"
                                        "--train_steps=1\n--steps_per_loop=1\n--optimizer=adam\n")
    assert train.main_cli(["train", f"--flagfile={tmp_path}/flags.txt"]) == 0
    import yaml

    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    # YAML values, with the flagfile's (command line's) values on top.
    assert (saved["variant"], saved["train_batch_size"], saved["dataset"]) == ("baseline_convnet", 8, "digits")
    assert (saved["train_steps"], saved["optimizer"], saved["use_ema"]) == (1, "adam", False)
    assert "step 1/1" in capsys.readouterr().out


# -- a run from the command line: what the console shows, and bad input found before training -----------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_messages_end_the_progress_line_and_the_first_eta_waits_for_a_traced_loop(tmp_path, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    status = train.main_cli(["train", f"--model_dir={tmp_path}/run", *TINY_ARGS, "--train_steps=3",
                             "--checkpoint_every_steps=1", "--mode=train_and_eval",
                             "--eval_every_epochs=0.01"])
    out = terminal.getvalue()
    assert status == 0, out
    lines = out.split("\n")
    for needle in ("saved checkpoint", "eval at step"):
        hits = [line for line in lines if needle in line]
        assert hits and all(line.startswith(needle) for line in hits), hits
    progress = [segment for segment in out.split("\r\033[K") if segment.startswith("step ")]
    # The first loop's time includes tracing: no ETA from it.
    assert "ETA ?" in progress[0] and "ETA ?" not in progress[1], progress


START_UP_NOISE = ("cuInit", "absl::InitializeLog", "oneDNN custom operations", "cuda drivers")


@pytest.mark.parametrize("args", [["--no_such_flag=1"], ["--variant=b9", "--dataset=digits"]])
def test_the_console_is_free_of_tensorflow_start_up_lines(tmp_path, args):
    done = train_cli(f"--model_dir={tmp_path}/run", *args)
    assert done.returncode == 2
    assert not [line for line in done.stderr.splitlines() if any(n in line for n in START_UP_NOISE)], done.stderr
    assert len(error_lines(done.stderr)) == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_bad_flags_are_rejected_before_tensorflow_loads():
    script = ("import sys\nfrom efficientnet_tpu import train\nstatus = train.main_cli(['train', '--phi=x'])\n"
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF was imported'\n"
              "raise SystemExit(status)")
    done = subprocess.run([sys.executable, "-c", script], env=subprocess_env(**QUIET), capture_output=True,
                          text=True, timeout=300, cwd=REPO, check=False)
    assert done.returncode == 2, done.stderr


def test_the_start_up_filter_keeps_every_other_line():
    from efficientnet_tpu.tf_startup import filter_noise

    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1796006306.318333    5011 port.cc:153] oneDNN custom operations are on.\n"
            "E0000 00:00:1796006310.762638    5011 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"
            "E0000 00:00:1796006310.762638    5011 other.cc:1] a real error\n"
            "error: --phi must be a number\n")
    assert filter_noise(text) == ("E0000 00:00:1796006310.762638    5011 other.cc:1] a real error\n"
                                  "error: --phi must be a number\n")


def test_precision_auto_is_the_default_and_float32_on_a_cpu(tmp_path, capsys):
    from efficientnet_tpu.training.config import TrainConfig

    assert TrainConfig().precision == "auto"
    args = [a for a in TINY_ARGS if not a.startswith("--precision")]
    assert train.main_cli(["train", f"--model_dir={tmp_path}/run", *args, "--train_steps=1"]) == 0
    assert "precision float32 (auto on cpu" in capsys.readouterr().out
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["precision"] == "float32"


def test_a_model_dir_under_a_regular_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert train.main_cli(["train", f"--model_dir={tmp_path}/file/run", *TINY_ARGS, "--train_steps=1"]) == 2
    err = capsys.readouterr().err
    assert len(error_lines(err)) == 1 and "is under the regular file" in err, err


def test_invalid_yaml_names_its_line_and_column(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("dataset: digits\nvariant: [b0\n")
    assert train.main_cli(["train", f"--model_dir={tmp_path}/run", f"--config={tmp_path}/bad.yaml"]) == 2
    assert re.search(r"not valid YAML at line \d+, column \d+", capsys.readouterr().err)


def test_a_folder_without_validation_names_the_expected_folder(tmp_path, capsys, caplog):
    import tensorflow as tf

    for label in ("a", "b", "c"):
        os.makedirs(tmp_path / "data" / "train" / label)
        if label != "c":  # c: an empty class
            (tmp_path / "data" / "train" / label / "0.png").write_bytes(
                tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy())
    status = train.main_cli(["train", f"--model_dir={tmp_path}/run", *TINY_ARGS, "--dataset=folder",
                             f"--data_dir={tmp_path}/data", "--mode=train_and_eval", "--train_steps=1",
                             "--train_batch_size=2"])
    err = capsys.readouterr().err
    assert status == 2
    assert len(error_lines(err)) == 1 and f"{tmp_path}/data/validation" in error_lines(err)[0] and "None" not in err
    warnings = [r for r in caplog.records if "classes with no usable images" in r.getMessage()]
    assert len(warnings) == 1


def test_the_nan_message_suggests_float32_only_when_not_already_set(tmp_path, capsys):
    args = ["train", f"--model_dir={tmp_path}/run", *TINY_ARGS, "--train_steps=2", "--learning_rate=1e30",
            "--optimizer=sgd"]
    assert train.main_cli(args) == 3
    err = capsys.readouterr().err
    assert len(error_lines(err)) == 1 and "NaN or infinite" in err and "--precision=float32" not in err
