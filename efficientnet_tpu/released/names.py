"""Our layers -> the reference's variable names (tensorflow/tpu V1 and lite, google/automl V2).

The reference names variables by creation order inside each scope
(efficientnet_model.py `MBConvBlock._build`, effnetv2_model.py's
`get_conv_name` / `get_norm_name`): in every block the non-depthwise
convolutions are `conv2d`, `conv2d_1`, ..., the batch norms
`tpu_batch_normalization`, `_1`, `_2`, the depthwise one `depthwise_conv2d`
and the SE convolutions `se/conv2d` (reduce), `se/conv2d_1` (expand); block i
of the network is the scope `blocks_i`; the stem and head are `stem/` and
`head/` (the classifier `head/dense`). Our blocks list their weighted
sublayers in call order (`ResidualBlock._layer_sequence`), which is the
reference's creation order, so one walk names every weight.
"""

from __future__ import annotations

from typing import Iterator

import keras

from efficientnet_tpu.model.blocks import ResidualBlock
from efficientnet_tpu.model.layers import SqueezeExcite

BN = "tpu_batch_normalization"
HEAD_LAYER = "predictions"
_TOP_LEVEL = {"stem_conv": "stem/conv2d", "stem_bn": f"stem/{BN}",
              "top_conv": "head/conv2d", "top_bn": f"head/{BN}", HEAD_LAYER: "head/dense"}


def _numbered(base: str, index: int) -> str:
    return base if index == 0 else f"{base}_{index}"


def _variable_name(layer: keras.layers.Layer, weight) -> str:
    """The reference's last name component: Keras' depthwise `kernel` is TF's `depthwise_kernel`."""
    name = weight.name.split("/")[-1].split(":")[0]
    if isinstance(layer, keras.layers.DepthwiseConv2D) and name == "kernel":
        return "depthwise_kernel"
    return name


def _block_scopes(block: ResidualBlock) -> Iterator[tuple[keras.layers.Layer, str]]:
    convs = norms = 0
    for layer in block._layer_sequence():  # pylint: disable=protected-access
        if isinstance(layer, SqueezeExcite):
            yield layer.se_reduce, "se/conv2d"
            yield layer.se_expand, "se/conv2d_1"
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            yield layer, "depthwise_conv2d"
        elif isinstance(layer, keras.layers.Conv2D):
            yield layer, _numbered("conv2d", convs)
            convs += 1
        elif isinstance(layer, keras.layers.BatchNormalization):
            yield layer, _numbered(BN, norms)
            norms += 1
        else:
            raise ValueError(f"block {block.name!r} holds a {type(layer).__name__} the reference has no name for")
    if block.se is not None and block.se_position != "after_dw":
        raise ValueError(f"block {block.name!r} has SE at its end; the reference's blocks have it after the "
                         "depthwise convolution only")


def is_state(weight) -> bool:
    """Random-generator state (stochastic depth, dropout): not a weight of the network."""
    return "seed_generator" in weight.path


def reference_names(model: keras.Model, model_name: str) -> list[tuple[object, str]]:
    """(our variable, the reference's variable name) for every weight of `model`, in build order.

    Raises ValueError for a layer the reference has no counterpart of.
    """
    pairs: list[tuple[object, str]] = []
    block_index = 0
    for layer in model.layers:
        weights = [w for w in layer.weights if not is_state(w)]
        if not weights:
            continue
        if isinstance(layer, ResidualBlock):
            scope = f"{model_name}/blocks_{block_index}"
            block_index += 1
            named = list(_block_scopes(layer))
            covered = {id(w) for sub, _ in named for w in sub.weights}
            stray = [w.path for w in weights if id(w) not in covered]
            if stray:
                raise ValueError(f"{stray[0]} has no counterpart in the reference's {scope}")
            for sub, sub_scope in named:
                for weight in sub.weights:
                    pairs.append((weight, f"{scope}/{sub_scope}/{_variable_name(sub, weight)}"))
        elif layer.name in _TOP_LEVEL:
            scope = f"{model_name}/{_TOP_LEVEL[layer.name]}"
            for weight in weights:
                pairs.append((weight, f"{scope}/{_variable_name(layer, weight)}"))
        else:
            raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) has no counterpart in the "
                             "reference networks")
    return pairs
