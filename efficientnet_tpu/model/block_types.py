"""The block types a stage may name, as data: name, Table-1 label and inner-width rule. No Keras.

The architecture modules (`specs`, the registry, the family tables, the
stage overrides) check a stage's block name and resolve its inner width here,
so a network can be described, resolved and counted without loading Keras or
TensorFlow. The Keras layer of each type is one file of `blocks/` (`mbconv.py`,
`fused_mbconv.py`, ...) and is linked to its name there by `@register_block`,
which accepts only a name declared here: one `register_block_type` line per
type, at the end of this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

SE_POSITIONS = ("after_dw", "end", "none")


class ModelSpec(Protocol):
    """What an inner-width rule reads of `specs.ModelSpec` (specs imports this module, not the reverse)."""

    meconv_expand: str


class StageSpec(Protocol):
    """What an inner-width rule reads of `specs.StageSpec`."""

    expand_ratio: float


# (spec, stage, c_in, c_out, stride) -> the width of the block's inner layers.
InnerWidthRule = Callable[[ModelSpec, StageSpec, int, int, int], int]


def expand_input(spec: ModelSpec, stage: StageSpec, c_in: int, c_out: int, stride: int) -> int:
    """MBConv's rule (and Fused-MBConv's): C_in times the stage's expand ratio."""
    return int(c_in * stage.expand_ratio)


def meconv_width(spec: ModelSpec, stage: StageSpec, c_in: int, c_out: int, stride: int) -> int:
    """M by the spec's `meconv_expand` rule: C_out, or the expand ratio times C_in (or C_out) where it expands."""
    expands = {
        "none": False,
        "stride2": stride == 2,
        "resize": stride == 2 or c_in != c_out,
        "out": stride == 2 or c_in != c_out,
    }[spec.meconv_expand]
    if not expands:
        return c_out
    base = c_out if spec.meconv_expand == "out" else c_in
    return int(base * stage.expand_ratio)


def expand_output(spec: ModelSpec, stage: StageSpec, c_in: int, c_out: int, stride: int) -> int:
    """Conv31's and Conv131's rule: C_out times the stage's expand ratio (so ratio 1 gives C_out)."""
    return max(1, int(round(c_out * stage.expand_ratio)))


@dataclass(frozen=True)
class BlockType:
    """What the architecture modules know of a block type: its name, Table-1 label and inner width."""

    name: str
    label: str  # the operator column of Table 1; `{expand}` and `{kernel}` are filled in
    inner_channels: InnerWidthRule = expand_input


BLOCK_TYPES: dict[str, BlockType] = {}


def register_block_type(name: str, label: str, inner_channels: InnerWidthRule = expand_input) -> BlockType:
    """Declares a block type that `StageSpec.block` may name (its layer then registers with `@register_block`)."""
    if name in BLOCK_TYPES:
        raise ValueError(f"Block type {name!r} is registered twice.")
    if not label:
        raise ValueError(
            f"Block type {name!r} needs a Table-1 `label`, e.g. 'MBConv{{expand:g}}, k{{kernel}}x{{kernel}}'."
        )
    BLOCK_TYPES[name] = BlockType(name, label, inner_channels)
    return BLOCK_TYPES[name]


def block_names() -> tuple[str, ...]:
    """Every block type a `StageSpec` may name, in registration order."""
    return tuple(BLOCK_TYPES)


def block_type(name: str) -> BlockType:
    """The block type declared under `name` (ValueError naming the declared ones otherwise)."""
    if name not in BLOCK_TYPES:
        raise ValueError(f"Unknown block {name!r}; valid choices: {', '.join(BLOCK_TYPES)}.")
    return BLOCK_TYPES[name]


register_block_type("mbconv", "MBConv{expand:g}, k{kernel}x{kernel}")
register_block_type("fused_mbconv", "Fused-MBConv{expand:g}, k{kernel}x{kernel}")
register_block_type("meconv", "MEConv, k{kernel}x{kernel}", meconv_width)
register_block_type("conv31", "Conv31, k{kernel}x{kernel}", expand_output)
register_block_type("conv131", "Conv131, k{kernel}x{kernel}", expand_output)
