"""Rotated IoU: exact (shapely 2, vectorised) for evaluation and the surrogate's truth, and in-graph TF.

The TF version integrates along the boundary of the intersection (Green's theorem): each box's edges are
clipped to the other box and their `0.5 * cross(start, end)` summed, which needs no vertex sorting. It has no
gradient (it serves matching and NMS) and returns finite values for every input, degenerate boxes included.
"""

import numpy as np
import shapely
import tensorflow as tf

from tfls.detection import boxes as box_lib


def _polygons(quads):
    return shapely.polygons(np.asarray(quads, np.float64))


def quad_iou(quads1, quads2):
    """Exact IoU of quadrilateral pairs (broadcasting), with shapely.

    Args:
      quads1: `[..., 4, 2]` corners.
      quads2: `[..., 4, 2]` corners, broadcastable against `quads1` over the leading axes.

    Returns:
      float64 IoU with the broadcast leading shape; 0 where the union is empty.
    """
    p1, p2 = _polygons(quads1), _polygons(quads2)
    p1, p2 = np.broadcast_arrays(p1, p2)
    inter = shapely.area(shapely.intersection(p1, p2))
    union = shapely.area(p1) + shapely.area(p2) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def quad_iou_matrix(quads1, quads2):
    """Pairwise exact IoU `[N, M]` between `[N, 4, 2]` and `[M, 4, 2]` quadrilaterals."""
    quads1 = np.asarray(quads1, np.float64).reshape(-1, 4, 2)
    quads2 = np.asarray(quads2, np.float64).reshape(-1, 4, 2)
    if len(quads1) == 0 or len(quads2) == 0:
        return np.zeros((len(quads1), len(quads2)))
    return quad_iou(quads1[:, None], quads2[None, :])


def box_iou(boxes1, boxes2):
    """Exact IoU of 6-parameter box pairs `[N, 6]` x `[N, 6]` -> `[N]` (the LS-IoU truth is 1 - this)."""
    return quad_iou(box_lib.six_to_quad(boxes1), box_lib.six_to_quad(boxes2))


def _cross(a, b):
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _clipped_edge_area(starts, directions, boxes, skip=None):
    """Green's-theorem contribution `0.5 * cross(a, b)` of the part `[a, b]` of each edge inside a box.

    Each edge `start + t * direction, t in [0, 1]` is clipped (Liang-Barsky) to the box enlarged by a small
    tolerance, in the box's own frame. Shapes: `starts, directions [..., 4, 2]`, `boxes [..., 6]`.
    """
    c, s = boxes[..., None, 4], boxes[..., None, 5]
    rel = starts - boxes[..., None, 0:2]
    px, py = rel[..., 0] * c + rel[..., 1] * s, -rel[..., 0] * s + rel[..., 1] * c
    dx = directions[..., 0] * c + directions[..., 1] * s
    dy = -directions[..., 0] * s + directions[..., 1] * c
    tmin, tmax = tf.zeros_like(px), tf.ones_like(px)
    length = tf.sqrt(tf.square(dx) + tf.square(dy))
    for p, d, half in ((px, dx, boxes[..., None, 2] / 2), (py, dy, boxes[..., None, 3] / 2)):
        # An edge (nearly) parallel to this side is in or out as a whole, judged with a small tolerance so
        # that edges lying on the boundary (identical or touching boxes) count despite rounding. Other edges
        # are cut at the exact side: a tolerance there would move the cut far along near-parallel edges.
        moving = tf.abs(d) > 1e-4 * length + 1e-12
        safe = tf.where(moving, d, 1.0)
        t1, t2 = (-half - p) / safe, (half - p) / safe
        inside = tf.abs(p) <= half * (1 + 1e-5) + 1e-7
        tmin = tf.maximum(tmin, tf.where(moving, tf.minimum(t1, t2), tf.where(inside, 0.0, 2.0)))
        tmax = tf.minimum(tmax, tf.where(moving, tf.maximum(t1, t2), tf.where(inside, 1.0, -1.0)))
    a = starts + tmin[..., None] * directions
    b = starts + tmax[..., None] * directions
    keep = tmax > tmin
    if skip is not None:
        keep = keep & ~skip
    return tf.reduce_sum(tf.where(keep, 0.5 * _cross(a, b), 0.0), -1)


def tf_rotated_iou(boxes1, boxes2, differentiable=False):
    """In-graph IoU of 6-parameter boxes, elementwise with broadcasting.

    The intersection area is the boundary integral (Green's theorem) over the parts of each box's edges that
    lie inside the other box: no vertex sorting, only elementwise ops. Edges of box 2 running along an edge of
    box 1 in the same direction are counted once (from box 1).

    Args:
      boxes1: `[..., 6]` boxes (cos/sin need not be exactly unit; they are normalised).
      boxes2: `[..., 6]` boxes broadcastable against `boxes1`.
      differentiable: keep the gradient (piecewise smooth: the clipped edges' end points move with the
        boxes; the which-edge-is-inside decisions are constants), for the exact-IoU oracle of tuning.

    Returns:
      float32 IoU in [0, 1] with the broadcast leading shape; no gradient unless `differentiable`.
    """
    b1 = tf.convert_to_tensor(boxes1, tf.float32)
    b2 = tf.convert_to_tensor(boxes2, tf.float32)
    if not differentiable:
        b1, b2 = tf.stop_gradient(b1), tf.stop_gradient(b2)
    shape = tf.broadcast_dynamic_shape(tf.shape(b1), tf.shape(b2))
    b1, b2 = tf.broadcast_to(b1, shape), tf.broadcast_to(b2, shape)

    def unit(b):
        n = tf.sqrt(tf.square(b[..., 4:5]) + tf.square(b[..., 5:6]))
        cs = tf.where(n > 0, b[..., 4:6] / tf.where(n > 0, n, 1.0), tf.constant([1.0, 0.0]))
        return tf.concat([b[..., :2], tf.maximum(b[..., 2:4], 0.0), cs], -1)

    b1, b2 = unit(b1), unit(b2)
    # Work relative to box 1's centre: keeps float32 precise for large, nearly identical boxes.
    origin = b1[..., 0:2]
    b1 = tf.concat([b1[..., :2] - origin, b1[..., 2:]], -1)
    b2 = tf.concat([b2[..., :2] - origin, b2[..., 2:]], -1)
    q1, q2 = box_lib.tf_six_to_quad(b1), box_lib.tf_six_to_quad(b2)
    e1 = tf.roll(q1, -1, axis=-2) - q1
    e2 = tf.roll(q2, -1, axis=-2) - q2
    # Box 2's edge j duplicates box 1's edge i when parallel, same direction, and on the same line.
    n1 = tf.sqrt(tf.reduce_sum(tf.square(e1), -1) + 1e-20)[..., :, None]
    n2 = tf.sqrt(tf.reduce_sum(tf.square(e2), -1) + 1e-20)[..., None, :]
    ei, ej = e1[..., :, None, :], e2[..., None, :, :]
    scale = tf.maximum(n1, n2)
    parallel = tf.abs(_cross(ei, ej)) <= 1e-5 * n1 * n2
    same_dir = tf.reduce_sum(ei * ej, -1) > 0
    offset = q2[..., None, :, :] - q1[..., :, None, :]
    on_line = tf.abs(_cross(ei, offset)) <= (1e-5 * scale + 1e-7) * n1
    duplicate = tf.reduce_any(parallel & same_dir & on_line, axis=-2)
    inter = tf.abs(_clipped_edge_area(q1, e1, b2) + _clipped_edge_area(q2, e2, b1, skip=duplicate))
    area1 = b1[..., 2] * b1[..., 3]
    area2 = b2[..., 2] * b2[..., 3]
    inter = tf.minimum(inter, tf.minimum(area1, area2))
    union = area1 + area2 - inter
    return tf.clip_by_value(tf.math.divide_no_nan(inter, union), 0.0, 1.0)


def tf_one_minus_iou(pred, target, differentiable=False):
    """The LS-IoU metric in TF ops, the in-graph twin of `lsiou.one_minus_iou`: `1 - IoU` of 6-parameter box
    pairs `[N, 6]` -> float32 `[N]`.

    Sides count by their magnitude and `(cos, sin)` is normalised, as in the NumPy metric (a zero angle
    vector reads angle 0). No gradient unless `differentiable`; the same eagerly, inside `Dataset.map` and
    compiled by XLA.
    """

    def magnitudes(boxes):
        boxes = tf.convert_to_tensor(boxes, tf.float32)
        return tf.concat([boxes[..., :2], tf.abs(boxes[..., 2:4]), boxes[..., 4:]], -1)

    return 1.0 - tf_rotated_iou(magnitudes(pred), magnitudes(target), differentiable)


def half_extents(boxes):
    """Half width and half height of each box's axis-aligned bounding box."""
    c, s = tf.abs(boxes[..., 4]), tf.abs(boxes[..., 5])
    norm = tf.maximum(tf.sqrt(tf.square(c) + tf.square(s)), 1e-12)
    c, s = c / norm, s / norm
    w, h = tf.abs(boxes[..., 2]), tf.abs(boxes[..., 3])
    return 0.5 * (w * c + h * s), 0.5 * (w * s + h * c)


def _intersection_bound(p, q):
    """An upper bound of the intersection area of box pairs `[K, 6]`: the rectangle q against p's bounding
    box in q's own frame (which contains p)."""
    d = p[:, :2] - q[:, :2]
    dx = d[:, 0] * q[:, 4] + d[:, 1] * q[:, 5]
    dy = -d[:, 0] * q[:, 5] + d[:, 1] * q[:, 4]
    c = tf.abs(p[:, 4] * q[:, 4] + p[:, 5] * q[:, 5])
    s = tf.abs(p[:, 5] * q[:, 4] - p[:, 4] * q[:, 5])
    ex, ey = 0.5 * (p[:, 2] * c + p[:, 3] * s), 0.5 * (p[:, 2] * s + p[:, 3] * c)
    ix = tf.minimum(dx + ex, 0.5 * q[:, 2]) - tf.maximum(dx - ex, -0.5 * q[:, 2])
    iy = tf.minimum(dy + ey, 0.5 * q[:, 3]) - tf.maximum(dy - ey, -0.5 * q[:, 3])
    return tf.maximum(ix, 0.0) * tf.maximum(iy, 0.0)


def overlap_1d(centre1, half1, centre2, half2):
    """Length of the overlap of intervals `centre +- half` (negative when they are apart), broadcasting."""
    return tf.minimum(centre1 + half1, centre2 + half2) - tf.maximum(centre1 - half1, centre2 - half2)


def aabb_area_test(area1, area2, min_iou):
    """The part of the first filter that needs only the areas: both positive and, when `min_iou > 0`, the
    smaller at least `min_iou` times the larger (the IoU is at most their ratio)."""
    ok = (area1 > 0) & (area2 > 0)
    if min_iou > 0:
        ok &= tf.minimum(area1, area2) >= min_iou * tf.maximum(area1, area2)
    return ok


def aabb_bound_test(overlap_x, overlap_y, area1, area2, min_iou):
    """The part of the first filter that needs the bounding boxes' overlap (`min_iou > 0` only):
    `min(inter(AABB1, AABB2), area1, area2) >= min_iou * max(area1, area2)`."""
    bound = tf.maximum(overlap_x, 0.0) * tf.maximum(overlap_y, 0.0)
    return tf.minimum(bound, tf.minimum(area1, area2)) >= min_iou * tf.maximum(area1, area2)


def iou_of_candidates(p, q, indices, min_iou=0.0):
    """Second filter and exact IoU of candidate pairs `p, q [K, 6]` (at `indices [K, ...]`).

    Returns `(indices [K', ...], iou [K'])` of the pairs whose second bound (each box against the other's
    bounding box in its own frame) is positive and, when `min_iou > 0`, at least `min_iou`.
    """
    area_p, area_q = p[:, 2] * p[:, 3], q[:, 2] * q[:, 3]
    inter = tf.minimum(tf.minimum(_intersection_bound(p, q), _intersection_bound(q, p)), tf.minimum(area_p, area_q))
    bound = tf.math.divide_no_nan(inter, area_p + area_q - inter)
    close = tf.where((bound >= min_iou) & (inter > 0) if min_iou > 0 else inter > 0)[:, 0]
    return tf.gather(indices, close), tf_rotated_iou(tf.gather(p, close), tf.gather(q, close))


def tf_rotated_iou_pairs(boxes1, boxes2, min_iou=0.0):
    """Sparse pairwise in-graph IoU of `[B, N, 6]` x `[B, M, 6]`: the pairs that can overlap (see
    `tf_rotated_iou_matrix`) as `(indices [K, 3] int64 (batch, n, m) in row-major order, iou [K])`; every
    other pair's IoU is 0."""
    boxes1 = tf.stop_gradient(tf.convert_to_tensor(boxes1, tf.float32))
    boxes2 = tf.stop_gradient(tf.convert_to_tensor(boxes2, tf.float32))
    a, b = boxes1[:, :, None, :], boxes2[:, None, :, :]
    (ax, ay), (bx, by) = half_extents(a), half_extents(b)
    overlap_x = overlap_1d(a[..., 0], ax, b[..., 0], bx)
    overlap_y = overlap_1d(a[..., 1], ay, b[..., 1], by)
    area_a, area_b = a[..., 2] * a[..., 3], b[..., 2] * b[..., 3]
    candidate = (overlap_x > 0) & (overlap_y > 0) & aabb_area_test(area_a, area_b, min_iou)
    if min_iou > 0:
        candidate &= aabb_bound_test(overlap_x, overlap_y, area_a, area_b, min_iou)
    where = tf.where(candidate)
    p = tf.gather_nd(boxes1, where[:, :2])
    q = tf.gather_nd(boxes2, tf.gather(where, [0, 2], axis=1))
    return iou_of_candidates(p, q, where, min_iou)


def tf_rotated_iou_matrix(boxes1, boxes2, min_iou=0.0):
    """Pairwise in-graph IoU: `[B, N, 6]` x `[B, M, 6]` -> `[B, N, M]` (also `[N, 6]` x `[M, 6]`).

    Only pairs that can overlap are intersected; the others are 0. A box lies inside its axis-aligned
    bounding box (AABB), so two steps of upper bounds skip pairs without changing any result: over all pairs,
    `min(inter(AABB1, AABB2), area1, area2) / max(area1, area2)`; over the pairs left, the intersection of
    each box with the other's bounding box in its own frame, `I`, gives `IoU <= I / (area1 + area2 - I)`.
    Pairs whose bound is 0 (or below `min_iou` when `min_iou > 0`) are skipped, so results below `min_iou`
    may read 0. Cost: about 15 elementwise ops over all `N * M` pairs, the exact IoU on the rest
    (`tf_rotated_iou_pairs` returns that rest without the dense matrix).
    """
    boxes1 = tf.stop_gradient(tf.convert_to_tensor(boxes1, tf.float32))
    boxes2 = tf.stop_gradient(tf.convert_to_tensor(boxes2, tf.float32))
    if len(boxes1.shape) == 2:
        return tf_rotated_iou_matrix(boxes1[None], boxes2[None], min_iou)[0]
    indices, values = tf_rotated_iou_pairs(boxes1, boxes2, min_iou)
    n = tf.shape(boxes1, out_type=tf.int64)
    shape = tf.stack([n[0], n[1], tf.shape(boxes2, out_type=tf.int64)[1]])
    return tf.scatter_nd(indices, values, shape)
