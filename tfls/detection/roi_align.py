"""Rotated RoIAlign: bilinear sampling of an oriented grid inside each rotated box, in TF ops."""

import tensorflow as tf


def bilinear_sample(features, x, y):
    """Bilinearly sample `features [B, H, W, C]` at feature-pixel coordinates `x, y [B, P]` -> `[B, P, C]`.

    Pixel centres are at integer coordinates; samples outside the map read zeros.
    """
    shape = tf.shape(features)
    h, w = shape[1], shape[2]
    x0, y0 = tf.floor(x), tf.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)

    def tap(xi, yi):
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        idx = tf.clip_by_value(yi, 0, h - 1) * w + tf.clip_by_value(xi, 0, w - 1)
        flat = tf.reshape(features, [shape[0], -1, shape[3]])
        return tf.gather(flat, idx, batch_dims=1) * tf.cast(inside, features.dtype)[..., None]

    return (
        ((1 - fx) * (1 - fy))[..., None] * tap(x0, y0)
        + (fx * (1 - fy))[..., None] * tap(x0 + 1, y0)
        + ((1 - fx) * fy)[..., None] * tap(x0, y0 + 1)
        + (fx * fy)[..., None] * tap(x0 + 1, y0 + 1)
    )


def rotated_roi_align(features, rois, output_size, sampling_ratio=2):
    """Pool each rotated RoI to a `output_size x output_size` grid aligned with the box.

    Bin (i, j) averages `sampling_ratio^2` bilinear samples at box-frame offsets
    `((j + (a + 0.5) / r) / P - 0.5) * w` along the box's width axis and likewise along its height axis.

    Args:
      features: `[B, H, W, C]` feature map covering the whole (square) image.
      rois: `[B, R, 6]` normalised boxes; no gradient flows into them.
      output_size: P.
      sampling_ratio: r, samples per bin side.

    Returns:
      `[B, R, P, P, C]` pooled features (row i runs along the box's height axis, column j along its width).
    """
    rois = tf.stop_gradient(tf.convert_to_tensor(rois, tf.float32))
    p, r = output_size, sampling_ratio
    steps = (tf.range(p * r, dtype=tf.float32) + 0.5) / (p * r) - 0.5
    v, u = tf.meshgrid(steps, steps, indexing="ij")
    u, v = tf.reshape(u, [-1]), tf.reshape(v, [-1])
    cx, cy, bw, bh, c, s = [rois[..., i : i + 1] for i in range(6)]
    du, dv = u * bw, v * bh
    x = cx + c * du - s * dv
    y = cy + s * du + c * dv
    size = tf.cast(tf.shape(features)[1:3], tf.float32)
    b, nr = tf.shape(rois)[0], tf.shape(rois)[1]
    fx = tf.reshape(x * size[1] - 0.5, [b, -1])
    fy = tf.reshape(y * size[0] - 0.5, [b, -1])
    values = bilinear_sample(features, fx, fy)
    ch = features.shape[-1]
    values = tf.reshape(values, [b, nr, p, r, p, r, ch])
    return tf.reduce_mean(values, axis=[3, 5])
