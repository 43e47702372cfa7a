"""Conv131, the compact study's ablation block: a bottleneck of regular convs, 1x1, k x k, 1x1."""

from __future__ import annotations

from efficientnet_tpu.model.blocks.base import SE, ConvBN, ResidualBlock, Step, register_block


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
