"""The study blocks at the import path docs/model.md documented before `model/blocks/` had one file per block.

`from efficientnet_tpu.model.blocks_extra import FusedMBConv` keeps working;
the classes live in `model/blocks/` (`fused_mbconv.py`, `meconv.py`,
`conv31.py`, `conv131.py`), and new code imports them from
`efficientnet_tpu.model.blocks`.
"""

from efficientnet_tpu.model.blocks import Conv31, Conv131, FusedMBConv, MEConv

__all__ = ["Conv131", "Conv31", "FusedMBConv", "MEConv"]
