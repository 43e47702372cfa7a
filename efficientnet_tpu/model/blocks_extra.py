"""The blocks of the studies beside MBConv: Fused-MBConv, MEConv, Conv31 and Conv131.

They reuse `ResidualBlock`, so SE placement (`after_dw` / `end` / `none`),
the identity shortcut and stochastic depth behave exactly as in MBConv. Each
class registers itself under the name a `StageSpec.block` uses (declared,
with its label and inner-width rule, in `blocktypes.py`); the builder imports
this module, so it always sees them. Fused-MBConv
names its sublayers as Keras Applications' EfficientNetV2 does
(`expand_conv`, `project_conv`, ...) so those weights load by name.
"""

from __future__ import annotations

from efficientnet_tpu.model.blocks import SE, ConvBN, ResidualBlock, Step, register_block
from efficientnet_tpu.model.layers import conv2d


@register_block("fused_mbconv")
class FusedMBConv(ResidualBlock):
    """EfficientNetV2's block: one k x k conv replaces the 1x1 expansion and the depthwise conv.

    With expansion (inner width != C_in): k x k conv (stride s) to the inner
    width, BN, act, optional SE, 1x1 linear projection, BN. Without it, the
    k x k conv (stride s) maps straight to C_out and is followed by BN *and*
    the activation, as in Keras Applications (there is no 1x1 projection).
    """

    def _steps(self) -> tuple[Step, ...]:
        k, s = self.kernel_size, self.stride
        if self.inner_channels != self.in_channels:
            return (
                ConvBN("expand", self.inner_channels, k, s),
                SE,
                ConvBN("project", self.out_channels, activation=False),
            )
        return (SE, ConvBN("project", self.out_channels, k, s))

    def _make_layers(self) -> None:
        self.expands = self.inner_channels != self.in_channels
        self.expand_conv = self.expand_bn = self.expand_act = self.project_act = None
        if self.expands:
            super()._make_layers()
            return
        # The one step whose activation is tracked before its BN: the order of a
        # trainable swish beta among the weights stays as it always was.
        self.project_conv = conv2d(self.out_channels, self.kernel_size, self.stride, name="project_conv")
        self.project_act = self._act("project_activation")
        self.project_bn = self._bn("project_bn")


@register_block("meconv")
class MEConv(ResidualBlock):
    """Mobile Equal-channel Convolution: three 1x1 and two depthwise convs, all M channels wide.

    1x1 (C_in -> M), BN, act; depthwise k x k stride s, BN, act; 1x1 (M -> M),
    BN, act; depthwise k x k stride 1, BN, act; SE (at "after_dw"); 1x1
    (M -> C_out), BN. M is `inner_channels`, chosen by the spec's
    `meconv_expand` rule. The first 1x1 is always there, even when M == C_in:
    the block is defined by its three pointwise convs.
    """

    def _steps(self) -> tuple[Step, ...]:
        width, k = self.inner_channels, self.kernel_size
        return (
            ConvBN("expand", width),
            ConvBN("dw", None, k, self.stride),
            ConvBN("mid", width),
            ConvBN("dw_2", None, k),
            SE,
            ConvBN("project", self.out_channels, activation=False),
        )

@register_block("conv31")
class Conv31(ResidualBlock):
    """A plain two-conv block for high-resolution stages: k x k conv (stride s), BN, act; 1x1 conv, BN.

    Regular convolutions use the hardware better than depthwise ones at
    112x112, which is why the compact study puts this block there. The k x k
    conv maps C_in to `inner_channels` (C_out times the stage's expand ratio).
    """

    def _steps(self) -> tuple[Step, ...]:
        return (
            ConvBN("spatial", self.inner_channels, self.kernel_size, self.stride),
            SE,
            ConvBN("project", self.out_channels, activation=False),
        )


@register_block("conv131")
class Conv131(ResidualBlock):
    """A bottleneck of regular convs: 1x1, BN, act; k x k (stride s), BN, act; 1x1, BN.

    Both inner convs are `inner_channels` wide (C_out times the stage's expand ratio).
    """

    def _steps(self) -> tuple[Step, ...]:
        return (
            ConvBN("expand", self.inner_channels),
            ConvBN("spatial", self.inner_channels, self.kernel_size, self.stride),
            SE,
            ConvBN("project", self.out_channels, activation=False),
        )
