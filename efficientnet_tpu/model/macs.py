"""Multiply-adds of one image's forward pass, counted layer by layer.

Every convolution, depthwise convolution and dense layer the model calls is
recorded with its real input and output shapes during one batch-1 forward
pass, so blocks nested inside other layers count as well as top-level ones,
and any Keras model (ours or Keras Applications') can be measured the same way.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import keras
import numpy as np

_COUNTED = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def _layer_macs(layer: keras.layers.Layer, in_shape: tuple, out_shape: tuple) -> int:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return int(math.prod(out_shape[1:]) * kh * kw)
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        c_in = in_shape[-1] // layer.groups
        return int(math.prod(out_shape[1:]) * kh * kw * c_in)
    # Dense: every output unit of every position reads every input feature.
    return int(math.prod(out_shape[1:]) * in_shape[-1])


@contextlib.contextmanager
def _recording(records: list[int]) -> Iterator[None]:
    originals = {cls: cls.call for cls in _COUNTED}

    def wrap(cls):
        original = originals[cls]

        def call(self, inputs, *args, **kwargs):
            outputs = original(self, inputs, *args, **kwargs)
            if type(self) in originals or isinstance(self, _COUNTED):
                records.append(_layer_macs(self, tuple(inputs.shape), tuple(outputs.shape)))
            return outputs

        return call

    try:
        for cls in _COUNTED:
            cls.call = wrap(cls)
        yield
    finally:
        for cls, original in originals.items():
            cls.call = original


def count_macs(model: keras.Model) -> int:
    """Multiply-adds of conv, depthwise conv and dense layers for one image.

    The model needs a static input shape (height, width, channels).
    """
    shape = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if shape is None or any(size is None for size in shape):
        raise ValueError(
            f"count_macs needs a model with one input of static shape; got {model.input_shape}. "
            "Build it with input_shape=(height, width, channels)."
        )
    records: list[int] = []
    dtype = model.inputs[0].dtype if hasattr(model.inputs[0], "dtype") else "float32"
    with _recording(records):
        model(np.zeros((1, *shape), dtype=dtype), training=False)
    return int(sum(records))
