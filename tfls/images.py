"""Encoded-image handling shared by the data readers and both serving graphs.

The size of an image is read from its header before it is decoded, so a small file that decodes to a huge
image (a 10000 x 10000 PNG of one colour is 300 kB) is refused instead of allocating gigabytes. 16-bit
images are scaled to 8 bits (not clipped), and colour, grey, grey + alpha and RGBA all reach the model
with the channel count it expects (alpha dropped, as `tf.io.decode_image` does).
"""

import io

import numpy as np
import tensorflow as tf
from PIL import Image

# 2**25 pixels (e.g. 8192 x 4096): 96 MiB as uint8 RGB, the most one image may decode to.
MAX_PIXELS = 1 << 25

FORMATS = "JPEG, PNG, GIF or BMP"


class ImageTooLarge(ValueError):
    """An image with more pixels than allowed (or none), refused before decoding."""


def _uint(data, start, length, big_endian):
    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(data, start, length), tf.uint8), tf.int64)
    weights = tf.constant([256**i for i in range(length)], tf.int64)
    return tf.reduce_sum(raw * (weights[::-1] if big_endian else weights))


def header_size(data):
    """`(height, width)` int64 read from the header of one encoded image, in TF ops; `(-1, -1)` when the
    format is not JPEG, PNG, GIF or BMP. A JPEG whose header is corrupt fails in `extract_jpeg_shape`."""
    # Padding makes every fixed-offset read below valid, even for empty or truncated input.
    padded = tf.strings.join([data, tf.constant(b"\0" * 32)])
    magic = tf.strings.substr(padded, 0, 8)
    is_png = tf.equal(magic, b"\x89PNG\r\n\x1a\n")
    is_gif = tf.equal(tf.strings.substr(padded, 0, 4), b"GIF8")
    is_bmp = tf.equal(tf.strings.substr(padded, 0, 2), b"BM")
    is_jpeg = tf.equal(tf.strings.substr(padded, 0, 3), b"\xff\xd8\xff")

    def png():
        return _uint(padded, 20, 4, True), _uint(padded, 16, 4, True)

    def gif():
        return _uint(padded, 8, 2, False), _uint(padded, 6, 2, False)

    def bmp():
        height = _uint(padded, 22, 4, False)
        height = tf.where(height >= 2**31, 2**32 - height, height)  # negative height: top-down rows
        return height, _uint(padded, 18, 4, False)

    def jpeg():
        shape = tf.image.extract_jpeg_shape(data, output_type=tf.int64)
        return shape[0], shape[1]

    def unknown():
        return tf.constant(-1, tf.int64), tf.constant(-1, tf.int64)

    return tf.case([(is_png, png), (is_gif, gif), (is_bmp, bmp), (is_jpeg, jpeg)], default=unknown)


def decode_checked(data, channels, max_pixels=MAX_PIXELS):
    """Decodes one encoded image (tf.string scalar) to uint8 `[H, W, channels]` after checking its header.

    Fails with `InvalidArgumentError` naming the problem (not an image of a supported format, or larger than
    `max_pixels`) before any pixel is decoded. Works eagerly, in `tf.data` and in exported graphs (no
    `py_function`).
    """
    height, width = header_size(data)
    checks = [
        tf.debugging.Assert(
            tf.minimum(height, width) > 0, [f"image_bytes: not a non-empty {FORMATS} image"], name="check_format"
        ),
        tf.debugging.Assert(
            height * width <= max_pixels,
            [f"image_bytes: image larger than {max_pixels} pixels; height, width =", height, width],
            name="check_size",
        ),
    ]
    with tf.control_dependencies(checks):
        if channels == 1:
            # GIF and BMP decode to colour only; PNG and JPEG convert to grey in the decoder.
            head = tf.strings.substr(tf.strings.join([data, b"\0\0\0"]), 0, 3)
            image = tf.cond(
                tf.logical_or(tf.equal(head, b"\xff\xd8\xff"), tf.equal(head, b"\x89PN")),
                lambda: tf.io.decode_image(data, channels=1, expand_animations=False),
                lambda: tf.image.rgb_to_grayscale(tf.io.decode_image(data, channels=3, expand_animations=False)),
            )
        else:
            image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    return image


def open_checked(data, max_pixels=MAX_PIXELS, name="image"):
    """Opens encoded bytes (or a path) with PIL, refusing images over `max_pixels` before decoding.

    Raises:
      ValueError: naming `name`, for undecodable data; `ImageTooLarge` (a ValueError) for an image that is
        empty or has more than `max_pixels`.
    """
    try:
        img = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    except Exception as e:  # PIL raises many types for bad data
        raise ValueError(f"{name}: not a decodable image: {e}") from None
    width, height = img.size
    if width * height == 0 or width * height > max_pixels:
        img.close()
        raise ImageTooLarge(f"{name}: image of {width}x{height} pixels (allowed: 1 to {max_pixels} pixels)")
    return img


def pil_to_array(img, channels):
    """A PIL image -> uint8 `[H, W, channels]` (1 or 3); 16- and 32-bit integer modes are scaled, not clipped."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # PIL's own convert("L") clips these at 255, which turns most 16-bit images white.
        arr = np.asarray(img, np.float64)
        img = Image.fromarray(np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.asarray(img), 0, 255).astype(np.uint8), "L")
    img = img.convert("L" if channels == 1 else "RGB")
    return np.asarray(img, np.uint8).reshape(img.height, img.width, channels)


def unless_empty(image_bytes, run, empty):
    """`run()` on a non-empty batch of encoded images, `empty()` on an empty one, in the graph.

    The network never sees a zero-sized batch: whether a kernel accepts one depends on the CPU and on
    oneDNN (seen here: BatchNorm's fused kernel fails on `[0, H, W, C]` with oneDNN on, passes with it off).
    Both branches must return the same structure and dtypes.

    Args:
      image_bytes: tf.string `[B]`.
      run: callable returning the outputs for a non-empty batch.
      empty: callable returning outputs of the declared shapes with batch dimension 0.
    """
    return tf.cond(tf.equal(tf.size(image_bytes), 0), empty, run)
