"""Exit statuses as the table says, and every CLI starts quietly (issue 15, items 3, 7, 10-12).

``--help`` exits 0 and lists the command's own flags; a directory given as
``--config``, a damaged ``model_dir/config.yaml``, a missing ``--flagfile`` and
a one-class folder are one ``error:`` line with status 2; summary and
make_tfrecords print no TensorFlow start-up lines.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from efficientnet_tpu import exit_codes, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--dataset=digits", "--variant=baseline_convnet", "--resolution=16", "--train_batch_size=8",
        "--eval_batch_size=64", "--steps_per_loop=2", "--checkpoint_every_steps=2", "--precision=float32",
        "--learning_rate=0.01", "--lr_reference_batch=", "--warmup_epochs=0", "--preemption_handler=none",
        "--mode=train", "--train_steps=2"]


def cli(module: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-m", module, *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=REPO, check=False)


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.slow  # two fresh interpreters importing TensorFlow
@pytest.mark.parametrize("module, own_flags", [
    ("efficientnet_tpu.export", ["--model_dir", "--export_dir", "--format", "--use_ema", "--checkpoint_path"]),
    ("efficientnet_tpu.summary", ["--variant", "--phi", "--num_classes", "--format", "--all"]),
])
def test_help_exits_0_and_lists_the_commands_own_flags(module, own_flags):
    result = cli(module, "--help")
    assert result.returncode == exit_codes.OK, result.stderr
    for flag in own_flags:
        assert f"  {flag}: " in result.stdout
    assert result.stderr == ""  # no TensorFlow start-up lines either


def test_train_and_study_help_exit_0_in_process(capsys):
    from efficientnet_tpu import study

    assert train.main_cli(["train", "--help"]) == 0
    text = capsys.readouterr().out
    assert "  --model_dir: " in text and "  --force_unlock: " in text and "  --learning_rate: " in text
    assert study.main_cli(["study", "--help"]) == 0
    text = capsys.readouterr().out
    assert "  --study_dir: " in text and "  --worker_index: " in text and "  --model_dir" not in text


@pytest.mark.slow  # two fresh interpreters importing TensorFlow
def test_summary_and_make_tfrecords_start_as_quietly_as_train(tmp_path):
    result = cli("efficientnet_tpu.summary", "--variant=b0")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    result = cli("efficientnet_tpu.data.make_tfrecords", f"--input_dir={tmp_path / 'none'}",
                 f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(result.stderr.splitlines()) == 1


def test_a_directory_as_config_is_one_line(tmp_path, capsys):
    assert train.main_cli(["train", f"--config={tmp_path}", f"--model_dir={tmp_path / 'run'}"]) == 2
    assert f"--config={tmp_path} is a directory" in one_error(capsys)


def test_a_damaged_model_dir_config_names_the_file(tmp_path, capsys):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    (model_dir / "config.yaml").write_text("variant: [b0\n")
    assert train.main_cli(["train", *TINY, f"--model_dir={model_dir}"]) == 2
    line = one_error(capsys)
    assert f"{model_dir / 'config.yaml'} is not valid YAML at line" in line and "checkpoints are kept" in line


def test_a_missing_flagfile_is_one_plain_line(tmp_path, capsys):
    assert train.main_cli(["train", f"--flagfile={tmp_path / 'none.flags'}"]) == 2
    line = one_error(capsys)
    assert line.startswith("error: Unable to open flagfile") and "ERROR" not in line


def test_a_one_class_folder_names_the_folder_not_a_flag(tmp_path, capsys):
    from PIL import Image

    for split in ("train", "validation"):
        (tmp_path / "data" / split / "cat").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "data" / split / "cat" / "a.png")
    args = [a for a in TINY if not a.startswith("--dataset")]
    assert train.main_cli(["train", *args, "--dataset=folder", f"--data_dir={tmp_path / 'data'}",
                           f"--model_dir={tmp_path / 'run'}"]) == 2
    line = one_error(capsys)
    assert "has one class folder (cat)" in line and "--num_classes" not in line


def test_colour_codes_never_reach_the_one_line():
    assert exit_codes.one_line(RuntimeError("\x1b[31mOOM\x1b[0m when\nallocating")) == "OOM when allocating"


def test_export_never_overwrites_an_existing_saved_model(tmp_path):
    from efficientnet_tpu.export.from_run import export_run

    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"served")
    with pytest.raises(ValueError, match="already holds a SavedModel; give a new folder"):
        export_run(str(tmp_path / "run"), str(tmp_path / "1"))
    assert (tmp_path / "1" / "saved_model.pb").read_bytes() == b"served"
