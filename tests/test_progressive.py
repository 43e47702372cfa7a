"""EfficientNetV2 progressive learning: the recipe file against google/automl, the stage plan, and a
4-stage run preempted inside a stage and resumed in that stage at that size.

Reference numbers come from google/automl efficientnetv2 (effnetv2_configs.py ``efficientnetv2_params``
and ``efficientnetv2_config``, hparams.py ``base_config``, main.py ``main``'s stage loop), written
out here by hand, never computed by the code under test.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import efficientnet_tpu
from efficientnet_tpu import data as data_lib
from efficientnet_tpu import run as run_lib
from efficientnet_tpu import train as train_cli
from efficientnet_tpu.training import config as config_lib
from efficientnet_tpu.training import progressive
from efficientnet_tpu.training.loop import Trainer
from efficientnet_tpu.training.preemption import Preempted
from efficientnet_tpu.training.trained import load_trained_model
from helpers import REPO, subprocess_env, tiny_train_config

# effnetv2_configs.py efficientnetv2_params:
# name: (train_size, eval_size, dropout, randaug, mixup (= cutmix, efficientnetv2_config), aug)
AUTOML_V2 = {
    "v2_s": (300, 384, 0.2, 10, 0.0, "randaugment"),
    "v2_m": (384, 480, 0.3, 15, 0.2, "randaugment"),
    "v2_l": (384, 480, 0.4, 20, 0.5, "randaugment"),
    "v2_b0": (192, 224, 0.2, 0, 0.0, "autoaugment"),
    "v2_b1": (192, 240, 0.2, 0, 0.0, "autoaugment"),
    "v2_b2": (208, 260, 0.3, 0, 0.0, "autoaugment"),
    "v2_b3": (240, 300, 0.3, 0, 0.0, "autoaugment"),
}
AUTOML_IBASE = 128         # hparams.py base_config data.ibase
AUTOML_STAGES = 4          # effnetv2_configs.py efficientnetv2_config train.stages
AUTOML_RAM_FIRST = 5       # main.py main: np.linspace(5, config.data.ram, total_stages)


@pytest.mark.parametrize("variant", sorted(AUTOML_V2))
def test_shipped_recipe_is_automls_table(variant):
    train_size, eval_size, dropout, ram, mix, augment = AUTOML_V2[variant]
    recipe = progressive.load_recipe("v2_progressive", variant)
    assert recipe.stages == AUTOML_STAGES
    assert recipe.image_size == (AUTOML_IBASE, train_size)
    assert recipe.eval_size == eval_size
    assert recipe.augment == augment
    assert recipe.mixup_alpha == (0.0, mix) and recipe.cutmix_alpha == (0.0, mix)
    # main.py computes a dropout ramp and deletes it: the released recipe keeps the rate fixed.
    assert recipe.dropout_rate == (dropout, dropout)
    # RandAugment's magnitude ramp; the AutoAugment variants have none (the policy has no magnitude).
    assert recipe.randaugment_magnitude == ((AUTOML_RAM_FIRST, ram) if augment == "randaugment" else None)
    # The eval size and dropout are also the network's own (model/v2.py), so eval runs at the eval size.
    spec = efficientnet_tpu.get_spec(variant)
    assert spec.resolution == eval_size and spec.dropout_rate == dropout


def test_stage_plan_follows_automl_main():
    # main.py main: stage s of 4 ends at int((s+1)/4 * train_steps), trains at
    # int(ibase + (train_size - ibase) * (s+1)/4); magnitudes np.linspace(5, ram, 4), mixup np.linspace(0, mix, 4).
    stages = progressive.plan_stages(progressive.load_recipe("v2_progressive", "v2_s"), 1001)
    assert [(s.start_step, s.end_step) for s in stages] == [(0, 250), (250, 500), (500, 750), (750, 1001)]
    assert [s.image_size for s in stages] == [171, 214, 257, 300]
    np.testing.assert_allclose([s.randaugment_magnitude for s in stages], [5, 20 / 3, 25 / 3, 10])
    assert [s.mixup_alpha for s in stages] == [0, 0, 0, 0]
    m = progressive.plan_stages(progressive.load_recipe("v2_progressive", "v2_m"), 400)
    assert [s.image_size for s in m] == [192, 256, 320, 384]
    np.testing.assert_allclose([s.mixup_alpha for s in m], [0, 0.2 / 3, 0.4 / 3, 0.2])
    np.testing.assert_allclose([s.cutmix_alpha for s in m], [0, 0.2 / 3, 0.4 / 3, 0.2])
    np.testing.assert_allclose([s.randaugment_magnitude for s in m], [5, 25 / 3, 35 / 3, 15])
    b3 = progressive.plan_stages(progressive.load_recipe("v2_progressive", "v2_b3"), 8)
    assert [s.image_size for s in b3] == [156, 184, 212, 240]
    assert all(s.randaugment_magnitude is None and s.dropout_rate == 0.3 for s in b3)
    # Fewer steps than stages: stages without steps are dropped, the rest still cover every step.
    short = progressive.plan_stages(progressive.load_recipe("v2_progressive", "v2_s"), 2)
    assert [(s.index, s.start_step, s.end_step) for s in short] == [(1, 0, 1), (3, 1, 2)]


@pytest.mark.parametrize("text, match", [
    ("variants: {v2_s: {image_size: [128, 300], eval_size: 384}}", "no recipe for variant 'b0'"),
    ("variants: {b0: {image_size: 300, eval_size: 384}}", r"image_size must be \[ibase, train_size\]"),
    ("variants: {b0: {image_size: [128, 300], eval_size: 384, mixup_alpha: [0]}}", "mixup_alpha must be"),
    ("variants: {b0: {image_size: [128, 300], eval_size: 384, sizes: 1}}", "unknown key"),
    ("variants: {b0: {image_size: [128, 300], eval_size: 384, augment: rand}}", "augment must be one of"),
    ("stages: 0\nvariants: {b0: {image_size: [128, 300], eval_size: 384}}", "stages must be an int >= 1"),
])
def test_bad_recipes_fail_in_one_line(tmp_path, text, match):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as caught:
        progressive.load_recipe(str(path), "b0")
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match="no recipe file"):
        progressive.load_recipe(str(tmp_path / "missing.yaml"), "b0")


def test_dropout_changes_in_place_without_rebuilding_the_model():
    model = efficientnet_tpu.build_model("b0", phi=-6, num_classes=10, input_shape=(None, None, 3),
                                         dropout_rate=0.4, remove_stages=[2, 3, 4, 5, 6, 7])
    weights = [id(w) for w in model.weights]
    (layer,) = progressive.dropout_layers(model)
    progressive.set_dropout(model, 0.1)
    assert layer.rate == 0.1 and [id(w) for w in model.weights] == weights
    features = tf.ones([4096, 8])
    dropped = float(tf.reduce_mean(tf.cast(tf.function(lambda x: layer(x, training=True))(features) == 0,
                                           tf.float32)))
    assert 0.08 < dropped < 0.12
    progressive.set_dropout(model, None)  # None: the recipe does not ramp dropout
    assert layer.rate == 0.1


SMOKE_RECIPE = """
stages: 4
variants:
  b0: {augment: randaugment, image_size: [8, 16], eval_size: 20, randaugment_magnitude: [5, 10],
       mixup_alpha: [0, 0.3], cutmix_alpha: [0, 0.3], dropout_rate: [0.1, 0.4]}
"""


def checkpoint_values(model_dir: str) -> dict[str, np.ndarray]:
    path = tf.train.latest_checkpoint(model_dir)
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(path)
            if name.startswith(("model/", "optimizer/", "ema/", "step/", "stage/"))}


def scalar_events(directory: str) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag.startswith("stage/"):
                    number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                    out.setdefault(value.tag, []).append((event.step, number))
    return out


@pytest.mark.slow
def test_v2_progressive_run_preempted_mid_stage_resumes_in_that_stage(tmp_path, monkeypatch):
    """4 stages of 2 steps, SIGTERM at step 5 (inside stage 3: steps 4-6, 14 px), then a rerun."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(SMOKE_RECIPE)
    config = tiny_train_config(
        tmp_path / "run", variant="b0", phi=-6.0, resolution=None, train_steps=8, steps_per_loop=1,
        checkpoint_every_steps=100, mode="train_and_eval", eval_every_epochs=1000.0, deterministic=True,
        model_overrides={"remove_stages": [2, 3, 4, 5, 6, 7]}, progressive=str(recipe))
    pipelines: list[tuple] = []
    build_dataset = data_lib.build_dataset

    def recording_build_dataset(name, split, **kwargs):
        options = kwargs["options"]
        pipelines.append((kwargs["training"], kwargs["image_size"], options.randaugment_magnitude,
                          options.mixup_alpha, options.cutmix_alpha))
        return build_dataset(name, split, **kwargs)

    controllers: list[progressive.StageController] = []
    make_controller = run_lib.stage_controller

    def recording_controller(*args, **kwargs):
        controllers.append(make_controller(*args, **kwargs))
        return controllers[-1]

    run_loop = Trainer.run_loop

    def preempting_run_loop(self, steps):
        result = run_loop(self, steps)
        if self.step == 5 and len(controllers) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    monkeypatch.setattr(data_lib, "build_dataset", recording_build_dataset)
    monkeypatch.setattr(run_lib, "stage_controller", recording_controller)
    monkeypatch.setattr(Trainer, "run_loop", preempting_run_loop)

    with pytest.raises(Preempted, match="preempted at step 5"):
        run_lib.run(config, progress=False)
    first = controllers[0]
    assert [(s.start_step, s.end_step, s.image_size) for s in first.stages] == [
        (0, 2, 10), (2, 4, 12), (4, 6, 14), (6, 8, 16)]
    assert first.current.index == 2
    # Stages 1-3 entered over five one-step loops: one trace per stage, not per loop.
    assert first.trace_count() == 3
    train_sizes = [p[1] for p in pipelines if p[0]]
    assert train_sizes[-3:] == [10, 12, 14]
    ckpt = tf.train.latest_checkpoint(config.model_dir)
    assert ckpt.endswith("ckpt-5")
    assert tf.train.load_checkpoint(ckpt).get_tensor("stage/.ATTRIBUTES/VARIABLE_VALUE") == 2

    pipelines.clear()
    result = run_lib.run(config, progress=False)
    second = controllers[1]
    assert result["step"] == 8
    # Resumed in stage 3 at 14 px (the rest of it: step 5 to 6), then stage 4 at 16 px: two traces.
    train = [p for p in pipelines if p[0]]
    assert [p[1] for p in train][-2:] == [14, 16]
    np.testing.assert_allclose(train[-2][2:], [25 / 3, 0.2, 0.2])
    np.testing.assert_allclose(train[-1][2:], [10, 0.3, 0.3])
    assert second.trace_count() == 2
    # Eval at the recipe's eval size, the run's resolution.
    assert result["config"].resolution == 20
    assert [p[1] for p in pipelines if not p[0]] and all(p[1] == 20 for p in pipelines if not p[0])
    assert result["eval"]["step"] == 8
    # The exported / reloaded network keeps the eval size (training took any size).
    assert load_trained_model(config.model_dir)[0].input_shape == (None, 20, 20, 3)
    # Resumable like the rest of the input stream: an uninterrupted run ends with the same weights.
    reference = run_lib.run(config_lib.replace(config, model_dir=str(tmp_path / "reference")), progress=False)
    assert reference["step"] == 8
    expected, actual = (checkpoint_values(d) for d in (str(tmp_path / "reference"), config.model_dir))
    assert set(expected) == set(actual) and any(name.startswith("ema/") for name in expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(actual[name], value, err_msg=name)
    events = scalar_events(os.path.join(config.model_dir, "train"))
    assert sorted(events["stage/image_size"]) == [(0, 10), (2, 12), (4, 14), (5, 14), (6, 16)]
    np.testing.assert_allclose([v for _, v in sorted(events["stage/dropout_rate"])], [0.1, 0.2, 0.3, 0.3, 0.4])
    np.testing.assert_allclose([v for _, v in sorted(events["stage/mixup_alpha"])], [0, 0.1, 0.2, 0.2, 0.3])


@pytest.mark.parametrize("arguments, phrase", [
    (["--progressive=no_such_recipe"], "no recipe file"),
    (["--progressive=v2_progressive"], "no recipe for variant 'b0'"),
    (["--mixup_alpha=-0.5"], "--mixup_alpha must be a finite number >= 0"),
])
def test_bad_progressive_flags_exit_2_with_one_error_line(tmp_path, capsys, arguments, phrase):
    argv = ["train", f"--model_dir={tmp_path}/run", "--dataset=digits", "--variant=b0"] + arguments
    assert train_cli.main_cli(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and phrase in errors[0], err
    assert "Traceback" not in err and not os.path.exists(tmp_path / "run" / "config.yaml")


TWO_REPLICAS = r"""
import json, sys
from efficientnet_tpu import run as run_lib
from efficientnet_tpu.training import config as config_lib

controllers = []
make = run_lib.stage_controller
run_lib.stage_controller = lambda *a, **k: controllers.append(make(*a, **k)) or controllers[-1]
config = config_lib.merge(dict(
    model_dir=sys.argv[1], progressive=sys.argv[2], variant="b0", phi=-6.0, dataset="digits",
    model_overrides={"remove_stages": [2, 3, 4, 5, 6, 7]}, train_batch_size=16, eval_batch_size=64,
    train_steps=4, steps_per_loop=1, precision="float32", optimizer="adam", learning_rate=1e-3,
    lr_reference_batch=None, warmup_epochs=0.0, mode="train", strategy="cpu", num_cpu_replicas=2,
    deterministic=True, preemption_handler="signal"))
result = run_lib.run(config, progress=False)
controller = controllers[0]
print(json.dumps({"step": result["step"], "traces": controller.trace_count(),
                  "sizes": [s.image_size for s in controller.stages]}))
"""


@pytest.mark.slow
def test_progressive_mixing_run_on_two_replicas(tmp_path):
    """Per-replica batches of 8 mixed with mixup and cutmix under MirroredStrategy, 2 stages, 2 traces."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("stages: 2\nvariants:\n  b0: {image_size: [12, 16], eval_size: 16, "
                      "mixup_alpha: [0.2, 0.2], cutmix_alpha: [0.2, 0.2]}\n")
    done = subprocess.run([sys.executable, "-c", TWO_REPLICAS, str(tmp_path / "run"), str(recipe)],
                          env=subprocess_env(TF_CPP_MIN_LOG_LEVEL="2"), cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"step": 4, "traces": 2, "sizes": [14, 16]}
