"""Console progress line and TensorBoard scalars for the training loop."""

from __future__ import annotations

import os
import sys
import time
from typing import Mapping, TextIO

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

# TensorBoard's plugin tags, written with TF's own tf.summary.write so that
# logging needs no tensorboard package (only viewing the logs does).
_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
_TEXT_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressLine:
    """``step 1200/5000 [====>     ] 24% | loss 2.31 acc 41.2% | 1234 img/s 0.052 s/step | ETA 3:12``.

    On a terminal the line is redrawn in place; in a log file a line is
    written at most every ``min_interval`` seconds so logs stay short.
    """

    def __init__(self, total_steps: int, stream: TextIO | None = None, width: int = 24,
                 min_interval: float = 10.0, enabled: bool = True) -> None:
        self.total_steps = max(int(total_steps), 1)
        self.stream = stream or sys.stdout
        self.width = width
        self.min_interval = min_interval
        self.enabled = enabled
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_print = 0.0
        self._open_line = False

    def format(self, step: int, metrics: Mapping[str, float], images_per_second: float,
               step_time: float, eta_seconds: float | None) -> str:
        fraction = min(step / self.total_steps, 1.0)
        filled = int(fraction * self.width)
        bar = "=" * filled + (">" if filled < self.width else "") + " " * max(self.width - filled - 1, 0)
        parts = [f"step {step}/{self.total_steps} [{bar}] {fraction:4.0%}"]
        shown = []
        for name, value in metrics.items():
            if name.endswith("accuracy"):
                shown.append(f"{name.replace('accuracy', 'acc')} {value:.1%}")
            elif name == "learning_rate":
                shown.append(f"lr {value:.2e}")
            else:
                shown.append(f"{name} {value:.4g}")
        if shown:
            parts.append(" ".join(shown))
        parts.append(f"{images_per_second:,.0f} img/s {step_time:.3f} s/step")
        parts.append(f"ETA {_duration(eta_seconds)}" if eta_seconds is not None else "ETA ?")
        return " | ".join(parts)

    def update(self, step: int, metrics: Mapping[str, float], images_per_second: float,
               step_time: float, eta_seconds: float | None, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not (self._tty or force or now - self._last_print >= self.min_interval):
            return
        self._last_print = now
        line = self.format(step, metrics, images_per_second, step_time, eta_seconds)
        if self._tty:
            self.stream.write("\r\033[K" + line)
            self._open_line = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """Prints a full line (ending the in-place progress line first)."""
        if not self.enabled:
            return
        if self._open_line:
            self.stream.write("\n")
            self._open_line = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._open_line and self.enabled:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False


class Summaries:
    """TensorBoard writers for ``model_dir/train`` and ``model_dir/eval`` (chief only)."""

    def __init__(self, model_dir: str, enabled: bool = True) -> None:
        if enabled:
            self.train = tf.summary.create_file_writer(os.path.join(model_dir, "train"))
            self.eval = tf.summary.create_file_writer(os.path.join(model_dir, "eval"))
        else:
            self.train = self.eval = tf.summary.create_noop_writer()

    @staticmethod
    def _write(writer, scalars: Mapping[str, float], step: int) -> None:
        with writer.as_default(step=step):
            for name, value in scalars.items():
                tf.summary.write(name, tf.constant(float(value), tf.float32), metadata=_SCALAR_METADATA)
        writer.flush()

    def write_train(self, scalars: Mapping[str, float], step: int) -> None:
        self._write(self.train, scalars, step)

    def write_eval(self, scalars: Mapping[str, float], step: int) -> None:
        self._write(self.eval, scalars, step)

    def write_text(self, name: str, text: str, step: int = 0) -> None:
        with self.train.as_default(step=step):
            tf.summary.write(name, tf.constant(text), metadata=_TEXT_METADATA)
        self.train.flush()

    def close(self) -> None:
        for writer in (self.train, self.eval):
            writer.close()
