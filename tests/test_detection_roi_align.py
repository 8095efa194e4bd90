"""Rotated RoIAlign against a NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf

from tfls.detection import roi_align


def _np_bilinear(f, x, y):
    h, w, _ = f.shape
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    out = np.zeros(f.shape[-1])
    for xi, yi, wt in (
        (x0, y0, (1 - (x - x0)) * (1 - (y - y0))),
        (x0 + 1, y0, (x - x0) * (1 - (y - y0))),
        (x0, y0 + 1, (1 - (x - x0)) * (y - y0)),
        (x0 + 1, y0 + 1, (x - x0) * (y - y0)),
    ):
        if 0 <= xi < w and 0 <= yi < h:
            out += wt * f[yi, xi]
    return out


def _np_roi_align(f, roi, p, r):
    cx, cy, bw, bh, c, s = roi
    h, w, ch = f.shape
    out = np.zeros((p, p, ch))
    for i in range(p):
        for j in range(p):
            acc = np.zeros(ch)
            for a in range(r):
                for b in range(r):
                    u = ((j + (b + 0.5) / r) / p - 0.5) * bw
                    v = ((i + (a + 0.5) / r) / p - 0.5) * bh
                    x, y = cx + c * u - s * v, cy + s * u + c * v
                    acc += _np_bilinear(f, x * w - 0.5, y * h - 0.5)
            out[i, j] = acc / r / r
    return out


def test_rotated_roi_align_matches_numpy():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    t = np.deg2rad([20, -70, 0])
    rois = np.array(
        [
            [[0.5, 0.5, 0.6, 0.2, np.cos(t[0]), np.sin(t[0])], [0.3, 0.6, 0.4, 0.1, np.cos(t[1]), np.sin(t[1])]],
            [[0.9, 0.1, 0.5, 0.3, 1.0, 0.0], [0.5, 0.5, 0.2, 0.2, np.cos(t[1]), np.sin(t[1])]],
        ],
        np.float32,
    )
    ours = roi_align.rotated_roi_align(features, rois, 3, sampling_ratio=2).numpy()
    for b in range(2):
        for k in range(2):
            np.testing.assert_allclose(ours[b, k], _np_roi_align(features[b], rois[b, k], 3, 2), atol=1e-5)


def test_axis_aligned_full_image_roi_reads_the_grid_and_has_feature_gradient():
    features = tf.reshape(tf.range(16, dtype=tf.float32), [1, 4, 4, 1])
    roi = tf.constant([[[0.5, 0.5, 1.0, 1.0, 1.0, 0.0]]])
    out = roi_align.rotated_roi_align(features, roi, 4, sampling_ratio=1)
    np.testing.assert_allclose(out.numpy()[0, 0, ..., 0], features.numpy()[0, ..., 0], atol=1e-5)
    with tf.GradientTape() as tape:
        tape.watch(features)
        total = tf.reduce_sum(roi_align.rotated_roi_align(features, roi, 2))
    assert float(tf.reduce_sum(tape.gradient(total, features))) > 0


def _gathered_roi_align(features, rois, p, r):
    """The four-gather formulation (`bilinear_sample` at every sample, then the mean of each bin)."""
    steps = (np.arange(p * r, dtype=np.float32) + 0.5) / (p * r) - 0.5
    v, u = np.meshgrid(steps, steps, indexing="ij")
    u, v = u.reshape(-1), v.reshape(-1)
    cx, cy, bw, bh, c, s = (rois[..., i : i + 1] for i in range(6))
    x = cx + c * (u * bw) - s * (v * bh)
    y = cy + s * (u * bw) + c * (v * bh)
    b, nr = rois.shape[:2]
    h, w, ch = features.shape[1:]
    fx, fy = tf.reshape(x * w - 0.5, [b, -1]), tf.reshape(y * h - 0.5, [b, -1])
    values = tf.reshape(roi_align.bilinear_sample(features, fx, fy), [b, nr, p, r, p, r, ch])
    return tf.reduce_mean(values, axis=[3, 5])


def _random_rois(rng, shape, min_size):
    """Rotated boxes `shape + (6,)`: centres partly off the map, widths up to 0.9, heights up to 0.5."""
    t = rng.uniform(-np.pi, np.pi, shape)
    return np.stack(
        [rng.uniform(-0.2, 1.2, shape), rng.uniform(-0.2, 1.2, shape), rng.uniform(min_size, 0.9, shape),
         rng.uniform(min_size, 0.5, shape), np.cos(t), np.sin(t)], -1
    ).astype(np.float32)  # fmt: skip


def test_sparse_pooling_equals_gathered_samples_and_their_gradient():
    rng = np.random.default_rng(1)
    features = tf.constant(rng.normal(size=(2, 12, 12, 5)).astype(np.float32))
    rois = _random_rois(rng, (2, 9), min_size=0.0)
    rois[0, 0] = [0.5, 0.5, 1.0, 1.0, 1.0, 0.0]  # the whole map
    rois[1, 1] = [1.5, 1.5, 0.2, 0.1, 1.0, 0.0]  # wholly outside: zeros
    weights = tf.constant(rng.normal(size=(2, 9, 3, 3, 5)).astype(np.float32))
    for p, r in ((3, 2), (3, 3), (2, 1)):
        w = weights[:, :, :p, :p]
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(features)
            ours = roi_align.rotated_roi_align(features, rois, p, sampling_ratio=r)
            ref = _gathered_roi_align(features, rois, p, r)
            loss_ours, loss_ref = tf.reduce_sum(ours * w), tf.reduce_sum(ref * w)
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-5)
        np.testing.assert_allclose(
            tape.gradient(loss_ours, features).numpy(), tape.gradient(loss_ref, features).numpy(), atol=1e-5
        )
        assert np.all(ours.numpy()[1, 1] == 0)


def test_gather_method_equals_the_sparse_product_and_compiles_with_xla():
    """The XLA path (method="gather") gives the sparse product's values and feature gradients; XLA compiles
    it, and rejects the sparse product (which is why the detector switches under jit_compile)."""
    rng = np.random.default_rng(4)
    features = tf.constant(rng.normal(size=(2, 10, 10, 3)).astype(np.float32))
    rois = _random_rois(rng, (2, 5), min_size=0.05)
    weights = tf.constant(rng.normal(size=(2, 5, 3, 3, 3)).astype(np.float32))

    def pooled_and_grad_of(f, method):
        with tf.GradientTape() as tape:
            tape.watch(f)
            out = roi_align.rotated_roi_align(f, rois, 3, sampling_ratio=2, method=method)
            loss = tf.reduce_sum(out * weights)
        return out, tape.gradient(loss, f)

    sparse, sparse_grad = pooled_and_grad_of(features, "sparse")
    gather, gather_grad = pooled_and_grad_of(features, "gather")
    np.testing.assert_allclose(gather.numpy(), sparse.numpy(), atol=1e-5)
    np.testing.assert_allclose(gather_grad.numpy(), sparse_grad.numpy(), atol=1e-5)
    # and both agree with the NumPy reference on one box
    np.testing.assert_allclose(gather.numpy()[1, 2], _np_roi_align(features.numpy()[1], rois[1, 2], 3, 2), atol=1e-5)

    xla_gather = tf.function(lambda f: pooled_and_grad_of(f, "gather"), jit_compile=True)
    out, grad = xla_gather(features)
    np.testing.assert_allclose(out.numpy(), sparse.numpy(), atol=1e-5)
    np.testing.assert_allclose(grad.numpy(), sparse_grad.numpy(), atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="SparseTensorDenseMatMul"):
        tf.function(lambda f: pooled_and_grad_of(f, "sparse"), jit_compile=True)(features)
    with pytest.raises(ValueError, match="method must be one of"):
        roi_align.rotated_roi_align(features, rois, 3, method="dense")
