"""Export trained classifiers for serving: SavedModel (two signatures) and TFLite.

``export_run`` is the one way a training run is exported: the trainer calls it
at the end of a run with ``--export_dir`` and ``python -m efficientnet_tpu.export``
(efficientnet_tpu/cli/export.py) for the newest checkpoint of a finished run. ``export_saved_model``
and ``export_tflite`` export any Keras classifier.

    saved_model.py  export_saved_model: argument checks, float32 rebuild, the archive
    serving.py      the signatures: input checks, eval preprocessing, outputs
    precision.py    rebuilding a mixed-precision model in float32
    tflite.py       the TFLite flatbuffer, float or int8 (and labels.txt)
    tflite_eval.py  top-1 of a TFLite file on a run's eval split (what int8 costs)
    from_run.py     export_run: a run's model_dir to a SavedModel or TFLite file (float or int8)
    __main__.py     entry shim of python -m efficientnet_tpu.export (the command: cli/export.py)
"""

from __future__ import annotations

import importlib
from typing import Any

# Names load on first use, so the export CLI checks its flags before TensorFlow loads.
_EXPORTS = {
    "IMAGES_INPUT": "serving", "IMAGE_BYTES_INPUT": "serving", "SERVE_IMAGE_BYTES": "serving",
    "SERVING_DEFAULT": "serving", "ServingFunctions": "serving",
    "build_serving_functions": "saved_model", "export_saved_model": "saved_model",
    "next_version_dir": "saved_model",
    "convert_to_tflite": "tflite", "export_tflite": "tflite", "tflite_converter_available": "tflite",
    "FORMATS": "from_run", "export_run": "from_run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'efficientnet_tpu.export' has no attribute {name!r}")
    return getattr(importlib.import_module(f"efficientnet_tpu.export.{_EXPORTS[name]}"), name)
