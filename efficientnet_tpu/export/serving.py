"""What a SavedModel serves: a Keras classifier behind two checked signatures.

``serving_default`` takes float pixels, ``serve_image_bytes`` takes encoded
JPEG/PNG strings (what TensorFlow Serving's REST API decodes from
``{"b64": ...}``) and runs them through the very eval transform of the data
pipeline, ``efficientnet_tpu.data.preprocess_for_eval``, so a served image is
classified exactly as it was in evaluation.

Both signatures check their inputs in the graph before the model runs: a
SavedModel signature does not enforce the shapes it declares, and a tensor of
the wrong rank reaching a convolution can abort the whole serving process
instead of failing the request.
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from efficientnet_tpu.data import preprocess_for_eval

SERVING_DEFAULT = "serving_default"
SERVE_IMAGE_BYTES = "serve_image_bytes"
IMAGES_INPUT = "images"
IMAGE_BYTES_INPUT = "image_bytes"

# Leading bytes of the formats the eval transform decodes.
_IMAGE_MAGICS = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def _checked_images(images: tf.Tensor, image_size: int) -> tf.Tensor:
    """Returns ``images`` after a run-time check that it is [batch, S, S, 3].

    The Assert gives the readable message for the usual mistakes (wrong size,
    missing batch axis); EnsureShape is the guarantee, since graph optimization
    folds rank queries to the declared rank and only EnsureShape is kept as a
    run-time check.
    """
    shape = tf.shape(images)
    # Pad so that a tensor of rank < 4 still has entries 1..3 to compare.
    padded = tf.concat([shape, tf.zeros([4], tf.int32)], axis=0)
    valid = tf.logical_and(
        tf.reduce_all(tf.equal(padded[1:4], [image_size, image_size, 3])),
        padded[0] > 0)  # an empty batch would fail deep inside the model
    message = tf.strings.format(
        f"{SERVING_DEFAULT}: input {IMAGES_INPUT} must be float32 of shape "
        f"[batch, {image_size}, {image_size}, 3] with batch >= 1 (RGB pixels in [0, 255]), "
        "got shape {}", [shape])
    check = tf.debugging.Assert(valid, [message])
    with tf.control_dependencies([check]):
        images = tf.identity(images)
    return tf.ensure_shape(images, [None, image_size, image_size, 3])


def _checked_image_bytes(image_bytes: tf.Tensor) -> tf.Tensor:
    """Returns ``image_bytes`` after run-time checks: a vector of encoded images.

    Bytes that are no image at all fail here with a message naming the batch
    index; a damaged file of a known format fails in its decoder, with an
    InvalidArgumentError that names the format (e.g. "Invalid JPEG data").
    """
    # First, so that nothing below ever sees another rank (see _checked_images).
    image_bytes = tf.ensure_shape(image_bytes, [None])
    is_image = tf.reduce_any(tf.stack([
        tf.equal(tf.strings.substr(image_bytes, 0, len(magic)), magic)
        for magic in _IMAGE_MAGICS]), axis=0)
    bad_indices = tf.reshape(tf.where(tf.logical_not(is_image)), [-1])
    # No quotes in the messages: Assert prints them backslash-escaped.
    format_check = tf.debugging.Assert(tf.reduce_all(is_image), [tf.strings.format(
        f"{SERVE_IMAGE_BYTES}: input {IMAGE_BYTES_INPUT} at batch index {{}} is not a "
        "JPEG or PNG (or GIF, BMP) image; send the bytes of the encoded file (in a REST "
        "request: base64 under the key b64)", [bad_indices])])
    size_check = tf.debugging.Assert(tf.size(image_bytes) > 0, [
        f"{SERVE_IMAGE_BYTES}: input {IMAGE_BYTES_INPUT} is an empty batch; send at least "
        "one image"])
    with tf.control_dependencies([format_check, size_check]):
        return tf.identity(image_bytes)


class ServingFunctions:
    """The functions a SavedModel serves, around one Keras classifier.

    ``serve`` and ``serve_image_bytes`` become the ``serving_default`` and
    ``serve_image_bytes`` signatures (with ``images_spec`` and
    ``image_bytes_spec``); ``predict`` is the unchecked core both use, which
    the TFLite converter converts (TFLite checks shapes itself and has no
    kernel for ``Assert``). Plain Python: ``keras.export.ExportArchive``
    traces these functions and saves the variables they read.
    """

    def __init__(self, model: keras.Model, *, image_size: int, crop_fraction: float,
                 class_names: Sequence[str] | None = None, resize_method: str = "bicubic") -> None:
        self.model = model
        self.image_size = int(image_size)
        self.crop_fraction = float(crop_fraction)
        self.resize_method = resize_method
        self.class_names = tuple(class_names) if class_names is not None else None
        self.images_spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32,
                                         name=IMAGES_INPUT)
        self.image_bytes_spec = tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_INPUT)

    def predict(self, images: tf.Tensor, with_class_names: bool = True
                ) -> dict[str, tf.Tensor]:
        """Logits, probabilities, class ids (and names) for float32 pixels."""
        # The cast matters only for a model left in a mixed policy.
        logits = tf.cast(self.model(images, training=False), tf.float32)
        classes = tf.argmax(logits, axis=-1, output_type=tf.int64)
        outputs = {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "classes": classes,
        }
        if with_class_names and self.class_names is not None:
            outputs["class_names"] = tf.gather(tf.constant(self.class_names), classes)
        return outputs

    def predict_without_names(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """``predict`` without the string output, for TFLite (names go to labels.txt)."""
        return self.predict(images, with_class_names=False)

    def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """``serving_default``: float32 pixels in [0, 255], checked, then ``predict``."""
        return self.predict(_checked_images(images, self.image_size))

    def serve_image_bytes(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        """``serve_image_bytes``: encoded JPEG/PNG, the eval transform, then ``predict``."""
        image_bytes = _checked_image_bytes(image_bytes)
        size, crop_fraction, method = self.image_size, self.crop_fraction, self.resize_method
        images = tf.map_fn(
            lambda encoded: preprocess_for_eval(encoded, size, crop_fraction, method),
            image_bytes,
            fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
        return self.predict(images)
