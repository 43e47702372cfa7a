"""Save a checkpoint and stop when the machine is about to be taken away.

TensorFlow's ``PreemptionCheckpointHandler`` comes first: it watches SIGTERM
(or the GCE maintenance event on GPU VMs) and coordinates the save across
multi-worker clusters. It does nothing on Cloud TPU VMs and GCE CPU VMs,
however, and on GCE GPU VMs it does not watch SIGTERM, so wherever it has not
installed a SIGTERM handler this module installs one that sets a flag the
training loop checks between compiled loops. Either way the trainer saves a
checkpoint at the current step and raises ``Preempted``; the entry point
then exits with status 143 (128 + SIGTERM), which job supervisors read as
"restart me".
"""

from __future__ import annotations

import signal
import threading
from typing import Callable

import tensorflow as tf
from absl import logging

from efficientnet_tpu import exit_codes

PREEMPTED_EXIT_CODE = exit_codes.PREEMPTED


class Preempted(Exception):
    """Raised after the preemption checkpoint has been written."""

    def __init__(self, step: int, path: str | None) -> None:
        super().__init__(f"preempted at step {step}; checkpoint {path} saved, rerun the same command to resume")
        self.step = step
        self.path = path


class PreemptionWatcher:
    """Calls ``save(step)`` and raises ``Preempted`` once a termination notice has arrived.

    ``check(step)`` must be called by every worker after every compiled loop.
    """

    def __init__(self, save: Callable[[], tuple[int, str | None]], *, handler: str = "tensorflow",
                 cluster_resolver=None, scratch_dir: str | None = None) -> None:
        self._save = save
        self._flag = threading.Event()
        self._tf_handler = None
        self._installed = False
        self._result: tuple[int, str | None] | None = None
        in_main_thread = threading.current_thread() is threading.main_thread()
        self._original_handler = signal.getsignal(signal.SIGTERM) if in_main_thread else None
        if handler == "none":
            return
        if handler == "tensorflow":
            self._tf_handler = self._make_tf_handler(cluster_resolver, scratch_dir)
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None) or handler == "signal":
            self._install_signal_handler()

    def _make_tf_handler(self, cluster_resolver, scratch_dir: str | None):
        """TF's handler, saving through our manager (its own checkpoint only counts runs)."""
        if threading.current_thread() is not threading.main_thread():
            return None

        def exit_fn() -> None:
            raise Preempted(*self._result) if self._result else Preempted(-1, None)

        def save_fn(*_args, **_kwargs) -> None:
            self._result = self._save()

        config = tf.distribute.experimental.TerminationConfig(exit_fn=exit_fn, save_fn=save_fn)
        try:
            return tf.distribute.experimental.PreemptionCheckpointHandler(
                cluster_resolver, tf.train.Checkpoint(), checkpoint_dir=scratch_dir,
                termination_config=config)
        except (tf.errors.OpError, ValueError, NotImplementedError, RuntimeError) as e:
            logging.warning("TensorFlow's PreemptionCheckpointHandler is unavailable (%s); "
                            "using the SIGTERM handler.", e)
            return None

    def _install_signal_handler(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            logging.warning("Not in the main thread: SIGTERM will not trigger a checkpoint.")
            return
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self._installed = True

    def _on_sigterm(self, signum, frame) -> None:  # pylint: disable=unused-argument
        logging.warning("SIGTERM received: saving a checkpoint after the current loop.")
        self._flag.set()

    @property
    def uses_tensorflow_handler(self) -> bool:
        return self._tf_handler is not None

    def check(self) -> None:
        """Saves and raises ``Preempted`` if a termination notice has arrived."""
        if self._tf_handler is not None:
            # Saves (through save_fn) and exits (through exit_fn, which raises)
            # one loop after TF's handler has seen the notice.
            self._tf_handler.save_checkpoint_if_preempted()
        if self._flag.is_set():
            step, path = self._save()
            raise Preempted(step, path)

    def close(self) -> None:
        """Restores the previous SIGTERM handler (so tests and notebooks are left as found)."""
        if self._installed or self._tf_handler is not None:
            # TF's handler installs its own SIGTERM handler and never removes it.
            signal.signal(signal.SIGTERM, self._original_handler or signal.SIG_DFL)
        self._installed = False
        self._tf_handler = None
