"""The one training loop: ``strategy.run`` inside a ``tf.function`` running many steps per call.

The same code runs on a TPU (TPUStrategy), on GPUs (MirroredStrategy or
MultiWorkerMirroredStrategy) and on a CPU (the default strategy, or a
MirroredStrategy over logical CPU devices in tests). Each call of the
compiled loop runs ``steps_per_loop`` steps inside the graph, so a TPU is
not starved by a Python round trip per step.

Losses are summed per example and divided by the *global* batch, and the
weight-decay term is divided by the replica count, so the all-reduced
(summed) gradients equal those of one device seeing the whole batch.
Logits and losses are float32 whatever the precision policy.

What happens between compiled calls (evaluation, checkpoints, freezing,
preemption, progress, summaries, progressive stages) is the schedule of
interval actions in training/actions.py; ``Trainer.train`` only runs them.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from efficientnet_tpu.storage import write_json
from efficientnet_tpu.training import config as config_lib
from efficientnet_tpu.training.actions import Action, Evaluate, default_actions
from efficientnet_tpu.training.checkpoint import (CheckpointKeeper, has_object, nonfinite_variables,
                                                  restore_newest_readable, rng_states)
from efficientnet_tpu.training.config import TrainConfig
from efficientnet_tpu.training.ema import WeightAverage, averaged_weights
from efficientnet_tpu.training.init_weights import set_backbone_trainable
from efficientnet_tpu.training.modeling import build_network
from efficientnet_tpu.training.optimizer import (build_optimizer, decayed_variables, decays_biases, initialize_slots,
                                                 l2_penalty)
from efficientnet_tpu.training.progressive import StageController
from efficientnet_tpu.training.progress import ProgressLine, Summaries
from efficientnet_tpu.training.schedule import build_schedule
from efficientnet_tpu.training.strategy import StrategyInfo

# (input context, global step the stream starts at) -> per-replica dataset.
InputFn = Callable[[tf.distribute.InputContext, int], tf.data.Dataset]
EvalInputFn = Callable[[tf.distribute.InputContext], tf.data.Dataset]
EVAL_RESULTS = "eval_results.json"


class TrainingDiverged(RuntimeError):
    """The loss, an eval metric or a weight became NaN or infinite; the last good checkpoint is kept."""


# What the per-replica train step returns, by name; the loop sums each over its steps and replicas.
STEP_OUTPUTS = ("loss_sum", "total_loss_sum", "correct", "examples", "nonfinite")
# What the per-replica eval step returns, by name (masked sums over a batch).
EVAL_OUTPUTS = ("loss_sum", "top1", "top5", "count")


@dataclasses.dataclass
class LoopResult:
    """What one call of the compiled loop reports (sums over its steps and replicas).

    Built from the compiled loop's named outputs (``STEP_OUTPUTS``) with ``from_outputs``.
    """

    steps: int
    loss_sum: float
    total_loss_sum: float
    correct: float
    examples: float
    nonfinite: float
    seconds: float

    @classmethod
    def from_outputs(cls, steps: int, outputs: dict[str, Any], seconds: float) -> LoopResult:
        return cls(steps=steps, seconds=seconds, **{name: float(outputs[name]) for name in STEP_OUTPUTS})


def stack_named(outputs: dict[str, tf.Tensor], names: Sequence[str]) -> tf.Tensor:
    """The named scalars as one vector in ``names`` order: the replicas are summed in one all-reduce, not one each."""
    return tf.stack([outputs[name] for name in names])


def unstack_named(vector: tf.Tensor, names: Sequence[str]) -> dict[str, tf.Tensor]:
    """``stack_named`` undone: name -> scalar."""
    return dict(zip(names, tf.unstack(vector, num=len(names))))


def cross_entropy(labels: tf.Tensor, logits: tf.Tensor, num_classes: int, label_smoothing: float) -> tf.Tensor:
    """Per-example softmax cross-entropy in float32, with label smoothing.

    ``labels`` are class ids [B] or, after mixup/cutmix, class distributions
    [B, K]; smoothing then applies to the mixed distribution, as Keras'
    CategoricalCrossentropy(label_smoothing) does in google/automl's trainer.
    """
    logits = tf.cast(logits, tf.float32)
    if labels.shape.rank == 2:
        targets = tf.cast(labels, tf.float32)
        if label_smoothing:
            targets = targets * (1.0 - label_smoothing) + label_smoothing / num_classes
        return tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    if label_smoothing:
        targets = tf.one_hot(labels, num_classes, dtype=tf.float32)
        targets = targets * (1.0 - label_smoothing) + label_smoothing / num_classes
        return tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def top_k_correct(labels: tf.Tensor, logits: tf.Tensor, k: int) -> tf.Tensor:
    """1.0 where the label is among the k highest logits (ties broken by index, as top_k does).

    Mixed (soft) labels count their largest share as the label.
    """
    if labels.shape.rank == 2:
        labels = tf.argmax(labels, axis=-1, output_type=tf.int32)
    k = min(k, int(logits.shape[-1]))
    top = tf.math.top_k(tf.cast(logits, tf.float32), k=k).indices
    return tf.cast(tf.reduce_any(tf.equal(top, tf.cast(labels, top.dtype)[:, None]), axis=-1), tf.float32)


class Trainer:
    """Builds model, optimizer, EMA and checkpoint under a strategy and runs training and evaluation.

    ``train_input_fn(context, start_step)`` returns per-replica ``(images,
    labels)`` batches forever, as the stream continues from global step
    ``start_step`` (0 when fresh; called with the restored step only when the
    iterator's position could not be checkpointed). ``eval_input_fn(context)``
    returns ``(images, labels, mask)`` covering the eval split once.
    ``model_fn`` replaces the config's network (benchmarks compare other models).
    ``actions`` join the loop's schedule (training/actions.py) after the checkpoint
    and before the preemption check; ``stage_controller`` is the progressive-learning
    action, which also checkpoints its stage.
    """

    def __init__(self, config: TrainConfig, strategy_info: StrategyInfo, *,
                 num_train_examples: int, train_input_fn: InputFn | None = None,
                 eval_input_fn: EvalInputFn | None = None, progress: bool = True,
                 checkpoint_input: bool = True,
                 model_fn: Callable[[], keras.Model] | None = None,
                 stage_controller: StageController | None = None, actions: Sequence[Action] = ()) -> None:
        if config.num_classes is None or config.resolution is None:
            raise ValueError("the Trainer needs a resolved config (num_classes and resolution set)")
        self.config = config
        self.strategy_info = strategy_info
        self.strategy = strategy_info.strategy
        self.num_train_examples = num_train_examples
        self.train_input_fn = train_input_fn
        self.eval_input_fn = eval_input_fn
        self.show_progress = progress
        # Builds the network inside the strategy scope; the config's network by default.
        self._model_fn = model_fn or (lambda: build_network(config))
        replicas = self.strategy.num_replicas_in_sync
        for name in ("train_batch_size", "eval_batch_size"):
            if getattr(config, name) % replicas:
                raise ValueError(f"--{name}={getattr(config, name)} is not divisible by the "
                                 f"{replicas} replicas; use a multiple of {replicas}")
        self.total_steps = config_lib.total_train_steps(config, num_train_examples)
        # Fine-tuning: the first steps train the classifier alone.
        self.freeze_steps = (max(1, round(config.freeze_backbone_epochs
                                          * config_lib.steps_per_epoch(config, num_train_examples)))
                             if config.freeze_backbone_epochs else 0)
        self._backbone_frozen = False
        self.summaries = Summaries(config.model_dir, enabled=strategy_info.is_chief)
        # Progressive learning: the controller swaps the pipeline per stage, so the input is
        # resumed by replaying or reseeding the stage's stream rather than saved.
        self.stage_controller = stage_controller
        self.actions = tuple(actions)
        self._build(checkpoint_input and train_input_fn is not None and stage_controller is None)
        self._last_good_checkpoint: str | None = None
        # Set by the LogProgress action while training: messages end its in-place line first.
        self.progress_line: ProgressLine | None = None

    # ------------------------------------------------------------------ build
    def _build(self, checkpoint_input: bool) -> None:
        config = self.config
        with self.strategy.scope():
            self.model = self._model_fn()
            self.schedule = build_schedule(config, self.num_train_examples)
            self.optimizer = build_optimizer(config, self.schedule)
            initialize_slots(self.optimizer, self.model.trainable_variables)
            self.ema = (WeightAverage(averaged_weights(self.model), config.ema_decay)
                        if config.use_ema else None)
            self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step",
                                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self._decayed = decayed_variables(self.model, biases=decays_biases(config.variant))
        objects: dict[str, Any] = dict(model=self.model, optimizer=self.optimizer, step=self.global_step)
        if self.stage_controller is not None:
            with self.strategy.scope():
                objects["stage"] = self.stage_controller.build()
        if self.ema is not None:
            objects["ema"] = self.ema
        states = rng_states(self.model)
        if states:
            holder = tf.Module(name="rng")
            holder.states = states
            objects["rng"] = holder
        # The input iterator joins the checkpoint when it can: single-replica
        # strategies give a trackable iterator whose position is saved exactly.
        # tf.distribute's multi-replica iterators cannot be saved; those runs
        # resume the input by replaying it (--deterministic) or reseeding it.
        self.train_iterator = None
        self.input_mode = "none"
        without_input = None
        if self.train_input_fn is not None:
            if checkpoint_input and self.strategy.num_replicas_in_sync == 1:
                iterator = self._make_iterator(0)
                if isinstance(iterator, tf.__internal__.tracking.Trackable):
                    self.train_iterator = iterator
                    without_input = tf.train.Checkpoint(**objects)
                    objects["input"] = iterator
                    self.input_mode = "saved"
            if self.input_mode != "saved":
                # Made on first use, from the restored step.
                self.input_mode = "replay" if config.deterministic else "reseed"
        self._objects = objects
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.keeper = CheckpointKeeper(self.checkpoint, config.model_dir, max_to_keep=config.keep_checkpoints,
                                       is_chief=self.strategy_info.is_chief, worker_id=self.strategy_info.worker_id,
                                       without_input=without_input)
        self._train_loop = self._make_train_loop()
        self._eval_step = self._make_eval_step()
        self._swap_ema = tf.function(self.ema.swap) if self.ema is not None else None

    def _make_iterator(self, start_step: int):
        """An iterator over the training input as it continues from ``start_step``."""
        input_fn = self.train_input_fn
        dataset = self.strategy.distribute_datasets_from_function(lambda context: input_fn(context, start_step))
        return iter(dataset)

    def _make_train_loop(self):
        config = self.config
        model, optimizer, strategy = self.model, self.optimizer, self.strategy
        ema, decayed = self.ema, self._decayed
        global_batch = float(config.train_batch_size)
        replicas = float(strategy.num_replicas_in_sync)
        num_classes = config.num_classes

        def step_fn(images, labels, num_updates):
            with tf.GradientTape() as tape:
                logits = tf.cast(model(images, training=True), tf.float32)
                per_example = cross_entropy(labels, logits, num_classes, config.label_smoothing)
                loss = tf.reduce_sum(per_example) / global_batch
                total = loss + l2_penalty(decayed, config.weight_decay) / replicas
                scaled = optimizer.scale_loss(total)
            grads = tape.gradient(scaled, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            if ema is not None:
                ema.update(num_updates)
            correct = tf.reduce_sum(top_k_correct(labels, logits, 1))
            nonfinite = tf.cast(tf.logical_not(tf.math.is_finite(total)), tf.float32)
            examples = tf.cast(tf.shape(labels)[0], tf.float32)
            # Per replica: loss sums here are this replica's share of the global mean.
            return {"loss_sum": loss, "total_loss_sum": total, "correct": correct, "examples": examples,
                    "nonfinite": nonfinite}

        if config.jit_compile:
            step_fn = tf.function(step_fn, jit_compile=True)
        self.train_step_fn = step_fn  # per replica: (images, labels, num_updates) -> {STEP_OUTPUTS name: sum}

        def replica_fn(images, labels, num_updates):
            return stack_named(step_fn(images, labels, num_updates), STEP_OUTPUTS)

        @tf.function
        def train_loop(iterator, steps):
            totals = tf.zeros([len(STEP_OUTPUTS)], tf.float32)
            start = self.global_step.read_value()
            for i in tf.range(steps):
                images, labels = next(iterator)
                num_updates = start + tf.cast(i, tf.int64) + 1
                per_replica = strategy.run(replica_fn, args=(images, labels, num_updates))
                totals += strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
            self.global_step.assign_add(tf.cast(steps, tf.int64))
            return unstack_named(totals, STEP_OUTPUTS)

        return train_loop

    def _make_eval_step(self):
        model, strategy = self.model, self.strategy
        num_classes = self.config.num_classes

        def step_fn(images, labels, mask):
            logits = tf.cast(model(images, training=False), tf.float32)
            mask = tf.cast(mask, tf.float32)
            labels = tf.where(mask > 0, tf.cast(labels, tf.int32), tf.zeros_like(labels, tf.int32))
            loss = cross_entropy(labels, logits, num_classes, 0.0)
            return stack_named({"loss_sum": tf.reduce_sum(loss * mask),
                                "top1": tf.reduce_sum(top_k_correct(labels, logits, 1) * mask),
                                "top5": tf.reduce_sum(top_k_correct(labels, logits, 5) * mask),
                                "count": tf.reduce_sum(mask)}, EVAL_OUTPUTS)

        @tf.function
        def eval_step(batch):
            per_replica = strategy.run(step_fn, args=batch)
            return unstack_named(strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None), EVAL_OUTPUTS)

        return eval_step

    # ---------------------------------------------------------------- restore
    def restore(self) -> int:
        """Restores the newest readable checkpoint of model_dir; returns the step (0 when fresh).

        A checkpoint saved without an EMA (``use_ema: false``) restores into a run that keeps
        one: weights, optimizer and step come back and the average starts from the weights.
        """
        latest = self.keeper.latest_path
        if self.ema is not None and latest is not None and not has_object(latest, "ema"):
            rest = {k: v for k, v in self._objects.items() if k != "ema"}
            without_input = {k: v for k, v in rest.items() if k != "input"}
            path, self.keeper.input_restored = restore_newest_readable(
                tf.train.Checkpoint(**rest), self.config.model_dir, partial=True,
                without_input=tf.train.Checkpoint(**without_input) if "input" in rest else None)
            self.ema.reset()
            self.message(f"{path} was saved without an EMA of the weights (use_ema: false); "
                          "the average starts from the restored weights")
        else:
            path = self.keeper.restore_latest()
        step = int(self.global_step.numpy())
        if path is not None:
            self._last_good_checkpoint = path
            self.message(f"restored {path} (step {step})")
            if self.train_input_fn is not None and step > 0 and self.stage_controller is None and not (
                    self.input_mode == "saved" and self.keeper.input_restored):
                how = "replayed to" if self.config.deterministic else "reshuffled at"
                self.message(f"input position not in the checkpoint: input {how} step {step}")
                self.train_iterator = self._make_iterator(step)
        return step

    def initialize_from(self, load: Callable[[keras.Model], str]) -> None:
        """Loads pretrained weights into the fresh model with ``load`` and restarts the EMA from them."""
        text = load(self.model)
        if self.ema is not None:
            self.ema.reset()
        self.message(text)

    def freeze_backbone(self, frozen: bool) -> None:
        """Freezes or unfreezes every layer but the classifier; the compiled loop is rebuilt to match."""
        if frozen == self._backbone_frozen:
            return
        set_backbone_trainable(self.model, not frozen)
        self._backbone_frozen = frozen
        self._train_loop = self._make_train_loop()
        self.message(f"backbone {'frozen until step ' + str(self.freeze_steps) if frozen else 'unfrozen'} "
                      f"at step {self.step}")

    @property
    def step(self) -> int:
        return int(self.global_step.numpy())

    def diverged(self, what: str) -> TrainingDiverged:
        """The error that stops a diverged run, naming the last good checkpoint and the likely fixes."""
        fixes = "lower --learning_rate or check the input data"
        if self.config.precision != "float32":
            fixes = "lower --learning_rate, check the input data, or use --precision=float32"
        return TrainingDiverged(
            f"{what}; training stopped and the last good checkpoint "
            f"({self._last_good_checkpoint or 'none'}) is kept. {fixes[0].upper()}{fixes[1:]}")

    def save(self) -> tuple[int, str]:
        """Saves a checkpoint at the current step; refuses (``TrainingDiverged``) to save non-finite weights."""
        step = self.step
        bad = nonfinite_variables(self.model.variables)
        if bad:
            raise self.diverged(f"at step {step} {len(bad)} weight(s) hold NaN or inf (first: {bad[0]}), "
                                 "so no checkpoint was saved")
        path = self.keeper.save(step)
        self._last_good_checkpoint = path
        self.message(f"saved checkpoint {path}")
        return step, path

    # ------------------------------------------------------------------ train
    def log_model_size(self) -> dict[str, int]:
        """Logs and returns trainable parameters and MACs (multiply-adds) at the training resolution."""
        params = int(sum(np.prod(v.shape) for v in self.model.trainable_variables))
        sizes = {"parameters": params}
        try:
            import efficientnet_tpu  # pylint: disable=import-outside-toplevel
            sizes["macs"] = int(efficientnet_tpu.count_macs(self.model))
        except (ImportError, AttributeError, ValueError, NotImplementedError) as e:
            logging.warning("Could not count MACs: %s", e)
        text = f"model {self.model.name}: {params:,} trainable parameters"
        if "macs" in sizes:
            text += f", {sizes['macs'] / 1e6:,.1f} M MACs at {self.config.resolution}px"
        self.message(text)
        if self.strategy_info.is_chief:
            self.summaries.write_text("model/size", text)
        return sizes

    def message(self, text: str) -> None:
        """Key events go to the console when progress is shown, to the log otherwise."""
        if self.show_progress and self.strategy_info.is_chief:
            if self.progress_line is not None:
                self.progress_line.message(text)  # ends an in-place progress line first
            else:
                print(text, flush=True)
        else:
            logging.info(text)

    def run_loop(self, steps: int) -> LoopResult:
        """Runs ``steps`` training steps in one compiled call and fetches the sums."""
        if self.train_iterator is None:
            self.train_iterator = self._make_iterator(self.step)
        start = time.perf_counter()
        outputs = {name: value.numpy() for name, value in
                   self._train_loop(self.train_iterator, tf.constant(steps, tf.int32)).items()}
        return LoopResult.from_outputs(steps, outputs, time.perf_counter() - start)

    def train(self, total_steps: int | None = None, *, eval_every_steps: int | None = None,
              on_loop_end: Callable[[Trainer], None] | None = None) -> dict[str, Any] | None:
        """Trains from the current step to ``total_steps``, running the schedule's actions on the way.

        The schedule is ``actions.default_actions``: evaluation every
        ``eval_every_steps`` (when given), checkpoints, ``on_loop_end(trainer)``
        after every compiled call, the Trainer's own ``actions``. Returns the
        last evaluation result (or None when none was run). Raises
        ``TrainingDiverged`` on a NaN/inf loss (nothing is saved after the last
        good checkpoint) and ``Preempted`` after saving on SIGTERM.
        """
        if self.train_input_fn is None:
            raise ValueError("this Trainer has no training input")
        total_steps = total_steps or self.total_steps
        step = self.step
        if step >= total_steps:
            self.message(f"already trained to step {step} (of {total_steps}); nothing to do")
            return None
        actions = default_actions(self, eval_every_steps=eval_every_steps, on_loop_end=on_loop_end)
        begun: list[Action] = []
        try:
            for action in actions:
                action.begin(self, step, total_steps)
                begun.append(action)
            while step < total_steps:
                steps = min(self.config.steps_per_loop, total_steps - step)
                for action in actions:
                    steps = action.before(self, step, steps)
                result = self.run_loop(steps)
                start, step = step, step + steps
                for action in actions:
                    if action.due(start, step, total_steps):
                        action(self, step, result)
        finally:
            for action in begun:
                action.end(self, step)
        return next((action.last for action in actions if isinstance(action, Evaluate)), None)

    # ------------------------------------------------------------------- eval
    def evaluate(self, write: bool = True) -> dict[str, Any]:
        """Top-1, top-5 and mean loss over the whole eval split (EMA weights when kept)."""
        if self.eval_input_fn is None:
            raise ValueError("this Trainer has no eval input")
        dataset = self.strategy.distribute_datasets_from_function(self.eval_input_fn)
        totals = dict.fromkeys(EVAL_OUTPUTS, np.float64(0.0))
        start = time.perf_counter()
        if self._swap_ema is not None:
            self._swap_ema()
        try:
            for batch in dataset:
                totals = {name: totals[name] + value.numpy() for name, value in self._eval_step(batch).items()}
        finally:
            if self._swap_ema is not None:
                self._swap_ema()
        count = totals["count"]
        if count <= 0:
            raise ValueError("the eval split yielded no examples")
        results = {"step": self.step, "top1": totals["top1"] / count, "top5": totals["top5"] / count,
                   "loss": totals["loss_sum"] / count, "num_examples": int(round(count))}
        nonfinite = [name for name in ("loss", "top1", "top5") if not np.isfinite(results[name])]
        if nonfinite:
            # Nothing is written: no summary, no eval_results.json, and (in train) no checkpoint of these weights.
            raise self.diverged(f"the evaluation at step {results['step']} gave a non-finite "
                                 f"{' and '.join(nonfinite)} ({', '.join(f'{n} {results[n]}' for n in nonfinite)})")
        seconds = time.perf_counter() - start
        self.message(f"eval at step {results['step']}: top-1 {results['top1']:.2%} top-5 {results['top5']:.2%} "
                      f"loss {results['loss']:.4f} on {results['num_examples']} examples "
                      f"({'EMA' if self.ema is not None else 'raw'} weights, {seconds:.1f}s)")
        if write and self.strategy_info.is_chief:
            self.summaries.write_eval({"top1": results["top1"], "top5": results["top5"],
                                       "loss": results["loss"]}, results["step"])
            write_eval_results(self.config.model_dir, results)
        return results

    def close(self) -> None:
        self.summaries.close()


def write_eval_results(model_dir: str, results: dict[str, Any]) -> str:
    """Writes ``model_dir/eval_results.json`` (atomically, strict JSON)."""
    return write_json(os.path.join(model_dir, EVAL_RESULTS), results, indent=2)


__all__ = ["Trainer", "TrainingDiverged", "LoopResult", "write_eval_results", "cross_entropy", "top_k_correct"]
