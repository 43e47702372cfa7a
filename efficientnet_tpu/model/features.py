"""Feature maps at every reduction level, for detection and segmentation backbones."""

from __future__ import annotations

import keras


def feature_endpoints(model: keras.Model) -> dict[str, object]:
    """The last feature map at each stride 2, 4, 8, 16, 32 of a functional model.

    Keys are `reduction_1` .. `reduction_5` (stride 2**i). Strides are read
    from the static output shapes, so this works for every variant,
    including those with removed stages.
    """
    height = model.input_shape[1]
    if height is None:
        raise ValueError("feature_endpoints needs a static input height; pass input_shape.")
    endpoints: dict[str, object] = {}
    for layer in model.layers:
        output = layer.output
        shape = getattr(output, "shape", None)
        if shape is None or len(shape) != 4 or shape[1] is None or shape[1] >= height:
            continue
        stride = round(height / shape[1])
        level = stride.bit_length() - 1
        if 1 <= level <= 5 and 2**level == stride:
            endpoints[f"reduction_{level}"] = output  # later layers at the same stride win
    return dict(sorted(endpoints.items()))


def build_feature_extractor(model: keras.Model) -> keras.Model:
    """A model returning a dict of the reduction-level feature maps of `model`."""
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, feature_endpoints(model), name=f"{model.name}_features")
