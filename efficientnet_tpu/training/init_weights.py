"""Starting a run from pretrained weights (``--init_weights``): fine-tuning.

The source is either a Keras Applications weights file (the ``.h5`` users
download once: EfficientNet B0-B7, EfficientNetV2 B0-B3/S/M/L, ResNet-152;
with or without its classifier, or the Keras 3 ``.weights.h5`` of such a
model) or another run of this trainer (its model_dir, or one checkpoint
prefix ``model_dir/ckpt-N``; its EMA weights when it kept them). Every
backbone weight must be matched; the classifier is copied when it has the
same number of classes and otherwise keeps its fresh initialization.

Only a fresh run is initialized: a run that resumes from its own checkpoint
never has the init weights loaded over it (``run`` decides that).
"""

from __future__ import annotations

import os
import tempfile

import h5py
import keras
import tensorflow as tf

from efficientnet_tpu.training import config as config_lib
from efficientnet_tpu.training.trained import load_trained_model
from efficientnet_tpu.training.config import TrainConfig
from efficientnet_tpu.model.weights import KERAS_CONSTRUCTORS, load_keras_applications

CLASSIFIER = "predictions"
# Our ResNet-152 uses Keras Applications' layer names and structure.
RESNET_CONSTRUCTORS = {"resnet152": "ResNet152"}
# Keras' ImageNet ResNet weights expect BGR input; ours normalizes RGB (see model/baselines/builders.py).
RESNET_FIRST_CONV = "conv1_conv"


def headless(model: keras.Model) -> keras.Model:
    """The same layers up to the classifier's input (pooling and dropout have no weights)."""
    return keras.Model(model.input, model.get_layer(CLASSIFIER).input)


def _file_classes(path: str) -> int | None:
    """The class count of the classifier stored in a Keras weights file, or None without one."""
    with h5py.File(path, "r") as f:
        if "layer_names" in f.attrs:  # the legacy .h5 of Keras Applications downloads
            names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
            if CLASSIFIER not in names:
                return None
            kernels = []
            f[CLASSIFIER].visititems(lambda _, item: kernels.append(item.shape)
                                     if isinstance(item, h5py.Dataset) and len(item.shape) == 2 else None)
            return int(kernels[0][-1]) if kernels else None
        layers = f.get("layers")  # Keras 3 .weights.h5: layers are stored by class name
        dense = [name for name in (layers or {}) if name == "dense" or name.startswith("dense_")]
        if not dense:
            return None
        return int(layers[dense[-1]]["vars"]["0"].shape[-1])


def _local_copy(path: str, directory: str) -> str:
    """h5py reads local files only: a gs:// file is copied first."""
    if "://" not in path:
        return path
    local = os.path.join(directory, os.path.basename(path))
    tf.io.gfile.copy(path, local, overwrite=True)
    return local


def _keras_twin(variant: str, path: str, input_shape: tuple) -> keras.Model:
    """The Keras Applications model of `variant` with the file's weights loaded."""
    name = KERAS_CONSTRUCTORS.get(variant) or RESNET_CONSTRUCTORS.get(variant)
    if name is None:
        raise ValueError(
            f"--init_weights: no Keras Applications model matches --variant={variant}; weights files load "
            f"into {', '.join([*KERAS_CONSTRUCTORS, *RESNET_CONSTRUCTORS])}. For other variants start from "
            "another run's model_dir")
    classes = _file_classes(path)
    kwargs = dict(weights=None, include_top=classes is not None, input_shape=tuple(input_shape))
    if classes is not None:
        kwargs.update(classes=classes, classifier_activation=None)
    twin = getattr(keras.applications, name)(**kwargs)
    try:
        twin.load_weights(path)
    except (ValueError, KeyError, OSError) as e:
        raise ValueError(f"--init_weights={path} does not hold Keras Applications {name} weights "
                         f"({' '.join(str(e).split())[:200]}); download the file made for {name}") from None
    return twin


def _copy_resnet(model: keras.Model, twin: keras.Model) -> None:
    """Layer by layer by name (the names are Keras'), the first conv's input channels BGR -> RGB."""
    ours = {layer.name: layer for layer in model.layers if layer.weights}
    copied = set()
    for layer in twin.layers:
        if not layer.weights or isinstance(layer, keras.layers.Normalization):
            continue
        target = ours.get(layer.name)
        values = layer.get_weights()
        if target is None or [w.shape for w in target.get_weights()] != [v.shape for v in values]:
            raise ValueError(f"--init_weights: the file's layer {layer.name!r} does not fit this ResNet-152")
        if layer.name == RESNET_FIRST_CONV:
            values = [values[0][:, :, ::-1, :]] + values[1:]
        target.set_weights(values)
        copied.add(layer.name)
    missed = sorted(set(ours) - copied)
    if missed:
        raise ValueError(f"--init_weights: {len(missed)} layers got no weights from the file, e.g. {missed[:3]}")


def _from_keras_file(model: keras.Model, config: TrainConfig, path: str) -> str:
    with tempfile.TemporaryDirectory() as directory:
        twin = _keras_twin(config.variant, _local_copy(path, directory), model.input_shape[1:])
    has_head = any(layer.name == CLASSIFIER for layer in twin.layers)
    same_head = has_head and twin.get_layer(CLASSIFIER).units == config.num_classes
    if same_head:
        source, target = twin, model
    else:
        source, target = (headless(twin) if has_head else twin), headless(model)
    if config.variant in RESNET_CONSTRUCTORS:
        _copy_resnet(target, source)
    else:
        load_keras_applications(target, source)
    return "every layer" if same_head else "every layer but the classifier"


def _from_run(model: keras.Model, config: TrainConfig, path: str) -> str:
    """Copies another run's (EMA) weights, layer by layer in build order."""
    model_dir, checkpoint = _run_dir(path)
    previous = config_lib.load_run_config(model_dir)
    for key in config_lib.ARCHITECTURE_KEYS:
        if key not in ("num_classes", "resolution") and previous.get(key) != getattr(config, key):
            raise ValueError(f"--init_weights={path} is a run of {key}={previous.get(key)!r}, this run has "
                             f"{key}={getattr(config, key)!r}; the networks must be the same but for the classes")
    source, _ = load_trained_model(model_dir, checkpoint_path=checkpoint)
    same_head = source.get_layer(CLASSIFIER).units == config.num_classes
    pairs = [(a, b) for a, b in zip(source.layers, model.layers) if a.weights]
    if len(pairs) != len([layer for layer in model.layers if layer.weights]):
        raise ValueError(f"--init_weights={path}: the source network has a different number of layers")
    for theirs, mine in pairs:
        if theirs.name == CLASSIFIER and not same_head:
            continue
        mine.set_weights(theirs.get_weights())
    return "every layer" if same_head else "every layer but the classifier"


def is_keras_file(path: str) -> bool:
    return path.endswith(".h5")


def _run_dir(path: str) -> tuple[str, str | None]:
    """(model_dir, checkpoint prefix or None) of another run given as a directory or a ckpt-N prefix."""
    if tf.io.gfile.exists(path + ".index"):
        return os.path.dirname(path), path
    return path.rstrip("/"), None


def check_source(path: str) -> None:
    """Fails fast, before any network is built, when --init_weights names nothing usable."""
    if is_keras_file(path):
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"--init_weights={path} does not exist")
    elif not tf.io.gfile.exists(config_lib.config_path(_run_dir(path)[0])):
        raise FileNotFoundError(
            f"--init_weights={path} is neither a Keras weights file (.h5) nor a training run's model_dir or "
            "checkpoint (model_dir/ckpt-N) with a config.yaml")


def initialize(model: keras.Model, config: TrainConfig) -> str:
    """Loads ``config.init_weights`` into ``model``; returns what was loaded, for the log."""
    path = config.init_weights
    check_source(path)
    if is_keras_file(path):
        loaded = _from_keras_file(model, config, path)
    else:
        loaded = _from_run(model, config, path)
    return f"initialized {loaded} from {path}"


def backbone_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer with weights except the classifier: what --freeze_backbone_epochs freezes."""
    return [layer for layer in model.layers if layer.weights and layer.name != CLASSIFIER]


def set_backbone_trainable(model: keras.Model, trainable: bool) -> None:
    """Frozen batch norm also runs in inference mode (Keras 3), so its statistics stay as loaded."""
    for layer in backbone_layers(model):
        layer.trainable = trainable


__all__ = ["initialize", "headless", "backbone_layers", "set_backbone_trainable", "is_keras_file"]
