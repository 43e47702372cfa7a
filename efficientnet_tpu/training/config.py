"""The typed training configuration: defaults < YAML file < command-line flags.

Everything the trainer needs is one frozen dataclass, so the run is described
by data that can be written to ``model_dir/config.yaml``, read back by the
export step and compared on resume. The defaults are the paper's ImageNet
recipe; the YAML files in ``configs/`` change what differs. Each field
declares its accepted values beside it (``settings.setting``): the check of a
flag, YAML key or study trial and the flag's help come from that one
declaration. This module does not import TensorFlow, so bad configurations
fail fast and cheaply.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import types
import typing
from typing import Any, Callable, Iterator, Mapping

import yaml

from efficientnet_tpu import settings, shipped
from efficientnet_tpu.data import choices as data_choices
from efficientnet_tpu.released.published import METHODS, NORMALIZATIONS  # tables only, no TensorFlow
from efficientnet_tpu.settings import setting

MODES = ("train", "eval", "train_and_eval")
STRATEGIES = ("auto", "tpu", "gpu", "cpu")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
OPTIMIZERS = ("rmsprop", "adam", "sgd")
LR_SCHEDULES = ("exponential", "cosine", "constant")
PREEMPTION_HANDLERS = ("tensorflow", "signal", "none")
# export format -> what the exported artefact is called in messages (export/from_run.py and the CLI use it).
EXPORT_FORMATS = {"saved_model": "SavedModel", "tflite": "TFLite model", "tflite_int8": "int8 TFLite model"}
# Named batch-norm groupings (training/grouped_batch_norm.py); a group size is also accepted.
BATCH_NORM_GROUPINGS = ("all", "reference")

# Keys that decide the network's shape. A model_dir that already holds a run
# with different values cannot be resumed into: its checkpoint would not fit.
ARCHITECTURE_KEYS = (
    "variant", "phi", "alpha", "beta", "gamma", "num_classes", "resolution", "model_overrides",
)

# The rules several fields share.
_COUNT = settings.at_least(1, integer=True)
_POSITIVE = settings.above(0.0)
_NON_NEGATIVE = settings.at_least(0.0)
_RATE = settings.between(0.0, 1.0, high_open=True)  # a probability that must leave something: [0, 1)
_DECAY = settings.between(0.0, 1.0, low_open=True)  # a decay factor: (0, 1]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run. ``None`` means "derive it" (see ``resolve``)."""

    # --- model -------------------------------------------------------------
    variant: str = setting("b0", "Network name from efficientnet_tpu.list_variants().")
    phi: float | None = setting(None, "Compound coefficient; only with variant b0 (negative = smaller).",
                                settings.finite())
    alpha: float | None = setting(None, "Depth coefficient override for compound scaling (needs --phi).",
                                  _POSITIVE)
    beta: float | None = setting(None, "Width coefficient override for compound scaling (needs --phi).",
                                 _POSITIVE)
    gamma: float | None = setting(None, "Resolution coefficient override for compound scaling (needs --phi).",
                                  _POSITIVE)
    resolution: int | None = setting(None, "Input size in pixels; default: the variant's own.",
                                     settings.at_least(8, integer=True))
    num_classes: int | None = setting(None, "Classifier width; default: the dataset's class count.",
                                      settings.at_least(2, integer=True))
    dropout_rate: float | None = setting(None, "Dropout before the classifier; default: the variant's.", _RATE)
    drop_connect_rate: float | None = setting(0.2, "Stochastic depth rate of the last block; empty: the variant's.",
                                              _RATE)
    sync_batch_norm: bool = setting(False, "Compute batch-norm statistics over all replicas.")
    init_weights: str = setting(
        "", "Fine-tune: start a fresh run from a Keras Applications weights file (.h5: EfficientNet V1/V2, "
            "ResNet-152) or another run's model_dir or model_dir/ckpt-N; another class count re-initializes "
            "only the classifier. Never loaded over the run's own checkpoint when it resumes.")
    freeze_backbone_epochs: float = setting(
        0.0, "Fine-tune: train only the classifier for this many epochs first (batch norm frozen too).",
        _NON_NEGATIVE)
    model_overrides: dict[str, Any] | None = setting(
        None, "ModelSpec fields and stage knobs over the variant's, as JSON/YAML "
              "('{\"se_position\": \"end\", \"stage_blocks\": {3: \"conv31\"}}') or k=v pairs "
              "('se_position=end,width_coefficient=1.2'); in YAML a mapping. Checked against the variant "
              "when the run starts (the error names the valid keys).")

    # --- released checkpoints: the authors' TF1/automl weights (efficientnet_tpu/released) ---
    init_checkpoint: str = setting(
        "", "An authors' released tf.train checkpoint (tensorflow/tpu B0-B7 and lite0-4, automl EfficientNetV2): "
            "its folder or model.ckpt prefix. --mode=eval evaluates it (beside its published top-1) and keeps it "
            "in model_dir for export; training modes fine-tune from it (another class count replaces the head).")
    init_checkpoint_ema: bool = setting(
        True, "Load the checkpoint's ExponentialMovingAverage shadows (what the authors evaluate); false: raw.")
    checkpoint_method: str = setting(
        "", "How the released checkpoint was trained (advprop/, noisy_student_... in the path tell).",
        settings.one_of(METHODS, empty="read from the path"))
    input_normalization: str = setting(
        "", "Input normalization the weights need: signed_unit is [-1, 1] (AdvProp), inception 127/128 (lite). "
            "Set from --init_checkpoint and kept in config.yaml.",
        settings.one_of(NORMALIZATIONS, empty="the variant's own"))

    # --- data: the rules are data/choices.py's, shared with the pipeline ---
    dataset: str = setting(
        "imagenet2012", "Which data: tfrecord's labels count from 1 (as the reference's), tfrecord_0based's from 0.",
        data_choices.DATASET)
    data_dir: str | None = setting(
        None, "TFDS data_dir (local or gs://), the image folder (folder) or the shards' folder (tfrecord).")
    augment: str = setting("default", "Training augmentation.", data_choices.AUGMENT)
    randaugment_num_layers: int = setting(
        2, "RandAugment's N: operations applied per image (augment=randaugment).", data_choices.RANDAUGMENT_LAYERS)
    randaugment_magnitude: float = setting(
        10.0, "RandAugment's M: their strength on the reference's 0-10 scale.", data_choices.RANDAUGMENT_MAGNITUDE)
    crop_area_min: float = setting(
        0.08, "Smallest share of the image area the training crop of full-size images (ImageNet, folder, "
              "TFRecords) keeps; the reference's 0.08 suits photographs, 0.5-1.0 small or centred objects.",
        data_choices.CROP_AREA)
    crop_area_max: float = setting(1.0, "Largest share of the image area that training crop keeps.",
                                   data_choices.CROP_AREA)
    random_flip: bool = setting(True, "Random horizontal flip in training (never on the digits, which are not "
                                      "mirror-symmetric); turn off for text, digits or other handed images.")
    eval_crop_fraction: float | None = setting(
        None, "Center crop of the shorter side at eval and serving; default: resolution / (resolution + 32), "
              "or 1.0 for low-resolution datasets (CIFAR, digits).", data_choices.CROP_FRACTION)

    # --- run ---------------------------------------------------------------
    model_dir: str = setting("", "Checkpoints, TensorBoard logs, config.yaml and eval_results.json (local or gs://).")
    mode: str = setting("train_and_eval", "What to run.", settings.one_of(MODES))
    tpu: str = setting("", "auto (find it: TPU VM, Colab, TPU_NAME), 'local' on a TPU VM, a TPU name, or "
                           "grpc://host:port; empty: no TPU.")
    tpu_configure_version: bool = setting(
        False, "A remote TPU (name or grpc) whose TensorFlow runtime differs from this TensorFlow: switch it "
               "(cloud-tpu-client's configure_tpu_version, restarts the TPU) instead of stopping.")
    strategy: str = setting("auto", "Distribution strategy.", settings.one_of(STRATEGIES))
    num_cpu_replicas: int = setting(
        1, "With strategy cpu: split the CPU into this many replicas (MirroredStrategy).", _COUNT)
    precision: str = setting("auto", "auto is bfloat16 on TPU, float16 on GPUs with tensor cores, else float32.",
                             settings.one_of(PRECISIONS))
    train_batch_size: int = setting(4096, "Global training batch (all replicas together).", _COUNT)
    eval_batch_size: int = setting(1024, "Global evaluation batch.", _COUNT)
    epochs: float | None = setting(350.0, "Training length in epochs (or give train_steps).", _POSITIVE)
    train_steps: int | None = setting(None, "Training length in steps; overrides epochs.", _COUNT)
    steps_per_loop: int = setting(200, "Training steps per call of the compiled loop (host round trips).", _COUNT)
    eval_every_epochs: float = setting(1.0, "In train_and_eval mode: evaluate this often (and at the end).",
                                       _POSITIVE)
    checkpoint_every_steps: int = setting(
        1000, "Save a checkpoint this often (rounded to whole loops) and at the end.", _COUNT)
    keep_checkpoints: int = setting(5, "How many recent checkpoints to keep.", _COUNT)
    export_dir: str | None = setting(None, "Export here at the end: a SavedModel in the next numbered version "
                                           "folder (export_dir/1, 2, ...), or export_dir/model.tflite.")
    export_format: str = setting("saved_model", "With export_dir: tflite_int8 is full-integer for lite0-4, "
                                                "dynamic-range otherwise.", settings.one_of(EXPORT_FORMATS))
    deterministic: bool = setting(False, "Seeded data order, seeded initialisation and deterministic ops.")
    seed: int = setting(42, "Seed for initialisation, dropout and the input pipeline.")
    jit_compile: bool = setting(False, "Compile the train step with XLA (TPUs always compile).")
    preemption_handler: str = setting(
        "tensorflow",
        "tensorflow: TF's PreemptionCheckpointHandler, plus a SIGTERM handler where it does not watch SIGTERM; "
        "signal: only the SIGTERM handler.", settings.one_of(PREEMPTION_HANDLERS))

    # --- reliability: the model_dir lock (training/lock.py) ------------------
    force_unlock: bool = setting(
        False, "Take over model_dir's lock even when its owner may still run (a run known to be dead on "
               "another machine); a dead process on this host is detected without it.")

    # --- recipe ------------------------------------------------------------
    optimizer: str = setting("rmsprop", "The optimizer.", settings.one_of(OPTIMIZERS))
    learning_rate: float = setting(0.016, "Peak learning rate per lr_reference_batch examples.", _POSITIVE)
    lr_reference_batch: int | None = setting(256, "Scale learning_rate by train_batch_size / this; empty: no scaling.",
                                             settings.at_least(1, integer=True, note="or empty for no scaling"))
    lr_schedule: str = setting("exponential", "After warm-up; exponential is a staircase decay.",
                               settings.one_of(LR_SCHEDULES))
    warmup_epochs: float = setting(5.0, "Linear warm-up length.", _NON_NEGATIVE)
    lr_decay_rate: float = setting(0.97, "Exponential schedule: factor per decay period.", _DECAY)
    lr_decay_epochs: float = setting(2.4, "Exponential schedule: decay period.", _POSITIVE)
    min_learning_rate: float = setting(0.0, "Cosine schedule: final value.", _NON_NEGATIVE)
    rmsprop_decay: float = setting(0.9, "RMSProp discounting factor (rho).", _DECAY)
    momentum: float = setting(0.9, "Momentum of RMSProp and SGD.", _RATE)
    epsilon: float = setting(1e-3, "Epsilon of RMSProp and Adam.", _POSITIVE)
    adam_beta_1: float = setting(0.9, "Adam first-moment decay.", _DECAY)
    adam_beta_2: float = setting(0.999, "Adam second-moment decay.", _DECAY)
    label_smoothing: float = setting(0.1, "Label smoothing of the cross-entropy.", _RATE)
    weight_decay: float = setting(
        1e-5, "L2 penalty (weight_decay * sum(v**2) / 2) on every trainable variable outside batch norm: "
              "conv and dense kernels and the biases (squeeze-excite convs', the classifier's), as the V1 "
              "reference (its main.py skips only 'batch_normalization' variables); EfficientNetV2 (v2_*) "
              "decays kernels only, as automl's; batch-norm gamma and beta are never decayed.", _NON_NEGATIVE)
    use_ema: bool = setting(True, "Keep an exponential moving average of the weights; evaluate and export it.")
    ema_decay: float = setting(0.9999, "EMA decay (warmed up as min(decay, (1 + n) / (10 + n))).", _DECAY)

    # --- reference recipe (issue 20): augmentation semantics, grouped batch norm ---
    augment_semantics: str = setting(
        "reference", "randaugment/autoaugment operations: 'reference' (the code that trained the released "
                     "checkpoints: absolute pixel translate/cutout, its level mappings) or 'paper' (the "
                     "AutoAugment paper's descriptions, sizes relative to the image); see docs/recipes.md.",
        data_choices.SEMANTICS)
    sync_batch_norm_groups: str = setting(
        "all", "With --sync_batch_norm: replicas that share batch statistics: all of them; 'reference' (the TPU "
               "reference: each replica alone up to 8 replicas, else groups of max(8, n // 8)); or a "
               "group size that divides the replica count.", settings.one_of(BATCH_NORM_GROUPINGS, sizes=True))

    # --- mixup, cutmix and EfficientNetV2 progressive learning (issue 16) ----
    mixup_alpha: float = setting(
        0.0, "Mixup strength (Beta(alpha, alpha) weights, batch-level, google/automl's and tensorflow/tpu's); "
             "0: off. With progressive, the recipe's per-stage value replaces it.", data_choices.MIX_ALPHA)
    cutmix_alpha: float = setting(
        0.0, "CutMix strength (boxes of area 1 - Beta(alpha, alpha)); 0: off. With mixup too, half of each "
             "batch gets each. With progressive, the recipe's per-stage value replaces it.", data_choices.MIX_ALPHA)
    progressive: str = setting(
        "", "Progressive learning (EfficientNetV2): a recipe file (configs/progressive/v2_progressive.yaml, "
            "or its name v2_progressive) whose entry for the variant sets the stages' image sizes, RandAugment "
            "magnitude, mixup, cutmix and dropout; empty: off.")

    # Filled in by ``resolve``; recorded in config.yaml for export.
    class_names: tuple[str, ...] | None = setting(None, "Class names of the dataset (set automatically).")

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, suitable for YAML."""
        out = dataclasses.asdict(self)
        if out["class_names"] is not None:
            out["class_names"] = list(out["class_names"])
        return out


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}


@functools.cache
def _hints() -> dict[str, Any]:
    """TrainConfig's resolved annotations, computed once (a study merges thousands of configs)."""
    return typing.get_type_hints(TrainConfig)


def field_type(name: str) -> type:
    """The scalar type of a field (``float`` for ``float | None``)."""
    hint = _hints()[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0]
    return typing.get_origin(hint) or hint


def is_optional(name: str) -> bool:
    hint = _hints()[name]
    return type(None) in typing.get_args(hint)


def _coerce(name: str, value: Any, source: str) -> Any:
    """Checks and converts one value to the field's type, naming the source on error."""
    if value is None or (isinstance(value, str) and value == "" and is_optional(name)
                         and field_type(name) is not str):
        if not is_optional(name):
            raise ValueError(f"{source}: '{name}' must not be empty")
        return None
    kind = field_type(name)
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise TypeError
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if kind is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise TypeError
            return str(value)
        if kind is dict:
            return parse_model_overrides(value, source)
        if kind is tuple:
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise TypeError
            return tuple(str(v) for v in value)
    except (TypeError, ValueError):
        pass
    else:
        raise AssertionError(f"unhandled field type {kind} for {name}")
    raise ValueError(f"{source}: '{name}' must be {kind.__name__}, got {value!r}")


def _canonical(value: Any) -> Any:
    """Nested override values in one form: lists for tuples, int keys for digit-string stage numbers.

    YAML, JSON and k=v give the same override in different shapes (``{"3": ..}``
    vs ``{3: ..}``); one form makes config.yaml comparisons on resume exact.
    """
    if isinstance(value, Mapping):
        return {(int(k) if isinstance(k, str) and k.strip().isdigit() else k): _canonical(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def _split_top_level(text: str) -> list[str]:
    """Splits ``a=1,b={3: x, 4: y}`` at the commas outside brackets and quotes."""
    parts, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p for p in (part.strip() for part in parts) if p]


def parse_model_overrides(value: Any, source: str = "model_overrides") -> dict[str, Any] | None:
    """A mapping, a JSON/YAML-flow string or ``k=v,k=v`` pairs -> a plain dict (None when empty).

    Which keys a ModelSpec accepts is checked where the model package is
    loaded (``training.modeling.check_model_overrides``): importing it here
    would pull Keras and TensorFlow into this light module.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            if text.startswith("{"):
                value = yaml.safe_load(text)
            else:
                value = {}
                for pair in _split_top_level(text):
                    key, sep, raw = pair.partition("=")
                    if not sep or not key.strip():
                        raise ValueError(f"'{pair}' is not key=value")
                    value[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except (yaml.YAMLError, ValueError) as e:
            raise ValueError(
                f"{source}: model_overrides must be JSON such as '{{\"se_position\": \"end\"}}' or "
                f"pairs such as 'se_position=end,width_coefficient=1.2' ({' '.join(str(e).split())[:80]})"
            ) from None
    if not isinstance(value, Mapping):
        raise ValueError(f"{source}: model_overrides must be a mapping of ModelSpec field -> value, got {value!r}")
    bad = [k for k in value if not isinstance(k, str) or not k.isidentifier()]
    if bad:
        raise ValueError(f"{source}: model_overrides keys must be ModelSpec field names, got {bad[0]!r}")
    return _canonical(dict(value)) or None


def safe_load_yaml(text: str, path: str) -> Any:
    """``yaml.safe_load`` with a syntax error as a ValueError naming the file, line and column."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValueError(f"{path} is not valid YAML{where}: {problem}") from None


def load_yaml(path: str) -> dict[str, Any]:
    """Reads a config file (a path, or a shipped recipe's name) with ``yaml.safe_load``; unknown keys are errors."""
    path = shipped.find_recipe(path)
    if not os.path.exists(path):
        raise FileNotFoundError(shipped.missing_recipe_message(path))
    if os.path.isdir(path):
        raise ValueError(f"--config={path} is a directory; give a YAML file (e.g. configs/digits_demo.yaml)")
    try:
        with open(path, encoding="utf-8") as f:
            data = safe_load_yaml(f.read(), path)
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"config file {path} cannot be read: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of config keys, got {type(data).__name__}")
    unknown = sorted(k for k in data if k not in FIELDS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(map(str, unknown))}; "
                         f"valid keys: {', '.join(FIELDS)}")
    return read_layer(data, path)


def merge(*layers: Mapping[str, Any], sources: tuple[str, ...] | None = None) -> TrainConfig:
    """Merges override layers over the defaults, later layers winning.

    Each layer's values are checked against their fields' rules first, so a
    bad value names the file (or study trial) it came from; without
    ``sources`` the layers are reported as flags. ``epochs`` and
    ``train_steps`` are two ways of saying one thing: a layer that sets one of
    them clears the other from the layers below it.
    """
    values: dict[str, Any] = {}
    labels = sources or tuple(f"layer {i}" for i in range(len(layers)))
    for layer, label in zip(layers, labels):
        unknown = sorted(k for k in layer if k not in FIELDS)
        if unknown:
            raise ValueError(f"{label}: unknown key(s) {', '.join(unknown)}")
        layer = read_layer(layer, label, None if sources else "--")
        if layer.get("epochs") is not None and layer.get("train_steps") is not None:
            raise ValueError(f"{label}: give either epochs or train_steps, not both")
        if "train_steps" in layer and layer["train_steps"] is not None:
            values["epochs"] = None
        if "epochs" in layer and layer["epochs"] is not None:
            values["train_steps"] = None
        values.update(layer)
    config = TrainConfig(**values)
    validate(config)
    return config


COMMAND_LINE = "command line"  # the source name train.py gives the flags' layer


def read_layer(layer: Mapping[str, Any], source: str, prefix: str | None = None) -> dict[str, Any]:
    """A layer's values in their fields' types, each checked against its field's rule.

    An error names the setting as ``--name`` for the command line, else as
    ``SOURCE: name`` (a YAML file, a study trial), with the accepted values.
    """
    values = {k: _coerce(k, v, source) for k, v in layer.items()}
    if prefix is None:
        prefix = "--" if source == COMMAND_LINE else f"{source}: "
    settings.check_values(FIELDS, values, prefix)
    return values


# --- the checks that involve several fields (each field's own accepted values are its rule) ---

def _model_dir_given(config: TrainConfig) -> None:
    if not config.model_dir:
        raise ValueError("--model_dir is required: checkpoints, logs and config.yaml go there")


def _tpu_fits_strategy(config: TrainConfig) -> None:
    if config.tpu and config.strategy in ("cpu", "gpu"):
        raise ValueError(f"--tpu={config.tpu} contradicts --strategy={config.strategy}; "
                         "drop --tpu or use --strategy=tpu (or auto)")


def _cpu_replicas_need_cpu_strategy(config: TrainConfig) -> None:
    if config.num_cpu_replicas > 1 and config.strategy != "cpu":
        raise ValueError("--num_cpu_replicas > 1 needs --strategy=cpu")


def _coefficients_need_phi(config: TrainConfig) -> None:
    for name in ("alpha", "beta", "gamma"):
        if getattr(config, name) is not None and config.phi is None:
            raise ValueError(f"--{name} overrides a compound-scaling coefficient and needs --phi")


def _length_given(config: TrainConfig) -> None:
    if config.epochs is None and config.train_steps is None and config.mode != "eval":
        raise ValueError("give --epochs or --train_steps")


def _crop_area_ordered(config: TrainConfig) -> None:
    if config.crop_area_min > config.crop_area_max:
        raise ValueError(f"--crop_area_min ({config.crop_area_min:g}) must not exceed --crop_area_max "
                         f"({config.crop_area_max:g})")


def _one_initialization(config: TrainConfig) -> None:
    if config.init_checkpoint and config.init_weights:
        raise ValueError("give --init_checkpoint (an authors' released checkpoint) or --init_weights "
                         "(a Keras file or a run of ours), not both")


CROSS_CHECKS: tuple[Callable[[TrainConfig], None], ...] = (
    _model_dir_given, _tpu_fits_strategy, _cpu_replicas_need_cpu_strategy, _coefficients_need_phi,
    _length_given, _crop_area_ordered, _one_initialization,
)


def validate(config: TrainConfig) -> None:
    """Raises ValueError with a fix for every inconsistent setting (no TF needed): each field against its
    declared rule, then the checks across fields."""
    settings.check_fields(config)
    for check in CROSS_CHECKS:
        check(config)


@dataclasses.dataclass(frozen=True)
class Flag:
    """How train.py defines one field's flag: absl's ``DEFINE_<kind>``, its default and help."""

    name: str
    kind: str  # string, boolean, integer or float
    default: Any
    help: str


def flag_definitions() -> Iterator[Flag]:
    """One flag per field but class_names, its help ending with the field's accepted values.

    An optional int or float is a string flag, so that an empty value (``--phi=``) can mean "unset".
    """
    kinds = {bool: "boolean", int: "integer", float: "float"}
    for name, field in FIELDS.items():
        if name == "class_names":
            continue
        kind, help_text = field_type(name), settings.help_of(field)
        if is_optional(name) and kind in (int, float):
            yield Flag(name, "string", None if field.default is None else str(field.default),
                       f"{help_text} ({kind.__name__}; empty: unset)")
        else:
            yield Flag(name, kinds.get(kind, "string"), field.default, help_text)


def replace(config: TrainConfig, **changes: Any) -> TrainConfig:
    """``dataclasses.replace`` followed by validation."""
    new = dataclasses.replace(config, **changes)
    validate(new)
    return new


def steps_per_epoch(config: TrainConfig, num_train_examples: int) -> float:
    return num_train_examples / config.train_batch_size


def total_train_steps(config: TrainConfig, num_train_examples: int) -> int:
    """``train_steps``, or ``epochs`` converted with the global batch (at least 1)."""
    if config.train_steps is not None:
        return config.train_steps
    assert config.epochs is not None
    return max(1, math.ceil(config.epochs * steps_per_epoch(config, num_train_examples)))


def peak_learning_rate(config: TrainConfig) -> float:
    """The linear scaling rule: ``learning_rate x batch / reference batch``."""
    if config.lr_reference_batch is None:
        return config.learning_rate
    return config.learning_rate * config.train_batch_size / config.lr_reference_batch


CONFIG_FILENAME = "config.yaml"


def config_path(model_dir: str) -> str:
    return os.path.join(model_dir, CONFIG_FILENAME)


def dump(config: TrainConfig, model_dir: str) -> str:
    """Writes the resolved config to ``model_dir/config.yaml`` (any tf.io.gfile path)."""
    import tensorflow as tf  # Lazy: gs:// paths need TF's file system.

    tf.io.gfile.makedirs(model_dir)
    path = config_path(model_dir)
    from efficientnet_tpu.storage import atomic_write  # pylint: disable=import-outside-toplevel

    return atomic_write(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def load_run_config(model_dir: str) -> dict[str, Any]:
    """Reads ``model_dir/config.yaml`` written by a training run (safe YAML)."""
    import tensorflow as tf

    path = config_path(model_dir)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path} does not exist: is {model_dir} the model_dir of a training run?")
    with tf.io.gfile.GFile(path, "r") as f:
        text = f.read()
    fix = ("; the run's own record is damaged: restore it, or move it away to resume with the flags given "
           "(the checkpoints are kept)")
    try:
        data = safe_load_yaml(text, path)
    except ValueError as e:
        raise ValueError(f"{e}{fix}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a mapping of config keys{fix}")
    return data


def from_dict(data: Mapping[str, Any], source: str = "config") -> TrainConfig:
    """A TrainConfig from a dict such as a loaded config.yaml; keys this version does not know are ignored."""
    known = {k: _coerce(k, v, source) for k, v in data.items() if k in FIELDS}
    return TrainConfig(**known)


def check_same_architecture(config: TrainConfig, previous: Mapping[str, Any], model_dir: str) -> None:
    """Refuses to resume a model_dir trained with a different network."""
    for key in ARCHITECTURE_KEYS:
        if key not in previous and key == "model_overrides":
            # A run written before model_overrides existed had none.
            previous = {**previous, key: None}
        if key == "model_overrides" and previous[key] is not None:
            previous = {**previous, key: parse_model_overrides(previous[key], model_dir)}
        if key in previous and previous[key] != getattr(config, key):
            raise ValueError(
                f"{model_dir} holds a run with {key}={previous[key]!r}, not {getattr(config, key)!r}; "
                "use another --model_dir or the same settings to resume")


def _slot_layout(values: Mapping[str, Any]) -> dict[str, Any]:
    """What decides the optimizer variables a checkpoint holds (Keras creates momentum slots only
    when momentum > 0, and mixed_float16 wraps the optimizer in a loss-scale optimizer)."""
    optimizer = values.get("optimizer")
    layout: dict[str, Any] = {"optimizer": optimizer,
                              "precision": "mixed_float16" if values.get("precision") == "mixed_float16"
                              else "not mixed_float16"}
    if optimizer in ("rmsprop", "sgd"):
        layout["momentum"] = "0" if not values.get("momentum") else "> 0"
    return layout


def check_resumable(config: TrainConfig, previous: Mapping[str, Any], model_dir: str) -> None:
    """Refuses, in one line naming the field, a change the model_dir's checkpoint cannot be loaded with.

    A changed optimizer (or momentum on/off, or loss scaling on/off) changes the optimizer
    state the checkpoint holds. ``use_ema`` may change: the trainer restores what it can.
    """
    before, now = _slot_layout(previous), _slot_layout(config.to_dict())
    for key, value in before.items():
        if value is None or key not in previous:
            continue
        if now.get(key) != value:
            raise ValueError(
                f"{model_dir} was trained with {key}={previous[key]!r} and its checkpoint holds that "
                f"optimizer state, which {key}={getattr(config, key)!r} cannot load; rerun with "
                f"--{key}={previous[key]} to resume, or use a new --model_dir to start over")
