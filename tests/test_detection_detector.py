"""The rotated Faster R-CNN: shapes, finite losses, surrogate pairs in training and inference mode."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfls.detection import detector
from tfls.detection.task import DetectionTask

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import det as det_config  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    config = det_config.get_config()
    config.data.image_size = 64
    config.data.train_pool = 4
    config.data.eval_size = 2
    for mix in (config.data.scene, config.data.ood_scene):
        mix.canvas_sizes = "160x120"
        mix.max_words = 4
        mix.min_height = 8
        mix.max_height = 16
    config.train.batch_size = 2
    config.model.widths = (8, 8, 16)
    config.model.channels = 16
    config.model.head_units = 32
    config.model.rpn_pre_nms = 30
    config.model.rpn_post_nms = 8
    config.model.roi_samples = 8  # fewer than the 8 proposals (+ ground truth) available
    task = DetectionTask(config)
    model = task.build_model()
    x, y = next(iter(task.train_dataset(seed=0)))
    return task, model, x, y


def test_inference_outputs(tiny):
    task, model, x, _ = tiny
    out = model(x, training=False)
    k = task.config.model.max_detections
    assert out["boxes"].shape == (2, k, 6) and out["scores"].shape == (2, k)
    assert out["num_detections"].dtype == tf.int32
    assert model.get_config()["image_size"] == 64


@pytest.mark.parametrize("training", [True, False])
def test_training_outputs_loss_and_surrogate_pairs(tiny, training):
    task, model, x, y = tiny
    with tf.GradientTape() as tape:
        outputs = task.forward(model, x, y, training)
        loss = task.ordinary_loss(outputs, y)
        pred, target, weight = task.surrogate_pairs(outputs, y)
        pairs_sum = tf.reduce_sum(pred * weight[:, None])
    r = task.config.model.roi_samples
    assert pred.shape == target.shape == (2 * r, 6) and weight.shape == (2 * r,)
    assert np.isfinite(float(loss))
    if training:  # ground truth joins the proposals: there are positives, and gradients reach the head
        assert float(tf.reduce_sum(weight)) > 0
        grads = tape.gradient(pairs_sum, model.trainable_variables)
        assert any(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)
    _, parts = detector.detection_loss(outputs)
    assert set(parts) == {"rpn_cls", "rpn_reg", "roi_cls", "roi_reg"}


def test_proposals_decode_only_the_candidates_nms_considers(tiny):
    from tfls.detection import boxes as box_lib
    from tfls.detection import nms

    model = tiny[1]
    rng = np.random.default_rng(3)
    n = model.anchors.shape[0]
    # Coarse logits: many exact ties in score, which NMS orders by anchor index.
    logits = tf.constant(np.round(rng.normal(size=(2, n)), 1).astype(np.float32))
    deltas = tf.constant(rng.normal(0, 0.5, (2, n, 6)).astype(np.float32))
    rois, valid = model.propose(logits, deltas)
    # Reference: decode every anchor, then NMS over the rpn_pre_nms best.
    boxes = detector._clip_sizes(box_lib.canonical(box_lib.decode(deltas, model.anchors, detector.RPN_WEIGHTS)))
    ref_rois, _, _, ref_valid, _ = nms.rotated_nms(
        boxes, logits, model.rpn_post_nms, model.rpn_nms_iou, pre_nms=model.rpn_pre_nms
    )
    np.testing.assert_array_equal(valid.numpy(), ref_valid.numpy())
    np.testing.assert_allclose(rois.numpy(), ref_rois.numpy(), atol=1e-6)
    assert valid.numpy().sum() > 4


def test_smooth_l1():
    x = tf.constant([-2.0, -0.05, 0.0, 0.05, 2.0])
    np.testing.assert_allclose(detector.smooth_l1(x, 0.1).numpy(), [1.95, 0.0125, 0.0, 0.0125, 1.95], atol=1e-6)


def test_serving_examples_are_decodable_images_at_their_own_size(tiny):
    task = tiny[0]
    examples = task.serving_examples(3)
    assert len(examples) == 3
    image = tf.io.decode_jpeg(examples[0])
    assert image.shape in ((120, 160, 3), (160, 120, 3))


def test_evaluation_sets_and_metrics(tiny):
    task, model = tiny[:2]
    sets = task.eval_datasets()
    assert set(sets) == {"val", "test", "test_ood"}
    metrics = task.evaluate(model, sets["test_ood"])
    assert set(metrics) >= set(task.reported_metrics()) | {"num_images"} and metrics["num_images"] == 2


def test_loss_is_finite_when_padding_slots_hold_degenerate_boxes():
    out = {
        "rpn_logits": tf.zeros([1, 2]),
        "rpn_labels": tf.constant([[1, 0]]),
        "rpn_weights": tf.constant([[1.0, 0.0]]),
        "rpn_deltas": tf.zeros([1, 2, 6]),
        "rpn_targets": tf.constant([[[0.1] * 6, [np.inf, np.nan, 0, 0, 0, 0]]]),
    }
    for k in ("labels", "weights", "deltas", "targets", "logits"):
        out[f"roi_{k}"] = out[f"rpn_{k}"]
    total, _ = detector.detection_loss(out)
    assert np.isfinite(float(total))


def test_paper_config_and_resnet50_fpn_backbone():
    from configs import det_paper

    config = det_paper.get_config()
    assert config.model.backbone == "resnet50_fpn" and config.data.image_size % 8 == 0
    backbone = detector.resnet50_fpn(64, 16)
    assert backbone.output_shape == (None, 8, 8, 16)


def test_tuning_step_without_host_calls_and_xla_kernels(tiny):
    """The TPU-like check on the real detector: with streamed global pairs and the in-graph rotated IoU the
    tuning step holds no py_function; compiling it for XLA switches the RoI pooling to its XLA kernel (and
    back), whose inference output equals the default kernel's."""
    import keras
    from helpers import HOST_CALL_OPS, op_types

    from tfls.surrogate import SurrogateTuner

    task, model, x, _ = tiny
    data = task.train_dataset(seed=0)
    reference = model(x, training=False)

    def tuner(global_pairs, jit):
        t = SurrogateTuner(
            model, task.build_surrogate(), task.tuning_forward, task.surrogate_pairs, task.ordinary_loss,
            global_batch_size=8, global_pairs=global_pairs, grad_penalty_every=2,
        )  # fmt: skip
        t.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-3), jit_compile=jit)
        return t

    streamed = tuner("dataset", True)
    assert model.roi_align_method == "gather"
    spec = tf.data.Dataset.zip((data, streamed._global_pair_stream())).element_spec
    assert not op_types(tf.function(streamed.train_step).get_concrete_function(spec)) & HOST_CALL_OPS
    out = model(x, training=False)
    np.testing.assert_allclose(out["scores"].numpy(), reference["scores"].numpy(), atol=1e-5)
    np.testing.assert_allclose(out["boxes"].numpy(), reference["boxes"].numpy(), atol=1e-5)
    # compiling without XLA restores the default kernel (tests/test_surrogate_tuner.py shows that the op check
    # sees the py_function of the default pair path)
    tuner("py_function", False)
    assert model.roi_align_method == "sparse"
