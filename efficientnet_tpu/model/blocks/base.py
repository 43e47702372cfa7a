"""The skeleton every block layer shares (`ResidualBlock`), and the registry of block layers.

Every block shares one skeleton (`ResidualBlock`): a main path that a subclass
declares once, as conv-BN-activation steps (`ConvBN`) and the place of
squeeze-and-excitation (`SE`); SE at a configurable position; and an identity
shortcut with stochastic depth when the input and output shapes agree. The
sublayer names follow Keras Applications (`expand_conv`, `dwconv`, `bn`,
`se_reduce`, `project_conv`, ...) so its weights map onto ours by name.

A block type is declared, Keras-free, in `model/block_types.py` (its name,
Table-1 label and inner-width rule: what specs and the summary read); its
layer class is one file beside this one (`mbconv.py`, `fused_mbconv.py`,
`meconv.py`, `conv31.py`, `conv131.py`) and joins with
`@register_block("name")` there, which is what the builder instantiates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import keras

from efficientnet_tpu.model.block_types import SE_POSITIONS, block_names, block_type
from efficientnet_tpu.model.layers import (
    ActivationSpec,
    SqueezeExcite,
    StochasticDepth,
    batch_norm,
    conv2d,
    depthwise_conv2d,
    make_activation,
)

SE = "se"  # marks where a block's main path applies SE when se_position is "after_dw"


@dataclass(frozen=True)
class ConvBN:
    """One conv, BN, activation step of a block's main path.

    `unit` names the sublayers as Keras Applications does: `<unit>_conv`,
    `<unit>_bn` and `<unit>_activation` (attribute `<unit>_act`); the
    depthwise units "dw" and "dw_2" are `dwconv`, `bn`, `activation` (and
    `dwconv_2`, `bn_2`, `activation_2`). `filters=None` makes the conv
    depthwise; `activation=False` ends the step at the BN (a linear projection).
    """

    unit: str
    filters: int | None
    kernel_size: int = 1
    stride: int = 1
    activation: bool = True

    def names(self) -> tuple[str, str, str, str]:
        """(conv, BN, activation attribute, activation layer name); the conv and BN attributes are their names."""
        if self.unit.startswith("dw"):
            suffix = self.unit[len("dw"):]
            return f"dwconv{suffix}", f"bn{suffix}", f"dw_act{suffix}", f"activation{suffix}"
        return f"{self.unit}_conv", f"{self.unit}_bn", f"{self.unit}_act", f"{self.unit}_activation"


Step = ConvBN | str  # a ConvBN or the SE marker


def _spatial_out(size: int | None, stride: int) -> int | None:
    return None if size is None else math.ceil(size / stride)


class ResidualBlock(keras.layers.Layer):
    """Skeleton shared by MBConv, Fused-MBConv, MEConv, Conv31 and Conv131.

    A subclass declares its main path once, in `_steps`: `ConvBN` steps in
    call order, with the `SE` marker where `se_position="after_dw"` puts the
    SE module. This class creates the sublayers from it, builds and runs
    them, applies SE at the block's end when `se_position="end"`, then the
    shortcut. Its Table-1 label and inner-width rule are its block type's
    (`block_types.py`); `register_block` copies the label onto the class.
    """

    # The operator column of the paper's Table 1, set from the block type by `register_block`.
    label: str = ""

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

        if self.se_position == "after_dw" and SE not in self._steps():
            raise ValueError(
                f"{type(self).__name__} has no SE step in its main path; use se_position 'end' or 'none'."
            )
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

    # -- what subclasses provide --------------------------------------------
    def _steps(self) -> tuple[Step, ...]:
        """The main path in call order: `ConvBN` steps and the `SE` marker."""
        raise NotImplementedError

    # -- the main path, from `_steps` ----------------------------------------
    def _bn(self, name: str) -> keras.layers.Layer:
        return batch_norm(self.bn_momentum, self.bn_epsilon, self.sync_batch_norm, name=name)

    def _act(self, name: str) -> keras.layers.Layer:
        return make_activation(self.activation, name=name)

    def _conv_bn_act(self, step: ConvBN) -> None:
        """Creates one step's conv, BN and activation as attributes named by `step.names()`."""
        conv_name, bn_name, act_attribute, act_name = step.names()
        if step.filters is None:
            conv = depthwise_conv2d(step.kernel_size, step.stride, name=conv_name)
        else:
            conv = conv2d(step.filters, step.kernel_size, step.stride, name=conv_name)
        setattr(self, conv_name, conv)
        setattr(self, bn_name, self._bn(bn_name))
        if step.activation:
            setattr(self, act_attribute, self._act(act_name))

    def _make_layers(self) -> None:
        for step in self._steps():
            if step != SE:
                self._conv_bn_act(step)

    def _step_layers(self, step: ConvBN) -> tuple[keras.layers.Layer, keras.layers.Layer, Any]:
        conv_name, bn_name, act_attribute, _ = step.names()
        act = getattr(self, act_attribute) if step.activation else None
        return getattr(self, conv_name), getattr(self, bn_name), act

    def _layer_sequence(self) -> list[keras.layers.Layer]:
        """The main path's weighted layers in call order, used to build weights shape by shape."""
        layers: list[keras.layers.Layer] = []
        for step in self._steps():
            if step == SE:
                layers += [self.se] if self.se is not None and self.se_position == "after_dw" else []
            else:
                layers += self._step_layers(step)[:2]
        return layers

    def _main_path(self, inputs, training=None):
        x = inputs
        for step in self._steps():
            if step == SE:
                if self.se is not None and self.se_position == "after_dw":
                    x = self.se(x)
                continue
            conv, bn, act = self._step_layers(step)
            x = bn(conv(x), training=training)
            if act is not None:
                x = act(x)
        return x

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


# -- the layer registry ----------------------------------------------------------
BLOCK_LAYERS: dict[str, type[ResidualBlock]] = {}
_Block = TypeVar("_Block", bound=type[ResidualBlock])


def register_block(name: str) -> Callable[[_Block], _Block]:
    """Class decorator: the layer that the builder makes for `StageSpec.block == name`.

    `name` must be declared in `block_types.py` (`register_block_type`), whose
    label the class takes. It also registers the class for Keras
    serialization, so saved models that contain it load back.
    """

    def decorate(cls: _Block) -> _Block:
        if name in BLOCK_LAYERS:
            raise ValueError(f"Block type {name!r} is registered twice.")
        if not (isinstance(cls, type) and issubclass(cls, ResidualBlock)):
            raise TypeError(f"Block type {name!r} must be a ResidualBlock subclass, got {cls!r}.")
        if name not in block_names():
            raise ValueError(
                f"Block type {name!r} is not declared; declare it first with "
                "efficientnet_tpu.model.block_types.register_block_type(name, label, inner_channels)."
            )
        cls.label = block_type(name).label
        keras.saving.register_keras_serializable(package="efficientnet_tpu")(cls)
        BLOCK_LAYERS[name] = cls
        return cls

    return decorate


def block_class(name: str) -> type[ResidualBlock]:
    """The layer class registered under `name` (ValueError naming the registered ones otherwise)."""
    if name not in BLOCK_LAYERS:
        block_type(name)  # an undeclared name: the error names the declared block types
        raise ValueError(f"Block type {name!r} has no layer class; registered: {', '.join(BLOCK_LAYERS)}.")
    return BLOCK_LAYERS[name]
