"""Fused-MBConv, EfficientNetV2's block: one k x k conv in place of the 1x1 expansion and the depthwise conv.

On `ResidualBlock`, so SE placement (`after_dw` / `end` / `none`), the
identity shortcut and stochastic depth behave exactly as in MBConv. It names
its sublayers as Keras Applications' EfficientNetV2 does (`expand_conv`,
`project_conv`, ...) so those weights load by name.
"""

from __future__ import annotations

from efficientnet_tpu.model.blocks.base import SE, ConvBN, ResidualBlock, Step, register_block
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
