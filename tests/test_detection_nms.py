"""Rotated NMS against a NumPy/shapely greedy reference."""

import numpy as np

from tfls.detection import boxes as box_lib
from tfls.detection import iou as iou_lib
from tfls.detection import nms


def _reference(boxes, scores, threshold, k):
    order = np.argsort(-scores, kind="stable")
    quads = box_lib.six_to_quad(boxes)
    kept = []
    for i in order:
        if all(iou_lib.quad_iou(quads[i], quads[j]) <= threshold for j in kept):
            kept.append(i)
    return kept[:k]


def _clustered(rng, n):
    centres = rng.uniform(0.3, 0.7, (4, 2))[rng.integers(0, 4, n)] + rng.normal(0, 0.02, (n, 2))
    angle = rng.uniform(-0.5, 0.5, n)
    return box_lib.angle_box_to_six(
        np.concatenate([centres, rng.uniform(0.1, 0.2, (n, 1)), rng.uniform(0.03, 0.06, (n, 1)), angle[:, None]], 1)
    )


def test_rotated_nms_matches_greedy_reference():
    rng = np.random.default_rng(0)
    boxes = np.stack([_clustered(rng, 40), _clustered(rng, 40)]).astype(np.float32)
    scores = rng.random((2, 40)).astype(np.float32)
    for threshold in (0.3, 0.5):
        out_boxes, out_scores, idx, valid, num = nms.rotated_nms(boxes, scores, 10, threshold)
        for b in range(2):
            ref = _reference(boxes[b].astype(np.float64), scores[b], threshold, 10)
            assert int(num[b]) == len(ref)
            np.testing.assert_array_equal(idx.numpy()[b, : len(ref)], ref)
            np.testing.assert_allclose(out_boxes.numpy()[b, : len(ref)], boxes[b, ref])
            assert not valid.numpy()[b, len(ref) :].any()
            assert np.all(out_scores.numpy()[b, len(ref) :] == 0)


def test_rotated_nms_score_threshold_pre_nms_and_padding():
    boxes = np.array(
        [[[0.5, 0.5, 0.2, 0.1, 1, 0], [0.5, 0.5, 0.2, 0.1, 1, 0], [0.1, 0.1, 0.1, 0.05, 1, 0]]], np.float32
    )
    scores = np.array([[0.9, 0.8, 0.01]], np.float32)
    _, out_scores, idx, valid, num = nms.rotated_nms(boxes, scores, 5, 0.5, score_threshold=0.05)
    assert int(num[0]) == 1 and idx.numpy()[0, 0] == 0 and out_scores.shape == (1, 5)
    _, _, idx, _, num = nms.rotated_nms(boxes, scores, 5, 0.5, pre_nms=1)
    assert int(num[0]) == 1
