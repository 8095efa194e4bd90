"""TPS grid generator and bilinear sampler against NumPy references."""

import numpy as np
import tensorflow as tf

from tfls.recognition.tps import TPSTransformer, bilinear_sample, initial_fiducials, tps_grid


def numpy_bilinear(images, grid):
    b, h, w, c = images.shape
    out = np.zeros(grid.shape[:3] + (c,))
    for n in range(b):
        for i in range(grid.shape[1]):
            for j in range(grid.shape[2]):
                x = np.clip((grid[n, i, j, 0] + 1) / 2 * (w - 1), 0, w - 1)
                y = np.clip((grid[n, i, j, 1] + 1) / 2 * (h - 1), 0, h - 1)
                x0, y0 = int(np.floor(x)), int(np.floor(y))
                x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
                ax, ay = x - x0, y - y0
                out[n, i, j] = (
                    images[n, y0, x0] * (1 - ax) * (1 - ay)
                    + images[n, y0, x1] * ax * (1 - ay)
                    + images[n, y1, x0] * (1 - ax) * ay
                    + images[n, y1, x1] * ax * ay
                )
    return out


def test_bilinear_matches_numpy_reference():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(2, 5, 7, 3)).astype(np.float32)
    grid = rng.uniform(-1.2, 1.2, size=(2, 4, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(bilinear_sample(images, grid).numpy(), numpy_bilinear(images, grid), atol=1e-5)


def test_tps_identity_returns_input():
    c = initial_fiducials(10)
    grid = tps_grid(c[None], c, 8, 12).numpy()
    xs, ys = np.meshgrid(np.linspace(-1, 1, 12), np.linspace(-1, 1, 8))
    np.testing.assert_allclose(grid[0, ..., 0], xs, atol=1e-4)
    np.testing.assert_allclose(grid[0, ..., 1], ys, atol=1e-4)
    image = np.random.default_rng(1).uniform(size=(1, 8, 12, 1)).astype(np.float32)
    np.testing.assert_allclose(bilinear_sample(image, grid).numpy(), image, atol=1e-4)


def test_tps_known_affine_warp():
    # Source points = an affine map of C': the TPS is exactly that affine map (no bending).
    c = initial_fiducials(8)
    a = np.array([[0.5, 0.1], [-0.2, 0.8]])
    t = np.array([0.1, -0.05])
    source = c @ a.T + t
    grid = tps_grid(source[None].astype(np.float32), c, 5, 9).numpy()[0]
    xs, ys = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 5))
    expected = np.stack([xs, ys], -1) @ a.T + t
    np.testing.assert_allclose(grid, expected, atol=1e-4)


def test_untrained_transformer_is_identity_and_differentiable():
    layer = TPSTransformer(num_fiducials=6, filters=(4,))
    images = tf.random.uniform([2, 16, 20, 1])
    with tf.GradientTape() as tape:
        out = layer(images, training=False)
        loss = tf.reduce_sum(out)
    np.testing.assert_allclose(out.numpy(), images.numpy(), atol=1e-4)
    grads = tape.gradient(loss, layer.trainable_variables)
    assert all(g is not None for g in grads)
