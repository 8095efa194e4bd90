"""Box conversions, the angle convention, canonical angles and regression encoding round trips."""

import numpy as np
import pytest
import tensorflow as tf

from tfls.detection import boxes as box_lib
from tfls.detection import iou as iou_lib


def test_axis_aligned_quad_is_clockwise_on_screen_from_top_left():
    quad = box_lib.angle_box_to_quad([10.0, 20.0, 8.0, 4.0, 0.0])
    np.testing.assert_allclose(quad, [[6, 18], [14, 18], [14, 22], [6, 22]])
    # Shoelace in image coordinates (y down): positive signed area = clockwise as seen on screen.
    x, y = quad[:, 0], quad[:, 1]
    assert 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0


def test_positive_angle_turns_clockwise_on_screen():
    # Width axis at +90 degrees points down the screen (+y): the top-right corner moves below the centre.
    quad = box_lib.angle_box_to_quad([0.0, 0.0, 10.0, 2.0, np.pi / 2])
    np.testing.assert_allclose(quad[1], [1.0, 5.0], atol=1e-12)
    quad = box_lib.angle_box_to_quad([0.0, 0.0, 10.0, 2.0, np.deg2rad(30)])
    assert quad[1, 1] > quad[0, 1]  # the top edge descends to the right


def test_angle_sign_flip_changes_iou():
    box = np.array([0.5, 0.5, 0.6, 0.1, np.deg2rad(30)])
    flipped = box * [1, 1, 1, 1, -1]
    iou_same = iou_lib.quad_iou(box_lib.angle_box_to_quad(box), box_lib.angle_box_to_quad(box))
    iou_flip = iou_lib.quad_iou(box_lib.angle_box_to_quad(box), box_lib.angle_box_to_quad(flipped))
    assert iou_same == pytest.approx(1.0)
    assert iou_flip < 0.3


@pytest.mark.parametrize("angle_deg", [-80, -30, 0, 15, 45, 89])
def test_quad_six_angle_round_trips(angle_deg):
    box = np.array([0.4, 0.6, 0.3, 0.05, np.deg2rad(angle_deg)])
    six = box_lib.angle_box_to_six(box)
    np.testing.assert_allclose(box_lib.quad_to_six(box_lib.six_to_quad(six)), six, atol=1e-12)
    np.testing.assert_allclose(box_lib.six_to_angle_box(six), box, atol=1e-12)
    np.testing.assert_allclose(box_lib.tf_quad_to_six(box_lib.tf_six_to_quad(six[None])).numpy()[0], six, atol=1e-6)
    np.testing.assert_allclose(box_lib.quad_to_six(box_lib.six_to_quad(six).reshape(8)), six, atol=1e-12)


def test_general_quadrilateral_gets_bounding_rectangle_at_its_angle():
    quad = np.array([[0, 0], [10, 0], [11, 4], [-1, 4]], float)  # a trapezoid, top edge horizontal
    cx, cy, w, h, c, s = box_lib.quad_to_six(quad)
    np.testing.assert_allclose([cx, cy, w, h, c, s], [5, 2, 12, 4, 1, 0], atol=1e-12)


def test_canonical_keeps_geometry_and_folds_angle():
    rng = np.random.default_rng(0)
    angle = rng.uniform(-np.pi, np.pi, 50)
    six = box_lib.angle_box_to_six(
        np.stack([rng.random(50), rng.random(50), rng.uniform(0.1, 0.3, 50), rng.uniform(0.02, 0.1, 50), angle], 1)
    )
    canon = box_lib.canonical(six).numpy()
    assert np.all(canon[:, 4] >= 0)
    np.testing.assert_allclose(iou_lib.box_iou(six, canon), 1.0, atol=1e-5)
    np.testing.assert_allclose(box_lib.np_canonical(six), canon, atol=1e-6)


def test_encode_decode_round_trip_and_identity():
    rng = np.random.default_rng(1)
    n = 64
    anchors = box_lib.angle_box_to_six(
        np.stack(
            [
                rng.random(n),
                rng.random(n),
                rng.uniform(0.1, 0.4, n),
                rng.uniform(0.03, 0.1, n),
                rng.uniform(-1.5, 1.5, n),
            ],
            1,
        )
    )
    boxes = box_lib.angle_box_to_six(
        np.stack(
            [
                rng.random(n),
                rng.random(n),
                rng.uniform(0.1, 0.4, n),
                rng.uniform(0.03, 0.1, n),
                rng.uniform(-1.5, 1.5, n),
            ],
            1,
        )
    )
    deltas = box_lib.encode(boxes, anchors)
    np.testing.assert_allclose(box_lib.decode(deltas, anchors).numpy(), boxes, atol=2e-5)
    np.testing.assert_allclose(box_lib.encode(anchors, anchors).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(box_lib.decode(tf.zeros((n, 6)), anchors).numpy(), anchors, atol=1e-6)
