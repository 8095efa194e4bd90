"""Thin-plate-spline spatial transformer: fiducial grid generator, bilinear sampler, rectification layer.

Coordinates are normalised to [-1, 1] (x right, y down) with -1/+1 at the centres of the border pixels.
The rectified image's F fiducial points C' sit on two horizontal lines (top and bottom edge); the
localisation network predicts where they lie in the input image (C). The grid generator maps every output
pixel through the TPS defined by C' -> C; the sampler reads the input there.
"""

import keras
import numpy as np
import tensorflow as tf


def initial_fiducials(num_fiducials):
    """C': `[F, 2]` float32 points, F/2 evenly spaced along y = -1 then F/2 along y = +1."""
    if num_fiducials < 4 or num_fiducials % 2:
        raise ValueError(f"num_fiducials must be even and >= 4, got {num_fiducials}")
    xs = np.linspace(-1.0, 1.0, num_fiducials // 2)
    top = np.stack([xs, -np.ones_like(xs)], axis=1)
    bottom = np.stack([xs, np.ones_like(xs)], axis=1)
    return np.concatenate([top, bottom], axis=0).astype(np.float32)


def _radial_basis(sq_dist):
    # U(r) = r^2 log r^2, with U(0) = 0.
    return sq_dist * np.log(np.where(sq_dist > 0, sq_dist, 1.0))


def tps_inverse_kernel(fiducials):
    """Inverse of the `[F + 3, F + 3]` TPS system matrix for target points C' (numpy float64)."""
    f = fiducials.shape[0]
    sq = np.sum((fiducials[:, None, :] - fiducials[None, :, :]) ** 2, axis=-1)
    delta = np.zeros([f + 3, f + 3])
    delta[:f, 0] = 1.0
    delta[:f, 1:3] = fiducials
    delta[:f, 3:] = _radial_basis(sq)
    delta[f, 3:] = 1.0
    delta[f + 1 :, 3:] = fiducials.T
    return np.linalg.inv(delta)


def tps_output_basis(fiducials, height, width):
    """`[H * W, F + 3]` rows `[1, x, y, U(|p - c'_k|)...]` for every output pixel centre p."""
    xs = np.linspace(-1.0, 1.0, width)
    ys = np.linspace(-1.0, 1.0, height)
    gx, gy = np.meshgrid(xs, ys)
    points = np.stack([gx.reshape(-1), gy.reshape(-1)], axis=1)
    sq = np.sum((points[:, None, :] - fiducials[None, :, :]) ** 2, axis=-1)
    return np.concatenate([np.ones([points.shape[0], 1]), points, _radial_basis(sq)], axis=1)


def tps_grid(source_fiducials, target_fiducials, height, width):
    """Sampling grid of the TPS that maps the target fiducials C' onto the predicted source points C.

    Args:
      source_fiducials: `[B, F, 2]` tensor, C in normalised input coordinates.
      target_fiducials: `[F, 2]` numpy C' (fixed).
      height: output height.
      width: output width.

    Returns:
      `[B, height, width, 2]` float32 grid of (x, y) input coordinates.
    """
    inv_delta = tf.constant(tps_inverse_kernel(target_fiducials), tf.float32)
    basis = tf.constant(tps_output_basis(target_fiducials, height, width), tf.float32)
    source = tf.cast(source_fiducials, tf.float32)
    batch = tf.shape(source)[0]
    padded = tf.concat([source, tf.zeros([batch, 3, 2])], axis=1)  # [B, F + 3, 2]
    coeffs = tf.einsum("ij,bjk->bik", inv_delta, padded)  # [B, F + 3, 2]
    grid = tf.einsum("pj,bjk->bpk", basis, coeffs)  # [B, H * W, 2]
    return tf.reshape(grid, [batch, height, width, 2])


def bilinear_sample(images, grid):
    """Reads `images` at the fractional positions `grid`, clamping positions to the image border.

    Args:
      images: `[B, H, W, C]` float tensor.
      grid: `[B, Ho, Wo, 2]` normalised (x, y) coordinates in [-1, 1] (outside values are clamped).

    Returns:
      `[B, Ho, Wo, C]` float32 samples, differentiable with respect to images and grid.
    """
    images = tf.cast(images, tf.float32)
    shape = tf.shape(images)
    h, w = shape[1], shape[2]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    x = tf.clip_by_value((grid[..., 0] + 1.0) * 0.5 * (wf - 1.0), 0.0, wf - 1.0)
    y = tf.clip_by_value((grid[..., 1] + 1.0) * 0.5 * (hf - 1.0), 0.0, hf - 1.0)
    x0 = tf.floor(x)
    y0 = tf.floor(y)
    wx = (x - x0)[..., None]
    wy = (y - y0)[..., None]
    x0i = tf.cast(x0, tf.int32)
    y0i = tf.cast(y0, tf.int32)
    x1i = tf.minimum(x0i + 1, w - 1)
    y1i = tf.minimum(y0i + 1, h - 1)

    def gather(yi, xi):
        return tf.gather_nd(images, tf.stack([yi, xi], axis=-1), batch_dims=1)

    top = gather(y0i, x0i) * (1.0 - wx) + gather(y0i, x1i) * wx
    bottom = gather(y1i, x0i) * (1.0 - wx) + gather(y1i, x1i) * wx
    return top * (1.0 - wy) + bottom * wy


@keras.saving.register_keras_serializable(package="tfls")
class TPSTransformer(keras.layers.Layer):
    """Rectifies text images: a small CNN predicts F fiducial points, the TPS warps the image to them.

    The last layer starts with zero weights and C' as its bias, so an untrained transformer is the
    identity (up to bilinear resampling when output and input sizes differ).

    Args:
      num_fiducials: F (even, >= 4).
      output_size: `(height, width)` of the rectified image; None keeps the input size.
      filters: channel widths of the localisation network's conv blocks.
    """

    def __init__(self, num_fiducials=20, output_size=None, filters=(16, 32, 64), **kwargs):
        super().__init__(**kwargs)
        self.num_fiducials = int(num_fiducials)
        self.output_size = tuple(output_size) if output_size else None
        self.filters = tuple(filters)
        self.target_fiducials = initial_fiducials(self.num_fiducials)

    def build(self, input_shape):
        layers = []
        for f in self.filters:
            layers += [
                keras.layers.Conv2D(f, 3, padding="same", use_bias=False),
                keras.layers.BatchNormalization(synchronized=True),
                keras.layers.ReLU(),
                keras.layers.MaxPooling2D(2),
            ]
        layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(64, activation="relu")]
        self.localization = keras.Sequential(layers, name="localization")
        self.localization.build(input_shape)
        self.fiducial_head = keras.layers.Dense(
            self.num_fiducials * 2,
            kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(self.target_fiducials.reshape(-1)),
            name="fiducials",
        )
        self.fiducial_head.build((input_shape[0], 64))
        if self.output_size is None:
            self.output_size = (int(input_shape[1]), int(input_shape[2]))

    def predict_fiducials(self, images, training=None):
        """`[B, F, 2]` source fiducial points C for `images`."""
        features = self.localization(images, training=training)
        return tf.reshape(self.fiducial_head(features), [-1, self.num_fiducials, 2])

    def call(self, images, training=None):
        fiducials = self.predict_fiducials(images, training=training)
        grid = tps_grid(fiducials, self.target_fiducials, *self.output_size)
        return bilinear_sample(images, grid)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(num_fiducials=self.num_fiducials, output_size=self.output_size, filters=self.filters)
        return config
