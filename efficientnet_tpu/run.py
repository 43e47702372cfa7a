"""Runs one configured job end to end: resolve, distribute, train and/or evaluate, export.

``run`` is a short sequence of named phases sharing a ``RunContext``:
``prepare`` (plan, storage, lock, strategy), ``check_resume``,
``build_trainer``, ``resume``, ``train_model``, ``evaluate_model`` and
``export_model``; ``Phases.of(config.mode)`` decides once which of them act.

``efficientnet_tpu.train`` (the command line) turns flags into a TrainConfig
and calls ``run``; tests and notebooks can call ``run`` directly. This
orchestration sits above ``training``, ``data`` and ``export``, which never
import it (and export never imports the trainer's loop).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator

import keras
import tensorflow as tf
from absl import logging

from efficientnet_tpu import data as data_lib
from efficientnet_tpu.model.specs import ModelSpec
from efficientnet_tpu.training import config as config_lib
from efficientnet_tpu.export.from_run import described, export_run
from efficientnet_tpu.training import init_weights as init_lib
from efficientnet_tpu import released_run
from efficientnet_tpu import storage
from efficientnet_tpu.data import tfrecord as tfrecord_lib
from efficientnet_tpu.training.checkpoint import checkpoint_steps, remove_temporaries, repair_index
from efficientnet_tpu.training.lock import DirectoryLock
from efficientnet_tpu.training.config import TrainConfig
from efficientnet_tpu.training.loop import Trainer
from efficientnet_tpu.training.modeling import model_spec
from efficientnet_tpu.training import progressive as progressive_lib
from efficientnet_tpu.training.strategy import StrategyInfo, resolve_strategy


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a run decides once, before it builds anything, and carries to the end.

    ``config`` is resolved (resolution, classes, eval crop, dropout filled in),
    ``spec`` is the variant's ModelSpec, ``dataset`` the dataset's facts.
    """

    config: TrainConfig
    spec: ModelSpec
    dataset: data_lib.DatasetInfo


def plan_run(config: TrainConfig, dataset: data_lib.DatasetInfo, spec: ModelSpec | None = None) -> RunPlan:
    """Fills what the config leaves to the variant and the dataset (validates the variant too)."""
    spec = spec or model_spec(config)
    resolution = config.resolution or spec.resolution
    num_classes = config.num_classes or dataset.num_classes
    if dataset.class_names is not None and num_classes != len(dataset.class_names):
        class_names = None
    else:
        class_names = tuple(dataset.class_names) if dataset.class_names is not None else None
    crop = config.eval_crop_fraction
    if crop is None:
        crop = spec.eval_crop_for(resolution, whole_image=dataset.native_resolution is not None)
    resolved = config_lib.replace(
        config,
        resolution=resolution,
        num_classes=num_classes,
        class_names=class_names,
        eval_crop_fraction=float(crop),
        # The spec already carries the config's dropout settings (modeling.spec_overrides).
        dropout_rate=spec.dropout_rate,
        drop_connect_rate=spec.drop_connect_rate,
    )
    return RunPlan(resolved, spec, dataset)


def resolve(config: TrainConfig, dataset: data_lib.DatasetInfo) -> TrainConfig:
    """The resolved config alone (``plan_run(...).config``)."""
    return plan_run(config, dataset).config


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Sets Keras' global dtype policy for the run and puts the previous one back afterwards."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def seed_everything(config: TrainConfig) -> None:
    """Seeded initialisation always; deterministic kernels with --deterministic."""
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()


def input_fns(config: TrainConfig, facts: data_lib.DatasetInfo, strategy_kind: str, *,
              image_size: int | None = None, **changes: Any):
    """Per-replica input functions for tf.distribute, following the data contract.

    The data settings travel as one DataOptions made from the config (the
    variant's resize method in training and eval alike, as in its reference);
    a progressive stage passes its `image_size` and option `changes`.
    """
    dtype = "bfloat16" if (strategy_kind == "tpu" and config.precision == "mixed_bfloat16") else "float32"
    options = data_lib.DataOptions.from_config(config, dtype=dtype, resize_method=model_spec(config).resize_method)
    train_options = dataclasses.replace(options, **changes) if changes else options
    seed = train_options.seed

    def train_fn(context: tf.distribute.InputContext, start_step: int = 0) -> tf.data.Dataset:
        """The training stream from global step ``start_step`` on.

        Used with start_step > 0 only when the iterator's position could not
        be checkpointed (multi-replica strategies): deterministic runs replay
        the stream to the exact position (cost grows with the step), others
        start a stream reshuffled with a seed derived from the step.
        """
        replay = start_step > 0 and config.deterministic
        stream_seed = seed if (start_step == 0 or replay) else seed + start_step
        dataset = data_lib.build_dataset(
            config.dataset, facts.train_split, global_batch_size=config.train_batch_size,
            image_size=image_size or config.resolution, training=True,
            options=dataclasses.replace(train_options, seed=stream_seed), data_dir=config.data_dir,
            input_context=context)
        if replay:
            batches_per_step = max(1, context.num_replicas_in_sync // context.num_input_pipelines)
            dataset = dataset.skip(start_step * batches_per_step)
        return dataset

    def eval_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        return data_lib.build_dataset(
            config.dataset, facts.eval_split, global_batch_size=config.eval_batch_size,
            image_size=config.resolution, training=False, options=options, data_dir=config.data_dir,
            input_context=context)

    return train_fn, eval_fn


def progressive_config(config: TrainConfig) -> tuple[TrainConfig, progressive_lib.Recipe | None]:
    """Reads the progressive recipe (when set): eval at its eval_size unless --resolution is given, and
    the network built with the dropout layer the ramp sets (its largest rate)."""
    if not config.progressive:
        return config, None
    recipe = progressive_lib.load_recipe(config.progressive, config.variant)
    changes: dict[str, Any] = {}
    if config.resolution is None:
        changes["resolution"] = recipe.eval_size
    if recipe.dropout_rate is not None and config.dropout_rate is None:
        changes["dropout_rate"] = max(recipe.dropout_rate)
    return (config_lib.replace(config, **changes) if changes else config), recipe


def stage_controller(config: TrainConfig, recipe: progressive_lib.Recipe, facts: data_lib.DatasetInfo,
                     strategy_kind: str, num_train_examples: int) -> progressive_lib.StageController:
    """The stages of this run, each training on its own stream at its size and magnitudes."""
    stages = progressive_lib.plan_stages(recipe, config_lib.total_train_steps(config, num_train_examples))

    def make_input_fn(stage: progressive_lib.Stage):
        changes: dict[str, Any] = dict(
            mixup_alpha=stage.mixup_alpha, cutmix_alpha=stage.cutmix_alpha,
            seed=config.seed + progressive_lib.STAGE_SEED_STRIDE * stage.index)
        if stage.randaugment_magnitude is not None:
            changes["randaugment_magnitude"] = stage.randaugment_magnitude
        if recipe.augment is not None:
            changes["augment"] = recipe.augment
        train_fn, _ = input_fns(config, facts, strategy_kind, image_size=stage.image_size, **changes)
        # The stage's stream starts at its first step: a resumed run replays (or reseeds) from there.
        return lambda context, start_step=stage.start_step: train_fn(context, max(0, start_step - stage.start_step))

    return progressive_lib.StageController(stages, make_input_fn, eval_size=config.resolution)


def eval_every_steps(config: TrainConfig, num_train_examples: int) -> int:
    per_epoch = config_lib.steps_per_epoch(config, num_train_examples)
    return max(1, round(config.eval_every_epochs * per_epoch))


def export(config: TrainConfig) -> str:
    """Exports the newest checkpoint (EMA weights when kept) through ``export_run``: a SavedModel
    in the next numbered version below ``export_dir`` (TF Serving's layout), or a TFLite file."""
    path, _ = export_run(config.model_dir, config.export_dir, format=config.export_format, versioned=True)
    return path


def resolve_precision(precision: str, strategy_info: StrategyInfo) -> str:
    """``auto``: bfloat16 on a TPU, float16 on GPUs with tensor cores (compute capability 7+),
    float32 otherwise (CPUs have no fast reduced-precision path: bfloat16 is ~2.7x slower there)."""
    if precision != "auto":
        return precision
    if strategy_info.kind == "tpu":
        return "mixed_bfloat16"
    gpus = tf.config.list_physical_devices("GPU") if strategy_info.kind != "cpu" else []
    if gpus:
        capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
                        for gpu in gpus]
        if all(tuple(c or (0, 0)) >= (7, 0) for c in capabilities):
            return "mixed_float16"
    return "float32"


def prepare_storage(config: TrainConfig, is_chief: bool) -> DirectoryLock | None:
    """Before anything is built: model_dir and export_dir writable, model_dir locked (chief only).

    Returns the held lock (None on non-chief workers, which write only scratch files).
    """
    if not is_chief:
        return None
    storage.check_writable(config.model_dir, "--model_dir")
    lock = DirectoryLock(config.model_dir, flag="--model_dir", force=config.force_unlock,
                         what=f"training {config.variant} on {config.dataset}")
    note = lock.acquire()
    try:
        if note:
            print(f"note: {note}", flush=True)
        if config.export_dir:
            storage.check_writable(config.export_dir, "--export_dir")
        for path in remove_temporaries(config.model_dir):
            print(f"note: removed {path}, a checkpoint left half-written by an interrupted save", flush=True)
        note = repair_index(config.model_dir)
        if note:
            print(f"note: {note}", flush=True)
    except BaseException:
        lock.release()
        raise
    return lock


def explain_input_error(config: TrainConfig, error: tf.errors.OpError) -> Exception | None:
    """A ValueError naming the bad shard or label for TFRecord input errors raised inside the graph."""
    if config.dataset not in tfrecord_lib.DATASETS:
        return None
    return tfrecord_lib.explain_error(error, config.data_dir)


@dataclasses.dataclass(frozen=True)
class Phases:
    """Which phases a mode runs: decided once from ``config.mode`` (the only place the string is read)."""

    train: bool  # builds the training input (and stage controller), trains, writes config.yaml
    evaluate: bool  # builds the eval input; evaluates during training, at its end, or alone

    @classmethod
    def of(cls, mode: str) -> Phases:
        if mode not in MODES:
            raise ValueError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
        return MODES[mode]


MODES = {"train": Phases(train=True, evaluate=False), "train_and_eval": Phases(train=True, evaluate=True),
         "eval": Phases(train=False, evaluate=True)}


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What the phases of one run share: the resolved config and plan, the strategy, the lock.

    ``has_checkpoint`` and ``from_released`` are filled in by ``check_resume``.
    """

    config: TrainConfig
    plan: RunPlan
    recipe: progressive_lib.Recipe | None
    strategy_info: StrategyInfo
    phases: Phases
    progress: bool
    lock: DirectoryLock | None
    has_checkpoint: bool = False
    from_released: bool = False  # --init_checkpoint and nothing to resume: starts from the released weights

    @property
    def to_console(self) -> bool:
        return self.progress and self.strategy_info.is_chief

    @property
    def initializes_weights(self) -> bool:
        """--init_weights applies to fresh training runs only: a resumed fine-tuning run keeps its checkpoint."""
        return bool(self.config.init_weights) and self.phases.train and not self.has_checkpoint


def run(config: TrainConfig, *, progress: bool = True,
        strategy_info: StrategyInfo | None = None) -> dict[str, Any]:
    """Runs ``config.mode``; returns {"step", "eval": results or None, "export_dir": path or None,
    "config": the resolved config, "plan": the RunPlan}."""
    with prepare(config, progress, strategy_info) as context:
        context = check_resume(context)
        trainer = build_trainer(context)
        try:
            resume(context, trainer)
            results = train_model(context, trainer)
            results = evaluate_model(context, trainer, results)
            step = trainer.step
        finally:
            trainer.close()
        exported = export_model(context)
        return {"step": step, "eval": results, "export_dir": exported, "config": context.config,
                "plan": context.plan}


@contextlib.contextmanager
def prepare(config: TrainConfig, progress: bool, strategy_info: StrategyInfo | None) -> Iterator[RunContext]:
    """Plan, storage, lock, strategy: the context the other phases run in.

    Holds model_dir's lock and the precision policy until the block ends; TFRecord
    input errors raised in it are explained; the model_dir/export_dir folders only
    this run created are removed again if it ends before writing anything.
    """
    requested, phases = config, Phases.of(config.mode)
    spec = model_spec(config)  # an unknown variant or bad phi fails here, before any device is touched
    if not storage.is_remote(config.model_dir):  # a file in the way fails before any device is touched
        storage.check_not_under_file(config.model_dir, "--model_dir")
    if strategy_info is None:
        # First, before anything touches TensorFlow's devices (seeding, input pipelines, the
        # folder dataset's decode check): splitting the CPU into logical replicas and
        # MultiWorkerMirroredStrategy's collective ops must be set up at program start.
        strategy_info = resolve_strategy(config.strategy, config.tpu, config.num_cpu_replicas,
                                         config.tpu_configure_version)
    created = [path for path in (config.model_dir, config.export_dir)
               if path and strategy_info.is_chief and not tf.io.gfile.exists(path)]
    lock = prepare_storage(config, strategy_info.is_chief)
    try:
        precision = resolve_precision(config.precision, strategy_info)
        if precision != config.precision:
            print_or_log(progress and strategy_info.is_chief,
                         f"precision {precision} (auto on {strategy_info.kind}; set --precision to choose)")
            config = config_lib.replace(config, precision=precision)
        with precision_policy(config.precision):
            seed_everything(config)
            config, recipe = progressive_config(config)
            plan = plan_run(config, data_lib.dataset_info(config.dataset, config.data_dir), spec)
            config = released_run.recorded_normalization(released_run.prepare(plan.config))
            yield RunContext(config=config, plan=plan, recipe=recipe, strategy_info=strategy_info, phases=phases,
                             progress=progress, lock=lock)
    except tf.errors.OpError as e:
        explained = explain_input_error(requested, e)
        if explained is None:
            raise
        raise explained from None
    finally:
        if lock is not None:
            lock.release()
        for path in created:
            # A run refused before it wrote anything (a bad checkpoint, missing data) leaves no
            # model_dir or export_dir behind: the folders the lock and the write probes made, empty again.
            storage.remove_if_empty(path)


def check_resume(context: RunContext) -> RunContext:
    """What model_dir holds and whether this run may continue it, checked before anything is built.

    Every released-checkpoint error is raised now, while model_dir is untouched.
    """
    config, model_dir = context.config, context.config.model_dir
    has_checkpoint = bool(checkpoint_steps(model_dir)) if tf.io.gfile.exists(model_dir) else False
    context = dataclasses.replace(context, has_checkpoint=has_checkpoint,
                                  from_released=bool(config.init_checkpoint) and not has_checkpoint)
    if context.from_released:
        released_run.check_loads(config)
    if not context.phases.train and not has_checkpoint and not context.from_released:
        raise FileNotFoundError(f"--mode=eval but {model_dir} holds no checkpoint; "
                                "train first (--mode=train or train_and_eval)")
    if context.initializes_weights:
        init_lib.check_source(config.init_weights)
    if tf.io.gfile.exists(config_lib.config_path(model_dir)):
        previous = config_lib.load_run_config(model_dir)
        config_lib.check_same_architecture(config, previous, model_dir)
        if has_checkpoint:
            config_lib.check_resumable(config, previous, model_dir)
    return context


def build_trainer(context: RunContext) -> Trainer:
    """The input pipelines the phases need (missing data fails here, before the network is built) and the Trainer."""
    config, dataset, phases = context.config, context.plan.dataset, context.phases
    kind = context.strategy_info.kind
    train_fn, eval_fn = input_fns(config, dataset, kind)
    # Making the pipelines reads nothing yet: this finds missing data without building the network.
    if phases.train:
        train_fn(tf.distribute.InputContext())
    if phases.evaluate:
        eval_fn(tf.distribute.InputContext())
    controller = (stage_controller(config, context.recipe, dataset, kind, dataset.num_train_examples)
                  if context.recipe is not None and phases.train else None)
    return Trainer(config, context.strategy_info, num_train_examples=dataset.num_train_examples,
                   train_input_fn=train_fn if phases.train else None,
                   eval_input_fn=eval_fn if phases.evaluate else None,
                   progress=context.progress, stage_controller=controller)


def resume(context: RunContext, trainer: Trainer) -> None:
    """Restores model_dir's checkpoint (or starts from released or --init_weights weights); writes config.yaml."""
    config, phases = context.config, context.phases
    trainer.log_model_size()
    step = trainer.restore()
    # Only now, with the checkpoint restored (or none to restore), is the config the run's.
    if context.strategy_info.is_chief and (phases.train or context.from_released):
        config_lib.dump(config, config.model_dir)
    if context.from_released:
        trainer.initialize_from(lambda model: released_run.load(model, config))
    if context.initializes_weights:
        trainer.initialize_from(lambda model: init_lib.initialize(model, config))
    if phases.train and context.to_console:
        total, info = trainer.total_steps, context.strategy_info
        print(f"training {config.variant}{'' if config.phi is None else f' phi={config.phi:g}'} on "
              f"{config.dataset} for {total} steps of {config.train_batch_size} "
              f"({total * config.train_batch_size / context.plan.dataset.num_train_examples:.2f} epochs) on "
              f"{info.num_replicas} replica(s) ({info.kind}), "
              f"{'resuming at step ' + str(step) if step else 'from scratch'}", flush=True)


def train_model(context: RunContext, trainer: Trainer) -> dict[str, Any] | None:
    """Trains to the end (evaluating on the way when the mode evaluates); the last eval result or None."""
    if not context.phases.train:
        return None
    lock = context.lock
    every = (eval_every_steps(context.config, context.plan.dataset.num_train_examples)
             if context.phases.evaluate else None)
    return trainer.train(eval_every_steps=every,
                         on_loop_end=(lambda _trainer: lock.refresh()) if lock is not None else None)


def evaluate_model(context: RunContext, trainer: Trainer, results: dict[str, Any] | None) -> dict[str, Any] | None:
    """Evaluates unless training just did; beside the published top-1 for a released checkpoint."""
    config, is_chief = context.config, context.strategy_info.is_chief
    if context.phases.evaluate and results is None:
        results = trainer.evaluate()
    if context.from_released and not context.phases.train and is_chief:
        trainer.save()  # model_dir now holds the released weights: export reads them from here
    if results is not None and released_run.shows_published(config, trainer.step) and context.to_console:
        print(released_run.eval_line(config, results), flush=True)
    return results


def export_model(context: RunContext) -> str | None:
    """With --export_dir (chief only): the newest checkpoint exported; its path."""
    config = context.config
    if not (config.export_dir and context.strategy_info.is_chief):
        return None
    exported = export(config)
    if context.progress:
        print(f"exported {described(config.export_format)} to {exported}", flush=True)
    return exported


def print_or_log(to_console: bool, text: str) -> None:
    if to_console:
        print(text, flush=True)
    else:
        logging.info(text)
