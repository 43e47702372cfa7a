"""The block layers, one file per block type, on the skeleton they share.

`base.py` holds `ResidualBlock` (main path as `ConvBN` steps and the `SE`
marker, SE placement, shortcut, stochastic depth) and the layer registry
(`register_block`, `block_class`). Each block type is one file that defines
its layer class and registers it under its name with `@register_block`:
`mbconv.py`, `fused_mbconv.py`, `meconv.py`, `conv31.py`, `conv131.py`. The
names, Table-1 labels and inner-width rules are declared without Keras in
`model/block_types.py`. Importing this package registers every layer, in
the order the block types are declared.
"""

from efficientnet_tpu.model.blocks.base import (
    BLOCK_LAYERS,
    SE,
    ConvBN,
    ResidualBlock,
    Step,
    block_class,
    register_block,
)

# One line per block type, in block_types.py's declaration order (each module registers its layer).
from efficientnet_tpu.model.blocks.mbconv import MBConv  # isort: skip
from efficientnet_tpu.model.blocks.fused_mbconv import FusedMBConv  # isort: skip
from efficientnet_tpu.model.blocks.meconv import MEConv  # isort: skip
from efficientnet_tpu.model.blocks.conv31 import Conv31  # isort: skip
from efficientnet_tpu.model.blocks.conv131 import Conv131  # isort: skip

__all__ = [
    "BLOCK_LAYERS",
    "SE",
    "Conv131",
    "Conv31",
    "ConvBN",
    "FusedMBConv",
    "MBConv",
    "MEConv",
    "ResidualBlock",
    "Step",
    "block_class",
    "register_block",
]
