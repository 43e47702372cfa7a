"""Fine-tuning (--init_weights, --freeze_backbone_epochs) from weights files the tests write through
keras.applications (random weights, tiny inputs) and from another run's model_dir."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from efficientnet_tpu.training import config as config_lib  # noqa: E402
from efficientnet_tpu.training import init_weights as init_lib  # noqa: E402
from efficientnet_tpu.training.trained import load_trained_model  # noqa: E402
from efficientnet_tpu.training.modeling import build_network  # noqa: E402
from efficientnet_tpu.run import run  # noqa: E402

SIZE = 32


def randomize(model: keras.Model, seed: int = 0) -> None:
    """Every weight random, BN statistics included, so a weight left unloaded shows in the outputs."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if weight.path.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, weight.shape)
        elif "normalization" in weight.path:
            continue  # Keras' input normalization: keep its mean and variance
        else:
            value = rng.normal(0.0, 0.1, weight.shape)
        weight.assign(value.astype("float32"))


def save_keras_file(model: keras.Model, path: str) -> str:
    """The two formats users have: the legacy .h5 of the Keras downloads, and Keras 3's .weights.h5."""
    if path.endswith(".weights.h5"):
        model.save_weights(path)
    else:
        from keras.src.legacy.saving import legacy_h5_format

        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


def config_for(variant: str, num_classes: int, init_weights: str = "", **changes) -> config_lib.TrainConfig:
    values = dict(model_dir="/tmp/unused", variant=variant, num_classes=num_classes, resolution=SIZE,
                  init_weights=init_weights)
    values.update(changes)
    return config_lib.merge(values)


def features(model: keras.Model, images: np.ndarray) -> np.ndarray:
    return np.asarray(init_lib.headless(model)(images, training=False))


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".h5", ".weights.h5"])
def test_efficientnet_file_loads_every_layer_and_replaces_the_head(tmp_path, suffix):
    keras_model = keras.applications.EfficientNetB0(weights=None, input_shape=(SIZE, SIZE, 3), classes=7,
                                                    classifier_activation=None)
    randomize(keras_model)
    path = save_keras_file(keras_model, str(tmp_path / f"efficientnetb0{suffix}"))
    images = np.random.default_rng(1).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")

    # Three classes: everything but the classifier comes from the file; the classifier keeps its init.
    model = build_network(config_for("b0", 3, path))
    head_before = [np.array(w) for w in model.get_layer("predictions").weights]
    others_before = [np.array(w) for w in init_lib.headless(model).weights]
    assert "every layer but the classifier" in init_lib.initialize(model, config_for("b0", 3, path))
    for before, after in zip(head_before, model.get_layer("predictions").weights):
        np.testing.assert_array_equal(before, after)
    assert all(not np.array_equal(b, a) for b, a in zip(others_before, init_lib.headless(model).weights)
               if b.size > 1)
    expected = features(keras_model, images)
    np.testing.assert_allclose(features(model, images), expected, atol=1e-4 * max(1, np.abs(expected).max()))

    # Seven classes, as the file: the classifier is loaded too and the logits are Keras'.
    same = build_network(config_for("b0", 7, path))
    assert init_lib.initialize(same, config_for("b0", 7, path)).startswith("initialized every layer from")
    logits = np.asarray(keras_model(images, training=False))
    np.testing.assert_allclose(np.asarray(same(images, training=False)), logits,
                               atol=1e-4 * max(1, np.abs(logits).max()))


def test_efficientnet_v2_notop_file(tmp_path):
    keras_model = keras.applications.EfficientNetV2B0(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
    randomize(keras_model, seed=2)
    path = save_keras_file(keras_model, str(tmp_path / "efficientnetv2-b0_notop.h5"))
    model = build_network(config_for("v2_b0", 5, path))
    init_lib.initialize(model, config_for("v2_b0", 5, path))
    images = np.random.default_rng(3).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    pooled = np.asarray(keras_model(images, training=False)).mean(axis=(1, 2))
    np.testing.assert_allclose(features(model, images), pooled, atol=1e-4 * max(1, np.abs(pooled).max()))


@pytest.mark.slow
def test_resnet152_file_loads_every_layer_in_rgb(tmp_path):
    keras_model = keras.applications.ResNet152(weights=None, input_shape=(SIZE, SIZE, 3), classes=1000,
                                               classifier_activation=None)
    randomize(keras_model, seed=4)
    path = save_keras_file(keras_model, str(tmp_path / "resnet152_weights_tf_dim_ordering_tf_kernels.h5"))
    model = build_network(config_for("resnet152", 10, path))
    head_before = np.array(model.get_layer("predictions").kernel)
    init_lib.initialize(model, config_for("resnet152", 10, path))
    np.testing.assert_array_equal(np.array(model.get_layer("predictions").kernel), head_before)
    images = np.random.default_rng(5).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    # Keras' ResNet reads BGR caffe input; ours reads RGB, the first conv's channels reversed on load.
    caffe = keras.applications.resnet.preprocess_input(images.copy())
    expected = np.asarray(init_lib.headless(keras_model)(caffe, training=False))
    np.testing.assert_allclose(features(model, images), expected, atol=1e-4 * max(1, np.abs(expected).max()))


def test_bad_sources_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        init_lib.check_source(str(tmp_path / "missing.h5"))
    with pytest.raises(FileNotFoundError, match="neither a Keras weights file"):
        init_lib.check_source(str(tmp_path))
    keras_model = keras.applications.EfficientNetB1(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
    path = save_keras_file(keras_model, str(tmp_path / "b1_notop.h5"))
    with pytest.raises(ValueError, match="does not hold Keras Applications EfficientNetB0"):
        init_lib.initialize(build_network(config_for("b0", 3, path)), config_for("b0", 3, path))
    with pytest.raises(ValueError, match="no Keras Applications model matches"):
        init_lib.initialize(build_network(config_for("baseline_convnet", 3, path)),
                            config_for("baseline_convnet", 3, path))


def tiny(model_dir, **changes) -> config_lib.TrainConfig:
    values = dict(model_dir=str(model_dir), variant="baseline_convnet", resolution=16, dataset="digits",
                  train_batch_size=8, eval_batch_size=64, train_steps=2, steps_per_loop=2,
                  checkpoint_every_steps=2, precision="float32", optimizer="adam", learning_rate=1e-2,
                  lr_reference_batch=None, warmup_epochs=0.0, epsilon=1e-7, preemption_handler="none",
                  use_ema=False, mode="train", seed=3)
    values.update(changes)
    return config_lib.merge(values)


def backbone(model: keras.Model) -> list[np.ndarray]:
    return [np.array(w) for layer in init_lib.backbone_layers(model) for w in layer.weights]


@pytest.mark.slow
def test_from_another_run_with_frozen_backbone_and_no_reload_on_resume(tmp_path, monkeypatch):
    source_dir, tuned_dir = tmp_path / "source", tmp_path / "tuned"
    run(tiny(source_dir), progress=False)
    source, _ = load_trained_model(str(source_dir))

    calls = []
    real = init_lib.initialize
    monkeypatch.setattr(init_lib, "initialize", lambda model, config: calls.append(1) or real(model, config))
    # Synthetic data has 1000 classes: a new classifier. Frozen for the 2 steps (1,250 steps per epoch).
    tuned = tiny(tuned_dir, dataset="synthetic", init_weights=str(source_dir), freeze_backbone_epochs=2 / 1250)
    run(tuned, progress=False)
    model, _ = load_trained_model(str(tuned_dir))
    for mine, theirs in zip(backbone(model), backbone(source)):
        np.testing.assert_array_equal(mine, theirs)  # loaded, and frozen (BN statistics too)
    assert model.get_layer("predictions").units == 1000 and calls == [1]

    # Resuming trains on from the run's own checkpoint, unfrozen, and never loads the init weights again.
    result = run(config_lib.replace(tuned, train_steps=4), progress=False)
    assert result["step"] == 4 and calls == [1]
    resumed, _ = load_trained_model(str(tuned_dir))
    assert any(not np.array_equal(a, b) for a, b in zip(backbone(resumed), backbone(source)))


def test_init_from_a_checkpoint_prefix_and_the_cli_error(tmp_path, capsys):
    from efficientnet_tpu.train import main_cli
    from efficientnet_tpu.training.checkpoint import checkpoint_steps

    source_dir = tmp_path / "source"
    run(tiny(source_dir), progress=False)
    (_, prefix), = checkpoint_steps(str(source_dir))
    model = build_network(config_lib.replace(tiny(tmp_path / "x", init_weights=prefix), num_classes=10))
    text = init_lib.initialize(model, config_lib.replace(tiny(tmp_path / "x", init_weights=prefix),
                                                         num_classes=10))
    assert text == f"initialized every layer from {prefix}"
    status = main_cli(["train", f"--model_dir={tmp_path / 'y'}", "--dataset=digits", "--variant=baseline_convnet",
                       "--train_steps=1", f"--init_weights={tmp_path / 'nothing'}"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: --init_weights=") and err.count("\n") == 1


def test_fine_tuning_recipes():
    """CIFAR at the network's resolution with the ImageNet recipe and a lower rate; seed 003's ResNet-152."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    imagenet = config_lib.load_yaml(os.path.join(repo, "configs", "imagenet.yaml"))
    for name in ("cifar10", "cifar100"):
        recipe = config_lib.load_yaml(os.path.join(repo, "configs", f"finetune_{name}.yaml"))
        config = config_lib.merge(recipe, {"model_dir": "/tmp/m", "variant": "b0", "init_weights": "w.h5"})
        assert config.dataset == name and config.resolution is None  # the variant's own
        # Augmentation differs: ImageNet trains with AutoAugment, fine-tuning keeps crop and flip.
        for key in ("optimizer", "lr_schedule", "label_smoothing", "weight_decay", "use_ema"):
            assert recipe[key] == imagenet[key], key
        assert config_lib.peak_learning_rate(config) < config_lib.peak_learning_rate(
            config_lib.merge(imagenet, {"model_dir": "/tmp/m", "train_batch_size": config.train_batch_size}))
    resnet = config_lib.load_yaml(os.path.join(repo, "configs", "resnet152_cifar10.yaml"))
    seed003 = config_lib.load_yaml(os.path.join(repo, "configs", "cifar10.yaml"))
    assert resnet["variant"] == "resnet152" and resnet["dataset"] == "cifar10"
    own = ("variant", "dropout_rate", "drop_connect_rate")  # ResNet-152 has neither dropout nor stochastic depth
    assert {k: v for k, v in resnet.items() if k not in own} == {k: v for k, v in seed003.items() if k not in own}
