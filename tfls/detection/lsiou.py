"""LS-IoU: the learned surrogate of 1 - rotated IoU (box embedding, true metric, random box pairs)."""

import keras
import numpy as np
import tensorflow as tf

from tfls.detection import boxes as box_lib
from tfls.detection import iou as iou_lib
from tfls.surrogate import PairGenerator

# Box statistics of the ICDAR 2015 test ground truth (5230 words, sizes relative to the 1280 px side):
# width median 0.040 (5%-95%: 0.014-0.134), height median 0.017 (0.008-0.060), aspect w/h median 2.4
# (0.7-6.1), angle 5%-95%: -24 to +16 degrees. The defaults below cover this range and the larger
# words of the synthetic scenes (heights 10-24 px of 128).
ICDAR2015_STATS = {"log_w": (np.log(0.04), 0.8), "aspect": (0.7, 8.0), "angle_deg_std": 15.0}


def one_minus_iou(pred, target):
    """True LS-IoU metric: `1 - IoU` of 6-parameter box pairs `[N, 6]` (exact, shapely) -> float32 `[N]`.

    Both sides are put in canonical form first (`boxes.np_canonical`; negative sizes count by their
    magnitude): the value depends on the rectangles only, not on which of their forms is given.
    """
    pred = np.asarray(pred, np.float64)
    target = np.asarray(target, np.float64)
    pred = np.concatenate([pred[:, :2], np.abs(pred[:, 2:4]), pred[:, 4:]], 1)
    target = np.concatenate([target[:, :2], np.abs(target[:, 2:4]), target[:, 4:]], 1)
    return (1.0 - iou_lib.box_iou(box_lib.np_canonical(pred), box_lib.np_canonical(target))).astype(np.float32)


def box_features(boxes, num_directions=8):
    """Continuous features of rectangles, the same for every form of one rectangle: `[N, 6] -> [N, F]`.

    The box is put in canonical form (`boxes.canonical`: w >= h, angle in [-pi/2, pi/2)), then described by
    quantities that do not jump where that form does (at +-90 degrees, and where w == h): the centre, w and
    h, the doubled angle `(cos 2t, sin 2t)` scaled by the elongation `(w - h) / (w + h)` (which vanishes for
    a square, whose angle is arbitrary), and the box's extent along `num_directions` directions spread over
    half a turn (centre projection +- the support `w/2 |cos(phi - t)| + h/2 |sin(phi - t)|`; directions 0
    and pi/2 give the axis-aligned bounding box). `F = 6 + 2 * num_directions`.

    Gradients flow through the canonical form (a signed permutation) and these smooth or piecewise-linear
    functions; `|.|` has a subgradient at 0.
    """
    b = box_lib.canonical(boxes)
    cx, cy, w, h, c, s = tf.unstack(b, axis=-1)
    norm = tf.sqrt(tf.square(c) + tf.square(s) + 1e-12)
    c, s = c / norm, s / norm
    elongation = (w - h) / (w + h + 1e-6)
    phi = np.arange(num_directions) * np.pi / num_directions
    cos_phi, sin_phi = tf.constant(np.cos(phi), tf.float32), tf.constant(np.sin(phi), tf.float32)
    along = cos_phi * c[:, None] + sin_phi * s[:, None]  # cos(phi - t)
    across = sin_phi * c[:, None] - cos_phi * s[:, None]  # sin(phi - t)
    support = 0.5 * w[:, None] * tf.abs(along) + 0.5 * h[:, None] * tf.abs(across)
    centre = cos_phi * cx[:, None] + sin_phi * cy[:, None]
    doubled = tf.stack([elongation * (c * c - s * s), elongation * 2.0 * c * s], -1)
    return tf.concat([tf.stack([cx, cy, w, h], -1), doubled, centre - support, centre + support], -1)


def spectrum_frequencies(num_frequencies=128, frequency_range=(3.0, 1500.0)):
    """The fixed frequencies of `box_spectrum`: `num_frequencies` radii spaced evenly in log between
    `frequency_range` (radians per unit of the normalised image), each at its own direction in [0, pi)
    (golden-angle steps, so the directions cover the half-plane at every band). Returns `(fx, fy, weight)`:
    float64 `[K]` each, `weight` the quadrature weight of each frequency (`r^2 dlog r / (2 pi)`, the area
    of its ring over the whole plane divided by `(2 pi)^2`)."""
    k = int(num_frequencies)
    lo, hi = (float(v) for v in frequency_range)
    if k < 1 or not 0 < lo < hi:
        raise ValueError(f"box_spectrum needs num_frequencies >= 1 and 0 < low < high, got {k}, {frequency_range}")
    radius = np.exp(np.linspace(np.log(lo), np.log(hi), k))
    step = np.log(hi / lo) / max(k - 1, 1)
    angle = (np.arange(k) * np.pi * (3.0 - np.sqrt(5.0))) % np.pi
    return radius * np.cos(angle), radius * np.sin(angle), radius**2 * step / (2.0 * np.pi)


def box_spectrum(boxes, num_frequencies=128, frequency_range=(3.0, 1500.0)):
    """The Fourier transform of each box's indicator, divided by the square root of its area, at the fixed
    frequencies of `spectrum_frequencies`: `[N, 6] -> [N, 2K]` (real and imaginary parts).

    For a rectangle of size w x h centred at c and turned by t, the transform at frequency f is
    `w h sinc(w f_u / 2) sinc(h f_v / 2) exp(-i f.c)` (`f_u, f_v`: f in the box's own frame). Weighted by
    the quadrature of `spectrum_frequencies`, inner products of these features approximate
    (Plancherel) the inner product of the normalised indicators: `<s(A), s(B)> ~ |A n B| / sqrt(|A| |B|)`,
    so `||s(A)|| ~ 1` for every box whose spectrum lies within the frequency range and disjoint boxes give
    nearly orthogonal features: the quantity IoU is made of, which a plain MLP of the box's coordinates
    struggles to form (its slope must grow as 1 / size for small boxes). Depends on the rectangle only (the
    box is put in canonical form first); smooth in every parameter.
    """
    fx, fy, weight = spectrum_frequencies(num_frequencies, frequency_range)
    b = box_lib.canonical(tf.cast(boxes, tf.float32))
    cx, cy, w, h, c, s = (b[:, i : i + 1] for i in range(6))
    norm = tf.sqrt(tf.square(c) + tf.square(s) + 1e-12)
    c, s = c / norm, s / norm
    fx, fy = tf.constant(fx, tf.float32), tf.constant(fy, tf.float32)
    along = fx * c + fy * s
    across = -fx * s + fy * c

    def sinc(x):
        small = tf.abs(x) < 1e-4
        safe = tf.where(small, tf.ones_like(x), x)
        return tf.where(small, 1.0 - tf.square(x) / 6.0, tf.sin(safe) / safe)

    amplitude = tf.sqrt(tf.abs(w * h) + 1e-12) * sinc(0.5 * w * along) * sinc(0.5 * h * across)
    amplitude = amplitude * tf.constant(np.sqrt(weight), tf.float32)
    phase = fx * cx + fy * cy
    return tf.concat([amplitude * tf.cos(phase), -amplitude * tf.sin(phase)], -1)


class BoxEmbedding(keras.layers.Layer):
    """h_phi for rotated boxes: `box_features` of the canonical box through a plain MLP.

    Every form of one rectangle (w and h swapped with the angle turned by 90 degrees, the angle +- 180) gives
    the same features, so e_hat is 0 between forms of one rectangle and does not jump where the canonical
    form does. No normalisation layers: each box is embedded independently (per-sample gradients are needed).
    With `num_frequencies > 0` the MLP also reads `box_spectrum` (the box's normalised indicator in the
    frequency domain); bench/det_penalty_sweep.py --compare-spectrum measures the held-out error with and
    without it (docs/RESULTS.md).

    Args:
      units: hidden widths.
      output_dim: embedding size D.
      num_directions: directions of `box_features`.
      num_frequencies: frequencies of `box_spectrum` (0: coordinates only).
      frequency_range: `(low, high)` radians per normalised unit (a box of side a fills up to ~ 2 pi / a).
    """

    def __init__(
        self,
        units=(256, 256, 256),
        output_dim=64,
        num_directions=8,
        num_frequencies=0,
        frequency_range=(3.0, 1500.0),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = tuple(int(u) for u in units)
        self.output_dim = int(output_dim)
        self.num_directions = int(num_directions)
        self.num_frequencies = int(num_frequencies)
        self.frequency_range = tuple(float(v) for v in frequency_range)
        if self.num_frequencies:
            spectrum_frequencies(self.num_frequencies, self.frequency_range)  # validates

    def build(self, input_shape):
        self.hidden = [keras.layers.Dense(u, activation="relu", name=f"hidden{i}") for i, u in enumerate(self.units)]
        self.out = keras.layers.Dense(self.output_dim, name="embedding")
        width = 6 + 2 * self.num_directions + 2 * self.num_frequencies
        for layer in self.hidden:
            layer.build((None, width))
            width = layer.units
        self.out.build((None, width))

    def call(self, boxes):
        boxes = tf.cast(boxes, tf.float32)
        x = box_features(boxes, self.num_directions) * 4.0
        if self.num_frequencies:
            x = tf.concat([x, box_spectrum(boxes, self.num_frequencies, self.frequency_range)], -1)
        for layer in self.hidden:
            x = layer(x)
        return self.out(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "output_dim": self.output_dim,
            "num_directions": self.num_directions,
            "num_frequencies": self.num_frequencies,
            "frequency_range": self.frequency_range,
        }


class RandomBoxPairs(PairGenerator):
    """Global LS-IoU pairs: a label box like the training data and a distorted copy covering IoU 0..1.

    A label box has log-normal width (`log_w` mean/std, clipped to [min_size, 0.9]), an aspect ratio
    uniform in log space over `aspect`, a normal angle (`angle_deg_std`) and a centre anywhere in the image.
    Its copy is shifted (in the box frame, relative to its size), rescaled, re-shaped and rotated by an
    amount drawn per pair from a distortion level in [0, 1], so near-identical, overlapping and disjoint
    pairs all occur; a share `far_fraction` of pairs gets an unrelated box (IoU 0).

    Args:
      stats: dict like `ICDAR2015_STATS`.
      min_size: smallest side (normalised).
      far_fraction: share of pairs with an independent random box.
    """

    def __init__(self, stats=None, min_size=0.01, far_fraction=0.1):
        self.stats = dict(stats or ICDAR2015_STATS)
        self.min_size = float(min_size)
        self.far_fraction = float(far_fraction)

    def labels(self, n, rng):
        """`n` label boxes `[n, 6]` in canonical form (`boxes.np_canonical`)."""
        mu, sigma = self.stats["log_w"]
        w = np.clip(np.exp(rng.normal(mu, sigma, n)), self.min_size * 1.5, 0.9)
        lo, hi = self.stats["aspect"]
        aspect = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        h = np.clip(w / aspect, self.min_size, 0.9)
        angle = np.deg2rad(np.clip(rng.normal(0, self.stats["angle_deg_std"], n), -89, 89))
        if "angle_uniform_share" in self.stats:
            uniform = rng.random(n) < self.stats["angle_uniform_share"]
            angle = np.where(uniform, rng.uniform(-np.pi / 2, np.pi / 2, n), angle)
        cx, cy = rng.uniform(0.05, 0.95, n), rng.uniform(0.05, 0.95, n)
        return box_lib.np_canonical(np.stack([cx, cy, w, h, np.cos(angle), np.sin(angle)], 1))

    def generate(self, n, rng):
        target = self.labels(n, rng)
        level = rng.random(n) ** 1.5
        cx, cy, w, h, c, s = target.T
        du = rng.normal(0, 1, n) * level * w * 0.6
        dv = rng.normal(0, 1, n) * level * h * 1.2
        scale = np.exp(rng.normal(0, 1, n) * level * 0.5)
        stretch = np.exp(rng.normal(0, 1, n) * level * 0.4)
        dtheta = rng.normal(0, 1, n) * level * 0.6
        pw = np.clip(w * scale * stretch, self.min_size * 0.5, 1.2)
        ph = np.clip(h * scale / stretch, self.min_size * 0.5, 1.2)
        theta = np.arctan2(s, c) + dtheta
        pred = np.stack([cx + du * c - dv * s, cy + du * s + dv * c, pw, ph, np.cos(theta), np.sin(theta)], 1)
        far = rng.random(n) < self.far_fraction
        if far.any():
            pred[far] = self.labels(int(far.sum()), rng)
        return box_lib.np_canonical(pred).astype(np.float32), target.astype(np.float32)
