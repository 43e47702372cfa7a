"""The loop's schedule is data (training/actions.py): an action passed to the Trainer runs without editing the loop.

A custom action runs at its interval (and at the end when asked), may cut the
compiled calls where it must see the step, and an error it raises stops
training like a built-in's would: nothing saved after it, the end hooks run.
"""

from __future__ import annotations

import signal

import pytest
import tensorflow as tf

from efficientnet_tpu import data as data_lib
from efficientnet_tpu.run import input_fns, precision_policy, resolve
from efficientnet_tpu.training.actions import Action
from efficientnet_tpu.training.checkpoint import checkpoint_steps
from efficientnet_tpu.training.loop import Trainer
from efficientnet_tpu.training.strategy import StrategyInfo
from helpers import tiny_train_config as tiny


def make_trainer(config, actions) -> Trainer:
    info = data_lib.dataset_info(config.dataset, config.data_dir)
    config = resolve(config, info)
    train_fn, eval_fn = input_fns(config, info, "cpu")
    return Trainer(config, StrategyInfo(tf.distribute.get_strategy(), "cpu"),
                   num_train_examples=info.num_train_examples, train_input_fn=train_fn, eval_input_fn=eval_fn,
                   progress=False, actions=actions)


class Record(Action):
    """Records the steps it ran at, the compiled calls' lengths, and its begin/end."""

    def __init__(self, every_steps: int | None, at_end: bool = False, cut_at: int | None = None) -> None:
        self.every_steps, self.at_end, self.cut_at = every_steps, at_end, cut_at
        self.ran: list[tuple[int, int]] = []  # (step, trainer.step): the action sees the weights of that step
        self.calls: list[int] = []
        self.hooks: list[str] = []

    def begin(self, trainer, step, total_steps):
        self.hooks.append(f"begin {step}/{total_steps}")

    def before(self, trainer, step, steps):
        if self.cut_at is not None and step < self.cut_at:
            steps = min(steps, self.cut_at - step)
        self.calls.append(steps)
        return steps

    def __call__(self, trainer, step, result):
        self.ran.append((step, trainer.step))

    def end(self, trainer, step):
        self.hooks.append(f"end {step}")


class StopAt(Action):
    def __init__(self, step: int) -> None:
        self.step = step

    def __call__(self, trainer, step, result):
        if step >= self.step:
            raise RuntimeError(f"stopped by a custom action at step {step}")


def test_a_custom_action_runs_at_its_interval_and_can_cut_the_compiled_calls(tmp_path):
    config = tiny(tmp_path / "run", train_steps=8, steps_per_loop=2, checkpoint_every_steps=100)
    every_three, at_end, cutting = Record(3), Record(3, at_end=True), Record(None, cut_at=3)
    with precision_policy(config.precision):
        trainer = make_trainer(config, [every_three, at_end, cutting])
        trainer.train()
    # Calls of steps_per_loop=2 steps, the one that would cross step 3 cut there by the third action.
    assert cutting.calls == [2, 1, 2, 2, 1]
    # After the call that crossed a multiple of 3 (5 -> 7 crosses 6), and with at_end after the last.
    assert every_three.ran == [(3, 3), (7, 7)]
    assert at_end.ran == [(3, 3), (7, 7), (8, 8)]
    assert cutting.ran == [] and cutting.hooks == ["begin 0/8", "end 8"]
    assert [step for step, _ in checkpoint_steps(config.model_dir)] == [8]


def test_an_action_that_raises_stops_training_and_the_end_hooks_still_run(tmp_path):
    config = tiny(tmp_path / "run", train_steps=10, steps_per_loop=2, checkpoint_every_steps=100)
    before = signal.getsignal(signal.SIGTERM)
    record = Record(1)
    with precision_policy(config.precision):
        trainer = make_trainer(config, [StopAt(4), record])
        with pytest.raises(RuntimeError, match="stopped by a custom action at step 4"):
            trainer.train()
    assert trainer.step == 4 and record.ran == [(2, 2)] and record.hooks == ["begin 0/10", "end 4"]
    assert checkpoint_steps(config.model_dir) == []  # the end-of-training save never came
    assert signal.getsignal(signal.SIGTERM) == before  # the preemption watcher was closed
