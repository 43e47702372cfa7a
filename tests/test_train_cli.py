"""Bad command lines end with one clear ``error:`` line and a non-zero status, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from efficientnet_tpu import train
from helpers import REPO, subprocess_env



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
