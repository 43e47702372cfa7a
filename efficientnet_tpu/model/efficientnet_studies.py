"""The EfficientNet study variants (SE placement, MEConv, lite, compact, fused), each a set of knobs over B0. No Keras.

A preset is nothing but the `build_model` overrides it stands for, so
`build_model("b0_seend_noskip", phi=2)` equals
`build_model("b0", phi=2, se_position="end", se_scope="noskip")`, and any
knob given on top of a preset still applies. Stage numbers follow Table 1
(stage 2 is B0's MBConv1 at 112x112, stage 3 its first MBConv6 stage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from efficientnet_tpu.model.efficientnet import register_b0_preset
from efficientnet_tpu.model.overrides import apply_overrides
from efficientnet_tpu.model.specs import ModelSpec

MBCONV6_STAGES = (3, 4, 5, 6, 7, 8)

# EfficientNet-lite: no SE, ReLU6, stem and head kept at 32 and 1280 channels.
LITE: dict[str, Any] = {"se_position": "none", "se_scope": "all", "activation": "relu6", "scale_stem_head": False}
# Conv31 / Conv131 at the stage's expand ratio 1: inner width C_out (our reading; docs/model.md, "Readings").
COMPACT: dict[str, Any] = {**LITE, "remove_stages": (2,), "stage_expand_ratios": {3: 1}}
MECONV: dict[str, Any] = {"stage_blocks": {stage: "meconv" for stage in MBCONV6_STAGES}}


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    overrides: Mapping[str, Any]

    def apply(self, base: ModelSpec) -> ModelSpec:
        return apply_overrides(base, dict(self.overrides))


PRESETS: tuple[Preset, ...] = (
    Preset("b0_seend", "B0, SE after the projection BN in every block", {"se_position": "end"}),
    Preset(
        "b0_seend_noskip",
        "B0, SE moved to the block end in the 7 blocks without identity shortcut",
        {"se_position": "end", "se_scope": "noskip"},
    ),
    Preset(
        "b0_seend_hasskip",
        "B0, SE moved to the block end in the 9 blocks with identity shortcut",
        {"se_position": "end", "se_scope": "hasskip"},
    ),
    Preset("b0_nose", "B0 without any SE module", {"se_position": "none"}),
    Preset(
        "b0_nose_noskip",
        "B0, SE removed from the 7 blocks without identity shortcut",
        {"se_position": "none", "se_scope": "noskip"},
    ),
    Preset(
        "b0_nose_hasskip",
        "B0, SE removed from the 9 blocks with identity shortcut",
        {"se_position": "none", "se_scope": "hasskip"},
    ),
    Preset("b0_meconv", "B0, every MBConv6 block an MEConv with M = C_out", {**MECONV, "meconv_expand": "none"}),
    Preset(
        "b0_meconv_expand_stride2",
        "b0_meconv, stride-2 blocks expand to M = 6 C_in",
        {**MECONV, "meconv_expand": "stride2"},
    ),
    Preset(
        "b0_meconv_expand_resize",
        "b0_meconv, blocks that change shape expand to M = 6 C_in",
        {**MECONV, "meconv_expand": "resize"},
    ),
    Preset(
        "b0_meconv_expand_out",
        "b0_meconv, blocks that change shape expand to M = 6 C_out",
        {**MECONV, "meconv_expand": "out"},
    ),
    Preset("b0_lite", "EfficientNet-lite0: no SE, ReLU6, stem and head not scaled", LITE),
    Preset("b0_lite_nostage2", "b0_lite without stage 2 (the MBConv1 at 112x112)", {**LITE, "remove_stages": (2,)}),
    Preset(
        "b0_compact",
        "b0_lite without stage 2, stage 3 built from Conv31 blocks",
        {**COMPACT, "stage_blocks": {3: "conv31"}},
    ),
    Preset(
        "b0_compact_conv131",
        "b0_lite without stage 2, stage 3 built from Conv131 blocks",
        {**COMPACT, "stage_blocks": {3: "conv131"}},
    ),
    Preset(
        "b0_fused",
        "B0 with stages 2-4 made of Fused-MBConv without SE",
        {
            "stage_blocks": {2: "fused_mbconv", 3: "fused_mbconv", 4: "fused_mbconv"},
            "stage_se_ratios": {2: 0, 3: 0, 4: 0},
        },
    ),
)


def preset(name: str) -> Preset:
    """The preset registered under `name` (ValueError naming the presets otherwise)."""
    for entry in PRESETS:
        if entry.name == name:
            return entry
    raise ValueError(f"No preset {name!r}; presets: {', '.join(p.name for p in PRESETS)}.")


for _preset in PRESETS:
    register_b0_preset(_preset.name, _preset.description, _preset.apply)
