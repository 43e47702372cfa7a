"""Top-1 of an exported TFLite model on a run's eval split: how much quantization cost.

The images go through the run's own eval preprocessing (the same as
``--mode=eval``), then through the flatbuffer's ``serving_default``.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from efficientnet_tpu.export.serving import SERVING_DEFAULT


def _runner(path: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's notice that it moved to LiteRT
        interpreter = tf.lite.Interpreter(model_path=path)
    return interpreter.get_signature_runner(SERVING_DEFAULT)


def tflite_top1(path: str, record: dict, batch_size: int = 50) -> tuple[float, int]:
    """(top-1, examples) of the flatbuffer at `path` on the eval split of the run described by `record`."""
    from efficientnet_tpu.export.from_run import record_eval_dataset  # pylint: disable=import-outside-toplevel

    dataset = record_eval_dataset(record, batch_size)
    runner = _runner(path)
    correct = total = 0
    for images, labels, mask in dataset:
        keep = mask.numpy().astype(bool)
        if not keep.any():
            continue
        predicted = np.asarray(runner(images=images.numpy()[keep])["classes"]).reshape(-1)
        correct += int((predicted == labels.numpy()[keep]).sum())
        total += int(keep.sum())
    return correct / max(total, 1), total
