"""The TF Serving export: `serving_default(image_bytes: tf.string[None]) -> {text, confidence}`.

Decoding, grey conversion and resizing happen inside the graph and the graph holds no `tf.py_function`,
so TF Serving's C++ runtime can run it. Bytes that are not a JPEG/PNG/GIF/BMP image, and images over
`tfls.images.MAX_PIXELS` (checked from the header, before decoding), fail the request with
`InvalidArgumentError`; an empty batch returns empty outputs.
"""

import keras
import tensorflow as tf

from tfls import images as images_lib
from tfls.recognition.charset import decode_ids_tf


def predict_text(model, images, table):
    """Greedy text and confidence from raw pixel batches, in TF ops.

    Confidence is the product of the winning class probabilities at the positions that produced text (and
    the closing EOS for attention), as in the four-stage framework's demo.

    Returns:
      `(text tf.string [B], confidence float32 [B])`.
    """
    probs = tf.nn.softmax(model(images, training=False), axis=-1)
    ids = tf.argmax(probs, axis=-1, output_type=tf.int32)
    text, keep = decode_ids_tf(ids, table, ctc=model.is_ctc)
    if not model.is_ctc:
        # Include the EOS step: positions up to and including the first EOS.
        keep = tf.equal(tf.math.cumsum(tf.cast(tf.equal(ids, 0), tf.int32), axis=1, exclusive=True), 0)
    log_max = tf.math.log(tf.reduce_max(probs, axis=-1) + 1e-12)
    confidence = tf.exp(tf.reduce_sum(tf.where(keep, log_max, tf.zeros_like(log_max)), axis=1))
    return text, confidence


def decode_images(image_bytes, height, width, channels, max_pixels=images_lib.MAX_PIXELS):
    """tf.string `[B]` encoded PNG/JPEG/BMP/GIF -> float32 `[B, height, width, channels]` in [0, 255].

    Raises (when run):
      InvalidArgumentError: an element is not an image of those formats or has more than `max_pixels`.
    """

    def one(data):
        image = images_lib.decode_checked(data, channels, max_pixels)
        # Resizing the uint8 image gives the same float32 result without a float copy at full size.
        image = tf.image.resize(image, [height, width], method="bilinear")
        return tf.ensure_shape(image, [height, width, channels])

    return tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32))


def export_recognizer(model, charset, path):
    """Writes the SavedModel with the `serving_default` signature to `path`.

    Args:
      model: a built `Recognizer`.
      charset: its `Charset`.
      path: output folder.
    """
    height, width, channels = model.image_shape
    table = charset.lookup_table()
    archive = keras.export.ExportArchive()
    archive.track(model)

    def read(image_bytes):
        images = decode_images(image_bytes, height, width, channels)
        return predict_text(model, images, table)

    def serve(image_bytes):
        text, confidence = images_lib.unless_empty(
            image_bytes,
            lambda: read(image_bytes),
            lambda: (tf.zeros([0], tf.string), tf.zeros([0], tf.float32)),
        )
        return {"text": tf.identity(text, name="text"), "confidence": tf.identity(confidence, name="confidence")}

    archive.add_endpoint(
        "serving_default", serve, input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")]
    )
    archive.write_out(path, verbose=False)
    return path
