"""Every trial of a study resolved before the first one trains: its variant, model overrides and dataset.

A typo in a spec's axis (``model_overrides.se_postion``, a variant ``b0_lit``)
would otherwise fail every trial, one after the other, once the study has
started. Resolution reads the model specs only (``get_spec`` and
``resolve_blocks``; no network is built), once per distinct architecture, so
checking a few hundred trials takes a fraction of a second.
"""

from __future__ import annotations

import json
from typing import Sequence

from efficientnet_tpu.data.registry import DATASET_NAMES
from efficientnet_tpu.model.registry import list_variants
from efficientnet_tpu.model.specs import resolve_blocks
from efficientnet_tpu.training import config as config_lib
from efficientnet_tpu.training import modeling


def problem(config: config_lib.TrainConfig) -> str | None:
    """Why this trial's network or data cannot be set up (one line naming the key or value), or None."""
    if config.dataset not in DATASET_NAMES:
        return f"dataset {config.dataset!r} is unknown; valid datasets: {', '.join(DATASET_NAMES)}"
    if config.variant not in list_variants():
        return f"variant {config.variant!r} is unknown; valid variants: {', '.join(list_variants())}"
    try:
        for key, value in (config.model_overrides or {}).items():
            modeling.check_model_overrides({key: value}, source=f"model_overrides.{key}")
        resolve_blocks(modeling.model_spec(config))
    except ValueError as e:
        text = " ".join(str(e).split())
        return text if text.startswith("model_overrides.") else f"variant {config.variant!r}: {text}"
    return None


def _key(config: config_lib.TrainConfig) -> str:
    """What decides resolution: the architecture keys and the dataset."""
    keys = (*config_lib.ARCHITECTURE_KEYS, "dataset", "dropout_rate", "drop_connect_rate")
    return json.dumps({k: getattr(config, k) for k in keys}, sort_keys=True, default=str)


def problems(trials: Sequence[tuple[str, config_lib.TrainConfig]], source: str) -> list[str]:
    """One line per distinct problem among ``(label, config)`` trials, naming the first trial it hits."""
    found: dict[str, list[str]] = {}
    cache: dict[str, str | None] = {}
    for label, config in trials:
        key = _key(config)
        if key not in cache:
            cache[key] = problem(config)
        if cache[key] is not None:
            found.setdefault(cache[key], []).append(label)
    lines = []
    for text, labels in found.items():
        more = f" and {len(labels) - 1} more" if len(labels) > 1 else ""
        lines.append(f"{source}: {labels[0]}{more}: {text}")
    return lines
