"""Export trained classifiers for serving: SavedModel (two signatures) and TFLite.

``export_saved_model`` is what the trainer calls at the end of a run with
``--export_dir``; ``python -m efficientnet_tpu.export`` does the same for the
newest checkpoint of a finished run (see ``cli``).

    saved_model.py  export_saved_model: argument checks, float32 rebuild, the archive
    serving.py      the signatures: input checks, eval preprocessing, outputs
    precision.py    rebuilding a mixed-precision model in float32
    tflite.py       the float TFLite flatbuffer (and labels.txt)
    cli.py          the command line
"""

from efficientnet_tpu.export.saved_model import build_serving_functions, export_saved_model, next_version_dir
from efficientnet_tpu.export.serving import (IMAGE_BYTES_INPUT, IMAGES_INPUT, SERVE_IMAGE_BYTES,
                                             SERVING_DEFAULT, ServingFunctions)
from efficientnet_tpu.export.tflite import (convert_to_tflite, export_tflite,
                                            tflite_converter_available)

__all__ = [
    "IMAGES_INPUT",
    "IMAGE_BYTES_INPUT",
    "SERVE_IMAGE_BYTES",
    "SERVING_DEFAULT",
    "ServingFunctions",
    "build_serving_functions",
    "convert_to_tflite",
    "export_saved_model",
    "export_tflite",
    "next_version_dir",
    "tflite_converter_available",
]
