"""The authors' released checkpoints: loading them, their published accuracy, their input normalization.

TensorFlow is needed to read tf.train checkpoints, so this lives outside the
keras-only model package; ``efficientnet_tpu.load_released_checkpoint`` is
the entry point.
"""

from efficientnet_tpu.released.loader import (CheckpointError, LoadReport, find_checkpoint,
                                              load_released_checkpoint, reference_model_name,
                                              released_model_name)

__all__ = ["CheckpointError", "LoadReport", "find_checkpoint", "load_released_checkpoint",
           "reference_model_name", "released_model_name"]
