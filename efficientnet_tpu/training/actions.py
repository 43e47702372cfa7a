"""The training loop's schedule as data: interval actions that ``Trainer.train`` runs between compiled calls.

``Trainer.train`` only runs the compiled steps and the actions: before each
call every action may prepare it and cut its length (``before``: a stage
change, the end of a frozen backbone), and after it each action that is
``due`` runs (``__call__``). ``begin`` and ``end`` open and close what an
action holds for one ``train`` call (``end`` runs however training stops).
An action is due after a call that crossed a multiple of ``every_steps``
(1: after every call; None: never on an interval) and, with ``at_end``,
after the last step.

The built-in order is the behaviour the tests pin: divergence is checked
first, then progress and summaries, then evaluation *before* the checkpoint
of the same step (weights whose evaluation is NaN are never saved), then
custom actions, and the preemption check last (it saves and raises
``Preempted``). A new action (a summary, an early stop) is a subclass passed
as ``Trainer(actions=[...])``; the loop is not edited.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from efficientnet_tpu.training.preemption import Preempted, PreemptionWatcher
from efficientnet_tpu.training.progress import ProgressLine

# The trainer is typed Any here: loop.py imports this module, not the other way round.
TrainerLike = Any


class Action:
    """One scheduled job of the loop; subclasses override what they need (all hooks default to nothing)."""

    every_steps: int | None = 1
    at_end: bool = False

    def due(self, start: int, step: int, total_steps: int) -> bool:
        """Whether this action runs after the call that took training from ``start`` to ``step``."""
        if self.at_end and step >= total_steps:
            return True
        return bool(self.every_steps) and step // self.every_steps > start // self.every_steps

    def begin(self, trainer: TrainerLike, step: int, total_steps: int) -> None:
        """Before the first compiled call of a ``train`` call."""

    def before(self, trainer: TrainerLike, step: int, steps: int) -> int:
        """Prepares the next compiled call from ``step``; returns its length, cut where this action must run."""
        return steps

    def __call__(self, trainer: TrainerLike, step: int, result: Any) -> None:
        """After a compiled call ending at ``step`` (``result``: its LoopResult), when due."""

    def end(self, trainer: TrainerLike, step: int) -> None:
        """When the ``train`` call ends, normally or not."""


class StopOnDivergence(Action):
    """A NaN or infinite loss in a call raises TrainingDiverged before anything else sees the weights."""

    def __call__(self, trainer: TrainerLike, step: int, result: Any) -> None:
        if result.nonfinite > 0:
            raise trainer.diverged(f"the loss became NaN or infinite between steps {step - result.steps} and {step}")


def loop_scalars(trainer: TrainerLike, step: int, result: Any) -> dict[str, float]:
    """The per-call training scalars the progress line and TensorBoard show."""
    step_time = result.seconds / result.steps
    return {"loss": result.loss_sum / result.steps, "total_loss": result.total_loss_sum / result.steps,
            "accuracy": result.correct / max(result.examples, 1), "learning_rate": float(trainer.schedule(step)),
            "images_per_second": trainer.config.train_batch_size / step_time, "step_time": step_time}


class LogProgress(Action):
    """The console progress line, with an ETA from the median of recent calls (not the first: it traces)."""

    def __init__(self) -> None:
        self.line: ProgressLine | None = None
        self.total_steps = 0
        self.recent: list[float] = []
        self.first_call = True

    def begin(self, trainer: TrainerLike, step: int, total_steps: int) -> None:
        self.total_steps = total_steps
        self.line = ProgressLine(total_steps, enabled=trainer.show_progress and trainer.strategy_info.is_chief)
        trainer.progress_line = self.line  # messages end the in-place line first

    def __call__(self, trainer: TrainerLike, step: int, result: Any) -> None:
        scalars = loop_scalars(trainer, step, result)
        if not self.first_call:
            self.recent = (self.recent + [scalars["step_time"]])[-20:]
        self.first_call = False
        eta = float(np.median(self.recent)) * (self.total_steps - step) if self.recent else None
        metrics = {name: scalars[name] for name in ("loss", "accuracy", "learning_rate")}
        self.line.update(step, metrics, scalars["images_per_second"], scalars["step_time"],
                         eta_seconds=eta, force=step >= self.total_steps)

    def end(self, trainer: TrainerLike, step: int) -> None:
        if self.line is not None:
            self.line.close()
        trainer.progress_line = None


class WriteTrainSummaries(Action):
    """Loss (with and without weight decay), accuracy, learning rate and speed to TensorBoard (chief only)."""

    def __call__(self, trainer: TrainerLike, step: int, result: Any) -> None:
        if trainer.strategy_info.is_chief:
            trainer.summaries.write_train(loop_scalars(trainer, step, result), step)


class Evaluate(Action):
    """Evaluates every ``every_steps`` and at the end; ``last`` is the newest result (what ``train`` returns)."""

    at_end = True

    def __init__(self, every_steps: int) -> None:
        self.every_steps = every_steps
        self.last: dict[str, Any] | None = None

    def __call__(self, trainer: TrainerLike, step: int, result: Any) -> None:
        self.last = trainer.evaluate()


class SaveCheckpoint(Action):
    """Saves every ``every_steps`` and at the end (``Trainer.save`` refuses non-finite weights)."""

    at_end = True

    def __init__(self, every_steps: int) -> None:
        self.every_steps = every_steps

    def __call__(self, trainer: TrainerLike, step: int, result: Any) -> None:
        trainer.save()


class FreezeBackbone(Action):
    """Fine-tuning: the backbone frozen for the first ``freeze_steps``, unfrozen at that step exactly."""

    every_steps = None

    def __init__(self, freeze_steps: int) -> None:
        self.freeze_steps = freeze_steps

    def before(self, trainer: TrainerLike, step: int, steps: int) -> int:
        frozen = step < self.freeze_steps
        trainer.freeze_backbone(frozen)
        return min(steps, self.freeze_steps - step) if frozen else steps


class CallAfterLoop(Action):
    """Calls ``fn(trainer)`` after every call (``run`` refreshes the model_dir lock this way)."""

    def __init__(self, fn: Callable[[TrainerLike], None]) -> None:
        self.fn = fn

    def __call__(self, trainer: TrainerLike, step: int, result: Any) -> None:
        self.fn(trainer)


class CheckPreemption(Action):
    """After every call: on a termination notice, saves a checkpoint and raises ``Preempted``."""

    def __init__(self) -> None:
        self.watcher: PreemptionWatcher | None = None

    def begin(self, trainer: TrainerLike, step: int, total_steps: int) -> None:
        config = trainer.config
        self.watcher = PreemptionWatcher(trainer.save, handler=config.preemption_handler,
                                         cluster_resolver=getattr(trainer.strategy, "cluster_resolver", None),
                                         scratch_dir=os.path.join(config.model_dir, ".preemption"))

    def __call__(self, trainer: TrainerLike, step: int, result: Any) -> None:
        try:
            self.watcher.check()
        except Preempted as e:
            trainer.message(str(e))
            raise

    def end(self, trainer: TrainerLike, step: int) -> None:
        if self.watcher is not None:
            self.watcher.close()


def default_actions(trainer: TrainerLike, *, eval_every_steps: int | None = None,
                    on_loop_end: Callable[[TrainerLike], None] | None = None) -> list[Action]:
    """The trainer's schedule: its stage controller and frozen backbone, the built-ins, then its own actions."""
    actions: list[Action] = []
    if trainer.stage_controller is not None:
        actions.append(trainer.stage_controller)
    if trainer.freeze_steps:
        actions.append(FreezeBackbone(trainer.freeze_steps))
    actions += [StopOnDivergence(), LogProgress(), WriteTrainSummaries()]
    if eval_every_steps and trainer.eval_input_fn is not None:
        actions.append(Evaluate(eval_every_steps))
    actions.append(SaveCheckpoint(trainer.config.checkpoint_every_steps))
    actions += list(trainer.actions)
    if on_loop_end is not None:
        actions.append(CallAfterLoop(on_loop_end))
    actions.append(CheckPreemption())
    return actions


__all__ = ["Action", "StopOnDivergence", "LogProgress", "WriteTrainSummaries", "Evaluate", "SaveCheckpoint",
           "FreezeBackbone", "CallAfterLoop", "CheckPreemption", "default_actions", "loop_scalars"]
