"""Chooses the tf.distribute strategy: TPU, GPUs, multi-worker, or the CPU.

Only TensorFlow's own strategies are used; this module decides which one and
connects to the TPU system first when there is one.
"""

from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf
from absl import logging

from efficientnet_tpu.training import tpu as tpu_lib


@dataclasses.dataclass(frozen=True)
class StrategyInfo:
    """The strategy plus what the trainer needs to know about its place in a cluster."""

    strategy: tf.distribute.Strategy
    kind: str  # "tpu", "gpu", "multi_worker", "cpu"
    is_chief: bool = True
    worker_id: int = 0

    @property
    def num_replicas(self) -> int:
        return self.strategy.num_replicas_in_sync


def _tf_config_workers() -> tuple[int, str | None, int]:
    """(number of workers, task type, task index) from TF_CONFIG; (0, None, 0) when absent."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0, None, 0
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError:
        raise ValueError("TF_CONFIG is set but is not valid JSON") from None
    cluster = tf_config.get("cluster", {})
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    task = tf_config.get("task", {})
    return workers, task.get("type"), int(task.get("index", 0))


def connect_tpu(tpu: str, configure_version: bool = False) -> tf.distribute.cluster_resolver.TPUClusterResolver:
    """Finds the TPU (``local`` on a TPU VM, a name, or grpc://...) and initialises it.

    A remote TPU's runtime is checked against this TensorFlow first (and
    switched with ``configure_version``): a mismatch otherwise fails later
    with an obscure error from the TPU.
    """
    if tpu_lib.is_remote(tpu):
        logging.info("TPU %s: %s", tpu, tpu_lib.check_runtime_version(tpu, tf.__version__,
                                                                      configure=configure_version))
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
    except (ValueError, RuntimeError) as e:
        raise ValueError(f"cannot find the TPU {tpu!r}: {str(e).splitlines()[0]}. On a TPU VM use --tpu=local "
                         "with TensorFlow's TPU build (pip install tensorflow-tpu)") from None
    if tpu not in ("", "local"):
        # A remote TPU (name or grpc address) is reached through a cluster connection;
        # on a TPU VM the devices are local and no connection is needed.
        tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return resolver


def configure_cpu_replicas(count: int) -> None:
    """Splits the CPU into ``count`` logical devices (must run before TF uses any device)."""
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is not None and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError:
        raise ValueError(f"cannot split the CPU into {count} replicas after TensorFlow has started using it; "
                         "run this in a fresh process") from None


def resolve_strategy(kind: str, tpu: str = "", num_cpu_replicas: int = 1,
                     configure_tpu_version: bool = False) -> StrategyInfo:
    """The strategy for ``--strategy`` (auto, tpu, gpu, cpu) and ``--tpu`` (``auto``: see training/tpu.py).

    auto: a TPU when ``tpu`` is given, MultiWorkerMirroredStrategy when
    TF_CONFIG names several workers, MirroredStrategy when GPUs are visible,
    otherwise the default (single-device) strategy.
    """
    if tpu and kind in ("cpu", "gpu"):
        raise ValueError(f"--tpu={tpu} contradicts --strategy={kind}")
    tpu = tpu_lib.resolve_tpu(tpu) if tpu == "auto" else tpu
    workers, task_type, task_index = _tf_config_workers()
    if kind == "auto":
        if tpu:
            kind = "tpu"
        elif workers > 1:
            kind = "multi_worker"
        elif tf.config.list_physical_devices("GPU"):
            kind = "gpu"
        else:
            kind = "cpu"
    elif kind in ("gpu", "cpu") and workers > 1:
        kind = "multi_worker_" + kind

    if kind == "tpu":
        resolver = connect_tpu(tpu or "local", configure_tpu_version)
        strategy = tf.distribute.TPUStrategy(resolver)
        info = StrategyInfo(strategy, "tpu")
    elif kind.startswith("multi_worker"):
        use_gpu = kind != "multi_worker_cpu" and bool(tf.config.list_physical_devices("GPU"))
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.NCCL if use_gpu
            else tf.distribute.experimental.CommunicationImplementation.AUTO)
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        resolver = strategy.cluster_resolver
        is_chief = resolver.task_type == "chief" or (
            resolver.task_type == "worker" and resolver.task_id == 0
            and "chief" not in resolver.cluster_spec().as_dict())
        worker_id = task_index if task_type == "worker" else 0
        info = StrategyInfo(strategy, "multi_worker", is_chief=is_chief, worker_id=worker_id)
    elif kind == "gpu":
        gpus = tf.config.list_logical_devices("GPU")
        if not gpus:
            raise ValueError("--strategy=gpu but TensorFlow sees no GPU; check the CUDA install "
                             "(python -c 'import tensorflow as tf; print(tf.config.list_physical_devices())')")
        strategy = tf.distribute.MirroredStrategy([d.name for d in gpus])
        info = StrategyInfo(strategy, "gpu")
    elif kind == "cpu":
        if num_cpu_replicas > 1:
            configure_cpu_replicas(num_cpu_replicas)
            cpus = tf.config.list_logical_devices("CPU")[:num_cpu_replicas]
            strategy = tf.distribute.MirroredStrategy([d.name for d in cpus])
        else:
            strategy = tf.distribute.get_strategy()
        info = StrategyInfo(strategy, "cpu")
    else:
        raise ValueError(f"unknown strategy {kind!r}; choose auto, tpu, gpu or cpu")
    logging.info("Strategy: %s (%s) with %d replica(s).", type(info.strategy).__name__, info.kind,
                 info.num_replicas)
    return info
