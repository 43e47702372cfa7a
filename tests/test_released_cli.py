"""--init_checkpoint from the command line: eval beside the published top-1, fine-tuning, normalization, bad input."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import yaml

from efficientnet_tpu import exit_codes, train
from efficientnet_tpu.released import published

import reference_checkpoints as rc

SIZE = 32


@pytest.fixture(scope="module")
def b0_digits_checkpoint(tmp_path_factory):
    """A B0 checkpoint with a 10-class head (as if trained on the digits), in the released layout."""
    keras_model = keras.applications.EfficientNetB0(weights=None, input_shape=(SIZE, SIZE, 3), classes=10,
                                                    classifier_activation=None)
    values = rc.reference_variables(keras_model, "efficientnet-b0", seed=5)
    root = tmp_path_factory.mktemp("ckpts")
    baseline = str(root / "ckpts" / "efficientnet-b0")
    advprop = str(root / "advprop" / "efficientnet-b0")
    rc.write_checkpoint(baseline, values)
    rc.write_checkpoint(advprop, values)
    return baseline, advprop, values, root


def _argv(model_dir, checkpoint, *extra):
    return ["train", "--mode=eval", "--variant=b0", f"--resolution={SIZE}", "--dataset=digits",
            "--eval_batch_size=100", "--precision=float32", f"--init_checkpoint={checkpoint}",
            f"--model_dir={model_dir}", *extra]


def test_eval_from_a_released_checkpoint_prints_the_published_top1_and_keeps_it(tmp_path, capsys,
                                                                              b0_digits_checkpoint):
    baseline, _, _, _ = b0_digits_checkpoint
    model_dir = tmp_path / "eval_b0"
    assert train.main_cli(_argv(model_dir, baseline)) == exit_codes.OK
    out = capsys.readouterr().out
    assert "loaded 311 variables of efficientnet-b0" in out and "EMA" in out
    assert f"published {published.PUBLISHED['baseline']['b0']:.1f}% for b0 (baseline, {published.TPU_README})" in out
    record = yaml.safe_load((model_dir / "config.yaml").read_text())
    assert record["checkpoint_method"] == "baseline" and record["input_normalization"] == ""
    assert any(name.startswith("ckpt-") for name in os.listdir(model_dir))
    # Evaluating the kept weights again needs neither the checkpoint path nor the method.
    argv = [a for a in _argv(model_dir, baseline) if not a.startswith("--init_checkpoint")]
    assert train.main_cli(argv) == exit_codes.OK
    assert "published 76.7% for b0 (baseline" in capsys.readouterr().out


def test_advprop_weights_record_signed_unit_inputs_for_eval_and_export(tmp_path, b0_digits_checkpoint):
    _, advprop, _, _ = b0_digits_checkpoint
    model_dir = tmp_path / "eval_advprop"
    assert train.main_cli(_argv(model_dir, advprop)) == exit_codes.OK
    record = yaml.safe_load((model_dir / "config.yaml").read_text())
    assert record["checkpoint_method"] == "advprop" and record["input_normalization"] == "signed_unit"
    from efficientnet_tpu.training.trained import load_trained_model

    model, _ = load_trained_model(str(model_dir))  # what export builds
    norm = model.get_layer("normalization")
    # tensorflow/tpu eval_ckpt_main.py: AdvProp inputs are features * 2 / 255 - 1.
    x = np.array([0.0, 127.5, 255.0], "float32")
    np.testing.assert_allclose((x[:, None] - np.array(norm.mean)) / np.array(norm.std),
                               np.repeat((x * 2 / 255 - 1)[:, None], 3, axis=1), atol=1e-6)


@pytest.mark.slow
def test_fine_tuning_to_another_class_count_replaces_the_head(tmp_path, capsys):
    five = keras.applications.EfficientNetB0(weights=None, input_shape=(SIZE, SIZE, 3), classes=5,
                                             classifier_activation=None)
    checkpoint = str(tmp_path / "five_classes")
    rc.write_checkpoint(checkpoint, rc.reference_variables(five, "efficientnet-b0", seed=7))
    argv = ["train", "--mode=train", "--variant=b0", f"--resolution={SIZE}", "--dataset=digits",
            "--train_steps=1", "--steps_per_loop=1", "--train_batch_size=4", "--precision=float32",
            "--checkpoint_every_steps=1", f"--init_checkpoint={checkpoint}", f"--model_dir={tmp_path / 'ft'}"]
    assert train.main_cli(argv) == exit_codes.OK, capsys.readouterr().err
    assert "classifier left to its fresh initialization" in capsys.readouterr().out


BAD = {
    "not_a_checkpoint": "not a tf.train checkpoint",
    "other_architecture": "of efficientnet-b1, but the model is efficientnet-b0 (variant b0); use --variant=b1",
    "truncated": "truncated",
    "v2_for_v1": "EfficientNetV2 (google/automl) checkpoint of efficientnetv2-b0",
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_checkpoints_are_one_error_line_exit_2_and_leave_model_dir_untouched(tmp_path, capsys, case,
                                                                                 b0_digits_checkpoint):
    baseline, _, values, _ = b0_digits_checkpoint
    if case == "not_a_checkpoint":
        path = str(tmp_path / "README.txt")
        open(path, "w").close()
    elif case == "other_architecture":
        path = str(tmp_path / "b1")
        rc.write_checkpoint(path, {k.replace("efficientnet-b0", "efficientnet-b1"): v for k, v in values.items()})
    elif case == "v2_for_v1":
        path = str(tmp_path / "v2")
        rc.write_checkpoint(path, {k.replace("efficientnet-b0", "efficientnetv2-b0"): v for k, v in values.items()})
    else:
        path = str(tmp_path / "cut")
        rc.write_checkpoint(path, values)
        data = os.path.join(path, "model.ckpt.data-00000-of-00001")
        with open(data, "r+b") as f:
            f.truncate(os.path.getsize(data) // 3)
    model_dir = tmp_path / "run"
    assert train.main_cli(_argv(model_dir, path)) == exit_codes.USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and BAD[case] in err[0], err
    assert not model_dir.exists()
