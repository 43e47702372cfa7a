"""What a newcomer hit when trying to break the trainer (issue 12), pinned one test per finding.

Runs are tiny (the ConvNet baseline or B0 at phi=-6 on 16-pixel digits, a few
steps); command-line behaviour is tested through ``train.main_cli`` in this
process, or in a subprocess where a fresh TensorFlow is the point.
"""

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

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = ["--dataset=digits", "--variant=baseline_convnet", "--resolution=16", "--train_batch_size=8",
        "--eval_batch_size=64", "--steps_per_loop=1", "--precision=float32", "--learning_rate=0.01",
        "--lr_reference_batch=", "--warmup_epochs=0", "--preemption_handler=none", "--mode=train"]


def environment(**extra: str) -> dict[str, str]:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", GCE_METADATA_IP="127.0.0.1:9",
                PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)


def train_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "efficientnet_tpu.train", *args], env=environment(),
                          capture_output=True, text=True, timeout=600, cwd=REPO, check=False)


def errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


# 1 ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_1_cpu_replicas_work_from_the_command_line(tmp_path):
    done = train_cli(f"--model_dir={tmp_path}/run", *TINY, "--train_steps=2", "--strategy=cpu",
                     "--num_cpu_replicas=2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "on 2 replica(s) (cpu)" in done.stdout


STRATEGY_FIRST = r"""
import importlib, sys
from tensorflow.python.eager import context
from efficientnet_tpu.training import config as config_lib
run_lib = importlib.import_module("efficientnet_tpu.run")

seen = []
def resolve_strategy(*args, **kwargs):
    seen.append(context.context()._initialized)
    raise SystemExit(0 if seen == [False] else 1)

run_lib.resolve_strategy = resolve_strategy
config = config_lib.merge(dict(model_dir=sys.argv[1], dataset="digits", variant="baseline_convnet",
                               resolution=16, train_steps=1, train_batch_size=8, eval_batch_size=64))
run_lib.run(config, progress=False)
raise SystemExit(2)
"""


def test_1_strategy_is_made_before_tensorflow_starts_its_devices(tmp_path):
    """MultiWorkerMirroredStrategy (collective ops) and logical CPUs must be set up first."""
    done = subprocess.run([sys.executable, "-c", STRATEGY_FIRST, str(tmp_path / "run")], env=environment(),
                          capture_output=True, text=True, timeout=300, cwd=REPO, check=False)
    assert done.returncode == 0, f"TensorFlow's context started before the strategy: {done.stderr[-2000:]}"


# 2, 9 ---------------------------------------------------------------------------------------

class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_2_9_messages_end_the_progress_line_and_first_eta_waits_for_a_traced_loop(tmp_path, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    status = train.main_cli(["train", f"--model_dir={tmp_path}/run", *TINY, "--train_steps=3",
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


# 3, 4 ---------------------------------------------------------------------------------------

def test_3_another_optimizer_on_a_model_dir_is_one_line_and_keeps_config(tmp_path, capsys):
    model_dir = tmp_path / "run"
    assert train.main_cli(["train", f"--model_dir={model_dir}", *TINY, "--train_steps=1",
                           "--optimizer=rmsprop"]) == 0
    capsys.readouterr()
    status = train.main_cli(["train", f"--model_dir={model_dir}", *TINY, "--train_steps=2",
                             "--optimizer=sgd"])
    err = capsys.readouterr().err
    assert status == 2
    assert len(errors(err)) == 1 and "optimizer='rmsprop'" in errors(err)[0] and "--optimizer=rmsprop" in err
    assert len(err.strip().splitlines()) <= 3, err
    assert yaml.safe_load((model_dir / "config.yaml").read_text())["optimizer"] == "rmsprop"


def test_4_turning_the_ema_on_resumes_from_the_newest_checkpoint(tmp_path, capsys):
    model_dir = tmp_path / "run"
    common = ["train", f"--model_dir={model_dir}", *TINY, "--checkpoint_every_steps=1", "--optimizer=adam"]
    assert train.main_cli(common + ["--train_steps=2", "--use_ema=false"]) == 0
    capsys.readouterr()
    assert train.main_cli(common + ["--train_steps=3", "--use_ema=true"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"restored \S+ckpt-2 \(step 2\)", out), out
    assert "the average starts from the restored weights" in out
    import tensorflow as tf

    names = [name for name, _ in tf.train.list_variables(str(model_dir / "ckpt-3"))]
    assert any(name.startswith("ema/") for name in names)


def test_4_a_checkpoint_of_another_configuration_is_not_skipped_for_an_older_one(tmp_path):
    """Files that read but do not fit are a configuration change, not corruption: no silent fallback."""
    import tensorflow as tf

    from efficientnet_tpu.training.checkpoint import restore_newest_readable

    directory = str(tmp_path)
    old = tf.train.Checkpoint(a=tf.Variable(1.0))
    manager = tf.train.CheckpointManager(old, directory, max_to_keep=3)
    manager.save(checkpoint_number=1)
    new = tf.train.Checkpoint(a=tf.Variable(2.0), b=tf.Variable(3.0))
    tf.train.CheckpointManager(new, directory, max_to_keep=3).save(checkpoint_number=2)
    wanted = tf.train.Checkpoint(a=tf.Variable(0.0), c=tf.Variable(0.0))
    with pytest.raises(ValueError, match="ckpt-2 was saved by a run configured differently"):
        restore_newest_readable(wanted, directory)


# 5 ------------------------------------------------------------------------------------------

def test_5_an_image_deleted_mid_training_is_skipped(tmp_path):
    import tensorflow as tf

    from efficientnet_tpu.data import build_dataset

    for split, count in (("train", 6), ("validation", 3)):
        for label in ("a", "b"):
            os.makedirs(tmp_path / split / label)
            for index in range(count):
                pixels = np.full((12, 12, 3), 20 * index + (label == "b") * 100, np.uint8)
                (tmp_path / split / label / f"{index}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    train_set = build_dataset("folder", "train", global_batch_size=4, image_size=16, training=True,
                              data_dir=str(tmp_path), seed=0)
    eval_set = build_dataset("folder", "validation", global_batch_size=4, image_size=16, training=False,
                             data_dir=str(tmp_path))
    os.remove(tmp_path / "train" / "a" / "3.png")  # after the up-front check, before reading
    (tmp_path / "validation" / "b" / "1.png").write_bytes(b"no longer an image")
    labels = np.concatenate([labels for _, labels in train_set.take(8).as_numpy_iterator()])
    assert len(labels) == 32 and set(labels) == {0, 1}
    counted = sum(float(mask.sum()) for _, _, mask in eval_set.as_numpy_iterator())
    assert counted == 5


# 6 ------------------------------------------------------------------------------------------
# (see test_digits_demo_first_eval_is_not_chance below)


# 7 ------------------------------------------------------------------------------------------

START_UP_NOISE = ("cuInit", "absl::InitializeLog", "oneDNN custom operations", "cuda drivers")


@pytest.mark.parametrize("args", [["--no_such_flag=1"], ["--variant=b9", "--dataset=digits"]])
def test_7_console_is_free_of_tensorflow_start_up_lines(tmp_path, args):
    done = train_cli(f"--model_dir={tmp_path}/run", *args)
    assert done.returncode == 2
    assert not [line for line in done.stderr.splitlines() if any(n in line for n in START_UP_NOISE)], done.stderr
    assert len(errors(done.stderr)) == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_7_bad_flags_are_rejected_before_tensorflow_loads():
    script = ("import sys\nfrom efficientnet_tpu import train\nstatus = train.main_cli(['train', '--phi=x'])\n"
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF was imported'\n"
              "raise SystemExit(status)")
    done = subprocess.run([sys.executable, "-c", script], env=environment(), capture_output=True, text=True,
                          timeout=300, cwd=REPO, check=False)
    assert done.returncode == 2, done.stderr


def test_7_the_filter_keeps_everything_else():
    from efficientnet_tpu.tf_startup import filter_noise

    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1796006306.318333    5011 port.cc:153] oneDNN custom operations are on.\n"
            "E0000 00:00:1796006310.762638    5011 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"
            "E0000 00:00:1796006310.762638    5011 other.cc:1] a real error\n"
            "error: --phi must be a number\n")
    assert filter_noise(text) == ("E0000 00:00:1796006310.762638    5011 other.cc:1] a real error\n"
                                  "error: --phi must be a number\n")


# 8 ------------------------------------------------------------------------------------------

def test_8_precision_auto_is_the_default_and_float32_on_a_cpu(tmp_path, capsys):
    from efficientnet_tpu.training.config import TrainConfig

    assert TrainConfig().precision == "auto"
    args = [a for a in TINY if not a.startswith("--precision")]
    assert train.main_cli(["train", f"--model_dir={tmp_path}/run", *args, "--train_steps=1"]) == 0
    assert "precision float32 (auto on cpu" in capsys.readouterr().out
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["precision"] == "float32"


# 10 -----------------------------------------------------------------------------------------

def test_10_model_dir_under_a_regular_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert train.main_cli(["train", f"--model_dir={tmp_path}/file/run", *TINY, "--train_steps=1"]) == 2
    err = capsys.readouterr().err
    assert len(errors(err)) == 1 and "is under the regular file" in err, err


def test_10_invalid_yaml_names_line_and_column(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("dataset: digits\nvariant: [b0\n")
    assert train.main_cli(["train", f"--model_dir={tmp_path}/run", f"--config={tmp_path}/bad.yaml"]) == 2
    assert re.search(r"not valid YAML at line \d+, column \d+", capsys.readouterr().err)


def test_10_folder_without_validation_names_the_expected_folder(tmp_path, capsys, caplog):
    import tensorflow as tf

    for label in ("a", "b", "c"):
        os.makedirs(tmp_path / "data" / "train" / label)
        if label != "c":  # c: an empty class
            (tmp_path / "data" / "train" / label / "0.png").write_bytes(
                tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy())
    status = train.main_cli(["train", f"--model_dir={tmp_path}/run", *TINY, "--dataset=folder",
                             f"--data_dir={tmp_path}/data", "--mode=train_and_eval", "--train_steps=1",
                             "--train_batch_size=2"])
    err = capsys.readouterr().err
    assert status == 2
    assert len(errors(err)) == 1 and f"{tmp_path}/data/validation" in errors(err)[0] and "None" not in err
    warnings = [r for r in caplog.records if "classes with no usable images" in r.getMessage()]
    assert len(warnings) == 1


def test_10_nan_message_suggests_float32_only_when_not_already(tmp_path, capsys):
    args = ["train", f"--model_dir={tmp_path}/run", *TINY, "--train_steps=2", "--learning_rate=1e30",
            "--optimizer=sgd"]
    assert train.main_cli(args) == 3
    err = capsys.readouterr().err
    assert len(errors(err)) == 1 and "NaN or infinite" in err and "--precision=float32" not in err


# 11 -----------------------------------------------------------------------------------------

def test_11_trainer_exports_numbered_versions_for_tf_serving(tmp_path, capsys):
    common = ["train", f"--model_dir={tmp_path}/run", *TINY, "--train_steps=1",
              f"--export_dir={tmp_path}/export"]
    assert train.main_cli(common) == 0
    assert f"exported SavedModel to {tmp_path}/export/1" in capsys.readouterr().out
    assert os.path.exists(tmp_path / "export" / "1" / "saved_model.pb")
    assert train.main_cli(common) == 0  # a rerun adds a version, never overwrites the served one
    assert sorted(os.listdir(tmp_path / "export")) == ["1", "2"]


# 6 ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_6_digits_demo_first_eval_is_not_chance(tmp_path):
    """The README demo's first evaluation (step 240 of 936) read 10% at 89% train accuracy.

    Cause: batch-norm moving statistics at the variant's momentum 0.99 (a ~100-step
    horizon) lag weights that move fast at the demo's peak learning rate, so the
    inference-mode network saw inputs far from its statistics and predicted one class,
    EMA or not; batch statistics gave 69-88%. The recipe now sets model_overrides: {bn_momentum: 0.9}.
    Here: the demo's exact recipe, evaluated at step 120 (before its first eval).
    """
    from efficientnet_tpu import data as data_lib
    from efficientnet_tpu.training import config as config_lib
    from efficientnet_tpu.training.loop import Trainer
    from efficientnet_tpu.run import input_fns, resolve, seed_everything
    from efficientnet_tpu.training.strategy import resolve_strategy

    values = config_lib.load_yaml(os.path.join(REPO, "configs", "digits_demo.yaml"))
    config = config_lib.merge(values, dict(model_dir=str(tmp_path), strategy="cpu"))
    strategy = resolve_strategy("cpu")
    seed_everything(config)
    info = data_lib.dataset_info(config.dataset)
    config = resolve(config, info)
    train_fn, eval_fn = input_fns(config, info, "cpu")
    trainer = Trainer(config, strategy, num_train_examples=info.num_train_examples, train_input_fn=train_fn,
                      eval_input_fn=eval_fn, progress=False)
    for _ in range(6):
        trainer.run_loop(20)
    assert trainer.evaluate(write=False)["top1"] > 0.5


def test_trainer_exports_tflite_through_the_one_export_path(tmp_path, capsys):
    """Issue 10: export_run is the only export path, so the trainer writes TFLite too."""
    from efficientnet_tpu.export import tflite_converter_available

    if not tflite_converter_available():
        pytest.skip("this TensorFlow build has no TFLite converter")
    assert train.main_cli(["train", f"--model_dir={tmp_path}/run", *TINY, "--train_steps=1",
                           f"--export_dir={tmp_path}/export", "--export_format=tflite"]) == 0
    assert f"exported a TFLite model to {tmp_path}/export/model.tflite" in capsys.readouterr().out
    assert os.path.getsize(tmp_path / "export" / "model.tflite") > 0
