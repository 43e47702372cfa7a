"""Residual blocks of the EfficientNet family as Keras layer classes.

Every block shares one skeleton (`ResidualBlock`): a main path that a subclass
defines, squeeze-and-excitation at a configurable position, and an identity
shortcut with stochastic depth when the input and output shapes agree. The
sublayer names follow Keras Applications (`expand_conv`, `dwconv`, `bn`,
`se_reduce`, `project_conv`, ...) so its weights map onto ours by name.
"""

from __future__ import annotations

import math
from typing import Any

import keras

from efficientnet_tpu.model.layers import (
    ActivationSpec,
    SqueezeExcite,
    StochasticDepth,
    batch_norm,
    conv2d,
    depthwise_conv2d,
    make_activation,
)

SE_POSITIONS = ("after_dw", "end", "none")


def _spatial_out(size: int | None, stride: int) -> int | None:
    return None if size is None else math.ceil(size / stride)


class ResidualBlock(keras.layers.Layer):
    """Skeleton shared by MBConv, Fused-MBConv, MEConv, Conv31 and Conv131.

    Subclasses build their layers in `_make_layers` and run them in
    `_main_path`; they call `self._excite(x)` at the point where
    `se_position="after_dw"` puts the SE module. This class applies SE at
    the block's end when `se_position="end"`, then the shortcut.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        expand_ratio: float = 1.0,
        inner_channels: int | None = None,
        se_ratio: float = 0.25,
        se_position: str = "after_dw",
        activation: ActivationSpec = "swish",
        se_activation: ActivationSpec = "swish",
        drop_rate: float = 0.0,
        bn_momentum: float = 0.99,
        bn_epsilon: float = 1e-3,
        sync_batch_norm: bool = False,
        id_skip: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if se_position not in SE_POSITIONS:
            raise ValueError(
                f"se_position must be one of {', '.join(SE_POSITIONS)}, got {se_position!r}."
            )
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}.")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = int(kernel_size)
        self.stride = int(stride)
        self.expand_ratio = float(expand_ratio)
        # The width of the block's inner layers; by default the MBConv rule.
        self.inner_channels = int(
            inner_channels if inner_channels is not None else self.in_channels * expand_ratio
        )
        self.se_ratio = float(se_ratio)
        self.se_position = se_position if se_ratio > 0 else "none"
        self.activation = activation
        self.se_activation = se_activation
        self.drop_rate = float(drop_rate)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.sync_batch_norm = bool(sync_batch_norm)
        self.id_skip = bool(id_skip)
        self.has_skip = self.id_skip and self.stride == 1 and self.in_channels == self.out_channels

        self._make_layers()
        self.se: SqueezeExcite | None = None
        if self.se_position != "none":
            # The squeeze width follows the block's *input* channels wherever SE sits.
            squeeze = max(1, int(self.in_channels * self.se_ratio))
            gated = self.inner_channels if self.se_position == "after_dw" else self.out_channels
            self.se = SqueezeExcite(gated, squeeze, activation=se_activation, name="se")
        self.drop = (
            StochasticDepth(self.drop_rate, name="drop")
            if self.has_skip and self.drop_rate > 0
            else None
        )

    # -- helpers for subclasses ---------------------------------------------
    def _bn(self, name: str) -> keras.layers.Layer:
        return batch_norm(self.bn_momentum, self.bn_epsilon, self.sync_batch_norm, name=name)

    def _act(self, name: str) -> keras.layers.Layer:
        return make_activation(self.activation, name=name)

    def _excite(self, x):
        """SE at the "after_dw" position; a no-op for the other positions."""
        if self.se is not None and self.se_position == "after_dw":
            return self.se(x)
        return x

    # -- what subclasses provide --------------------------------------------
    def _make_layers(self) -> None:
        raise NotImplementedError

    def _main_path(self, inputs, training=None):
        raise NotImplementedError

    def _layer_sequence(self) -> list[keras.layers.Layer]:
        """The main path's layers in call order, used to build weights shape by shape."""
        raise NotImplementedError

    # -- Keras plumbing -----------------------------------------------------
    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._layer_sequence():
            if layer is self.se:
                layer.build(shape)
                continue
            layer.build(shape)
            shape = tuple(layer.compute_output_shape(shape))
        if self.se is not None and self.se_position == "end":
            self.se.build(shape)

    def call(self, inputs, training=None):
        x = self._main_path(inputs, training=training)
        if self.se is not None and self.se_position == "end":
            x = self.se(x)
        if self.has_skip:
            if self.drop is not None:
                x = self.drop(x, training=training)
            x = x + inputs
        return x

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        return (
            batch,
            _spatial_out(height, self.stride),
            _spatial_out(width, self.stride),
            self.out_channels,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "expand_ratio": self.expand_ratio,
            "inner_channels": self.inner_channels,
            "se_ratio": self.se_ratio,
            "se_position": self.se_position,
            "activation": self.activation,
            "se_activation": self.se_activation,
            "drop_rate": self.drop_rate,
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
            "sync_batch_norm": self.sync_batch_norm,
            "id_skip": self.id_skip,
        }


@keras.saving.register_keras_serializable(package="efficientnet_tpu")
class MBConv(ResidualBlock):
    """Mobile inverted bottleneck: 1x1 expand, k x k depthwise, SE, 1x1 linear projection."""

    def _make_layers(self) -> None:
        self.expand_conv = self.expand_bn = self.expand_act = None
        if self.inner_channels != self.in_channels:
            self.expand_conv = conv2d(self.inner_channels, 1, name="expand_conv")
            self.expand_bn = self._bn("expand_bn")
            self.expand_act = self._act("expand_activation")
        self.dwconv = depthwise_conv2d(self.kernel_size, self.stride, name="dwconv")
        self.bn = self._bn("bn")
        self.dw_act = self._act("activation")
        self.project_conv = conv2d(self.out_channels, 1, name="project_conv")
        self.project_bn = self._bn("project_bn")

    def _layer_sequence(self) -> list[keras.layers.Layer]:
        expand = [self.expand_conv, self.expand_bn] if self.expand_conv is not None else []
        se = [self.se] if self.se is not None and self.se_position == "after_dw" else []
        return [*expand, self.dwconv, self.bn, *se, self.project_conv, self.project_bn]

    def _main_path(self, inputs, training=None):
        x = inputs
        if self.expand_conv is not None:
            x = self.expand_act(self.expand_bn(self.expand_conv(x), training=training))
        x = self.dw_act(self.bn(self.dwconv(x), training=training))
        x = self._excite(x)
        return self.project_bn(self.project_conv(x), training=training)


BLOCK_TYPES: dict[str, type[ResidualBlock]] = {"mbconv": MBConv}
