"""The blocks of the studies beside MBConv: Fused-MBConv, MEConv, Conv31 and Conv131.

They reuse `ResidualBlock`, so SE placement (`after_dw` / `end` / `none`),
the identity shortcut and stochastic depth behave exactly as in MBConv. Each
class registers itself in `BLOCK_TYPES` under the name a `StageSpec.block`
uses; the package `__init__` imports this module, so the builder always sees
them. Fused-MBConv names its sublayers as Keras Applications' EfficientNetV2
does (`expand_conv`, `project_conv`, ...) so those weights load by name.
"""

from __future__ import annotations

import keras

from efficientnet_tpu.model.blocks import BLOCK_TYPES, ResidualBlock
from efficientnet_tpu.model.layers import conv2d, depthwise_conv2d


def _se_after_dw(block: ResidualBlock) -> list[keras.layers.Layer]:
    """The SE layer when it sits inside the main path (for the build-order list)."""
    return [block.se] if block.se is not None and block.se_position == "after_dw" else []


@keras.saving.register_keras_serializable(package="efficientnet_tpu")
class FusedMBConv(ResidualBlock):
    """EfficientNetV2's block: one k x k conv replaces the 1x1 expansion and the depthwise conv.

    With expansion (inner width != C_in): k x k conv (stride s) to the inner
    width, BN, act, optional SE, 1x1 linear projection, BN. Without it, the
    k x k conv (stride s) maps straight to C_out and is followed by BN *and*
    the activation, as in Keras Applications (there is no 1x1 projection).
    """

    def _make_layers(self) -> None:
        self.expands = self.inner_channels != self.in_channels
        self.expand_conv = self.expand_bn = self.expand_act = self.project_act = None
        if self.expands:
            self.expand_conv = conv2d(self.inner_channels, self.kernel_size, self.stride, name="expand_conv")
            self.expand_bn = self._bn("expand_bn")
            self.expand_act = self._act("expand_activation")
            self.project_conv = conv2d(self.out_channels, 1, name="project_conv")
        else:
            self.project_conv = conv2d(self.out_channels, self.kernel_size, self.stride, name="project_conv")
            self.project_act = self._act("project_activation")
        self.project_bn = self._bn("project_bn")

    def _layer_sequence(self) -> list[keras.layers.Layer]:
        expand = [self.expand_conv, self.expand_bn] if self.expands else []
        return [*expand, *_se_after_dw(self), self.project_conv, self.project_bn]

    def _main_path(self, inputs, training=None):
        x = inputs
        if self.expands:
            x = self.expand_act(self.expand_bn(self.expand_conv(x), training=training))
        x = self._excite(x)
        x = self.project_bn(self.project_conv(x), training=training)
        return self.project_act(x) if self.project_act is not None else x


@keras.saving.register_keras_serializable(package="efficientnet_tpu")
class MEConv(ResidualBlock):
    """Mobile Equal-channel Convolution: three 1x1 and two depthwise convs, all M channels wide.

    1x1 (C_in -> M), BN, act; depthwise k x k stride s, BN, act; 1x1 (M -> M),
    BN, act; depthwise k x k stride 1, BN, act; SE (at "after_dw"); 1x1
    (M -> C_out), BN. M is `inner_channels`, chosen by the spec's
    `meconv_expand` rule. The first 1x1 is always there, even when M == C_in:
    the block is defined by its three pointwise convs.
    """

    def _make_layers(self) -> None:
        width = self.inner_channels
        self.expand_conv = conv2d(width, 1, name="expand_conv")
        self.expand_bn = self._bn("expand_bn")
        self.expand_act = self._act("expand_activation")
        self.dwconv = depthwise_conv2d(self.kernel_size, self.stride, name="dwconv")
        self.bn = self._bn("bn")
        self.dw_act = self._act("activation")
        self.mid_conv = conv2d(width, 1, name="mid_conv")
        self.mid_bn = self._bn("mid_bn")
        self.mid_act = self._act("mid_activation")
        self.dwconv_2 = depthwise_conv2d(self.kernel_size, 1, name="dwconv_2")
        self.bn_2 = self._bn("bn_2")
        self.dw_act_2 = self._act("activation_2")
        self.project_conv = conv2d(self.out_channels, 1, name="project_conv")
        self.project_bn = self._bn("project_bn")

    def _layer_sequence(self) -> list[keras.layers.Layer]:
        return [
            self.expand_conv,
            self.expand_bn,
            self.dwconv,
            self.bn,
            self.mid_conv,
            self.mid_bn,
            self.dwconv_2,
            self.bn_2,
            *_se_after_dw(self),
            self.project_conv,
            self.project_bn,
        ]

    def _main_path(self, inputs, training=None):
        x = self.expand_act(self.expand_bn(self.expand_conv(inputs), training=training))
        x = self.dw_act(self.bn(self.dwconv(x), training=training))
        x = self.mid_act(self.mid_bn(self.mid_conv(x), training=training))
        x = self.dw_act_2(self.bn_2(self.dwconv_2(x), training=training))
        x = self._excite(x)
        return self.project_bn(self.project_conv(x), training=training)


@keras.saving.register_keras_serializable(package="efficientnet_tpu")
class Conv31(ResidualBlock):
    """A plain two-conv block for high-resolution stages: k x k conv (stride s), BN, act; 1x1 conv, BN.

    Regular convolutions use the hardware better than depthwise ones at
    112x112, which is why the compact study puts this block there. The k x k
    conv maps C_in to `inner_channels` (C_out times the stage's expand ratio).
    """

    def _make_layers(self) -> None:
        self.spatial_conv = conv2d(self.inner_channels, self.kernel_size, self.stride, name="spatial_conv")
        self.spatial_bn = self._bn("spatial_bn")
        self.spatial_act = self._act("spatial_activation")
        self.project_conv = conv2d(self.out_channels, 1, name="project_conv")
        self.project_bn = self._bn("project_bn")

    def _layer_sequence(self) -> list[keras.layers.Layer]:
        return [self.spatial_conv, self.spatial_bn, *_se_after_dw(self), self.project_conv, self.project_bn]

    def _main_path(self, inputs, training=None):
        x = self.spatial_act(self.spatial_bn(self.spatial_conv(inputs), training=training))
        x = self._excite(x)
        return self.project_bn(self.project_conv(x), training=training)


@keras.saving.register_keras_serializable(package="efficientnet_tpu")
class Conv131(ResidualBlock):
    """A bottleneck of regular convs: 1x1, BN, act; k x k (stride s), BN, act; 1x1, BN.

    Both inner convs are `inner_channels` wide (C_out times the stage's expand ratio).
    """

    def _make_layers(self) -> None:
        self.expand_conv = conv2d(self.inner_channels, 1, name="expand_conv")
        self.expand_bn = self._bn("expand_bn")
        self.expand_act = self._act("expand_activation")
        self.spatial_conv = conv2d(self.inner_channels, self.kernel_size, self.stride, name="spatial_conv")
        self.spatial_bn = self._bn("spatial_bn")
        self.spatial_act = self._act("spatial_activation")
        self.project_conv = conv2d(self.out_channels, 1, name="project_conv")
        self.project_bn = self._bn("project_bn")

    def _layer_sequence(self) -> list[keras.layers.Layer]:
        return [
            self.expand_conv,
            self.expand_bn,
            self.spatial_conv,
            self.spatial_bn,
            *_se_after_dw(self),
            self.project_conv,
            self.project_bn,
        ]

    def _main_path(self, inputs, training=None):
        x = self.expand_act(self.expand_bn(self.expand_conv(inputs), training=training))
        x = self.spatial_act(self.spatial_bn(self.spatial_conv(x), training=training))
        x = self._excite(x)
        return self.project_bn(self.project_conv(x), training=training)


BLOCK_TYPES.update(
    {"fused_mbconv": FusedMBConv, "meconv": MEConv, "conv31": Conv31, "conv131": Conv131}
)
