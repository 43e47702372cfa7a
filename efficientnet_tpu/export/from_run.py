"""``export_run``: the one way a training run is exported, by the trainer and the export CLI alike."""

from __future__ import annotations

import os
from typing import Any

FORMATS = {"saved_model": "SavedModel", "tflite": "TFLite model"}


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
    else:
        target = next_version_dir(export_dir) if versioned else export_dir
        path = export_saved_model(model, target, image_size=int(record["image_size"]),
                                  crop_fraction=float(record["eval_crop_fraction"]), class_names=class_names)
    return os.fspath(path), record


def tf_exists(path: str) -> bool:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    return bool(tf.io.gfile.exists(path))
