"""Box conversions, the angle convention, the canonical form and regression encoding round trips."""

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


def _forms(boxes):
    """The four 6-parameter forms of each `(cx, cy, w, h, angle)` rectangle: t, t + pi, and w, h swapped at
    t +- pi/2."""
    out = []
    for turn, swap in ((0.0, False), (np.pi, False), (np.pi / 2, True), (-np.pi / 2, True)):
        b = np.array(boxes, np.float64)
        b[:, 4] += turn
        if swap:
            b[:, [2, 3]] = b[:, [3, 2]]
        out.append(box_lib.angle_box_to_six(b))
    return out


def test_every_form_of_a_rectangle_has_one_canonical_vector_and_the_same_iou():
    rng = np.random.default_rng(3)
    n = 400
    boxes = np.stack(
        [rng.random(n), rng.random(n), rng.uniform(0.02, 0.3, n), rng.uniform(0.01, 0.3, n), rng.uniform(-4, 4, n)], 1
    )
    boxes[:20, 3] = boxes[:20, 2]  # squares: the same at t and t + pi/2 too
    forms = _forms(boxes)
    canonical = [box_lib.np_canonical(f) for f in forms]
    in_graph = [box_lib.canonical(f.astype(np.float32)).numpy() for f in forms]
    for k in range(4):
        np.testing.assert_allclose(canonical[k], canonical[0], atol=1e-9)
        np.testing.assert_allclose(in_graph[k], canonical[0], atol=1e-6)
        np.testing.assert_allclose(iou_lib.box_iou(forms[k], canonical[k]), 1.0, atol=1e-9)
    c = canonical[0]
    angle = np.arctan2(c[:, 5], c[:, 4])
    assert np.all(c[:, 2] >= c[:, 3])
    assert np.all((angle >= -np.pi / 2 - 1e-12) & (angle < np.pi / 2))
    assert np.all(np.abs(angle[:20]) <= np.pi / 4 + 1e-9)  # a square's angle in [-45, 45)
    # IoU between different boxes does not change either
    other = box_lib.angle_box_to_six(boxes[::-1])
    np.testing.assert_allclose(iou_lib.box_iou(c, box_lib.np_canonical(other)), iou_lib.box_iou(forms[2], other))


def test_vertical_rectangle_on_the_fold_is_written_at_minus_90_degrees():
    # (cos, sin) exactly (0, +-1), and the same rectangle with w and h swapped at angle 0 or 180
    forms = np.array(
        [
            [0.5, 0.5, 0.3, 0.1, 0.0, 1.0],
            [0.5, 0.5, 0.3, 0.1, 0.0, -1.0],
            [0.5, 0.5, 0.1, 0.3, 1.0, 0.0],
            [0.5, 0.5, 0.1, 0.3, -1.0, 0.0],
        ]
    )
    for canon in (box_lib.np_canonical(forms), box_lib.canonical(forms).numpy()):
        np.testing.assert_allclose(canon, np.tile([0.5, 0.5, 0.3, 0.1, 0.0, -1.0], (4, 1)), atol=1e-7)


def test_canonical_is_a_signed_permutation_for_gradients():
    # (w, h, t) = (0.1, 0.3, 20 deg): h > w, so w and h swap and (c, s) -> (-s, c), then the angle folds.
    t = np.deg2rad(20.0)
    box = tf.constant([[0.5, 0.4, 0.1, 0.3, np.cos(t), np.sin(t)]], tf.float32)
    weights = tf.constant([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    with tf.GradientTape() as tape:
        tape.watch(box)
        out = box_lib.canonical(box)
        value = tf.reduce_sum(out * weights)
    grad = tape.gradient(value, box).numpy()[0]
    np.testing.assert_allclose(out.numpy()[0], [0.5, 0.4, 0.3, 0.1, np.sin(t), -np.cos(t)], atol=1e-6)
    # out = (cx, cy, h, w, s, -c): d/dw = weight of out[3], d/dh = out[2], d/dc = -out[5], d/ds = out[4]
    np.testing.assert_allclose(grad, [1.0, 2.0, 4.0, 3.0, -6.0, 5.0], atol=1e-6)


def test_encoding_takes_the_form_nearest_the_anchor():
    anchor = box_lib.angle_box_to_six(np.array([[0.5, 0.5, 0.3, 0.05, np.pi / 2]]))
    box = box_lib.angle_box_to_six(np.array([[0.5, 0.5, 0.3, 0.05, -np.deg2rad(89.0)]]))  # 1 degree away
    deltas = box_lib.encode(box, anchor).numpy()[0]
    assert abs(deltas[4]) < 1e-3 and abs(deltas[5]) < 0.02  # (cos d - 1, sin d) of 1 degree, not 179
    decoded = box_lib.decode(deltas[None], anchor).numpy()
    np.testing.assert_allclose(iou_lib.box_iou(decoded, box), 1.0, atol=1e-5)


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
    decoded = box_lib.decode(deltas, anchors).numpy()
    # the same rectangle, in the form nearest each anchor (the box or the box turned by pi)
    np.testing.assert_allclose(box_lib.np_canonical(decoded), box_lib.np_canonical(boxes), atol=2e-5)
    np.testing.assert_allclose(box_lib.encode(anchors, anchors).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(box_lib.decode(tf.zeros((n, 6)), anchors).numpy(), anchors, atol=1e-6)
