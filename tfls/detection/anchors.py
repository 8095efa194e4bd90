"""Rotated anchors on a feature grid, their matching to ground truth, and Faster R-CNN sampling."""

import numpy as np
import tensorflow as tf

from tfls.detection import iou as iou_lib


def rotated_anchors(feature_size, image_size, sizes, ratios, angles_deg):
    """Anchors of every (size, ratio, angle) at the centre of every feature cell.

    Args:
      feature_size: H (= W) of the square feature map.
      image_size: side of the square input image in pixels.
      sizes: anchor sides `sqrt(w * h)` in pixels.
      ratios: aspect ratios `w / h`.
      angles_deg: angles in degrees (convention of `tfls.detection.boxes`).

    Returns:
      `[H * W * A, 6]` float32 normalised anchors, ordered (row, column, anchor) to match a
      `[B, H, W, A * k]` head output reshaped to `[B, H * W * A, k]`.
    """
    shapes = []
    for size in sizes:
        for ratio in ratios:
            for angle in angles_deg:
                t = np.deg2rad(angle)
                shapes.append(
                    [size * np.sqrt(ratio) / image_size, size / np.sqrt(ratio) / image_size, np.cos(t), np.sin(t)]
                )
    shapes = np.asarray(shapes, np.float32)
    centres = (np.arange(feature_size, dtype=np.float32) + 0.5) / feature_size
    cy, cx = np.meshgrid(centres, centres, indexing="ij")
    grid = np.stack([cx, cy], -1).reshape(-1, 1, 2)
    out = np.concatenate(
        [
            np.broadcast_to(grid, (grid.shape[0], len(shapes), 2)),
            np.broadcast_to(shapes[None], (grid.shape[0], len(shapes), 4)),
        ],
        -1,
    )
    return out.reshape(-1, 6).astype(np.float32)


class AnchorGrid:
    """The anchors of `rotated_anchors` with their grid structure, for matching without the dense IoU matrix.

    Every anchor is one of A shapes at the centre of one of F x F cells, so whether its axis-aligned bounding
    box overlaps a box's along x depends only on (column, shape, box) and along y on (row, shape, box):
    `iou_pairs` finds the candidate pairs of `iou.tf_rotated_iou_pairs` from `[B, F, A, M]` tables instead of
    about 15 ops over all `[B, F * F * A, M]` pairs, with the same formulas on the same values, so the pairs
    and their IoU are the same, in the same order.

    Args: as `rotated_anchors`.
    """

    def __init__(self, feature_size, image_size, sizes, ratios, angles_deg):
        self.feature_size = int(feature_size)
        self.anchors_np = rotated_anchors(feature_size, image_size, sizes, ratios, angles_deg)
        self.num_shapes = len(sizes) * len(ratios) * len(angles_deg)
        self.anchors = tf.constant(self.anchors_np)
        # Cell centres along x (columns) and y (rows), and the A shapes, as they appear in the anchors.
        a = self.anchors_np.reshape(self.feature_size, self.feature_size, self.num_shapes, 6)
        self._centres_x = tf.constant(a[0, :, 0, 0])
        self._centres_y = tf.constant(a[:, 0, 0, 1])
        self._shapes = tf.constant(a[0, 0])

    @property
    def num_anchors(self):
        return self.anchors_np.shape[0]

    def iou_pairs(self, boxes, min_iou=0.0):
        """`iou.tf_rotated_iou_pairs(anchors broadcast to [B, N, 6], boxes [B, M, 6], min_iou)`."""
        boxes = tf.stop_gradient(tf.convert_to_tensor(boxes, tf.float32))
        f, a = self.feature_size, self.num_shapes
        shapes = self._shapes
        sx, sy = iou_lib.half_extents(shapes)  # [A]
        bx, by = iou_lib.half_extents(boxes)  # [B, M]
        area_s, area_b = shapes[:, 2] * shapes[:, 3], boxes[..., 2] * boxes[..., 3]
        # [B, F, A, M] tables: columns (x) and rows (y) of the grid, per shape and box.
        overlap_x = iou_lib.overlap_1d(
            self._centres_x[None, :, None, None], sx[None, None, :, None], boxes[:, None, None, :, 0], bx[:, None, None]
        )
        overlap_y = iou_lib.overlap_1d(
            self._centres_y[None, :, None, None], sy[None, None, :, None], boxes[:, None, None, :, 1], by[:, None, None]
        )
        area_ok = iou_lib.aabb_area_test(area_s[None, :, None], area_b[:, None, :], min_iou)  # [B, A, M]
        x_ok = (overlap_x > 0) & area_ok[:, None]
        # (batch, row, column, shape, box): row-major, the order of the anchors and of the dense matrix.
        where = tf.where((overlap_y > 0)[:, :, None] & x_ok[:, None])
        batch, row, col, shape, box = tf.unstack(where, axis=1)
        if min_iou > 0:
            ox = tf.gather_nd(overlap_x, tf.stack([batch, col, shape, box], 1))
            oy = tf.gather_nd(overlap_y, tf.stack([batch, row, shape, box], 1))
            area1 = tf.gather(area_s, shape)
            area2 = tf.gather_nd(area_b, tf.stack([batch, box], 1))
            keep = tf.where(iou_lib.aabb_bound_test(ox, oy, area1, area2, min_iou))[:, 0]
            batch, row, col, shape, box = (tf.gather(t, keep) for t in (batch, row, col, shape, box))
        anchor = (row * f + col) * a + shape
        p = tf.gather(self.anchors, anchor)
        q = tf.gather_nd(boxes, tf.stack([batch, box], 1))
        return iou_lib.iou_of_candidates(p, q, tf.stack([batch, anchor, box], 1), min_iou)


def match(candidates, gt_boxes, gt_valid, gt_dontcare, pos_threshold, neg_threshold, allow_best=True):
    """Label candidate boxes (anchors or proposals) against ground truth.

    Args:
      candidates: `[B, N, 6]` (or `[N, 6]`, shared by the batch) boxes, or an `AnchorGrid` (its anchors,
        matched without the dense IoU matrix: the same result).
      gt_boxes: `[B, M, 6]` ground truth (padded).
      gt_valid: `[B, M]` 1 for real boxes.
      gt_dontcare: `[B, M]` 1 for don't-care boxes (`###`).
      pos_threshold: IoU at or above which a candidate is positive.
      neg_threshold: IoU below which a candidate is negative; between the two it is ignored.
      allow_best: also make each cared-for box's best candidate positive (when its IoU > 0.1).

    Returns:
      `(labels [B, N] int32 in {1 positive, 0 negative, -1 ignored}, matched [B, N] int32 gt index,
      max_iou [B, N])`. Candidates overlapping a don't-care box at `neg_threshold` or more are ignored.
      `matched` is the first cared-for box of highest IoU (the first cared-for box when all are 0, 0 when
      there is none), `max_iou` that IoU (-1 without cared-for boxes).

    Only the pairs that can reach IoU 0.1 (`iou.tf_rotated_iou_pairs`) are intersected and reduced (segment
    max / min over candidates and boxes): every other pair reads IoU 0, as in the dense
    `tf_rotated_iou_matrix(..., min_iou=0.1)`, and the reductions are those of the dense `[B, N, M]` matrix
    (max; argmax taking the first box of a tie), so labels, matches and IoUs are the same.
    """
    gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
    if isinstance(candidates, AnchorGrid):
        b, n = tf.shape(gt_boxes)[0], candidates.num_anchors
        indices, iou = candidates.iou_pairs(gt_boxes, min_iou=0.1)
    else:
        candidates = tf.convert_to_tensor(candidates, tf.float32)
        if len(candidates.shape) == 2:
            candidates = tf.broadcast_to(candidates[None], [tf.shape(gt_boxes)[0], tf.shape(candidates)[0], 6])
        b, n = tf.shape(candidates)[0], tf.shape(candidates)[1]
        indices, iou = iou_lib.tf_rotated_iou_pairs(candidates, gt_boxes, min_iou=0.1)
    m = tf.shape(gt_boxes)[1]
    care = tf.cast(gt_valid, tf.bool) & ~tf.cast(gt_dontcare, tf.bool)
    dontcare = tf.cast(gt_valid, tf.bool) & tf.cast(gt_dontcare, tf.bool)
    indices = tf.cast(indices, tf.int32)
    pair_b, pair_n, pair_m = indices[:, 0], indices[:, 1], indices[:, 2]
    segment = pair_b * n + pair_n  # the candidate of each pair, in [0, B * N)
    gt_of_pair = tf.stack([pair_b, pair_m], 1)
    pair_care = tf.gather_nd(care, gt_of_pair)

    def per_candidate(reduce, values):
        return tf.reshape(reduce(values, segment, b * n), [b, n])

    # Dense: care_iou = where(care, iou, -1); max and first argmax over gt. A pair-less cared-for box reads 0.
    any_care = tf.reduce_any(care, axis=1, keepdims=True)
    care_iou = tf.where(pair_care, iou, -1.0)
    max_iou = tf.maximum(per_candidate(tf.math.unsorted_segment_max, care_iou), tf.where(any_care, 0.0, -1.0))
    at_max = pair_care & (iou == tf.gather_nd(max_iou, tf.stack([pair_b, pair_n], 1)))
    first_at_max = per_candidate(tf.math.unsorted_segment_min, tf.where(at_max, pair_m, m))
    first_care = tf.argmax(tf.cast(care, tf.int32), axis=1, output_type=tf.int32)[:, None]
    matched = tf.where(max_iou > 0, first_at_max, first_care)
    labels = tf.where(max_iou >= pos_threshold, 1, tf.where(max_iou < neg_threshold, 0, -1))
    if allow_best:
        # Dense: best_per_gt = max over candidates of care_iou (0 for a cared-for box without pairs).
        best = tf.math.unsorted_segment_max(iou, pair_b * m + pair_m, b * m)
        best_per_gt = tf.where(care, tf.maximum(tf.reshape(best, [b, m]), 0.0), -1.0)
        is_best = (care_iou >= tf.gather_nd(best_per_gt, gt_of_pair) - 1e-6) & (care_iou > 0.1) & pair_care
        best_any = per_candidate(tf.math.unsorted_segment_max, tf.cast(is_best, tf.int32)) > 0
        best_gt = per_candidate(tf.math.unsorted_segment_min, tf.where(is_best, pair_m, m))
        labels = tf.where(best_any, 1, labels)
        matched = tf.where(best_any & (max_iou < pos_threshold), best_gt, matched)
    pair_dc = tf.gather_nd(dontcare, gt_of_pair)
    dc_iou = tf.maximum(per_candidate(tf.math.unsorted_segment_max, tf.where(pair_dc, iou, 0.0)), 0.0)
    labels = tf.where((labels == 0) & (dc_iou >= neg_threshold), -1, labels)
    return labels, matched, max_iou


def sample(labels, num_samples, positive_fraction, seed=None):
    """Faster R-CNN sampling: up to `positive_fraction * num_samples` positives, negatives fill the rest.

    Args:
      labels: `[B, N]` int32 labels from `match`.
      num_samples: candidates kept per image.
      positive_fraction: largest share of positives.

    Returns:
      `(indices [B, S] int32, sampled_labels [B, S] int32, weights [B, S] float32)` with
      `S = min(num_samples, N)`; weight 0 marks padding when too few candidates are labelled.
    """
    n = labels.shape[1]
    s = min(num_samples, n)
    pos = labels == 1
    neg = labels == 0
    noise = tf.random.uniform(tf.shape(labels), 0.0, 1.0, seed=seed)
    max_pos = int(round(num_samples * positive_fraction))
    num_pos = tf.minimum(tf.reduce_sum(tf.cast(pos, tf.int32), axis=1), max_pos)
    # Positives rank first (3 + noise), then negatives (1 + noise); the first num_pos slots take positives.
    pos_rank = tf.where(pos, 3.0 + noise, 0.0)
    neg_rank = tf.where(neg, 1.0 + noise, 0.0)
    _, pos_idx = tf.math.top_k(pos_rank, k=s)
    _, neg_idx = tf.math.top_k(neg_rank, k=s)
    slot = tf.range(s)[None, :]
    take_pos = slot < num_pos[:, None]
    neg_slot = tf.maximum(slot - num_pos[:, None], 0)
    idx = tf.where(take_pos, pos_idx, tf.gather(neg_idx, neg_slot, batch_dims=1))
    chosen = tf.gather(labels, idx, batch_dims=1)
    weights = tf.cast(tf.where(take_pos, chosen == 1, chosen == 0), tf.float32)
    return idx, tf.where(weights > 0, chosen, 0), weights


def np_match_reference(candidates, gt, pos_threshold, neg_threshold):
    """NumPy/shapely reference of `match` without don't-cares or best-match promotion (for tests)."""
    iou = iou_lib.quad_iou_matrix(_quads(candidates), _quads(gt))
    max_iou = iou.max(axis=1)
    return np.where(max_iou >= pos_threshold, 1, np.where(max_iou < neg_threshold, 0, -1)), iou.argmax(1), max_iou


def _quads(b):
    from tfls.detection.boxes import six_to_quad

    return six_to_quad(b)
