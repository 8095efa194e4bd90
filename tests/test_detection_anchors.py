"""Rotated anchor layout, matching against a shapely reference, and Faster R-CNN sampling."""

import numpy as np

from tfls.detection import anchors as anchor_lib
from tfls.detection import boxes as box_lib


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
