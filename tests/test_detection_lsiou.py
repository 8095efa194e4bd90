"""LS-IoU: the true metric, the random box generator's IoU spread, and the box embedding."""

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
    assert clone.units == (32, 32) and clone.output_dim == 8
    with tf.GradientTape() as tape:
        tape.watch(boxes)
        out = tf.reduce_sum(layer(boxes))
    assert np.all(np.isfinite(tape.gradient(out, boxes).numpy()))
