"""Word rectification: each quadrilateral of a photo warped (perspective, by bilinear sampling) to a fixed
`height x width` crop, in TF ops for the serving graph and in NumPy as the reference the tests hold it to.

Coordinates are continuous pixels, as the detector and ICDAR write them: pixel (row i, column j) covers
`[j, j + 1] x [i, i + 1]`, its centre is `(j + 0.5, i + 0.5)`. A quadrilateral lists its corners in ICDAR
order (the word's top-left, top-right, bottom-right, bottom-left) and they go to the corners of the crop, so
a crop's rows run along the word's reading direction whatever its angle or perspective. `margin` widens the
crop on all four sides by that fraction of the word's height (the recognizer is trained on loose crops).
Samples outside the photo read its nearest border pixel.
"""

import numpy as np
import tensorflow as tf

from tfls.detection.roi_align import bilinear_sample


def quad_homographies(quads):
    """The projective maps from the unit square onto each quadrilateral (Heckbert's closed form), TF.

    `(u, v)` in `[0, 1]^2` goes to `x = (a u + b v + c) / (g u + h v + 1)`, `y = (d u + e v + f) / (...)`
    with the corners `(0, 0), (1, 0), (1, 1), (0, 1)` landing on the quad's four corners in order. A
    degenerate quad (its sides parallel in pairs, or flat) gets the affine map through three of its corners.

    Args:
      quads: `[..., 4, 2]` corners.

    Returns:
      float32 `[..., 8]` coefficients `(a, b, c, d, e, f, g, h)`.
    """
    q = tf.convert_to_tensor(quads, tf.float32)
    x0, y0, x1, y1 = q[..., 0, 0], q[..., 0, 1], q[..., 1, 0], q[..., 1, 1]
    x2, y2, x3, y3 = q[..., 2, 0], q[..., 2, 1], q[..., 3, 0], q[..., 3, 1]
    sx, sy = x0 - x1 + x2 - x3, y0 - y1 + y2 - y3
    dx1, dx2, dy1, dy2 = x1 - x2, x3 - x2, y1 - y2, y3 - y2
    den = dx1 * dy2 - dx2 * dy1
    # Relative test: sx, sy and den scale with the quad's size (pixels) and its square.
    scale = tf.maximum(tf.abs(dx1) + tf.abs(dx2) + tf.abs(dy1) + tf.abs(dy2), 1e-6)
    projective = tf.abs(den) > 1e-6 * scale * scale
    safe = tf.where(projective, den, 1.0)
    g = tf.where(projective, (sx * dy2 - dx2 * sy) / safe, 0.0)
    h = tf.where(projective, (dx1 * sy - sx * dy1) / safe, 0.0)
    return tf.stack([x1 - x0 + g * x1, x3 - x0 + h * x3, x0, y1 - y0 + g * y1, y3 - y0 + h * y3, y0, g, h], axis=-1)


def _grid(height, width, margin_u, margin_v, supersample):
    """Unit-square sample positions `u, v` `[K, height * r * width * r]` for per-quad margins `[K]`."""
    r = supersample
    steps_u = (tf.range(width * r, dtype=tf.float32) + 0.5) / float(width * r)
    steps_v = (tf.range(height * r, dtype=tf.float32) + 0.5) / float(height * r)
    v, u = tf.meshgrid(steps_v, steps_u, indexing="ij")
    u, v = tf.reshape(u, [1, -1]), tf.reshape(v, [1, -1])
    return -margin_u[:, None] + (1.0 + 2.0 * margin_u[:, None]) * u, -margin_v[:, None] + (
        1.0 + 2.0 * margin_v[:, None]
    ) * v


def _relative_margins(quads, margin):
    """`margin` (a fraction of each quad's height) in unit-square units along its width and height axes."""
    q = tf.convert_to_tensor(quads, tf.float32)
    length = lambda a, b: tf.norm(q[:, a] - q[:, b], axis=-1)
    width = 0.5 * (length(1, 0) + length(2, 3))
    height = 0.5 * (length(3, 0) + length(2, 1))
    margin_v = tf.fill(tf.shape(height), float(margin))
    return margin * height / tf.maximum(width, 1e-6), margin_v


def rectify(image, quads, height, width, margin=0.0, supersample=1):
    """Warp each quadrilateral of one image to a `height x width` crop.

    Works eagerly, in `tf.function` and in `tf.data` (no `py_function`); gradients flow into `image`.

    Args:
      image: `[H, W, C]` pixels (any real dtype; sampled as float32).
      quads: `[K, 4, 2]` corners in pixels, ICDAR order.
      height, width: crop size (Python ints).
      margin: extra border on every side, as a fraction of the quad's height.
      supersample: `r`; each output pixel averages `r x r` bilinear samples (less aliasing when a large
        word shrinks to the crop).

    Returns:
      float32 `[K, height, width, C]`.
    """
    image = tf.cast(tf.convert_to_tensor(image), tf.float32)
    quads = tf.reshape(tf.convert_to_tensor(quads, tf.float32), [-1, 4, 2])
    r = int(supersample)
    coeffs = quad_homographies(quads)
    margin_u, margin_v = _relative_margins(quads, margin)
    u, v = _grid(height, width, margin_u, margin_v, r)
    a, b, c, d, e, f, g, h = [coeffs[:, i : i + 1] for i in range(8)]
    w = g * u + h * v + 1.0
    w = tf.where(tf.abs(w) < 1e-6, 1e-6, w)
    x = (a * u + b * v + c) / w
    y = (d * u + e * v + f) / w
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    # Border replication: clamp sample centres into the image (a quad may overhang it).
    x = tf.clip_by_value(tf.where(tf.math.is_finite(x), x, 0.0) - 0.5, 0.0, size[1] - 1.0)
    y = tf.clip_by_value(tf.where(tf.math.is_finite(y), y, 0.0) - 0.5, 0.0, size[0] - 1.0)
    values = bilinear_sample(image[None], tf.reshape(x, [1, -1]), tf.reshape(y, [1, -1]))
    channels = image.shape[-1] if image.shape[-1] is not None else tf.shape(image)[-1]
    values = tf.reshape(values, [-1, height, r, width, r, channels])
    return tf.reduce_mean(values, axis=[2, 4])


# ----------------------------------------------------------------------------------------------------------
# NumPy reference: the homography by solving the 8 x 8 system of the four correspondences, and bilinear
# interpolation written out per sample.


def homography_numpy(src, dst):
    """The 3 x 3 projective matrix taking the four points `src [4, 2]` onto `dst [4, 2]` (last entry 1).

    Raises:
      numpy.linalg.LinAlgError: no such map (three points on a line).
    """
    rows, rhs = [], []
    for (u, v), (x, y) in zip(np.asarray(src, np.float64), np.asarray(dst, np.float64)):
        rows.append([u, v, 1, 0, 0, 0, -u * x, -v * x])
        rows.append([0, 0, 0, u, v, 1, -u * y, -v * y])
        rhs += [x, y]
    return np.append(np.linalg.solve(np.array(rows), np.array(rhs)), 1.0).reshape(3, 3)


def _unit_square_map_numpy(quad):
    try:
        return homography_numpy([[0, 0], [1, 0], [1, 1], [0, 1]], quad)
    except np.linalg.LinAlgError:  # degenerate: the affine map through corners 0, 1 and 3, as `rectify`
        (x0, y0), (x1, y1), _, (x3, y3) = quad
        return np.array([[x1 - x0, x3 - x0, x0], [y1 - y0, y3 - y0, y0], [0.0, 0.0, 1.0]])


def _bilinear_numpy(image, x, y):
    h, w = image.shape[:2]
    x = min(max(x - 0.5, 0.0), w - 1.0)
    y = min(max(y - 0.5, 0.0), h - 1.0)
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    top = (1 - fx) * image[y0, x0] + fx * image[y0, x1]
    bottom = (1 - fx) * image[y1, x0] + fx * image[y1, x1]
    return (1 - fy) * top + fy * bottom


def rectify_numpy(image, quads, height, width, margin=0.0, supersample=1):
    """Reference for `rectify` (same arguments and result; slow, for tests)."""
    image = np.asarray(image, np.float64)
    image = image[..., None] if image.ndim == 2 else image
    quads = np.asarray(quads, np.float64).reshape(-1, 4, 2)
    r = int(supersample)
    out = np.zeros((len(quads), height, width, image.shape[-1]))
    for k, quad in enumerate(quads):
        matrix = _unit_square_map_numpy(quad)
        quad_h = 0.5 * (np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1]))
        quad_w = 0.5 * (np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3]))
        mv, mu = margin, margin * quad_h / max(quad_w, 1e-6)
        for i in range(height):
            for j in range(width):
                acc = 0.0
                for si in range(r):
                    for sj in range(r):
                        u = -mu + (1 + 2 * mu) * (j * r + sj + 0.5) / (width * r)
                        v = -mv + (1 + 2 * mv) * (i * r + si + 0.5) / (height * r)
                        x, y, z = matrix @ np.array([u, v, 1.0])
                        acc = acc + _bilinear_numpy(image, x / z, y / z)
                out[k, i, j] = acc / (r * r)
    return out.astype(np.float32)
