"""Rotated anchor layout, matching against a shapely reference and against the dense reductions, Faster R-CNN
sampling."""

import numpy as np
import tensorflow as tf

from tfls.detection import anchors as anchor_lib
from tfls.detection import boxes as box_lib
from tfls.detection import iou as iou_lib


def test_anchor_layout_matches_head_reshape_order():
    a = anchor_lib.rotated_anchors(4, 32, [8], [2.0, 4.0], [0, 45, 90])
    assert a.shape == (4 * 4 * 6, 6)
    # Row-major cells, then shapes: anchor 6 is cell (row 0, column 1), first shape.
    np.testing.assert_allclose(a[6, :2], [1.5 / 4, 0.5 / 4])
    np.testing.assert_allclose(a[4 * 6, :2], [0.5 / 4, 1.5 / 4])
    np.testing.assert_allclose(a[0, 2] * a[0, 3] * 32 * 32, 64, rtol=1e-5)
    np.testing.assert_allclose(a[0, 2] / a[0, 3], 2.0, rtol=1e-5)
    np.testing.assert_allclose(box_lib.six_to_angle_box(a[:6])[:, 4], np.deg2rad([0, 45, 90, 0, 45, 90]), atol=1e-6)


def test_match_agrees_with_shapely_reference():
    rng = np.random.default_rng(0)
    anchors = anchor_lib.rotated_anchors(8, 64, [16, 24], [2.0, 4.0], [-45, 0, 45])
    gt = box_lib.angle_box_to_six(
        np.stack(
            [
                rng.uniform(0.2, 0.8, 4),
                rng.uniform(0.2, 0.8, 4),
                rng.uniform(0.3, 0.5, 4),
                rng.uniform(0.1, 0.2, 4),
                rng.uniform(-0.8, 0.8, 4),
            ],
            1,
        )
    ).astype(np.float32)
    labels, matched, max_iou = anchor_lib.match(
        anchors, gt[None], np.ones((1, 4)), np.zeros((1, 4)), 0.5, 0.3, allow_best=False
    )
    ref_labels, ref_matched, ref_iou = anchor_lib.np_match_reference(anchors, gt, 0.5, 0.3)
    clear = (np.abs(ref_iou - 0.5) > 2e-3) & (np.abs(ref_iou - 0.3) > 2e-3)
    np.testing.assert_array_equal(labels.numpy()[0][clear], ref_labels[clear])
    pos = ref_labels == 1
    np.testing.assert_array_equal(matched.numpy()[0][pos & clear], ref_matched[pos & clear])
    assert pos.sum() > 0


def test_match_best_anchor_promotion_dontcare_and_padding():
    anchors = np.array(
        [[0.5, 0.5, 0.2, 0.1, 1, 0], [0.5, 0.5, 0.3, 0.1, 1, 0], [0.2, 0.2, 0.1, 0.05, 1, 0]], np.float32
    )
    gt = np.array([[[0.5, 0.5, 0.6, 0.1, 1, 0], [0.2, 0.2, 0.1, 0.05, 1, 0], [0, 0, 0, 0, 1, 0]]], np.float32)
    labels, matched, _ = anchor_lib.match(anchors, gt, [[1, 1, 0]], [[0, 1, 0]], 0.7, 0.3)
    # Anchor 1 (IoU 0.5 with gt 0) is gt 0's best: promoted; anchor 0 (IoU 1/3) ignored; anchor 2 sits on a
    # don't-care box: ignored rather than negative; the padding box matches nothing.
    np.testing.assert_array_equal(labels.numpy()[0], [-1, 1, -1])
    assert matched.numpy()[0, 1] == 0


def test_sample_respects_quota_and_labels():
    labels = np.array([[1] * 10 + [0] * 100 + [-1] * 20, [1] * 2 + [0] * 3 + [-1] * 125], np.int32)
    idx, sampled, weights = anchor_lib.sample(labels, 16, 0.25)
    idx, sampled, weights = idx.numpy(), sampled.numpy(), weights.numpy()
    assert (sampled[0] == 1).sum() == 4 and weights[0].sum() == 16
    assert (sampled[1] == 1).sum() == 2 and weights[1].sum() == 5  # too few labelled: rest is padding
    for b in range(2):
        chosen = labels[b][idx[b]][weights[b] > 0]
        assert np.all(chosen >= 0) and len(set(idx[b][weights[b] > 0])) == weights[b].sum()


def _dense_match_reference(iou, valid, dontcare, pos_threshold, neg_threshold, allow_best):
    """The dense reductions of `match` over a full `[B, N, M]` IoU matrix, in NumPy (float32 like the graph)."""
    care = (valid > 0) & (dontcare == 0)
    dc = (valid > 0) & (dontcare > 0)
    care_iou = np.where(care[:, None, :], iou, np.float32(-1.0)).astype(np.float32)
    max_iou = care_iou.max(2)
    matched = care_iou.argmax(2)
    labels = np.where(max_iou >= pos_threshold, 1, np.where(max_iou < neg_threshold, 0, -1))
    if allow_best:
        best = care_iou.max(1, keepdims=True)
        is_best = (care_iou >= best - np.float32(1e-6)) & (care_iou > np.float32(0.1)) & care[:, None, :]
        best_any = is_best.any(2)
        labels = np.where(best_any, 1, labels)
        matched = np.where(best_any & (max_iou < pos_threshold), is_best.argmax(2), matched)
    dc_iou = np.where(dc[:, None, :], iou, np.float32(0.0)).max(2)
    labels = np.where((labels == 0) & (dc_iou >= neg_threshold), -1, labels)
    return labels, matched, max_iou


def _ground_truth_cases(anchors, seed):
    """Three images of 12 padded boxes: words of many sizes and angles, squares, exact anchors, duplicates
    (ties), boxes over the border, don't-cares, and an image whose boxes are all don't-care or padding."""
    rng = np.random.default_rng(seed)
    m = 12
    boxes = np.zeros((3, m, 6), np.float32)
    boxes[..., 4] = 1.0
    valid = np.zeros((3, m), np.float32)
    dontcare = np.zeros((3, m), np.float32)
    for b in range(3):
        k = 10 - 3 * b
        w = np.exp(rng.uniform(np.log(0.03), np.log(0.8), k))
        h = w / rng.uniform(1.0, 8.0, k)
        t = np.where(rng.random(k) < 0.5, rng.normal(0, 0.2, k), rng.uniform(-np.pi, np.pi, k))
        xy = rng.uniform(-0.1, 1.1, (k, 2))
        boxes[b, :k] = box_lib.angle_box_to_six(np.concatenate([xy, w[:, None], h[:, None], t[:, None]], 1))
        valid[b, :k] = 1
        dontcare[b, :k] = rng.random(k) < 0.25
    boxes[0, 1] = anchors[rng.integers(len(anchors))]  # IoU 1 with one anchor
    boxes[0, 2] = boxes[0, 1]  # a duplicate: ties between boxes
    boxes[0, 3] = [0.5, 0.5, 0.2, 0.2, 1.0, 0.0]  # a square on cell corners: ties between anchors
    dontcare[0, 1:4] = 0
    boxes[1, 5] = [0.3, 0.4, 0.0, 0.1, 1.0, 0.0]  # zero width, valid
    dontcare[2] = valid[2]  # no cared-for box: max IoU -1, matched 0
    return boxes, valid, dontcare


def test_grid_iou_pairs_equal_the_dense_filter():
    grid = anchor_lib.AnchorGrid(16, 128, [16.0, 40.0], [2.5, 6.0], [-45.0, 0.0, 45.0, 90.0])
    layout = anchor_lib.rotated_anchors(16, 128, [16, 40], [2.5, 6], [-45, 0, 45, 90])
    np.testing.assert_array_equal(grid.anchors_np, layout)
    for seed in range(3):
        boxes, _, _ = _ground_truth_cases(grid.anchors_np, seed)
        broadcast = tf.broadcast_to(grid.anchors[None], [3, grid.num_anchors, 6])
        for min_iou in (0.0, 0.1, 0.5):
            idx, val = grid.iou_pairs(boxes, min_iou)
            ref_idx, ref_val = iou_lib.tf_rotated_iou_pairs(broadcast, boxes, min_iou)
            np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())
            np.testing.assert_array_equal(val.numpy(), ref_val.numpy())
            assert len(val) > 0


def test_sparse_match_equals_dense_reductions():
    grid = anchor_lib.AnchorGrid(16, 128, [16.0, 40.0], [2.5, 6.0], [-45.0, 0.0, 45.0, 90.0])
    for seed in range(4):
        boxes, valid, dontcare = _ground_truth_cases(grid.anchors_np, seed)
        rng = np.random.default_rng(seed)
        # Proposals: jittered ground truth and random boxes, per image (the RoI matching case).
        proposals = np.concatenate([boxes + rng.normal(0, 0.01, boxes.shape), boxes[:, ::-1] * 0.9], 1)
        proposals = proposals.astype(np.float32)
        for candidates, dense in (
            (grid, tf.broadcast_to(grid.anchors[None], [3, grid.num_anchors, 6])),
            (grid.anchors_np, tf.broadcast_to(grid.anchors[None], [3, grid.num_anchors, 6])),
            (proposals, proposals),
        ):
            iou = iou_lib.tf_rotated_iou_matrix(dense, boxes, min_iou=0.1).numpy()
            for allow_best, pos, neg in ((True, 0.5, 0.3), (False, 0.5, 0.5), (True, 0.7, 0.1)):
                labels, matched, max_iou = anchor_lib.match(candidates, boxes, valid, dontcare, pos, neg, allow_best)
                ref = _dense_match_reference(iou, valid, dontcare, pos, neg, allow_best)
                np.testing.assert_array_equal(labels.numpy(), ref[0])
                np.testing.assert_array_equal(matched.numpy(), ref[1])
                np.testing.assert_array_equal(max_iou.numpy(), ref[2])
        assert (labels.numpy()[2] <= 0).all()
        assert (max_iou.numpy()[2] == -1).all()


def test_match_with_no_ground_truth_at_all():
    grid = anchor_lib.AnchorGrid(4, 32, [8.0], [2.0], [0.0, 90.0])
    boxes = np.zeros((2, 3, 6), np.float32)
    labels, matched, max_iou = anchor_lib.match(grid, boxes, np.zeros((2, 3)), np.zeros((2, 3)), 0.5, 0.3)
    assert (labels.numpy() == 0).all() and (matched.numpy() == 0).all() and (max_iou.numpy() == -1).all()
