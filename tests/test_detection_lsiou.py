"""LS-IoU: the true metric, the random box generator's IoU spread, and the box embedding (canonical boxes in,
one value per rectangle whatever its form)."""

import numpy as np
import tensorflow as tf

from tfls.detection import boxes as box_lib
from tfls.detection import lsiou


def test_one_minus_iou_values():
    a = np.array([[0.5, 0.5, 0.2, 0.1, 1, 0], [0.5, 0.5, 0.2, 0.1, 1, 0]], np.float32)
    b = np.array([[0.5, 0.5, 0.2, 0.1, -1, 0], [0.6, 0.5, 0.2, 0.1, 1, 0]], np.float32)
    np.testing.assert_allclose(lsiou.one_minus_iou(a, b), [0.0, 1 - 1 / 3], atol=1e-5)


def test_random_box_pairs_cover_iou_range():
    pred, target = lsiou.RandomBoxPairs().generate(4000, np.random.default_rng(0))
    assert pred.shape == target.shape == (4000, 6) and pred.dtype == np.float32
    iou = 1.0 - lsiou.one_minus_iou(pred, target)
    counts, _ = np.histogram(iou, bins=10, range=(0, 1))
    assert np.all(counts > 100), counts  # every IoU decile is populated
    assert (iou == 0).mean() < 0.5
    assert np.all(pred[:, 2:4] > 0) and np.allclose(np.hypot(pred[:, 4], pred[:, 5]), 1, atol=1e-5)
    again, _ = lsiou.RandomBoxPairs().generate(4000, np.random.default_rng(0))
    np.testing.assert_array_equal(pred, again)
    # both sides come out in canonical form
    np.testing.assert_allclose(box_lib.np_canonical(pred), pred, atol=1e-6)
    np.testing.assert_allclose(box_lib.np_canonical(target), target, atol=1e-6)


def test_label_boxes_follow_the_configured_statistics():
    stats = {"log_w": (np.log(0.04), 0.5), "aspect": (2.0, 4.0), "angle_deg_std": 10.0}
    boxes = lsiou.RandomBoxPairs(stats, min_size=0.001).labels(5000, np.random.default_rng(1))
    assert abs(np.median(boxes[:, 2]) - 0.04) < 0.005
    aspect = boxes[:, 2] / boxes[:, 3]
    assert np.all((aspect > 1.99) & (aspect < 4.01))
    angle = np.degrees(box_lib.six_to_angle_box(boxes)[:, 4])
    assert 8 < np.std(angle) < 12


def test_box_embedding_is_per_sample_and_round_trips_config():
    layer = lsiou.BoxEmbedding((32, 32), 8)
    boxes = tf.constant(np.random.default_rng(2).random((5, 6)), tf.float32)
    alone = layer(boxes[:1]).numpy()
    together = layer(boxes).numpy()
    np.testing.assert_allclose(together[:1], alone, atol=1e-6)
    clone = lsiou.BoxEmbedding.from_config(layer.get_config())
    assert clone.units == (32, 32) and clone.output_dim == 8 and clone.num_directions == layer.num_directions
    with tf.GradientTape() as tape:
        tape.watch(boxes)
        out = tf.reduce_sum(layer(boxes))
    assert np.all(np.isfinite(tape.gradient(out, boxes).numpy()))


def _other_forms(boxes):
    """The same rectangles written as (w, h, t + pi) and (h, w, t + pi/2)."""
    turned = boxes.copy()
    turned[:, 4:] *= -1
    swapped = boxes[:, [0, 1, 3, 2, 5, 4]].copy()
    swapped[:, 4] *= -1  # (cos(t + pi/2), sin(t + pi/2)) = (-sin t, cos t)
    return turned, swapped


def test_metric_and_surrogate_do_not_depend_on_the_form():
    pred, target = lsiou.RandomBoxPairs().generate(500, np.random.default_rng(5))
    e = lsiou.one_minus_iou(pred, target)
    layer = lsiou.BoxEmbedding((32, 32), 8)
    base = layer(pred).numpy()
    for other in _other_forms(pred):
        np.testing.assert_allclose(lsiou.one_minus_iou(other, target), e, atol=1e-6)
        np.testing.assert_allclose(layer(other).numpy(), base, atol=1e-4)
        np.testing.assert_allclose(lsiou.box_features(other).numpy(), lsiou.box_features(pred).numpy(), atol=1e-5)


def test_box_features_are_continuous_where_the_canonical_form_jumps():
    # A thin box turning through +90 degrees: its canonical (cos, sin) jumps from (0, 1) to (0, -1), its features
    # move by about the turn.
    eps = np.deg2rad(0.01)
    before = box_lib.angle_box_to_six(np.array([[0.5, 0.5, 0.3, 0.02, np.pi / 2 - eps]]))
    after = box_lib.angle_box_to_six(np.array([[0.5, 0.5, 0.3, 0.02, np.pi / 2 + eps]]))
    jump = np.abs(box_lib.np_canonical(before) - box_lib.np_canonical(after)).max()
    assert jump > 1.9
    moved = np.abs(lsiou.box_features(before).numpy() - lsiou.box_features(after).numpy()).max()
    assert moved < 5 * eps  # the doubled angle moves by 4 eps, scaled by the elongation
    # and a square's features do not depend on its angle modulo 90 degrees
    square = box_lib.angle_box_to_six(np.array([[0.5, 0.5, 0.2, 0.2, 0.3], [0.5, 0.5, 0.2, 0.2, 0.3 + np.pi / 2]]))
    feats = lsiou.box_features(square).numpy()
    np.testing.assert_allclose(feats[0], feats[1], atol=1e-6)


def test_box_features_hold_the_axis_aligned_extent():
    box = np.array([[0.5, 0.4, 0.2, 0.1, np.cos(0.3), np.sin(0.3)]])
    feats = lsiou.box_features(box, num_directions=8).numpy()[0]
    quad = box_lib.six_to_quad(box)[0]
    # direction 0 is x, direction 4 (of 8 over half a turn) is y: lows then highs
    np.testing.assert_allclose([feats[6], feats[6 + 4]], [quad[:, 0].min(), quad[:, 1].min()], atol=1e-6)
    np.testing.assert_allclose([feats[14], feats[14 + 4]], [quad[:, 0].max(), quad[:, 1].max()], atol=1e-6)


def test_box_spectrum_inner_products_approximate_the_normalised_overlap():
    # Plancherel: <s(A), s(B)> ~ |A n B| / sqrt(|A| |B|); the overlap comes from shapely's IoU
    # (I = IoU (a + b) / (1 + IoU)), independent of the spectrum's formula.
    pred, target = lsiou.RandomBoxPairs(min_size=0.01).generate(2000, np.random.default_rng(3))
    iou = 1.0 - lsiou.one_minus_iou(pred, target)
    a, b = pred[:, 2] * pred[:, 3], target[:, 2] * target[:, 3]
    expected = iou * (a + b) / (1.0 + iou) / np.sqrt(a * b)
    sp, st = lsiou.box_spectrum(pred).numpy(), lsiou.box_spectrum(target).numpy()
    assert sp.shape == (2000, 256)
    assert np.mean(np.abs(np.sum(sp * st, 1) - expected)) < 0.05
    assert 0.8 < np.median(np.sum(sp * sp, 1)) < 1.2  # every box's features have about unit norm
    # by hand: a box and its left half overlap by |half| (1 / sqrt(2) normalised); far boxes are orthogonal
    boxes = np.array(
        [
            [0.5, 0.5, 0.2, 0.05, 1, 0],
            [0.45, 0.5, 0.1, 0.05, 1, 0],
            [0.1, 0.1, 0.05, 0.02, 1, 0],
            [0.8, 0.7, 0.05, 0.02, 0.6, 0.8],
        ],
        np.float32,
    )
    s = lsiou.box_spectrum(boxes).numpy()
    assert abs(s[0] @ s[1] / np.sqrt((s[0] @ s[0]) * (s[1] @ s[1])) - 1 / np.sqrt(2)) < 0.06
    assert abs(s[2] @ s[3]) < 0.1
    # the same rectangle in its other forms has the same spectrum; gradients are finite
    for other in _other_forms(boxes):
        np.testing.assert_allclose(lsiou.box_spectrum(other).numpy(), s, atol=1e-4)
    x = tf.constant(boxes)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = tf.reduce_sum(lsiou.box_spectrum(x))
    assert np.all(np.isfinite(tape.gradient(out, x).numpy()))


def test_box_embedding_with_spectrum_round_trips_and_rejects_bad_bands():
    layer = lsiou.BoxEmbedding((16,), 4, num_frequencies=8, frequency_range=(2.0, 200.0))
    out = layer(tf.constant(np.random.default_rng(0).random((3, 6)), tf.float32))
    assert out.shape == (3, 4) and layer.hidden[0].kernel.shape[0] == 6 + 16 + 16
    clone = lsiou.BoxEmbedding.from_config(layer.get_config())
    assert clone.num_frequencies == 8 and clone.frequency_range == (2.0, 200.0)
    import pytest

    with pytest.raises(ValueError, match="0 < low < high"):
        lsiou.BoxEmbedding((16,), 4, num_frequencies=8, frequency_range=(200.0, 2.0))
