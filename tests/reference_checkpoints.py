"""Writes checkpoints in the authors' layout for the tests, from names derived independently of our loader.

Keras Applications' own converter (keras-team/keras keras/applications/
efficientnet_weight_update_util.py, `keras_name_to_tf_name_block` and
`keras_name_to_tf_name_stem_top`) documents how a tensorflow/tpu checkpoint
name maps to a Keras Applications layer: block `blockNx` is `blocks_i` in
sorted order; blocks of the first stage (no expansion) have one `conv2d` (the
projection) and batch norms `tpu_batch_normalization` / `_1`; the others
`conv2d` (expand), `conv2d_1` (project) and batch norms `_` / `_1` / `_2`;
SE is `se/conv2d` (reduce) and `se/conv2d_1` (expand); stem, head and
classifier are `stem/conv2d`, `head/conv2d`, `head/dense`. The mapping here
is written from those facts for the Keras Applications model, so a checkpoint
written through it is the reference layout as seen by an independent reader.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

EMA = "/ExponentialMovingAverage"


def _keras_block_order(model: keras.Model) -> dict[str, str]:
    blocks = sorted({layer.name.split("_")[0] for layer in model.layers if layer.name.startswith("block")})
    return {block: f"blocks_{i}" for i, block in enumerate(blocks)}


def keras_weight_to_reference(layer_name: str, var: str, scope: str, blocks: dict[str, str]) -> str:
    """Keras Applications V1 weight (layer `block2a_expand_bn`, variable `gamma`) -> the reference name."""
    top = {"stem_conv": "stem/conv2d", "stem_bn": "stem/tpu_batch_normalization", "top_conv": "head/conv2d",
           "top_bn": "head/tpu_batch_normalization", "predictions": "head/dense"}
    var = "depthwise_kernel" if layer_name.endswith("dwconv") else var
    if layer_name in top:
        return f"{scope}/{top[layer_name]}/{var}"
    block, _, part = layer_name.partition("_")
    first_stage = block[5] == "1"
    table = {
        "dwconv": "depthwise_conv2d",
        "se_reduce": "se/conv2d",
        "se_expand": "se/conv2d_1",
        "expand_conv": "conv2d",
        "project_conv": "conv2d" if first_stage else "conv2d_1",
        "expand_bn": "tpu_batch_normalization",
        "bn": "tpu_batch_normalization" if first_stage else "tpu_batch_normalization_1",
        "project_bn": "tpu_batch_normalization_1" if first_stage else "tpu_batch_normalization_2",
    }
    return f"{scope}/{blocks[block]}/{table[part]}/{var}"


# google/automl efficientnetv2/effnetv2_model.py names a block's layers by creation order
# (`get_conv_name`, `get_norm_name`): the non-depthwise convs conv2d, conv2d_1; the norms
# tpu_batch_normalization, _1, _2; the depthwise conv depthwise_conv2d; SE se/conv2d, se/conv2d_1.
# Keras Applications' EfficientNetV2 calls the same layers (in that order) expand_conv, project_conv;
# expand_bn, bn, project_bn; dwconv2; se_reduce, se_expand.
_V2_CONVS = ("expand_conv", "project_conv")
_V2_NORMS = ("expand_bn", "bn", "project_bn")


def keras_weights(model: keras.Model):
    """(layer, weight) for every weight of a Keras Applications model but the input normalization."""
    for layer in model.layers:
        if layer.weights and not isinstance(layer, keras.layers.Normalization):
            for weight in layer.weights:
                if "seed_generator" not in weight.path:
                    yield layer, weight


def keras_v2_names(model: keras.Model, scope: str) -> dict[tuple[str, str], str]:
    """(Keras V2 layer, variable) -> automl name, for every weight of a Keras Applications EfficientNetV2."""
    blocks = _keras_block_order(model)
    parts: dict[str, set[str]] = {}
    for layer in model.layers:
        if layer.name.startswith("block") and layer.weights:
            block, _, part = layer.name.partition("_")
            parts.setdefault(block, set()).add(part)
    names: dict[tuple[str, str], str] = {}
    for layer, weight in keras_weights(model):
        if not layer.name.startswith("block"):
            names[(layer.name, weight.name)] = keras_weight_to_reference(layer.name, weight.name, scope, {})
            continue
        block, _, part = layer.name.partition("_")
        present = parts[block]
        if part in _V2_CONVS:
            index = [p for p in _V2_CONVS if p in present].index(part)
            sub = "conv2d" if index == 0 else f"conv2d_{index}"
        elif part in _V2_NORMS:
            index = [p for p in _V2_NORMS if p in present].index(part)
            sub = "tpu_batch_normalization" if index == 0 else f"tpu_batch_normalization_{index}"
        else:
            sub = {"dwconv2": "depthwise_conv2d", "se_reduce": "se/conv2d", "se_expand": "se/conv2d_1"}[part]
        var = "depthwise_kernel" if part == "dwconv2" else weight.name
        names[(layer.name, weight.name)] = f"{scope}/{blocks[block]}/{sub}/{var}"
    return names


def random_value(name: str, shape, rng: np.random.Generator) -> np.ndarray:
    """Random weights; batch-norm statistics far from Keras' (0, 1) start so that a skipped one shows."""
    if name.endswith("moving_variance"):
        return rng.uniform(0.5, 2.0, shape).astype("float32")
    if name.endswith("moving_mean"):
        return rng.normal(0.0, 0.5, shape).astype("float32")
    if name.endswith("gamma"):
        return rng.uniform(0.5, 1.5, shape).astype("float32")
    scale = 0.1 if name.endswith(("beta", "bias")) else np.sqrt(2.0 / max(1, int(np.prod(shape[:-1]))))
    return (rng.normal(0.0, scale, shape)).astype("float32")


def _names(keras_model: keras.Model, scope: str) -> dict[tuple[str, str], str]:
    if scope.startswith("efficientnetv2-"):
        return keras_v2_names(keras_model, scope)
    blocks = _keras_block_order(keras_model)
    return {(layer.name, w.name): keras_weight_to_reference(layer.name, w.name, scope, blocks)
            for layer, w in keras_weights(keras_model)}


def reference_variables(keras_model: keras.Model, scope: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Raw values and EMA shadows (different from the raw ones) for every weight of a Keras Applications model."""
    rng = np.random.default_rng(seed)
    names = _names(keras_model, scope)
    values: dict[str, np.ndarray] = {}
    for layer, weight in keras_weights(keras_model):
        name = names[(layer.name, weight.name)]
        raw = random_value(name, tuple(weight.shape), rng)
        values[name] = raw
        values[name + EMA] = raw * rng.uniform(0.8, 1.2, raw.shape).astype("float32")
    return values


def write_checkpoint(directory: str, values: dict[str, np.ndarray], extra: dict[str, np.ndarray] | None = None,
                     prefix_name: str = "model.ckpt") -> str:
    """Saves `values` as a name-based tf.train checkpoint (SaveV2, as a TF1 Saver writes) plus the
    `checkpoint` file of a released folder; returns the prefix."""
    os.makedirs(directory, exist_ok=True)
    prefix = os.path.join(directory, prefix_name)
    everything = {**values, **(extra or {"global_step": np.array(1000, np.int64)})}
    names = sorted(everything)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(everything[n]) for n in names])
    with open(os.path.join(directory, "checkpoint"), "w", encoding="utf-8") as f:
        f.write(f'model_checkpoint_path: "{prefix_name}"\nall_model_checkpoint_paths: "{prefix_name}"\n')
    return prefix


def load_into_keras(keras_model: keras.Model, values: dict[str, np.ndarray], scope: str, use_ema: bool) -> None:
    """The independent reader: copies the checkpoint values into the Keras Applications model by the
    converter's mapping, and sets its Normalization to the true ImageNet mean and variance."""
    names = _names(keras_model, scope)
    for layer, weight in keras_weights(keras_model):
        name = names[(layer.name, weight.name)]
        weight.assign(values[name + EMA if use_ema else name])
    if not scope.startswith("efficientnetv2-"):  # Keras' V2 normalizes with constants, not weights
        set_keras_normalization(keras_model)


def set_keras_normalization(keras_model: keras.Model) -> None:
    """Keras Applications rescales by 1/255 then normalizes; with weights=None the Normalization holds
    mean 0 and variance 1, so give it the ImageNet mean and the *variance* (the released .h5 files store
    the std there, the quirk efficientnet_tpu/model/weights.py describes)."""
    mean = np.array([0.485, 0.456, 0.406], "float32")
    std = np.array([0.229, 0.224, 0.225], "float32")
    norms = [layer for layer in keras_model.layers if isinstance(layer, keras.layers.Normalization)]
    assert len(norms) == 1, "Keras Applications EfficientNet has one Normalization layer"
    by_name = {w.name: w for w in norms[0].weights}
    by_name["mean"].assign(mean.reshape(by_name["mean"].shape))
    by_name["variance"].assign((std ** 2).reshape(by_name["variance"].shape))
