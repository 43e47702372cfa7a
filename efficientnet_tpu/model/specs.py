"""The architecture as data: frozen specs for stages and models, and the scaling rules.

A `ModelSpec` is declarative: the unscaled stage table of the base network,
the width and depth multipliers, the resolution and every knob of the
studies. `resolve_blocks` turns it into the concrete list of blocks (scaled
channels, repeats, strides, SE placement, stochastic-depth rates) that the
builder, the summary and the tests all read, so they can never disagree.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from efficientnet_tpu.model.block_types import SE_POSITIONS, block_type

# Keras-free on purpose: specs, the registry and the family tables describe and resolve networks without Keras.
IMAGENET_MEAN_RGB = (0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0)
IMAGENET_STD_RGB = (0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0)
ActivationSpec = str | dict  # a name, or {"name": "swish", "beta": ..., "trainable_beta": ...}

SE_SCOPES = ("all", "noskip", "hasskip")
ROUNDING_RULES = ("v1", "v2")
MECONV_EXPANSIONS = ("none", "stride2", "resize", "out")
FAMILIES = ("efficientnet", "convnet", "resnet")
RESIZE_METHODS = ("bicubic", "bilinear")


@dataclass(frozen=True)
class StageSpec:
    """One row of the paper's Table 1: `repeats` blocks of one kind (unscaled)."""

    block: str
    kernel_size: int
    stride: int
    expand_ratio: float
    in_channels: int
    out_channels: int
    repeats: int
    se_ratio: float = 0.25

    def __post_init__(self) -> None:
        block_type(self.block)  # a ValueError naming the declared block types if it is not one


@dataclass(frozen=True)
class BlockSpec:
    """One concrete block of a resolved network."""

    name: str
    stage: int  # Table 1 numbering: stage 1 is the stem, blocks live in stages 2..
    block: str
    kernel_size: int
    stride: int
    expand_ratio: float
    in_channels: int
    out_channels: int
    inner_channels: int
    se_ratio: float
    se_position: str
    drop_rate: float

    @property
    def has_skip(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels

    def layer_kwargs(self) -> dict[str, Any]:
        """This block's arguments of its layer class: every field but the stage number and the block type."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("stage", "block")}


# The reference's eval crop: resolution / (resolution + CROP_PADDING) of the shorter side.
CROP_PADDING = 32


def reference_crop_fraction(resolution: int) -> float:
    """The EfficientNet reference's eval crop for this output size."""
    return resolution / (resolution + CROP_PADDING)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build, train, evaluate and export one network.

    The metadata next to the architecture (resolution, dropout, crop,
    normalization, resize method) is what training, eval and export read, so
    nobody is told twice. Resizing is bicubic, as in the reference, except at
    eval and serving of the lite family, whose reference pipeline resizes
    bilinearly (`resize_method`).
    """

    name: str
    stages: tuple[StageSpec, ...] = ()
    family: str = "efficientnet"
    stem_channels: int = 32
    head_channels: int = 1280
    width_coefficient: float = 1.0
    depth_coefficient: float = 1.0
    resolution: int = 224
    dropout_rate: float = 0.2
    drop_connect_rate: float = 0.2
    activation: str = "swish"
    swish_beta: float = 1.0
    trainable_swish_beta: bool = False
    se_activation: str = "swish"
    se_position: str = "after_dw"
    se_scope: str = "all"
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    sync_batch_norm: bool = False
    depth_divisor: int = 8
    min_depth: int | None = None
    rounding: str = "v1"
    scale_stem_head: bool = True
    # The lite builder (fix_head_stem) also keeps the first and last stage's repeats unscaled.
    scale_first_last_repeats: bool = True
    meconv_expand: str = "none"
    phi: float | None = None
    # None: the reference rule resolution / (resolution + 32). Models at their
    # data's native size (32px CIFAR nets) set 1.0: cropping would drop content.
    crop_fraction: float | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN_RGB
    std: tuple[float, float, float] = IMAGENET_STD_RGB
    resize_method: str = "bicubic"
    extra: tuple[tuple[str, object], ...] = field(default=())

    def __post_init__(self) -> None:
        _check_choice("family", self.family, FAMILIES)
        _check_choice("se_position", self.se_position, SE_POSITIONS)
        _check_choice("se_scope", self.se_scope, SE_SCOPES)
        _check_choice("rounding", self.rounding, ROUNDING_RULES)
        _check_choice("meconv_expand", self.meconv_expand, MECONV_EXPANSIONS)
        _check_choice("activation", self.activation, ("swish", "relu6", "relu"))
        _check_choice("se_activation", self.se_activation, ("swish", "relu"))
        _check_choice("resize_method", self.resize_method, RESIZE_METHODS)
        if self.resolution < 8:
            raise ValueError(f"resolution must be at least 8 pixels, got {self.resolution}.")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}.")
        if not 0.0 <= self.drop_connect_rate < 1.0:
            raise ValueError(f"drop_connect_rate must be in [0, 1), got {self.drop_connect_rate}.")
        if self.crop_fraction is not None and not 0.0 < self.crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction must be in (0, 1] or None, got {self.crop_fraction}.")

    @property
    def eval_crop_fraction(self) -> float:
        """The eval crop of the shorter side: `crop_fraction` if set, else resolution / (resolution + 32)."""
        return self.eval_crop_for(self.resolution)

    def eval_crop_for(self, resolution: int, *, whole_image: bool = False) -> float:
        """The one rule for the eval (and serving) crop at ``resolution``.

        `crop_fraction` when the spec sets it; the whole image (1.0) for data
        stored at a small native size (CIFAR, digits: cropping would drop
        content); else the reference's resolution / (resolution + 32).
        """
        if self.crop_fraction is not None:
            return self.crop_fraction
        if whole_image:
            return 1.0
        return reference_crop_fraction(resolution)

    def replace(self, **changes) -> "ModelSpec":
        return dataclasses.replace(self, **changes)

    def activation_spec(self) -> ActivationSpec:
        """What the blocks receive: a plain name, or swish with its options."""
        if self.activation == "swish" and (self.swish_beta != 1.0 or self.trainable_swish_beta):
            return {"name": "swish", "beta": self.swish_beta, "trainable_beta": self.trainable_swish_beta}
        return self.activation

    def block_options(self) -> dict[str, Any]:
        """The layer arguments every block of this network shares (beside `BlockSpec.layer_kwargs`)."""
        return {
            "activation": self.activation_spec(),
            "se_activation": self.se_activation,
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
            "sync_batch_norm": self.sync_batch_norm,
        }

    def round_filters(self, channels: int) -> int:
        return round_filters(
            channels,
            self.width_coefficient,
            divisor=self.depth_divisor,
            min_depth=self.min_depth,
            rule=self.rounding,
        )

    @property
    def stem_out(self) -> int:
        return self.round_filters(self.stem_channels) if self.scale_stem_head else self.stem_channels

    @property
    def head_out(self) -> int:
        return self.round_filters(self.head_channels) if self.scale_stem_head else self.head_channels


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}.")


def round_filters(
    channels: float,
    width_coefficient: float = 1.0,
    *,
    divisor: int = 8,
    min_depth: int | None = None,
    rule: str = "v1",
) -> int:
    """Scales a channel count and rounds it to a multiple of `divisor`.

    Rule "v1" (EfficientNet): never below `min_depth` and never more than 10%
    below the scaled value (then one `divisor` is added). Rule "v2"
    (EfficientNetV2, Keras Applications) drops the 10% guard.
    """
    scaled = channels * width_coefficient
    floor = min_depth or divisor
    rounded = max(floor, int(scaled + divisor / 2) // divisor * divisor)
    if rule == "v1" and rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth_coefficient: float) -> int:
    """Layers per stage after depth scaling: ceil(d * L); a removed stage (0) stays removed."""
    if repeats <= 0:
        return 0
    return max(1, int(math.ceil(depth_coefficient * repeats)))


def scaled_resolution(base: int, gamma: float, phi: float) -> int:
    """base * gamma**phi rounded to the nearest multiple of 8 (our reading: the paper gives no rule; docs/model.md)."""
    return max(8, int(round(base * gamma**phi / 8.0)) * 8)


def _uses_se(spec: ModelSpec, stage: StageSpec, has_skip: bool) -> tuple[float, str]:
    """Applies `se_position` to the blocks `se_scope` selects; the rest keep SE after the depthwise."""
    if stage.se_ratio <= 0:
        return 0.0, "none"
    in_scope = (
        spec.se_scope == "all"
        or (spec.se_scope == "noskip" and not has_skip)
        or (spec.se_scope == "hasskip" and has_skip)
    )
    position = spec.se_position if in_scope else "after_dw"
    return (0.0, "none") if position == "none" else (stage.se_ratio, position)


def resolve_blocks(spec: ModelSpec) -> list[BlockSpec]:
    """The concrete blocks of a spec: scaled widths and depths, SE placement, drop rates."""
    plan: list[tuple[int, StageSpec, int, int, int]] = []  # (stage number, stage, c_in, c_out, stride)
    channels = spec.stem_out  # each block reads what the previous one wrote, so removed stages just vanish
    last = len(spec.stages) - 1
    for index, stage in enumerate(spec.stages):
        c_out = spec.round_filters(stage.out_channels)
        fixed = not spec.scale_first_last_repeats and index in (0, last)
        repeats = stage.repeats if fixed else round_repeats(stage.repeats, spec.depth_coefficient)
        for repeat in range(repeats):
            plan.append((index + 2, stage, channels, c_out, stage.stride if repeat == 0 else 1))
            channels = c_out
    total = len(plan)
    blocks: list[BlockSpec] = []
    letters = "abcdefghijklmnopqrstuvwxyz"
    counters: dict[int, int] = {}
    for number, (stage_number, stage, c_in, c_out, stride) in enumerate(plan):
        position = counters.get(stage_number, 0)
        counters[stage_number] = position + 1
        has_skip = stride == 1 and c_in == c_out
        se_ratio, se_position = _uses_se(spec, stage, has_skip)
        suffix = letters[position] if position < len(letters) else f"_{position}"
        blocks.append(
            BlockSpec(
                name=f"block{stage_number - 1}{suffix}",
                stage=stage_number,
                block=stage.block,
                kernel_size=stage.kernel_size,
                stride=stride,
                expand_ratio=stage.expand_ratio,
                in_channels=c_in,
                out_channels=c_out,
                inner_channels=block_type(stage.block).inner_channels(spec, stage, c_in, c_out, stride),
                se_ratio=se_ratio,
                se_position=se_position,
                drop_rate=spec.drop_connect_rate * number / total,
            )
        )
    return blocks
