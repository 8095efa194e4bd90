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


def match(candidates, gt_boxes, gt_valid, gt_dontcare, pos_threshold, neg_threshold, allow_best=True):
    """Label candidate boxes (anchors or proposals) against ground truth.

    Args:
      candidates: `[B, N, 6]` (or `[N, 6]`, shared by the batch) boxes.
      gt_boxes: `[B, M, 6]` ground truth (padded).
      gt_valid: `[B, M]` 1 for real boxes.
      gt_dontcare: `[B, M]` 1 for don't-care boxes (`###`).
      pos_threshold: IoU at or above which a candidate is positive.
      neg_threshold: IoU below which a candidate is negative; between the two it is ignored.
      allow_best: also make each cared-for box's best candidate positive (when its IoU > 0.1).

    Returns:
      `(labels [B, N] int32 in {1 positive, 0 negative, -1 ignored}, matched [B, N] int32 gt index,
      max_iou [B, N])`. Candidates overlapping a don't-care box at `neg_threshold` or more are ignored.
    """
    candidates = tf.convert_to_tensor(candidates, tf.float32)
    if len(candidates.shape) == 2:
        candidates = tf.broadcast_to(candidates[None], [tf.shape(gt_boxes)[0], candidates.shape[0], 6])
    care = tf.cast(gt_valid, tf.bool) & ~tf.cast(gt_dontcare, tf.bool)
    dontcare = tf.cast(gt_valid, tf.bool) & tf.cast(gt_dontcare, tf.bool)
    iou = iou_lib.tf_rotated_iou_matrix(candidates, gt_boxes, min_iou=0.1)
    care_iou = tf.where(care[:, None, :], iou, -1.0)
    max_iou = tf.reduce_max(care_iou, axis=2)
    matched = tf.argmax(care_iou, axis=2, output_type=tf.int32)
    labels = tf.where(max_iou >= pos_threshold, 1, tf.where(max_iou < neg_threshold, 0, -1))
    if allow_best:
        best_per_gt = tf.reduce_max(care_iou, axis=1, keepdims=True)
        is_best = (care_iou >= best_per_gt - 1e-6) & (care_iou > 0.1) & care[:, None, :]
        best_any = tf.reduce_any(is_best, axis=2)
        best_gt = tf.argmax(tf.cast(is_best, tf.float32), axis=2, output_type=tf.int32)
        labels = tf.where(best_any, 1, labels)
        matched = tf.where(best_any & (max_iou < pos_threshold), best_gt, matched)
    dc_iou = tf.reduce_max(tf.where(dontcare[:, None, :], iou, 0.0), axis=2)
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
