"""EfficientNetV2's progressive learning: training in stages of growing image size and regularization.

The schedule is google/automl's (efficientnetv2/main.py ``main`` and
main_tf2.py ``main``): training is split into ``stages`` equal parts; stage
``s`` (0-based) of ``S`` ends at step ``int((s + 1) / S * total_steps)``,
trains at ``int(ibase + (train_size - ibase) * (s + 1) / S)`` pixels, and
its RandAugment magnitude, mixup and cutmix strengths are the ``s``-th of
``numpy.linspace(min, max, S)``. The per-variant values (train and eval size,
the ramps' ends, the augmentation) are data, in a recipe file
(configs/progressive/v2_progressive.yaml); this module reads it, plans the stages and
switches the trainer between them.

The controller is one of the training loop's actions (training/actions.py):
the loop calls its ``before`` before every compiled call, which cuts the call
at the stage's end. On entering a stage the controller rebuilds the input pipeline at the
stage's size and magnitudes, sets the classifier's dropout rate, recompiles
the training loop once (one trace per stage, however many loops it runs),
records the stage index in the checkpoint, and logs the stage to the
console and TensorBoard.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable, Mapping

import numpy as np
import yaml

from efficientnet_tpu.training.actions import Action

RECIPE_KEYS = ("augment", "image_size", "eval_size", "randaugment_magnitude", "mixup_alpha", "cutmix_alpha",
               "dropout_rate", "stages")
RAMPS = ("randaugment_magnitude", "mixup_alpha", "cutmix_alpha", "dropout_rate")
AUGMENTS = ("none", "default", "randaugment", "autoaugment", "seed003")
# Each stage's input stream has its own seed (seed + stride * stage).
STAGE_SEED_STRIDE = 10_007


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One variant's entry of a recipe file; ramps are (first stage, last stage) or None (not ramped)."""

    name: str
    source: str
    stages: int
    image_size: tuple[int, int]  # (ibase, train_size)
    eval_size: int
    augment: str | None
    randaugment_magnitude: tuple[float, float] | None
    mixup_alpha: tuple[float, float]
    cutmix_alpha: tuple[float, float]
    dropout_rate: tuple[float, float] | None


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage: steps [start_step, end_step) at image_size with these regularization strengths."""

    index: int
    num_stages: int
    start_step: int
    end_step: int
    image_size: int
    randaugment_magnitude: float | None
    mixup_alpha: float
    cutmix_alpha: float
    dropout_rate: float | None

    def describe(self) -> str:
        parts = [f"stage {self.index + 1}/{self.num_stages}: steps {self.start_step}-{self.end_step}",
                 f"image size {self.image_size}"]
        if self.randaugment_magnitude is not None:
            parts.append(f"RandAugment magnitude {self.randaugment_magnitude:.4g}")
        parts.append(f"mixup {self.mixup_alpha:.4g}")
        parts.append(f"cutmix {self.cutmix_alpha:.4g}")
        if self.dropout_rate is not None:
            parts.append(f"dropout {self.dropout_rate:.4g}")
        return ", ".join(parts)

    def scalars(self) -> dict[str, float]:
        """What TensorBoard records at the stage's first step."""
        out = {"stage/index": self.index, "stage/image_size": self.image_size,
               "stage/mixup_alpha": self.mixup_alpha, "stage/cutmix_alpha": self.cutmix_alpha}
        if self.randaugment_magnitude is not None:
            out["stage/randaugment_magnitude"] = self.randaugment_magnitude
        if self.dropout_rate is not None:
            out["stage/dropout_rate"] = self.dropout_rate
        return out


def recipe_path(value: str) -> str:
    """A recipe file path, or a bare name looked up in configs/progressive/ (repository or package)."""
    if os.path.exists(value) or os.sep in value or value.endswith((".yaml", ".yml")):
        return value
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for folder in (os.path.join(os.path.dirname(package), "configs", "progressive"),
                   os.path.join(package, "configs", "progressive")):
        candidate = os.path.join(folder, value + ".yaml")
        if os.path.exists(candidate):
            return candidate
    return value


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{where} must be a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _pair(entry: Mapping[str, Any], key: str, where: str, low: float, high: float,
          optional: bool) -> tuple[float, float] | None:
    value = entry.get(key)
    if value is None:
        if optional:
            return None
        return (0.0, 0.0)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{where}.{key} must be [first stage, last stage], got {value!r}")
    return (_number(value[0], f"{where}.{key}[0]", low, high), _number(value[1], f"{where}.{key}[1]", low, high))


def _int(value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{where} must be an int >= {low}, got {value!r}")
    return value


def load_recipe(value: str, variant: str) -> Recipe:
    """Reads the recipe file and returns its entry for ``variant`` (one-line ValueError when bad)."""
    path = recipe_path(value)
    if not os.path.isfile(path):
        raise ValueError(f"--progressive={value}: no recipe file {path}; give a YAML path or "
                         "v2_progressive (configs/progressive/v2_progressive.yaml)")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ValueError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("variants"), dict):
        raise ValueError(f"{path} must hold a mapping with 'variants' (variant name -> its recipe)")
    unknown = sorted(set(data) - {"stages", "variants"})
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(map(str, unknown))}; valid: stages, variants")
    if variant not in data["variants"]:
        raise ValueError(f"{path} has no recipe for variant {variant!r}; it has "
                         f"{', '.join(map(str, data['variants']))}")
    entry = data["variants"][variant]
    where = f"{path}: variants.{variant}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a mapping of {', '.join(RECIPE_KEYS)}")
    unknown = sorted(set(entry) - set(RECIPE_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; valid: {', '.join(RECIPE_KEYS)}")
    stages = _int(entry.get("stages", data.get("stages", 4)), f"{where}.stages", 1)
    sizes = entry.get("image_size")
    if not isinstance(sizes, (list, tuple)) or len(sizes) != 2:
        raise ValueError(f"{where}.image_size must be [ibase, train_size] in pixels, got {sizes!r}")
    ibase, train_size = (_int(s, f"{where}.image_size", 8) for s in sizes)
    eval_size = _int(entry.get("eval_size"), f"{where}.eval_size", 8)
    augment = entry.get("augment")
    if augment is not None and augment not in AUGMENTS:
        raise ValueError(f"{where}.augment must be one of {', '.join(AUGMENTS)}, got {augment!r}")
    return Recipe(
        name=variant, source=path, stages=stages, image_size=(ibase, train_size), eval_size=eval_size,
        augment=augment,
        randaugment_magnitude=_pair(entry, "randaugment_magnitude", where, 0.0, 30.0, optional=True),
        mixup_alpha=_pair(entry, "mixup_alpha", where, 0.0, 1e6, optional=False),
        cutmix_alpha=_pair(entry, "cutmix_alpha", where, 0.0, 1e6, optional=False),
        dropout_rate=_pair(entry, "dropout_rate", where, 0.0, 0.999, optional=True))


def plan_stages(recipe: Recipe, total_steps: int) -> list[Stage]:
    """The stages of a run of ``total_steps`` steps, as automl's main.py splits them.

    A stage left without steps (fewer steps than stages) is dropped.
    """
    count = recipe.stages
    ibase, train_size = recipe.image_size

    def ramp(pair: tuple[float, float] | None) -> list[float | None]:
        if pair is None:
            return [None] * count
        return [float(v) for v in np.linspace(pair[0], pair[1], count)]

    magnitudes, mixups, cutmixes, dropouts = (ramp(getattr(recipe, name)) for name in RAMPS)
    stages, start = [], 0
    for index in range(count):
        ratio = float(index + 1) / float(count)
        end = int(ratio * total_steps)
        if end > start:
            stages.append(Stage(index=index, num_stages=count, start_step=start, end_step=end,
                                image_size=int(ibase + (train_size - ibase) * ratio),
                                randaugment_magnitude=magnitudes[index], mixup_alpha=mixups[index],
                                cutmix_alpha=cutmixes[index], dropout_rate=dropouts[index]))
        start = max(start, end)
    return stages


class StageController(Action):
    """Switches a Trainer between the stages (see the module docstring): a loop action acting before calls.

    ``make_input_fn(stage)`` returns the trainer's input function for that
    stage: ``(context, global start step) -> per-replica dataset``.
    """

    every_steps = None  # acts in ``before`` only

    def __init__(self, stages: list[Stage], make_input_fn: Callable[[Stage], Callable],
                 eval_size: int | None = None) -> None:
        if not stages:
            raise ValueError("progressive learning needs at least one stage with steps")
        self.stages = stages
        self.make_input_fn = make_input_fn
        self.eval_size = eval_size
        self.variable = None
        self.current: Stage | None = None
        self.train_loops: list[Any] = []  # the compiled loops it made, one per stage entered

    def build(self) -> Any:
        """The checkpointed stage index (-1 before the first stage); call inside the strategy scope."""
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        self.variable = tf.Variable(-1, dtype=tf.int64, trainable=False, name="stage",
                                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        return self.variable

    def stage_for(self, step: int) -> Stage:
        for stage in self.stages:
            if step < stage.end_step:
                return stage
        return self.stages[-1]

    def recorded_stage(self) -> int:
        return int(self.variable.numpy()) if self.variable is not None else -1

    def before(self, trainer, step: int, steps: int) -> int:
        """Enters the stage ``step`` belongs to when needed; returns ``steps`` cut at the stage's end."""
        stage = self.stage_for(step)
        if self.current is None:
            recorded = self.recorded_stage()
            if recorded >= 0:
                trainer.message(f"resuming progressive learning in stage {stage.index + 1}/{stage.num_stages} "
                                 f"at step {step} (the checkpoint recorded stage {recorded + 1})")
            elif self.eval_size is not None:
                trainer.message(f"progressive learning: {len(self.stages)} stages up to "
                                 f"{self.stages[-1].image_size}px, eval at {self.eval_size}px")
        if self.current is None or stage.index != self.current.index:
            self._enter(trainer, stage, step)
        return max(1, min(steps, stage.end_step - step))

    def _enter(self, trainer, stage: Stage, step: int) -> None:
        set_dropout(trainer.model, stage.dropout_rate)
        trainer.train_input_fn = self.make_input_fn(stage)
        trainer.train_iterator = trainer._make_iterator(step)
        trainer._train_loop = trainer._make_train_loop()  # traced once, on this stage's first loop
        self.train_loops.append(trainer._train_loop)
        self.variable.assign(stage.index)
        self.current = stage
        trainer.message(stage.describe())
        if trainer.strategy_info.is_chief:
            trainer.summaries.write_train(stage.scalars(), step)
            trainer.summaries.write_text("stage", stage.describe(), step)

    def trace_count(self) -> int:
        """Traces of the compiled training loop over all stages entered by this process."""
        return sum(int(fn.experimental_get_tracing_count()) for fn in self.train_loops)


def dropout_layers(model) -> list:
    import keras  # pylint: disable=import-outside-toplevel

    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dropout)
            and layer.name == "top_dropout"]


def set_dropout(model, rate: float | None) -> None:
    """Sets the classifier's dropout rate in place (the next trace uses it); None leaves it."""
    if rate is None:
        return
    layers = dropout_layers(model)
    if not layers:
        if rate > 0:
            raise ValueError("the recipe ramps dropout but the network has no classifier dropout layer; "
                             "build it with a dropout_rate > 0")
        return
    for layer in layers:
        layer.rate = float(rate)


__all__ = ["Recipe", "Stage", "StageController", "load_recipe", "plan_stages", "recipe_path", "set_dropout",
           "STAGE_SEED_STRIDE"]
