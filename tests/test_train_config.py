"""Training config, schedule and optimizer pieces: no training runs here."""

from __future__ import annotations

import glob
import math
import os

import numpy as np
import pytest
import yaml

import efficientnet_tpu

from efficientnet_tpu.training import config as config_lib
from helpers import REPO



def test_defaults_are_the_paper_recipe():
    c = config_lib.TrainConfig()
    assert (c.optimizer, c.rmsprop_decay, c.momentum, c.epsilon) == ("rmsprop", 0.9, 0.9, 1e-3)
    assert (c.learning_rate, c.lr_reference_batch, c.warmup_epochs) == (0.016, 256, 5.0)
    assert (c.lr_decay_rate, c.lr_decay_epochs, c.label_smoothing) == (0.97, 2.4, 0.1)
    assert (c.weight_decay, c.use_ema, c.ema_decay, c.drop_connect_rate) == (1e-5, True, 0.9999, 0.2)
    assert (c.precision, c.train_batch_size, c.epochs) == ("auto", 4096, 350.0)
    assert c.dropout_rate is None  # the variant's own
    # 0.016 x 4096 / 256
    assert config_lib.peak_learning_rate(c) == pytest.approx(0.256)


def test_merge_order_defaults_yaml_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("variant: b0\nphi: -2\ntrain_batch_size: 32\nepochs: 3\nmodel_dir: /from/yaml\n")
    layer = config_lib.load_yaml(str(path))
    merged = config_lib.merge(layer, {"train_batch_size": 8, "model_dir": "/from/flags"},
                              sources=(str(path), "command line"))
    assert merged.phi == -2.0 and merged.train_batch_size == 8 and merged.model_dir == "/from/flags"
    assert merged.epochs == 3.0 and merged.optimizer == "rmsprop"
    # A later layer giving train_steps replaces the YAML's epochs instead of conflicting.
    by_steps = config_lib.merge(layer, {"train_steps": 10})
    assert by_steps.train_steps == 10 and by_steps.epochs is None
    assert config_lib.total_train_steps(by_steps, 1000) == 10
    assert config_lib.total_train_steps(merged, 100) == math.ceil(3 * 100 / 8)


def test_yaml_is_read_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("variant: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        config_lib.load_yaml(str(path))


@pytest.mark.parametrize("text, message", [
    ("variantt: b0\n", "unknown key"),
    ("- a\n- b\n", "must hold a mapping"),
    ("train_batch_size: many\n", "must be int"),
    ("use_ema: perhaps\n", "must be bool"),
])
def test_bad_yaml_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        config_lib.load_yaml(str(path))


@pytest.mark.parametrize("changes, message", [
    ({"tpu": "local", "strategy": "cpu"}, "contradicts"),
    ({"mode": "fit"}, "mode"),
    ({"precision": "float8"}, "precision"),
    ({"model_dir": ""}, "model_dir is required"),
    ({"alpha": 1.3}, "needs --phi"),
    ({"phi": float("nan")}, "finite"),
    ({"train_batch_size": 0}, "train_batch_size"),
    ({"epochs": None, "train_steps": None}, "epochs or --train_steps"),
    ({"label_smoothing": 1.5}, "label_smoothing"),
    ({"num_cpu_replicas": 2}, "strategy=cpu"),
])
def test_validation_names_the_problem(changes, message):
    with pytest.raises(ValueError, match=message):
        config_lib.merge({"model_dir": "/tmp/x", **changes})


def test_both_epochs_and_steps_in_one_layer_is_an_error():
    with pytest.raises(ValueError, match="either epochs or train_steps"):
        config_lib.merge({"model_dir": "/m", "epochs": 2, "train_steps": 5})


def test_architecture_change_is_refused():
    c = config_lib.merge({"model_dir": "/m", "phi": -1.0, "num_classes": 10, "resolution": 64})
    previous = c.to_dict()
    config_lib.check_same_architecture(c, previous, "/m")
    with pytest.raises(ValueError, match="holds a run with phi=-1.0"):
        config_lib.check_same_architecture(config_lib.replace(c, phi=-2.0), previous, "/m")


def test_config_round_trips_through_yaml(tmp_path):
    c = config_lib.merge({"model_dir": str(tmp_path), "phi": -3.0, "num_classes": 3,
                          "class_names": ["cat", "deer", "dog"], "resolution": 40})
    config_lib.dump(c, str(tmp_path))
    back = config_lib.from_dict(config_lib.load_run_config(str(tmp_path)))
    assert back == c


def test_shipped_configs_load_and_validate():
    paths = sorted(glob.glob(os.path.join(REPO, "configs", "*.yaml")))
    names = {os.path.basename(p) for p in paths}
    assert {"imagenet.yaml", "cifar10.yaml", "cifar100.yaml", "cifar10_3class.yaml",
            "digits_demo.yaml"} <= names
    for path in paths:
        config = config_lib.merge(config_lib.load_yaml(path), {"model_dir": "/tmp/m"})
        assert config.dataset in ("imagenet2012", "cifar10", "cifar100", "cifar10_3class", "digits", "tfrecord")
    imagenet = config_lib.load_yaml(os.path.join(REPO, "configs", "imagenet.yaml"))
    assert imagenet["train_batch_size"] == 4096 and imagenet["epochs"] == 350
    cifar = config_lib.load_yaml(os.path.join(REPO, "configs", "cifar10.yaml"))
    assert cifar["optimizer"] == "adam" and cifar["augment"] == "seed003"


def test_schedule_warmup_then_staircase_decay():
    from efficientnet_tpu.training.schedule import build_schedule

    c = config_lib.merge({"model_dir": "/m", "train_batch_size": 256, "epochs": 10})
    schedule = build_schedule(c, num_train_examples=256 * 10)  # 10 steps per epoch
    peak = 0.016
    assert float(schedule(0)) == 0.0
    assert float(schedule(25)) == pytest.approx(peak * 25 / 50)  # warm-up: 5 epochs = 50 steps
    # After warm-up: x0.97 per 2.4 epochs (24 steps), counted from step 0 as the reference does.
    assert float(schedule(50)) == pytest.approx(peak * 0.97 ** math.floor(50 / 24))
    assert float(schedule(95)) == pytest.approx(peak * 0.97 ** 3)
    cosine = build_schedule(config_lib.replace(c, lr_schedule="cosine", warmup_epochs=0.0), 2560)
    assert float(cosine(0)) == pytest.approx(peak)
    assert float(cosine(50)) == pytest.approx(peak / 2, rel=1e-5)
    assert float(cosine(100)) == pytest.approx(0.0, abs=1e-9)


def test_weight_decay_covers_kernels_and_biases_but_not_batch_norm():
    import keras

    from efficientnet_tpu.training.optimizer import decayed_variables, l2_penalty

    conv, norm = keras.layers.Conv2D(4, 3, use_bias=False), keras.layers.BatchNormalization()
    depthwise, dense = keras.layers.DepthwiseConv2D(3), keras.layers.Dense(2)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(depthwise(norm(conv(inputs))))
    model = keras.Model(inputs, dense(x))
    decayed = {id(v) for v in decayed_variables(model)}
    # As the reference: every trainable variable outside batch norm, biases included.
    assert decayed == {
        id(conv.kernel), id(depthwise.kernel), id(depthwise.bias), id(dense.kernel), id(dense.bias)
    }
    assert not decayed & {id(v) for v in norm.trainable_variables}
    expected = 1e-5 * sum(float(np.sum(np.square(v.numpy()))) / 2 for v in decayed_variables(model))
    assert float(l2_penalty(decayed_variables(model), 1e-5)) == pytest.approx(expected, rel=1e-5)


def test_efficientnetv2_weight_decay_leaves_biases_out_as_automl():
    """google/automl efficientnetv2/main.py ``model_fn`` decays the variables not matching hparams.py's
    ``weight_decay_exclude='.*(bias|gamma|beta).*'``; tensorflow/tpu efficientnet main.py decays biases."""
    from efficientnet_tpu.training.optimizer import decayed_variables, decays_biases

    assert decays_biases("b0") and decays_biases("b7") and decays_biases("b0_fused") and decays_biases("lite0")
    assert not any(decays_biases(name) for name in ("v2_b0", "v2_b3", "v2_s", "v2_m", "v2_l"))
    model = efficientnet_tpu.build_model("v2_b0", num_classes=10, input_shape=(32, 32, 3))
    decayed = {v.path for v in decayed_variables(model, biases=False)}
    names = {v.path: v for v in model.trainable_variables}
    expected = {path for path in names if path.endswith(("kernel", "depthwise_kernel"))}
    assert expected and decayed == expected
    assert {v.path for v in decayed_variables(model)} > decayed  # the V1 rule would add the biases


def test_rmsprop_accumulators_start_at_one_like_the_reference():
    import keras

    from efficientnet_tpu.training.optimizer import build_optimizer, initialize_slots

    c = config_lib.merge({"model_dir": "/m"})
    variable = keras.Variable(np.zeros((3, 3), np.float32))
    optimizer = build_optimizer(c, 0.1)
    initialize_slots(optimizer, [variable])
    np.testing.assert_array_equal(optimizer._velocities[0].numpy(), np.ones((3, 3)))
    assert isinstance(build_optimizer(config_lib.replace(c, precision="mixed_float16"), 0.1),
                      keras.optimizers.LossScaleOptimizer)


def test_every_config_key_is_a_flag():
    from efficientnet_tpu import train

    train.define_flags()
    for name in config_lib.FIELDS:
        if name != "class_names":
            assert name in train.FLAGS, name
    assert yaml.safe_load(yaml.safe_dump(config_lib.TrainConfig().to_dict()))["variant"] == "b0"


def test_augmentation_settings_reach_the_pipeline(monkeypatch):
    """RandAugment's N and M, the crop's area range and the flip go from the config to build_dataset."""
    import tensorflow as tf

    import importlib

    run_lib = importlib.import_module("efficientnet_tpu.run")

    seen = {}
    monkeypatch.setattr(run_lib.data_lib, "build_dataset", lambda *args, **kwargs: seen.update(kwargs))
    config = config_lib.merge({"model_dir": "/tmp/x", "dataset": "synthetic", "augment": "randaugment",
                               "randaugment_num_layers": 3, "randaugment_magnitude": 7,
                               "crop_area_min": 0.5, "crop_area_max": 0.9, "random_flip": False,
                               "resolution": 32, "num_classes": 10, "augment_semantics": "paper"})
    info = run_lib.data_lib.dataset_info("synthetic")
    train_fn, _ = run_lib.input_fns(config, info, "cpu")
    train_fn(tf.distribute.InputContext())
    options = seen["options"]
    assert (options.randaugment_num_layers, options.randaugment_magnitude) == (3, 7.0)
    assert options.crop_area_range == (0.5, 0.9) and options.random_flip is False
    assert options.augment_semantics == "paper"


@pytest.mark.parametrize("changes, message", [
    ({"crop_area_min": 0.0}, "crop_area_min"),
    ({"crop_area_min": 0.6, "crop_area_max": 0.5}, "crop_area_max"),
    ({"randaugment_num_layers": -1}, "randaugment_num_layers"),
    ({"randaugment_magnitude": 31}, "randaugment_magnitude"),
    ({"augment_semantics": "exact"}, "augment_semantics"),
    ({"sync_batch_norm_groups": "some"}, "sync_batch_norm_groups"),
    ({"sync_batch_norm_groups": "0"}, "sync_batch_norm_groups"),
])
def test_augmentation_settings_are_checked(changes, message):
    with pytest.raises(ValueError, match=message):
        config_lib.merge({"model_dir": "/tmp/x", **changes})
