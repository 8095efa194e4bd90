"""The in-graph rotated IoU and 1 - IoU metric against shapely: random pairs and degenerate cases, without NaN."""

import numpy as np
import pytest
import tensorflow as tf

from tfls.detection import boxes as box_lib
from tfls.detection import iou as iou_lib
from tfls.detection import lsiou


def _random_pairs(n, seed):
    rng = np.random.default_rng(seed)
    a = np.stack(
        [rng.random(n), rng.random(n), rng.uniform(0.05, 0.5, n), rng.uniform(0.02, 0.3, n), rng.uniform(-3, 3, n)], 1
    )
    b = a.copy()
    b[:, :2] += rng.normal(0, 0.05, (n, 2))
    b[:, 4] += rng.normal(0, 0.5, n)
    b[:, 2:4] *= rng.uniform(0.6, 1.5, (n, 2))
    return box_lib.angle_box_to_six(a), box_lib.angle_box_to_six(b)


def test_tf_iou_matches_shapely_on_random_pairs():
    a, b = _random_pairs(2000, 0)
    exact = iou_lib.box_iou(a, b)
    ours = iou_lib.tf_rotated_iou(a.astype(np.float32), b.astype(np.float32)).numpy()
    assert 0.2 < exact.mean() < 0.6 and (exact == 0).mean() < 0.5  # the sample really overlaps
    np.testing.assert_allclose(ours, exact, atol=1e-4)


def test_shapely_iou_hand_computed():
    square = box_lib.angle_box_to_quad([0, 0, 2, 2, 0])
    shifted = box_lib.angle_box_to_quad([1, 0, 2, 2, 0])
    assert iou_lib.quad_iou(square, shifted) == pytest.approx(2 / 6)
    diamond = box_lib.angle_box_to_quad([0, 0, 2, 2, np.pi / 4])
    # Octagon intersection: square of side 2 minus 4 corner triangles of legs (2 - sqrt 2).
    inter = 4 - 2 * (2 - np.sqrt(2)) ** 2
    assert iou_lib.quad_iou(square, diamond) == pytest.approx(inter / (8 - inter))


SQ = [0.5, 0.5, 0.2, 0.1, 1.0, 0.0]
DEGENERATE = {
    "identical": (SQ, SQ),
    "rotated_180": (SQ, [0.5, 0.5, 0.2, 0.1, -1.0, 0.0]),
    "swapped_90": (SQ, [0.5, 0.5, 0.1, 0.2, 0.0, 1.0]),
    "disjoint": (SQ, [0.9, 0.9, 0.1, 0.05, 1.0, 0.0]),
    "nested": (SQ, [0.5, 0.5, 0.1, 0.05, 0.8, 0.6]),
    "touching_edge": (SQ, [0.7, 0.5, 0.2, 0.1, 1.0, 0.0]),
    "touching_corner": (SQ, [0.7, 0.6, 0.2, 0.1, 1.0, 0.0]),
    "zero_width": (SQ, [0.5, 0.5, 0.0, 0.1, 1.0, 0.0]),
    "both_zero": ([0.5, 0.5, 0.0, 0.0, 1.0, 0.0], [0.5, 0.5, 0.0, 0.0, 1.0, 0.0]),
    "zero_angle_vector": (SQ, [0.5, 0.5, 0.2, 0.1, 0.0, 0.0]),
    "near_identical_large": (
        [500.0, 400.0, 900.0, 300.0, np.cos(0.3), np.sin(0.3)],
        [500.001, 400.0, 900.0, 300.0, np.cos(0.3 + 1e-6), np.sin(0.3 + 1e-6)],
    ),
}


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_tf_iou_degenerate_cases(name):
    a, b = (np.asarray(v, np.float64)[None] for v in DEGENERATE[name])
    ours = iou_lib.tf_rotated_iou(a, b).numpy()
    assert np.all(np.isfinite(ours))
    b_ref = b.copy()
    if name == "zero_angle_vector":
        b_ref[0, 4] = 1.0  # documented: a zero (cos, sin) reads as angle 0
    exact = iou_lib.box_iou(a, b_ref)
    np.testing.assert_allclose(ours, exact, atol=1e-4)


def test_iou_matrix_matches_elementwise_and_sparse_filter_is_exact():
    a, b = _random_pairs(40, 3)
    full = iou_lib.quad_iou_matrix(box_lib.six_to_quad(a), box_lib.six_to_quad(b))
    ours = iou_lib.tf_rotated_iou_matrix(a.astype(np.float32), b.astype(np.float32)).numpy()
    np.testing.assert_allclose(ours, full, atol=2e-3)
    batched = iou_lib.tf_rotated_iou_matrix(a[None].astype(np.float32), b[None].astype(np.float32), min_iou=0.5)
    high = full > 0.5 + 2e-3
    np.testing.assert_allclose(batched.numpy()[0][high], full[high], atol=2e-3)


def test_tf_iou_inside_dataset_map_equals_eager():
    a, b = _random_pairs(16, 5)
    ds = tf.data.Dataset.from_tensors((a.astype(np.float32), b.astype(np.float32))).map(iou_lib.tf_rotated_iou)
    np.testing.assert_allclose(next(iter(ds)).numpy(), iou_lib.tf_rotated_iou(a, b).numpy(), atol=1e-6)


@pytest.mark.parametrize("delta", [1e-2, 1e-3, 1e-4, 1e-5, 1e-7])
@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_tf_iou_nearly_parallel_edges(delta, scale):
    a = np.array([[0.5, 0.5, 0.4, 0.1, 0.3]]) * [scale, scale, scale, scale, 1]
    b = a + [[0.0, 0.0, 0.0, 0.0, delta]]
    b[:, :2] = a[:, :2] + np.array([[0.01, 0.02]]) * scale
    a6, b6 = box_lib.angle_box_to_six(a), box_lib.angle_box_to_six(b)
    np.testing.assert_allclose(iou_lib.tf_rotated_iou(a6, b6).numpy(), iou_lib.box_iou(a6, b6), atol=1e-3)


def _one_minus_iou_three_ways(pred, target):
    """`tf_one_minus_iou` eagerly, compiled by XLA and inside `Dataset.map`: `[3, N]` (XLA fuses float32
    arithmetic differently: up to ~1e-4 apart on small boxes)."""
    pred, target = np.asarray(pred, np.float32), np.asarray(target, np.float32)
    eager = iou_lib.tf_one_minus_iou(pred, target).numpy()
    jit = tf.function(iou_lib.tf_one_minus_iou, jit_compile=True)(pred, target).numpy()
    mapped = next(iter(tf.data.Dataset.from_tensors((pred, target)).map(iou_lib.tf_one_minus_iou))).numpy()
    return np.stack([eager, jit, mapped])


def test_tf_one_minus_iou_equals_the_lsiou_metric_on_generator_pairs():
    rng = np.random.default_rng(4)
    pred, target = lsiou.RandomBoxPairs().generate(3000, rng)
    # what a regression head can output: negative sides and a (cos, sin) that is not unit
    pred[:500, 2] *= -1
    pred[250:750, 3] *= -1
    pred[:, 4:] *= rng.uniform(0.5, 2.0, (3000, 1)).astype(np.float32)
    exact = lsiou.one_minus_iou(pred, target)
    assert 0.2 < exact.mean() < 0.8 and (exact == 1).mean() < 0.5 and (exact < 0.1).mean() > 0.05
    for ours in _one_minus_iou_three_ways(pred, target):
        # float32 against shapely's float64: near-identical boxes lose most (a few 1e-4 at IoU ~ 0.999)
        np.testing.assert_allclose(ours, exact, atol=5e-4)
        assert np.mean(np.abs(ours - exact)) < 2e-5


def test_tf_one_minus_iou_edge_cases():
    cases = dict(DEGENERATE)
    del cases["zero_angle_vector"]  # the NumPy metric has no angle for it (the TF one reads angle 0)
    cases["negative_sides"] = (SQ, [0.5, 0.5, -0.2, -0.1, 1.0, 0.0])
    cases["contained_rotated"] = ([0.5, 0.5, 0.4, 0.4, 1.0, 0.0], [0.5, 0.5, 0.1, 0.05, 0.6, 0.8])
    pred, target = (np.asarray(v, np.float64) for v in zip(*cases.values()))
    ours = _one_minus_iou_three_ways(pred, target)
    assert np.all(np.isfinite(ours))
    exact = dict(zip(cases, lsiou.one_minus_iou(pred, target)))
    np.testing.assert_allclose(ours, np.broadcast_to(list(exact.values()), ours.shape), atol=1e-4)
    assert exact["identical"] == exact["negative_sides"] == 0 and exact["disjoint"] == 1
    assert exact["touching_edge"] == exact["touching_corner"] == 1


@pytest.mark.parametrize("min_iou", [0.0, 0.1, 0.5])
def test_iou_pairs_are_the_elementwise_iou_of_every_pair_that_can_reach_min_iou(min_iou):
    rng = np.random.default_rng(7)
    a, b = _random_pairs(60, 8)
    boxes1 = np.stack([a, a[::-1]]).astype(np.float32)
    boxes2 = np.stack([b[:25], rng.permutation(b)[:25]]).astype(np.float32)
    boxes2[0, 3] = boxes1[0, 5]  # identical pair
    boxes2[1, 4, 2] = 0.0  # zero width
    idx, val = iou_lib.tf_rotated_iou_pairs(boxes1, boxes2, min_iou)
    idx, val = idx.numpy(), val.numpy()
    dense = iou_lib.tf_rotated_iou(boxes1[:, :, None], boxes2[:, None, :]).numpy()
    np.testing.assert_array_equal(val, dense[tuple(idx.T)])
    assert np.all(np.diff(np.ravel_multi_index(tuple(idx.T), dense.shape)) > 0)  # row-major, no repeats
    listed = np.zeros(dense.shape, bool)
    listed[tuple(idx.T)] = True
    assert np.all(dense[~listed] <= max(min_iou, 0.0) + 1e-5)
    assert listed.sum() > 10 and val.max() == pytest.approx(1.0)


def test_differentiable_one_minus_iou_has_the_finite_difference_gradient_of_shapely():
    """`differentiable=True`: the gradient of 1 - IoU with respect to the predicted box's six parameters equals
    central differences of the shapely IoU (an independent implementation) on overlapping pairs; the default
    keeps no gradient."""
    a, b = _random_pairs(200, 3)
    exact = iou_lib.box_iou(a, b)
    keep = (exact > 0.2) & (exact < 0.95)  # away from the kinks of no overlap and of identical boxes
    a, b = a[keep][:60], b[keep][:60]
    pred = tf.Variable(a.astype(np.float64).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(iou_lib.tf_one_minus_iou(pred, b.astype(np.float32), differentiable=True))
    grad = tape.gradient(loss, pred).numpy()
    h = 1e-5
    fd = np.zeros_like(a)
    for k in range(6):
        up, down = a.copy(), a.copy()
        up[:, k] += h
        down[:, k] -= h
        fd[:, k] = -(iou_lib.box_iou(up, b) - iou_lib.box_iou(down, b)) / (2 * h)
    # float32 in the graph against float64 differences: compare the per-pair gradient vectors
    err = np.linalg.norm(grad - fd, axis=1) / np.maximum(np.linalg.norm(fd, axis=1), 1e-3)
    assert np.median(err) < 0.01 and np.mean(err < 0.05) > 0.9
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(iou_lib.tf_one_minus_iou(pred, b.astype(np.float32)))
    assert tape.gradient(loss, pred) is None
