"""Write a Keras classifier as a SavedModel with float and image-bytes signatures."""

from __future__ import annotations

import math
import os
from typing import Sequence

import keras

from efficientnet_tpu.export.precision import as_float32_model
from efficientnet_tpu.export.serving import (
    SERVE_IMAGE_BYTES, SERVING_DEFAULT, ServingFunctions)


def next_version_dir(export_base: str) -> str:
    """``export_base/<N>``: one more than the highest numbered version there (1 when none).

    TF Serving (and ``saved_model_cli``) expect a model's versions as numbered
    subfolders of one base path and serve the highest, so each export of a
    run adds a version instead of overwriting the one being served.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel  (gs:// paths)

    versions = [0]
    if tf.io.gfile.isdir(export_base):
        versions += [int(name.rstrip("/")) for name in tf.io.gfile.listdir(export_base)
                     if name.rstrip("/").isdigit()]
    return os.path.join(export_base, str(max(versions) + 1))


def check_serving_arguments(model: keras.Model, *, image_size: int,
                            class_names: Sequence[str] | None) -> None:
    """Raises ValueError when the model cannot serve what the caller describes."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    input_shape = tuple(model.inputs[0].shape) if model.inputs else None
    if input_shape is not None:
        if len(input_shape) != 4 or input_shape[-1] not in (3, None):
            raise ValueError(
                f"export expects a model taking [batch, height, width, 3] images, "
                f"but {model.name} takes {input_shape}")
        height, width = input_shape[1:3]
        if (height is not None and height != image_size) or (
                width is not None and width != image_size):
            raise ValueError(
                f"image_size={image_size} does not match the model's input "
                f"{height}x{width}; pass image_size={height} or rebuild the model "
                f"with input_shape=({image_size}, {image_size}, 3)")
    if class_names is not None:
        if isinstance(class_names, str):
            raise ValueError("class_names must be a sequence of names, not one string")
        num_classes = model.outputs[0].shape[-1] if model.outputs else None
        if num_classes is not None and len(class_names) != num_classes:
            raise ValueError(
                f"got {len(class_names)} class_names for a model with {num_classes} "
                f"outputs; pass one name per class, in label order")


def _check_crop_fraction(crop_fraction: float) -> None:
    if isinstance(crop_fraction, bool) or not (
            isinstance(crop_fraction, (int, float)) and math.isfinite(crop_fraction)
            and 0.0 < crop_fraction <= 1.0):
        raise ValueError(
            f"crop_fraction must be in (0, 1] (the variant's eval_crop_fraction), "
            f"got {crop_fraction!r}")


def build_serving_functions(model: keras.Model, *, image_size: int, crop_fraction: float,
                            class_names: Sequence[str] | None = None,
                            resize_method: str = "bicubic") -> ServingFunctions:
    """Checks the arguments and wraps a float32 version of ``model`` for serving."""
    check_serving_arguments(model, image_size=image_size, class_names=class_names)
    _check_crop_fraction(crop_fraction)
    return ServingFunctions(as_float32_model(model), image_size=image_size,
                            crop_fraction=crop_fraction, class_names=class_names,
                            resize_method=resize_method)


def export_saved_model(model: keras.Model, export_dir: str, *, image_size: int,
                       crop_fraction: float,
                       class_names: Sequence[str] | None = None, resize_method: str = "bicubic") -> str:
    """Writes ``model`` to ``export_dir`` as a SavedModel and returns the path.

    Signatures (inputs and outputs float32 whatever the training precision):
      - ``serving_default``: ``images`` float32 [batch, image_size, image_size, 3]
        with pixels in [0, 255];
      - ``serve_image_bytes``: ``image_bytes`` string [batch] of encoded JPEG or
        PNG files, decoded, center-cropped to ``crop_fraction`` and resized by
        ``efficientnet_tpu.data.preprocess_for_eval`` (``resize_method``: the spec's).
    Both return ``logits`` float32 [batch, classes], ``probabilities`` float32
    [batch, classes], ``classes`` int64 [batch] and, when ``class_names`` is
    given, ``class_names`` string [batch] (the predicted class's name).
    The model must return logits (no softmax), as ``build_model`` does.

    ``keras.export.ExportArchive`` writes the file rather than
    ``tf.saved_model.save`` of a module holding the model: it saves the plain
    tf.Variables the signatures read, which the C++ loader of TensorFlow
    Serving and ``saved_model_cli run`` can restore; a Keras 3 model saved as a
    tracked attribute loads in Python but not there.
    """
    functions = build_serving_functions(model, image_size=image_size, crop_fraction=crop_fraction,
                                        class_names=class_names, resize_method=resize_method)
    archive = keras.export.ExportArchive()
    archive.track(functions.model)
    archive.add_endpoint(SERVING_DEFAULT, functions.serve,
                         input_signature=[functions.images_spec])
    archive.add_endpoint(SERVE_IMAGE_BYTES, functions.serve_image_bytes,
                         input_signature=[functions.image_bytes_spec])
    export_dir = os.fspath(export_dir)
    archive.write_out(export_dir, verbose=False)
    return export_dir
