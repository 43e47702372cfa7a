"""MBConv, EfficientNet's block: 1x1 expand, k x k depthwise, SE, 1x1 linear projection."""

from __future__ import annotations

from efficientnet_tpu.model.blocks.base import SE, ConvBN, ResidualBlock, Step, register_block


@register_block("mbconv")
class MBConv(ResidualBlock):
    """Mobile inverted bottleneck: 1x1 expand, k x k depthwise, SE, 1x1 linear projection."""

    def _steps(self) -> tuple[Step, ...]:
        expands = self.inner_channels != self.in_channels
        return (
            *([ConvBN("expand", self.inner_channels)] if expands else []),
            ConvBN("dw", None, self.kernel_size, self.stride),
            SE,
            ConvBN("project", self.out_channels, activation=False),
        )

    def _make_layers(self) -> None:
        self.expand_conv = self.expand_bn = self.expand_act = None  # without expansion
        super()._make_layers()
