"""Rotated box representations and conversions (NumPy and TF), and regression encoding/decoding.

One representation is used throughout: 6 parameters `(cx, cy, w, h, cos t, sin t)`, centre and size
normalised by the side of the (square) image.

Angle convention (image coordinates: x to the right, y down):
  * `t` is the angle from the +x axis to the box's width axis (the reading direction), in radians,
    measured in image coordinates. A positive `t` therefore turns the box clockwise as seen on screen
    (detectron2 uses degrees, counter-clockwise positive; mmrotate radians, clockwise positive: this is the
    mmrotate sign in radians).
  * The corners of `(cx, cy, w, h, t)` are `c + R(t) @ (dx, dy)` with `R(t) = [[cos, -sin], [sin, cos]]`
    and `(dx, dy)` = (-w/2, -h/2), (w/2, -h/2), (w/2, h/2), (-w/2, h/2): top-left, top-right,
    bottom-right, bottom-left of the upright word. That order is clockwise on screen, as ICDAR 2015 lists
    its quadrilaterals.
  * Converting a general quadrilateral back, the angle is that of the mean of its top and bottom edges
    (p0->p1 and p3->p2) and the box is the rectangle at that angle bounding the four points.

Non-square images are padded to a square (bottom and right) before resizing, so one scale `side`
normalises both axes and normalised boxes stay rectangles with the same angles.
"""

import numpy as np
import tensorflow as tf

_CORNER_SIGNS = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], np.float32)


def angle_box_to_quad(boxes):
    """`(cx, cy, w, h, angle)` -> corners.

    Args:
      boxes: `[..., 5]` array, angle in radians (convention in the module docstring).

    Returns:
      `[..., 4, 2]` float64 corners, clockwise on screen from the word's top-left.
    """
    boxes = np.asarray(boxes, np.float64)
    c, s = np.cos(boxes[..., 4]), np.sin(boxes[..., 4])
    return six_to_quad(np.stack([boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3], c, s], -1))


def six_to_quad(boxes):
    """6-parameter boxes -> corners `[..., 4, 2]` (NumPy; `(cos, sin)` need not be unit: it is normalised)."""
    boxes = np.asarray(boxes, np.float64)
    norm = np.maximum(np.hypot(boxes[..., 4], boxes[..., 5]), 1e-12)
    c, s = boxes[..., 4] / norm, boxes[..., 5] / norm
    dx = _CORNER_SIGNS[:, 0] * boxes[..., 2:3] / 2
    dy = _CORNER_SIGNS[:, 1] * boxes[..., 3:4] / 2
    x = boxes[..., 0:1] + c[..., None] * dx - s[..., None] * dy
    y = boxes[..., 1:2] + s[..., None] * dx + c[..., None] * dy
    return np.stack([x, y], -1)


def quad_to_six(quads):
    """Corners -> 6-parameter boxes (NumPy).

    Args:
      quads: `[..., 4, 2]` or `[..., 8]` points in ICDAR order (clockwise on screen from the top-left).

    Returns:
      `[..., 6]` float64 boxes: the rectangle at the angle of the quad's top/bottom edges that bounds it.
    """
    q = np.asarray(quads, np.float64)
    q = q.reshape(q.shape[:-1] + (4, 2)) if q.shape[-1] == 8 else q
    direction = (q[..., 1, :] - q[..., 0, :]) + (q[..., 2, :] - q[..., 3, :])
    theta = np.arctan2(direction[..., 1], direction[..., 0])
    c, s = np.cos(theta), np.sin(theta)
    u = q[..., 0] * c[..., None] + q[..., 1] * s[..., None]
    v = -q[..., 0] * s[..., None] + q[..., 1] * c[..., None]
    uc, vc = (u.max(-1) + u.min(-1)) / 2, (v.max(-1) + v.min(-1)) / 2
    w, h = u.max(-1) - u.min(-1), v.max(-1) - v.min(-1)
    return np.stack([uc * c - vc * s, uc * s + vc * c, w, h, c, s], -1)


def six_to_angle_box(boxes):
    """6-parameter boxes -> `(cx, cy, w, h, angle)` with angle in `(-pi, pi]` (NumPy)."""
    boxes = np.asarray(boxes, np.float64)
    return np.concatenate([boxes[..., :4], np.arctan2(boxes[..., 5], boxes[..., 4])[..., None]], -1)


def angle_box_to_six(boxes):
    """`(cx, cy, w, h, angle)` -> 6-parameter boxes (NumPy)."""
    boxes = np.asarray(boxes, np.float64)
    return np.concatenate([boxes[..., :4], np.cos(boxes[..., 4:5]), np.sin(boxes[..., 4:5])], -1)


def tf_six_to_quad(boxes):
    """TF version of `six_to_quad`: `[..., 6]` -> `[..., 4, 2]` float32, differentiable."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    norm = tf.maximum(tf.sqrt(tf.square(boxes[..., 4]) + tf.square(boxes[..., 5])), 1e-12)
    c, s = (boxes[..., 4] / norm)[..., None], (boxes[..., 5] / norm)[..., None]
    dx = tf.constant(_CORNER_SIGNS[:, 0]) * boxes[..., 2:3] / 2
    dy = tf.constant(_CORNER_SIGNS[:, 1]) * boxes[..., 3:4] / 2
    x = boxes[..., 0:1] + c * dx - s * dy
    y = boxes[..., 1:2] + s * dx + c * dy
    return tf.stack([x, y], -1)


def tf_quad_to_six(quads):
    """TF version of `quad_to_six`: `[..., 4, 2]` -> `[..., 6]` float32."""
    q = tf.convert_to_tensor(quads, tf.float32)
    direction = (q[..., 1, :] - q[..., 0, :]) + (q[..., 2, :] - q[..., 3, :])
    theta = tf.atan2(direction[..., 1], direction[..., 0])
    c, s = tf.cos(theta), tf.sin(theta)
    u = q[..., 0] * c[..., None] + q[..., 1] * s[..., None]
    v = -q[..., 0] * s[..., None] + q[..., 1] * c[..., None]
    umax, umin = tf.reduce_max(u, -1), tf.reduce_min(u, -1)
    vmax, vmin = tf.reduce_max(v, -1), tf.reduce_min(v, -1)
    uc, vc = (umax + umin) / 2, (vmax + vmin) / 2
    return tf.stack([uc * c - vc * s, uc * s + vc * c, umax - umin, vmax - vmin, c, s], -1)


def encode(boxes, anchors, weights=(10.0, 10.0, 5.0, 5.0, 1.0, 1.0)):
    """Regression targets of `boxes` relative to `anchors` (both `[..., 6]`, TF).

    The centre offset is expressed in the anchor's own rotated frame, sizes as log ratios, and the angle as
    the (cos - 1, sin) of the rotation from the anchor's angle to the box's, so a perfect anchor encodes to
    zeros (and zero deltas decode to the anchor itself). A box at t and at t + pi is one rectangle: the form
    whose angle lies within pi/2 of the anchor's is encoded (a vertical word at -89 degrees is 1 degree from
    an anchor at 90, not 179), so `decode` returns that form.

    Returns:
      `[..., 6]` float32 deltas.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    ac, as_ = anchors[..., 4], anchors[..., 5]
    aw, ah = tf.maximum(anchors[..., 2], 1e-6), tf.maximum(anchors[..., 3], 1e-6)
    dx, dy = boxes[..., 0] - anchors[..., 0], boxes[..., 1] - anchors[..., 1]
    tx = (dx * ac + dy * as_) / aw
    ty = (-dx * as_ + dy * ac) / ah
    tw = tf.math.log(tf.maximum(boxes[..., 2], 1e-6) / aw)
    th = tf.math.log(tf.maximum(boxes[..., 3], 1e-6) / ah)
    nearer = tf.where(boxes[..., 4] * ac + boxes[..., 5] * as_ < 0, -1.0, 1.0)
    bc, bs = boxes[..., 4] * nearer, boxes[..., 5] * nearer
    rc = bc * ac + bs * as_ - 1.0
    rs = bs * ac - bc * as_
    w = weights
    return tf.stack([tx * w[0], ty * w[1], tw * w[2], th * w[3], rc * w[4], rs * w[5]], -1)


def decode(deltas, anchors, weights=(10.0, 10.0, 5.0, 5.0, 1.0, 1.0), max_log_ratio=4.0):
    """Inverse of `encode`: boxes `[..., 6]` from deltas and anchors (TF, differentiable in `deltas`).

    The decoded `(cos, sin)` is normalised to unit length; log size ratios are clipped at `max_log_ratio`.
    """
    deltas = tf.convert_to_tensor(deltas, tf.float32)
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    w = weights
    tx, ty = deltas[..., 0] / w[0], deltas[..., 1] / w[1]
    tw = tf.minimum(deltas[..., 2] / w[2], max_log_ratio)
    th = tf.minimum(deltas[..., 3] / w[3], max_log_ratio)
    rc, rs = deltas[..., 4] / w[4] + 1.0, deltas[..., 5] / w[5]
    norm = tf.sqrt(tf.square(rc) + tf.square(rs) + 1e-12)
    rc, rs = rc / norm, rs / norm
    ac, as_ = anchors[..., 4], anchors[..., 5]
    ox, oy = tx * anchors[..., 2], ty * anchors[..., 3]
    cx = anchors[..., 0] + ox * ac - oy * as_
    cy = anchors[..., 1] + ox * as_ + oy * ac
    bw = anchors[..., 2] * tf.exp(tw)
    bh = anchors[..., 3] * tf.exp(th)
    return tf.stack([cx, cy, bw, bh, ac * rc - as_ * rs, as_ * rc + ac * rs], -1)


def _in_quarter(c, s):
    """Whether the angle of `(c, s)` lies in [-pi/4, pi/4) (NumPy or TF)."""
    return (c > 0) & (-c <= s) & (s < c)


def canonical(boxes):
    """The one 6-parameter form of each rectangle: `w >= h` and the angle in [-pi/2, pi/2).

    A rectangle has four forms: `(w, h, t)`, `(w, h, t + pi)`, `(h, w, t + pi/2)`, `(h, w, t - pi/2)` (a
    square eight). The canonical one swaps w and h when `h > w` (turning the angle by +pi/2: `(c, s) ->
    (-s, c)`), then turns by pi when the angle is outside [-pi/2, pi/2) (`(c, s) -> (-c, -s)`); a square
    (`w == h`) takes its angle in [-pi/4, pi/4). Corners, area and IoU are unchanged.

    Differentiable where gradients flow: per box the result is a signed permutation of its own parameters,
    chosen with `tf.where` from their values, so the gradient with respect to the input is the gradient with
    respect to the output, permuted back and with the same signs; the choice itself is piecewise constant and
    carries no gradient. The form jumps only on the boundaries (`w == h`, an angle of exactly +-pi/2), where
    two forms of one rectangle meet: `lsiou.BoxEmbedding` reads continuous features of the canonical box so
    that the surrogate does not jump with it.

    Args:
      boxes: `[..., 6]` boxes (`(cos, sin)` need not be unit: they are permuted and signed, not normalised).

    Returns:
      `[..., 6]` float32 boxes.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    cx, cy, w, h, c, s = tf.unstack(boxes, axis=-1)
    swap = h > w
    w, h = tf.where(swap, h, w), tf.where(swap, w, h)
    c, s = tf.where(swap, -s, c), tf.where(swap, c, s)
    flip = ~((c > 0) | ((c == 0) & (s < 0)))
    c, s = tf.where(flip, -c, c), tf.where(flip, -s, s)
    # A square is the same at t and t +- pi/2: fold its angle into [-pi/4, pi/4) (at most one turn applies).
    square = tf.equal(w, h)
    turn_back = square & _in_quarter(s, -c)  # t in [pi/4, pi/2): t - pi/2
    turn_on = square & _in_quarter(-s, c)  # t in [-pi/2, -pi/4): t + pi/2
    c, s = tf.where(turn_back, s, tf.where(turn_on, -s, c)), tf.where(turn_back, -c, tf.where(turn_on, c, s))
    return tf.stack([cx, cy, w, h, c, s], -1)


def np_canonical(boxes):
    """NumPy version of `canonical` (float64)."""
    boxes = np.array(boxes, np.float64)
    cx, cy, w, h, c, s = np.moveaxis(boxes, -1, 0)
    swap = h > w
    w, h = np.where(swap, h, w), np.where(swap, w, h)
    c, s = np.where(swap, -s, c), np.where(swap, c, s)
    flip = ~((c > 0) | ((c == 0) & (s < 0)))
    c, s = np.where(flip, -c, c), np.where(flip, -s, s)
    square = w == h
    turn_back, turn_on = square & _in_quarter(s, -c), square & _in_quarter(-s, c)
    c, s = np.where(turn_back, s, np.where(turn_on, -s, c)), np.where(turn_back, -c, np.where(turn_on, c, s))
    return np.stack([cx, cy, w, h, c, s], -1)
