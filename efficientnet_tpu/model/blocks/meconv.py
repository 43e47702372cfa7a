"""MEConv, the Mobile Equal-channel Convolution of the MEConv study: three 1x1 and two depthwise convs, M wide."""

from __future__ import annotations

from efficientnet_tpu.model.blocks.base import SE, ConvBN, ResidualBlock, Step, register_block


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
