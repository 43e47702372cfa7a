"""Divergence caught wherever it shows, and only strict JSON written (issue 15, item 5).

A non-finite eval loss or metric ends the run like a non-finite training loss
(status 3, the step named, the last good checkpoint kept, nothing non-finite in
a checkpoint or a JSON file); weights holding NaN are never saved.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from efficientnet_tpu import storage, train
from efficientnet_tpu.training import loop

TINY = ["--dataset=digits", "--variant=baseline_convnet", "--resolution=16", "--train_batch_size=8",
        "--eval_batch_size=64", "--steps_per_loop=2", "--checkpoint_every_steps=2", "--precision=float32",
        "--learning_rate=0.01", "--lr_reference_batch=", "--warmup_epochs=0", "--preemption_handler=none",
        "--train_steps=4", "--eval_every_epochs=100"]


def strict_load(path):
    def refuse(name):
        raise ValueError(f"{path} holds {name}, which is not JSON")
    with open(path, encoding="utf-8") as f:
        return json.loads(f.read(), parse_constant=refuse)


def test_a_nan_evaluation_ends_the_run_with_status_3_keeping_the_last_good_checkpoint(tmp_path, capsys,
                                                                                       monkeypatch):
    make = loop.Trainer._make_eval_step

    def nan_eval(self):
        step = make(self)
        import tensorflow as tf

        def poisoned(batch):
            out = step(batch)
            return {**out, "loss_sum": out["loss_sum"] * tf.constant(math.nan)}
        return poisoned

    monkeypatch.setattr(loop.Trainer, "_make_eval_step", nan_eval)
    model_dir = tmp_path / "run"
    assert train.main_cli(["train", *TINY, "--mode=train_and_eval", f"--model_dir={model_dir}"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the evaluation at step 4 gave a non-finite loss")
    assert f"the last good checkpoint ({model_dir}/ckpt-2) is kept" in err[0]
    assert (model_dir / "ckpt-2.index").exists() and not (model_dir / "ckpt-4.index").exists()
    assert not (model_dir / loop.EVAL_RESULTS).exists()


def test_nonfinite_weights_are_never_saved(tmp_path, capsys, monkeypatch):
    run_loop = loop.Trainer.run_loop

    def poisoned(self, steps):
        result = run_loop(self, steps)
        if self.step >= 4:  # the loss of this loop was finite, but the weights are not any more
            weight = self.model.trainable_variables[0]
            weight.assign(np.full(weight.shape, np.inf, np.float32))
        return result

    monkeypatch.setattr(loop.Trainer, "run_loop", poisoned)
    model_dir = tmp_path / "run"
    assert train.main_cli(["train", *TINY, "--mode=train", f"--model_dir={model_dir}"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at step 4 1 weight(s) hold NaN or inf" in err[0]
    assert "so no checkpoint was saved" in err[0] and f"({model_dir}/ckpt-2) is kept" in err[0]
    assert sorted(n for n in os.listdir(model_dir) if n.endswith(".index")) == ["ckpt-2.index"]


def test_eval_only_mode_diverges_too(tmp_path, capsys, monkeypatch):
    model_dir = tmp_path / "run"
    assert train.main_cli(["train", *TINY, "--mode=train", "--train_steps=2", f"--model_dir={model_dir}"]) == 0
    make = loop.Trainer._make_eval_step

    def inf_eval(self):
        step = make(self)
        import tensorflow as tf

        def poisoned(batch):
            out = step(batch)
            return {**out, "top1": out["top1"] * tf.constant(math.inf)}
        return poisoned

    monkeypatch.setattr(loop.Trainer, "_make_eval_step", inf_eval)
    capsys.readouterr()
    assert train.main_cli(["train", *TINY, "--mode=eval", f"--model_dir={model_dir}"]) == 3
    assert "non-finite top1" in capsys.readouterr().err
    assert not (model_dir / loop.EVAL_RESULTS).exists()


def test_every_json_writer_is_strict(tmp_path):
    value = {"loss": float("nan"), "top1": np.float32(0.5), "rows": [float("inf"), 1.0], "n": np.int64(3)}
    text = storage.json_text(value)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"loss": None, "top1": 0.5, "rows": [None, 1.0], "n": 3}
    path = loop.write_eval_results(str(tmp_path), {"step": 1, "loss": float("nan")})
    assert strict_load(path)["loss"] is None
    from efficientnet_tpu.studies import records

    record = records.new_record(study="s", trial="t", name="s/t", group="g", repeat=0, axes={}, profile=None,
                                dataset="digits", config={}, variant="b0", started=records.now())
    record.update(status="diverged", loss=float("nan"), top1=float("inf"))
    saved = strict_load(records.write_record(str(tmp_path), record))
    assert saved["loss"] is None and saved["top1"] is None


def test_no_module_writes_json_without_the_strict_helper():
    """Every json.dump(s) call that writes a file goes through storage.json_text / write_json."""
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "efficientnet_tpu")
    offenders = []
    for folder, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".py") or name == "storage.py":
                continue
            text = open(os.path.join(folder, name), encoding="utf-8").read()
            if "json.dump(" in text:
                offenders.append(name)
    assert offenders == []


@pytest.mark.parametrize("bad", [float("nan"), float("-inf")])
def test_the_strict_writer_never_emits_non_finite_numbers(tmp_path, bad):
    path = storage.write_json(str(tmp_path / "x.json"), {"a": [bad, {"b": bad}]})
    assert strict_load(path) == {"a": [None, {"b": None}]}
