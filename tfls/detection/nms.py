"""Batched rotated non-maximum suppression in TF ops (fixed output size, padded)."""

import tensorflow as tf

from tfls.detection import iou as iou_lib


def rotated_nms(boxes, scores, max_output, iou_threshold=0.5, score_threshold=float("-inf"), pre_nms=None):
    """Greedy rotated NMS over each image of a batch.

    The `pre_nms` best-scoring boxes are kept first (all when None); boxes are visited in decreasing score
    and a box is dropped when its IoU with an already kept box exceeds `iou_threshold`.

    Args:
      boxes: `[B, N, 6]` boxes.
      scores: `[B, N]` scores (higher is better).
      max_output: K, boxes returned per image.
      iou_threshold: suppression threshold (strictly greater suppresses).
      score_threshold: boxes scoring at or below it are dropped before NMS.
      pre_nms: optional int, candidates considered per image.

    Returns:
      `(boxes [B, K, 6], scores [B, K], indices [B, K] int32 into N, valid [B, K] bool, num [B] int32)`,
      sorted by score; padded entries have zero boxes, score 0 and index 0.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    scores = tf.convert_to_tensor(scores, tf.float32)
    n = boxes.shape[1] if boxes.shape[1] is not None else tf.shape(boxes)[1]
    k = n if pre_nms is None else (min(pre_nms, n) if isinstance(n, int) else tf.minimum(pre_nms, n))
    top_scores, top_idx = tf.math.top_k(scores, k=k, sorted=True)
    top_boxes = tf.gather(boxes, top_idx, batch_dims=1)
    # Pairs whose area ratio is below the threshold cannot exceed it: skipping them changes no decision.
    iou = iou_lib.tf_rotated_iou_matrix(top_boxes, top_boxes, min_iou=max(float(iou_threshold), 0.0))
    alive = top_scores > score_threshold
    num_cand = tf.shape(top_scores)[1]
    later = tf.range(num_cand)[None, :]

    def body(i, keep):
        row = (iou[:, i, :] > iou_threshold) & (later > i) & keep[:, i : i + 1]
        return i + 1, keep & ~row

    _, keep = tf.while_loop(lambda i, keep: i < num_cand, body, (tf.constant(0), alive))
    masked = tf.where(keep, top_scores, float("-inf"))
    if isinstance(k, int):
        out_k = max_output if k >= max_output else k
    else:
        out_k = max_output
        masked = tf.pad(masked, [[0, 0], [0, tf.maximum(max_output - num_cand, 0)]], constant_values=float("-inf"))
        top_idx = tf.pad(top_idx, [[0, 0], [0, tf.maximum(max_output - num_cand, 0)]])
    out_scores, order = tf.math.top_k(masked, k=out_k, sorted=True)
    valid = out_scores > float("-inf")
    idx = tf.where(valid, tf.gather(top_idx, order, batch_dims=1), 0)
    out_boxes = tf.where(valid[..., None], tf.gather(boxes, idx, batch_dims=1), 0.0)
    out_scores = tf.where(valid, out_scores, 0.0)
    if out_k < max_output:
        pad = [[0, 0], [0, max_output - out_k]]
        out_boxes = tf.pad(out_boxes, pad + [[0, 0]])
        out_scores, idx = tf.pad(out_scores, pad), tf.pad(idx, pad)
        valid = tf.pad(valid, pad)
    num = tf.reduce_sum(tf.cast(valid, tf.int32), axis=1)
    return out_boxes, out_scores, idx, valid, num
