"""Convert a Keras classifier to a float32 TFLite flatbuffer.

TensorFlow 2.21 still ships ``tf.lite.TFLiteConverter``; only the interpreter
is deprecated in favour of the separate ``ai-edge-litert`` package. The
converted graph takes the same float pixels as ``serving_default`` and returns
``logits``, ``probabilities`` and ``classes`` through its ``serving_default``
signature; class names, if any, go to ``labels.txt`` beside the model.
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable, Iterable, Sequence

import keras
import tensorflow as tf

from efficientnet_tpu.export.saved_model import (
    build_serving_functions, check_serving_arguments)
from efficientnet_tpu.export.serving import SERVING_DEFAULT

TFLITE_FILENAME = "model.tflite"
LABELS_FILENAME = "labels.txt"
# Post-training quantization: "dynamic_range" stores weights as int8 and keeps float activations;
# "full_integer" also calibrates every activation on a representative dataset and runs int8 kernels
# only (the lite networks were designed for it: ReLU6, no SE). Inputs and outputs stay float32 either way,
# so the signature is the float model's.
QUANTIZATIONS = ("none", "dynamic_range", "full_integer")
Representative = Callable[[], Iterable[list]]


def tflite_converter_available() -> bool:
    """Whether this TensorFlow still ships the TFLite converter."""
    return hasattr(getattr(tf, "lite", None), "TFLiteConverter")


def convert_to_tflite(model: keras.Model, *, image_size: int, quantization: str = "none",
                      representative_dataset: Representative | None = None) -> bytes:
    """Returns the TFLite flatbuffer of ``model``: float32, or quantized (see QUANTIZATIONS).

    ``representative_dataset`` (required for "full_integer") yields ``[images]``
    batches of float pixels, as ``serving_default`` takes them.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    if quantization == "full_integer" and representative_dataset is None:
        raise ValueError("full-integer quantization calibrates on a representative dataset; pass one")
    if not tflite_converter_available():
        raise RuntimeError(
            f"TensorFlow {tf.__version__} does not ship tf.lite.TFLiteConverter; "
            "export a SavedModel and convert it with the LiteRT tools instead")
    # crop_fraction only matters to serve_image_bytes, which TFLite does not get.
    functions = build_serving_functions(model, image_size=image_size, crop_fraction=1.0)
    archive = keras.export.ExportArchive()
    archive.track(functions.model)
    archive.add_endpoint(SERVING_DEFAULT, functions.predict_without_names,
                         input_signature=[functions.images_spec])
    # Through a SavedModel written by ExportArchive: converting a concrete
    # function of a Keras 3 model directly (or a SavedModel of a tf.Module
    # holding the model) leaves its variables as uninitialised TFLite resource
    # variables, and the outputs are garbage.
    with tempfile.TemporaryDirectory(prefix="efficientnet_tflite_") as saved_model_dir:
        archive.write_out(saved_model_dir, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_model_dir, signature_keys=[SERVING_DEFAULT])
        converter.optimizations = [] if quantization == "none" else [tf.lite.Optimize.DEFAULT]
        if quantization == "full_integer":
            converter.representative_dataset = representative_dataset
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()


def export_tflite(model: keras.Model, export_dir: str, *, image_size: int,
                  class_names: Sequence[str] | None = None, quantization: str = "none",
                  representative_dataset: Representative | None = None) -> str:
    """Writes ``export_dir/model.tflite`` (and labels.txt) and returns its path."""
    check_serving_arguments(model, image_size=image_size, class_names=class_names)
    flatbuffer = convert_to_tflite(model, image_size=image_size, quantization=quantization,
                                   representative_dataset=representative_dataset)
    export_dir = os.fspath(export_dir)
    tf.io.gfile.makedirs(export_dir)  # tf.io.gfile: export_dir may be gs://
    path = os.path.join(export_dir, TFLITE_FILENAME)
    with tf.io.gfile.GFile(path, "wb") as file:
        file.write(flatbuffer)
    if class_names is not None:
        with tf.io.gfile.GFile(os.path.join(export_dir, LABELS_FILENAME), "w") as file:
            file.write("".join(f"{name}\n" for name in class_names))
    return path
