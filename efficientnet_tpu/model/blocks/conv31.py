"""Conv31, the compact study's block for high-resolution stages: k x k conv, BN, act; 1x1 conv, BN."""

from __future__ import annotations

from efficientnet_tpu.model.blocks.base import SE, ConvBN, ResidualBlock, Step, register_block


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
