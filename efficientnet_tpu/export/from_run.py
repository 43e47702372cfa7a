"""``export_run``: the one way a training run is exported, by the trainer and the export CLI alike."""

from __future__ import annotations

import os
from typing import Any

from efficientnet_tpu.training.config import EXPORT_FORMATS as FORMATS

# Images of the run's own eval split that calibrate a full-integer model's activations.
REPRESENTATIVE_IMAGES = 256


def described(format: str) -> str:  # pylint: disable=redefined-builtin
    """The artefact with its article, for "exported ... to PATH" lines: "a SavedModel", "an int8 TFLite model"."""
    name = FORMATS[format]
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def is_file_format(format: str) -> bool:  # pylint: disable=redefined-builtin
    """Whether the export is one file (TFLite) rather than a SavedModel folder."""
    return format != "saved_model"


def int8_scheme(variant: str) -> str:
    """Full-integer for lite0..lite4 (designed for it: ReLU6, no SE), dynamic-range for the others."""
    return "full_integer" if variant.startswith("lite") else "dynamic_range"


def record_eval_dataset(record: dict[str, Any], batch_size: int):
    """The eval stream of the run `record` describes, preprocessed as at eval time."""
    # pylint: disable=import-outside-toplevel
    from efficientnet_tpu import data as data_lib

    facts = data_lib.dataset_info(record["dataset"], record.get("data_dir"))
    options = data_lib.DataOptions(eval_crop_fraction=float(record["eval_crop_fraction"]),
                                   resize_method=record.get("resize_method", "bicubic"))
    return data_lib.build_dataset(
        record["dataset"], facts.eval_split, global_batch_size=batch_size, image_size=int(record["image_size"]),
        training=False, options=options, data_dir=record.get("data_dir"))


def representative_dataset(record: dict[str, Any], num_images: int = REPRESENTATIVE_IMAGES):
    """A generator of [images] batches from the run's eval split, preprocessed as at eval time."""
    dataset = record_eval_dataset(record, batch_size=1)

    def generate():
        taken = 0
        for batch in dataset:
            images, mask = batch[0], (batch[2] if len(batch) > 2 else None)
            if mask is not None and not bool(mask.numpy().all()):
                continue  # padding of the last eval batch, not an image
            yield [images.numpy()]
            taken += 1
            if taken >= num_images:
                return
    return generate


def export_run(model_dir: str, export_dir: str, *, format: str = "saved_model",  # pylint: disable=redefined-builtin
               use_ema: bool | None = None, checkpoint_path: str | None = None,
               versioned: bool = False) -> tuple[str, dict[str, Any]]:
    """Exports a run's newest readable checkpoint (or ``checkpoint_path``); returns (path, run record).

    Everything besides the weights (variant, resolution, eval crop, class
    names) comes from ``model_dir/config.yaml``. ``versioned`` writes a
    SavedModel to the next numbered folder below ``export_dir`` (TF Serving's
    layout), as the trainer does; a TFLite file goes to
    ``export_dir/model.tflite`` either way. The record is the run's config
    with ``checkpoint``, ``step``, ``image_size``, ``eval_crop_fraction`` and
    ``used_ema`` filled in.
    """
    # pylint: disable=import-outside-toplevel  (the CLI checks its flags before TensorFlow loads)
    from efficientnet_tpu.export.saved_model import export_saved_model, next_version_dir
    from efficientnet_tpu.export.tflite import export_tflite
    from efficientnet_tpu.training.trained import load_trained_model

    if format not in FORMATS:
        raise ValueError(f"export format {format!r} is not supported; use one of {', '.join(FORMATS)}")
    from efficientnet_tpu import storage

    if format != "tflite" and not versioned and tf_exists(os.path.join(export_dir, "saved_model.pb")):
        raise ValueError(f"--export_dir={export_dir} already holds a SavedModel; give a new folder (TF "
                         "Serving reads numbered versions: export_dir/2) or delete the old one first")
    model, record = load_trained_model(model_dir, use_ema=use_ema, checkpoint_path=checkpoint_path)
    # After the run is found (a bad --model_dir creates nothing), before the export writes anything.
    storage.check_writable(export_dir, "--export_dir")
    class_names = record.get("class_names")
    if format == "tflite":
        path = export_tflite(model, export_dir, image_size=int(record["image_size"]), class_names=class_names)
    elif format == "tflite_int8":
        scheme = int8_scheme(str(record.get("variant", "")))
        path = export_tflite(model, export_dir, image_size=int(record["image_size"]), class_names=class_names,
                             quantization=scheme, representative_dataset=representative_dataset(record)
                             if scheme == "full_integer" else None)
        record = {**record, "quantization": scheme}
    else:
        target = next_version_dir(export_dir) if versioned else export_dir
        path = export_saved_model(model, target, image_size=int(record["image_size"]),
                                  crop_fraction=float(record["eval_crop_fraction"]), class_names=class_names,
                                  resize_method=record.get("resize_method", "bicubic"))
    return os.fspath(path), record


def tf_exists(path: str) -> bool:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    return bool(tf.io.gfile.exists(path))
