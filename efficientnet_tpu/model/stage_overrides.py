"""The stage-table overrides of the studies (`stage_blocks`, `remove_stages`, ...): pure spec rewrites. No Keras.

Model-level knobs (`se_position`, `se_scope`, `activation`, `meconv_expand`,
`scale_stem_head`, ...) are plain `ModelSpec` fields. The ones here change
rows of the stage table; stages are numbered as in Table 1 of the paper
(stage 1 is the stem, stage 2 the first block stage), and the numbering is
kept when a stage is removed, so `remove_stages=(2,)` with
`stage_blocks={3: "conv31"}` means what the compact study says. Each knob
touches one `StageSpec` field, so any combination gives the same spec in any
order. The override engine (`overrides`) registers them as keywords.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterable, Mapping

from efficientnet_tpu.model.block_types import block_names
from efficientnet_tpu.model.specs import ModelSpec

FIRST_BLOCK_STAGE = 2  # stage 1 is the stem


def _stage_number(spec: ModelSpec, key: Any, knob: str) -> int:
    """A Table-1 stage number from an int or a digit string (YAML and JSON keys are often strings)."""
    last = len(spec.stages) + FIRST_BLOCK_STAGE - 1
    if isinstance(key, str) and key.strip().isdigit():
        key = int(key)
    if isinstance(key, bool) or not isinstance(key, int) or not FIRST_BLOCK_STAGE <= key <= last:
        raise ValueError(
            f"{knob}: {key!r} is not a block stage of {spec.name!r}; stages are numbered as in "
            f"Table 1, {FIRST_BLOCK_STAGE}..{last} (stage 1 is the stem)."
        )
    return key


def _require_stages(spec: ModelSpec, knob: str) -> None:
    if not spec.stages:
        raise ValueError(
            f"{knob} changes the stage table, but {spec.name!r} ({spec.family} family) has none; "
            "use it with an EfficientNet variant such as 'b0' or 'v2_s'."
        )


def _as_mapping(value: Any, knob: str, example: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{knob} must be a mapping from stage number to value, e.g. {example}; got {value!r}.")
    return value


def _replace_stages(spec: ModelSpec, knob: str, changes: Mapping[Any, dict[str, Any]]) -> ModelSpec:
    stages = list(spec.stages)
    for key, fields in changes.items():
        index = _stage_number(spec, key, knob) - FIRST_BLOCK_STAGE
        stages[index] = dataclasses.replace(stages[index], **fields)
    return spec.replace(stages=tuple(stages))


def set_stage_blocks(spec: ModelSpec, value: Any) -> ModelSpec:
    """`stage_blocks={3: "conv31"}`: the block type of whole stages."""
    _require_stages(spec, "stage_blocks")
    mapping = _as_mapping(value, "stage_blocks", '{3: "conv31"}')
    for block in mapping.values():
        if block not in block_names():
            raise ValueError(
                f"stage_blocks: unknown block {block!r}; valid choices: {', '.join(block_names())}."
            )
    return _replace_stages(spec, "stage_blocks", {k: {"block": v} for k, v in mapping.items()})


def _positive_number(value: Any, knob: str, allow_zero: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{knob}: every value must be a {bound} finite number, got {value!r}.")
    return float(value)


def set_stage_expand_ratios(spec: ModelSpec, value: Any) -> ModelSpec:
    """`stage_expand_ratios={3: 1}`: the expansion ratio of whole stages (the inner-width rule of every block type)."""
    _require_stages(spec, "stage_expand_ratios")
    mapping = _as_mapping(value, "stage_expand_ratios", "{3: 1}")
    changes = {k: {"expand_ratio": _positive_number(v, "stage_expand_ratios", False)} for k, v in mapping.items()}
    return _replace_stages(spec, "stage_expand_ratios", changes)


def set_stage_se_ratios(spec: ModelSpec, value: Any) -> ModelSpec:
    """`stage_se_ratios={2: 0}`: the SE ratio of whole stages; 0 removes SE there whatever se_position says."""
    _require_stages(spec, "stage_se_ratios")
    mapping = _as_mapping(value, "stage_se_ratios", "{2: 0, 3: 0}")
    changes = {}
    for key, ratio in mapping.items():
        ratio = _positive_number(ratio, "stage_se_ratios", True)
        if ratio > 1:
            raise ValueError(f"stage_se_ratios: an SE ratio is at most 1, got {ratio}.")
        changes[key] = {"se_ratio": ratio}
    return _replace_stages(spec, "stage_se_ratios", changes)


def remove_stages(spec: ModelSpec, value: Any) -> ModelSpec:
    """`remove_stages=(2,)`: drops whole stages; the next block reads what the previous one wrote."""
    _require_stages(spec, "remove_stages")
    numbers: Iterable[Any] = (value,) if isinstance(value, (int, str)) else value
    if not isinstance(numbers, Iterable):
        raise ValueError(f"remove_stages must be a stage number or a list of them, e.g. (2,); got {value!r}.")
    spec = _replace_stages(spec, "remove_stages", {n: {"repeats": 0} for n in numbers})
    if all(stage.repeats == 0 for stage in spec.stages):
        raise ValueError(f"remove_stages={value!r} removes every block stage of {spec.name!r}; keep at least one.")
    return spec


STAGE_OVERRIDES: dict[str, Callable[[ModelSpec, Any], ModelSpec]] = {
    "stage_blocks": set_stage_blocks,
    "stage_expand_ratios": set_stage_expand_ratios,
    "stage_se_ratios": set_stage_se_ratios,
    "remove_stages": remove_stages,
}
