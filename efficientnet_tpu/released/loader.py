"""``load_released_checkpoint``: the authors' tf.train checkpoints into our Keras models.

The released checkpoints (tensorflow/tpu EfficientNet B0-B7 and lite0-4,
google/automl EfficientNetV2) are name-based TF1 checkpoints: every variable
lives under the model's scope (`efficientnet-b0/...`, `efficientnet-lite0/...`,
`efficientnetv2-s/...`) and the exponential moving average the reference
evaluates with is a shadow `<name>/ExponentialMovingAverage`. Loading is
strict: every weight of our model must find its variable with the same shape,
every variable of the checkpoint's network must find a weight, and the model
name inside the checkpoint must be our variant's; anything else is one
`CheckpointError` naming the variable and the fix. Optimizer slots (RMSProp)
and bookkeeping outside the network's scope (`global_step`) are not weights
and are reported, not loaded.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from efficientnet_tpu.released.names import BN, HEAD_LAYER, is_state, reference_names

EMA_SUFFIX = "/ExponentialMovingAverage"
# Variables a training run keeps beside the network: optimizer slots (the reference trains with RMSProp).
OPTIMIZER_SUFFIXES = ("/RMSProp", "/RMSProp_1", "/Momentum", "/Adam", "/Adam_1")
_PREFIX = "efficientnet_tpu_"


class CheckpointError(ValueError):
    """A released checkpoint that does not fit the model (or is no checkpoint at all)."""


def released_model_name(variant: str) -> str | None:
    """The reference's model scope for one of our variants: b0 -> efficientnet-b0, v2_s -> efficientnetv2-s."""
    if variant.startswith("v2_"):
        return f"efficientnetv2-{variant[3:]}"
    if variant in {f"b{n}" for n in range(8)} or variant in {f"lite{n}" for n in range(5)}:
        return f"efficientnet-{variant}"
    return None


def our_variant(model_name: str) -> str | None:
    """The inverse of `released_model_name`: efficientnetv2-s -> v2_s (None for a network we lack)."""
    if model_name.startswith("efficientnetv2-"):
        variant = "v2_" + model_name[len("efficientnetv2-"):]
    elif model_name.startswith("efficientnet-"):
        variant = model_name[len("efficientnet-"):]
    else:
        return None
    return variant if released_model_name(variant) == model_name else None


def _family(model_name: str) -> str:
    if model_name.startswith("efficientnetv2-"):
        return "an EfficientNetV2 (google/automl) checkpoint"
    if model_name.startswith("efficientnet-lite"):
        return "an EfficientNet-lite (tensorflow/tpu) checkpoint"
    return "an EfficientNet (tensorflow/tpu) checkpoint"


def find_checkpoint(path: str) -> str:
    """The checkpoint prefix of `path`: a prefix itself, or a directory holding `checkpoint`/`*.index`."""
    path = os.fspath(path).rstrip("/")
    if tf.io.gfile.exists(path + ".index"):
        return path
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest and tf.io.gfile.exists(latest + ".index"):
            return latest
        indexes = sorted(tf.io.gfile.glob(os.path.join(path, "*.index")))
        if len(indexes) == 1:
            return indexes[0][: -len(".index")]
        if len(indexes) > 1:
            raise CheckpointError(f"{path} holds {len(indexes)} checkpoints ({', '.join(os.path.basename(i) for i in indexes[:3])}) "
                                  "and no `checkpoint` file naming one; give the prefix, e.g. "
                                  f"{indexes[0][: -len('.index')]}")
        raise CheckpointError(f"{path} is a directory without a tf.train checkpoint (no `checkpoint` file, no "
                              "*.index); give the folder unpacked from the released .tar.gz (it holds model.ckpt.*)")
    raise CheckpointError(f"{path} is not a tf.train checkpoint: neither a directory nor a prefix with "
                          f"{os.path.basename(path)}.index beside it")


def _read_names(prefix: str) -> dict[str, tuple[int, ...]]:
    try:
        return {name: tuple(shape) for name, shape in tf.train.list_variables(prefix)}
    except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as e:
        raise CheckpointError(f"{prefix} cannot be read as a tf.train checkpoint "
                              f"({' '.join(str(e).split())[:160]}); is it truncated? unpack the download again") from None


def checkpoint_model_name(names: dict[str, tuple[int, ...]], prefix: str) -> str:
    """The network scope inside the checkpoint (efficientnet-b0, efficientnetv2-s, ...)."""
    scopes = sorted({name.split("/", 1)[0] for name in names if "/" in name
                     and name.split("/", 1)[1].startswith(("stem/", "blocks_", "head/"))})
    if len(scopes) != 1:
        example = next(iter(sorted(names)), "nothing")
        raise CheckpointError(
            f"{prefix} is not a released EfficientNet checkpoint: expected variables such as "
            f"efficientnet-b0/stem/conv2d/kernel, found {len(names)} like {example!r}"
            + (f" (several networks: {', '.join(scopes)})" if len(scopes) > 1 else ""))
    return scopes[0]


def reference_model_name(model: keras.Model) -> str:
    """The reference scope our model's weights live under; raises CheckpointError for a network without one."""
    variant = model.name[len(_PREFIX):] if model.name.startswith(_PREFIX) else model.name
    name = released_model_name(variant)
    if name is None:
        raise CheckpointError(
            f"the authors released no checkpoint of variant {variant!r}; released checkpoints load into "
            "b0..b7, lite0..lite4, v2_b0..v2_b3, v2_s, v2_m, v2_l")
    return name


@dataclasses.dataclass(frozen=True)
class LoadReport:
    """What was loaded: the checkpoint, the network, which weights, what was left aside on purpose."""

    checkpoint: str
    model_name: str
    used_ema: bool
    num_loaded: int
    head_loaded: bool
    not_network: tuple[str, ...]  # global_step and other bookkeeping outside the network scope
    optimizer_slots: int

    def summary(self) -> str:
        weights = "EMA (ExponentialMovingAverage) weights" if self.used_ema else "raw weights"
        head = "" if self.head_loaded else ", classifier left to its fresh initialization"
        return f"loaded {self.num_loaded} variables of {self.model_name} from {self.checkpoint} ({weights}{head})"


def _check_name(model: keras.Model, found: str, prefix: str) -> str:
    expected = reference_model_name(model)
    if found == expected:
        return expected
    ours = our_variant(found)
    fix = f"use --variant={ours}" if ours else "no variant of ours matches it"
    raise CheckpointError(f"{prefix} is {_family(found)} of {found}, but the model is {expected} "
                          f"(variant {our_variant(expected)}); {fix}")


def _value_name(name: str, names: dict[str, Any], use_ema: bool, has_shadows: bool) -> str | None:
    candidates = [name]
    if BN in name:  # a run trained with plain batch norm (not the TPU one) names it batch_normalization
        candidates.append(name.replace(BN, "batch_normalization"))
    for candidate in candidates:
        if use_ema and has_shadows:
            if candidate + EMA_SUFFIX in names:
                return candidate + EMA_SUFFIX
        elif candidate in names:
            return candidate
    return None


def load_released_checkpoint(model: keras.Model, path: str | os.PathLike, use_ema: bool = True,
                             *, include_head: bool = True) -> LoadReport:
    """Loads a released checkpoint (directory or prefix) into `model`, strictly; returns a `LoadReport`.

    `use_ema` takes each variable's `/ExponentialMovingAverage` shadow (what
    the reference evaluates and exports) when the checkpoint has shadows;
    False takes the raw values. `include_head=False` leaves the classifier
    as it is (fine-tuning to another class count) and says so in the report;
    with it True the checkpoint's classifier must fit. Raises
    `CheckpointError` (a ValueError) naming the first missing, extra or
    mis-shaped variable; the model is changed only when everything fits.
    """
    prefix = find_checkpoint(os.fspath(path))
    names = _read_names(prefix)
    model_name = _check_name(model, checkpoint_model_name(names, prefix), prefix)
    has_shadows = any(n.endswith(EMA_SUFFIX) for n in names)
    pairs = reference_names(model, model_name)
    head_weights = {id(w) for w in model.get_layer(HEAD_LAYER).weights} if not include_head else set()

    plan: list[tuple[Any, str]] = []
    consumed: set[str] = set()
    for weight, name in pairs:
        source = _value_name(name, names, use_ema, has_shadows)
        if id(weight) in head_weights:
            if source is None:
                raise CheckpointError(f"{prefix} lacks {name}: it is not a complete {model_name} checkpoint")
            consumed.update({source, source.removesuffix(EMA_SUFFIX)})
            continue
        if source is None:
            what = f"{name}{EMA_SUFFIX}" if use_ema and has_shadows else name
            raise CheckpointError(f"{prefix} lacks {what} (for our {weight.path}); the checkpoint is truncated "
                                  f"or of another architecture than {model_name}")
        shape = tuple(weight.shape)
        if names[source] != shape:
            hint = (" (another class count: fine-tune with a new head, include_head=False)"
                    if name.endswith(("head/dense/kernel", "head/dense/bias")) else "")
            raise CheckpointError(f"{source} has shape {names[source]} in {prefix}, our {weight.path} has {shape}"
                                  f"{hint}")
        plan.append((weight, source))
        consumed.update({source, source.removesuffix(EMA_SUFFIX)})

    network = [n for n in names if n.startswith(model_name + "/")]
    slots = [n for n in network if n.endswith(OPTIMIZER_SUFFIXES)
             or any(s + "/" in n + "/" for s in OPTIMIZER_SUFFIXES)]
    extra = sorted(n for n in network if n not in consumed and n not in slots
                   and n.removesuffix(EMA_SUFFIX) not in consumed)
    if extra:
        raise CheckpointError(f"{prefix} holds {len(extra)} variable(s) of {model_name} our model has no place "
                              f"for, e.g. {extra[0]}: the checkpoint's network differs from ours")
    try:
        reader = tf.train.load_checkpoint(prefix)
        values = [(weight, reader.get_tensor(source)) for weight, source in plan]
    except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as e:
        raise CheckpointError(f"{prefix} cannot be read ({' '.join(str(e).split())[:160]}); "
                              "is it truncated? unpack the download again") from None
    for weight, value in values:
        weight.assign(np.asarray(value, dtype=weight.dtype))
    unassigned = [w.path for w in model.weights if not is_state(w) and id(w) not in head_weights
                  and id(w) not in {id(p[0]) for p in plan}]
    if unassigned:  # reference_names covers every weight; this guards that promise
        raise CheckpointError(f"our {unassigned[0]} got no value from {prefix}")
    return LoadReport(checkpoint=prefix, model_name=model_name, used_ema=bool(use_ema and has_shadows),
                      num_loaded=len(plan), head_loaded=include_head,
                      not_network=tuple(sorted(n for n in names if not n.startswith(model_name + "/"))),
                      optimizer_slots=len(slots))
