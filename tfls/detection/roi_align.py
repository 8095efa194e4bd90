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


ROI_ALIGN_METHODS = ("sparse", "gather")


def rotated_roi_align(features, rois, output_size, sampling_ratio=2, method="sparse"):
    """Pool each rotated RoI to a `output_size x output_size` grid aligned with the box.

    Bin (i, j) averages `sampling_ratio^2` bilinear samples at box-frame offsets
    `((j + (a + 0.5) / r) / P - 0.5) * w` along the box's width axis and likewise along its height axis.

    The pooling is linear in the features: each bin is a weighted sum of at most `4 r^2` feature pixels (the
    bilinear taps of its samples, each weighted by its bilinear weight over `r^2`; taps outside the map weigh
    0). It runs as one sparse-dense product with those weights, whose gradient is the transposed product,
    instead of gathering `[B, R * (P r)^2, C]` tap values four times and averaging them: the same sums in
    another order (float rounding only).

    XLA has no kernel for the sparse product, so `method="gather"` computes the same weighted sum by gathering
    the `4 r^2` taps of every bin (`[B * R * P * P, 4 r^2, C]` values) and reducing them: the path for steps
    compiled with `jit_compile=True` (or on TPU); more memory, the same sums up to float rounding.

    Args:
      features: `[B, H, W, C]` feature map covering the whole (square) image.
      rois: `[B, R, 6]` normalised boxes; no gradient flows into them.
      output_size: P.
      sampling_ratio: r, samples per bin side.
      method: "sparse" (one sparse-dense product) | "gather" (XLA-compilable).

    Returns:
      `[B, R, P, P, C]` pooled features (row i runs along the box's height axis, column j along its width).
    """
    if method not in ROI_ALIGN_METHODS:
        raise ValueError(f"rotated_roi_align: method must be one of {ROI_ALIGN_METHODS}, got {method!r}")
    features = tf.convert_to_tensor(features)
    rois = tf.stop_gradient(tf.convert_to_tensor(rois, tf.float32))
    p, r = output_size, sampling_ratio
    steps = (tf.range(p * r, dtype=tf.float32) + 0.5) / (p * r) - 0.5
    v, u = tf.meshgrid(steps, steps, indexing="ij")
    u, v = tf.reshape(u, [-1]), tf.reshape(v, [-1])
    cx, cy, bw, bh, c, s = [rois[..., i : i + 1] for i in range(6)]
    du, dv = u * bw, v * bh
    x = cx + c * du - s * dv
    y = cy + s * du + c * dv
    shape = tf.shape(features)
    h, w, ch = shape[1], shape[2], features.shape[-1] or shape[3]
    size = tf.cast(shape[1:3], tf.float32)
    b, nr = tf.shape(rois)[0], tf.shape(rois)[1]
    # Samples as [B, R, P (bin row i), P (bin column j), r (a), r (c)]: each bin's samples are contiguous.
    order = [0, 1, 2, 4, 3, 5]
    fx = tf.transpose(tf.reshape(x * size[1] - 0.5, [b, nr, p, r, p, r]), order)
    fy = tf.transpose(tf.reshape(y * size[0] - 0.5, [b, nr, p, r, p, r]), order)
    x0, y0 = tf.floor(fx), tf.floor(fy)
    ax, ay = fx - x0, fy - y0
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    taps_x = tf.stack([x0, x0 + 1, x0, x0 + 1], -1)
    taps_y = tf.stack([y0, y0, y0 + 1, y0 + 1], -1)
    weights = tf.stack([(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay], -1)
    inside = (taps_x >= 0) & (taps_x < w) & (taps_y >= 0) & (taps_y < h)
    weights = tf.where(inside, weights / float(r * r), 0.0)
    pixel = tf.clip_by_value(taps_y, 0, h - 1) * w + tf.clip_by_value(taps_x, 0, w - 1)
    column = pixel + tf.range(b)[:, None, None, None, None, None, None] * (h * w)
    if method == "gather":
        taps = tf.gather(tf.reshape(features, [b * h * w, ch]), tf.reshape(column, [-1]))
        taps = tf.reshape(taps, [b * nr * p * p, 4 * r * r, ch]) * tf.reshape(weights, [-1, 4 * r * r, 1])
        return tf.reshape(tf.reduce_sum(taps, 1), [b, nr, p, p, ch])
    row = tf.broadcast_to(tf.reshape(tf.range(b * nr * p * p), [b, nr, p, p, 1, 1, 1]), tf.shape(column))
    indices = tf.cast(tf.stack([tf.reshape(row, [-1]), tf.reshape(column, [-1])], 1), tf.int64)
    dense_shape = tf.cast(tf.stack([b * nr * p * p, b * h * w]), tf.int64)
    pooling = tf.sparse.SparseTensor(indices, tf.reshape(weights, [-1]), dense_shape)
    pooled = tf.sparse.sparse_dense_matmul(pooling, tf.reshape(features, [b * h * w, -1]))
    return tf.reshape(pooled, [b, nr, p, p, ch])
