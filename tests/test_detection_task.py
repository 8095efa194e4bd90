"""The detection task: serving maps boxes back to images of any size, ICDAR figures at three IoU thresholds on
hand-computed detections; end to end, `python -m tfls.main --task=det` on a tiny config, then the export loaded
in fresh processes."""

import io
import itertools
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfls.detection import data as data_lib
from tfls.detection.task import DetectionTask, serving_function

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "--config.train.init_from=",  # train the tiny detector (the default post-tunes weights/det)
    "--config.data.image_size=64",
    "--config.data.train_pool=8",
    "--config.data.eval_size=4",
    "--config.data.scene.canvas_sizes=160x120",
    "--config.data.scene.max_words=3",
    "--config.data.scene.min_height=8",
    "--config.data.scene.max_height=16",
    "--config.data.ood_scene.canvas_sizes=120x160",
    "--config.data.ood_scene.max_words=3",
    "--config.train.steps=6",
    "--config.train.warmup_steps=0",
    "--config.train.batch_size=2",
    "--config.train.eval_every=0",
    "--config.train.checkpoint_every=3",
    "--config.train.log_every=2",
    "--config.surrogate.pretrain_steps=5",
    "--config.surrogate.batch_size=32",
    "--config.surrogate.eval_pairs=64",
    "--config.tune.steps=3",
    "--config.model.rpn_pre_nms=30",
    "--config.model.rpn_post_nms=8",
    "--config.model.head_units=32",
    "--config.model.max_detections=8",
    "--config.eval.batch_size=2",
    "--config.eval.score_threshold=0.0",
]


class BrightBox(keras.Model):
    """A stand-in detector: one box per image, the bounding rectangle of its bright pixels (normalised)."""

    max_detections = 2

    def call(self, images, training=False):
        size = images.shape[1]
        bright = tf.reduce_mean(images, -1) > 0.5

        def extent(any_along):
            first = tf.argmax(tf.cast(any_along, tf.int32), 1)
            last = size - tf.argmax(tf.cast(any_along[:, ::-1], tf.int32), 1)
            return tf.cast(first, tf.float32), tf.cast(last, tf.float32)

        (x0, x1), (y0, y1) = extent(tf.reduce_any(bright, 1)), extent(tf.reduce_any(bright, 2))
        one = tf.ones_like(x0)
        box = tf.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, one * size, 0 * one], -1) / size
        boxes = tf.stack([box, tf.zeros_like(box)], 1)
        scores = tf.stack([0.9 * one, 0 * one], 1)
        return {"boxes": boxes, "scores": scores, "num_detections": tf.ones_like(x0, tf.int32)}


def _encoded(width, height, block, fmt="PNG"):
    image = np.full((height, width, 3), 30, np.uint8)
    x0, y0, x1, y1 = block
    image[y0:y1, x0:x1] = 255
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("width, height", [(640, 480), (480, 640), (1280, 720), (100, 100)])
def test_serving_maps_boxes_back_to_the_original_image(width, height):
    serve = serving_function(BrightBox(), 256, 0.5)
    block = (width // 2, height // 4, width // 2 + width // 4, height // 4 + height // 6)
    out = serve(tf.constant([_encoded(width, height, block), _encoded(width, height, block, "JPEG")]))
    np.testing.assert_array_equal(out["num_detections"].numpy(), [1, 1])
    x0, y0, x1, y1 = block
    expected = [x0, y0, x1, y0, x1, y1, x0, y1]
    pixel = max(width, height) / 256  # one input pixel in the original
    np.testing.assert_allclose(out["boxes"].numpy()[:, 0], [expected, expected], atol=1.5 * pixel)
    assert np.all(out["boxes"].numpy()[:, 1] == 0) and np.all(out["scores"].numpy()[:, 1] == 0)
    empty = serve(tf.constant([], tf.string))
    assert empty["boxes"].shape == (0, 2, 8) and empty["num_detections"].shape == (0,)


class FixedBoxes(keras.Model):
    """A stand-in detector that always answers the same normalised boxes with score 0.9."""

    max_detections = 2

    def __init__(self, boxes):
        super().__init__()
        self.fixed = tf.constant(boxes, tf.float32)

    def call(self, images, training=False):
        b = tf.shape(images)[0]
        boxes = tf.broadcast_to(self.fixed[None], [b, 2, 6])
        return {"boxes": boxes, "scores": tf.fill([b, 2], 0.9), "num_detections": tf.fill([b], 2)}


def test_evaluate_reports_hmean_at_three_ious_and_the_mean_matched_iou():
    sys.path.insert(0, ROOT)
    from configs import det as det_config

    # side 100: normalised = pixels / 100. Ground truth: A (10,10)-(30,20), B (50,50)-(90,60).
    gt = np.array([[[10, 10], [30, 10], [30, 20], [10, 20]], [[50, 50], [90, 50], [90, 60], [50, 60]]], np.float32)
    target = data_lib.pack_annotation(gt, [False, False], 100.0, 4)
    target["side"], target["image_id"] = np.float32(100.0), np.int32(7)
    # A moved 3 px right: IoU 170 / 230 = 0.739; B moved 8 px: IoU 320 / 480 = 0.667
    detections = [[0.23, 0.15, 0.2, 0.1, 1.0, 0.0], [0.78, 0.55, 0.4, 0.1, 1.0, 0.0]]
    dataset = tf.data.Dataset.from_tensors(
        (np.zeros((1, 32, 32, 3), np.float32), {k: v[None] for k, v in target.items()})
    )
    task = DetectionTask(det_config.get_config())
    metrics = task.evaluate(FixedBoxes(detections), dataset)
    assert metrics["precision"] == metrics["recall"] == metrics["hmean"] == pytest.approx(1.0)
    assert metrics["hmean_iou70"] == pytest.approx(0.5)  # only A above 0.7: P = R = 1/2
    assert metrics["hmean_iou80"] == 0.0
    assert metrics["mean_matched_iou"] == pytest.approx((170 / 230 + 320 / 480) / 2, abs=1e-5)
    assert metrics["num_images"] == 1
    assert set(DetectionTask.reported_metrics()) == {
        "hmean",
        "precision",
        "recall",
        "hmean_iou70",
        "hmean_iou80",
        "mean_matched_iou",
    }


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    return env


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("det_job")
    cmd = [sys.executable, "-m", "tfls.main", "--task=det", f"--workdir={workdir}"] + TINY
    cmd += [f"--config.eval.results_dir={workdir / 'icdar_results'}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(workdir / "results.json") as f:
        return workdir, json.load(f), proc.stdout


def test_main_job_writes_results(finished_job):
    _, results, stdout = finished_job
    assert results["task"] == "det" and results["wall_time_s"] > 0
    for model in ("baseline", "tuned"):
        assert set(results[model]) == {"val", "test", "test_ood"}
        metrics = results[model]["test_ood"]
        assert metrics["num_images"] == 4
        reported = ("precision", "recall", "hmean", "hmean_iou70", "hmean_iou80", "mean_matched_iou")
        assert all(0.0 <= metrics[k] <= 1.0 for k in reported)
    assert np.isfinite(results["surrogate"]["approx_l1_global"])
    assert "approx_l1_local" in results["surrogate"]
    assert os.path.isdir(results["export"])
    assert "tuned" in stdout and "baseline" in stdout


def test_icdar_result_files_per_model(finished_job):
    # one folder per model and evaluation set, so the tuned model's evaluation leaves the baseline's files
    workdir, _, _ = finished_job
    for model, set_name in itertools.product(("baseline", "control", "tuned"), ("val", "test", "test_ood")):
        folder = workdir / "icdar_results" / model / set_name
        names = sorted(os.listdir(folder))
        assert len(names) == 4 and all(n.startswith("res_img_") and n.endswith(".txt") for n in names)
        for name in names:
            for line in (folder / name).read_text().splitlines():
                assert len([int(v) for v in line.split(",")]) == 8
    assert not [n for n in os.listdir(workdir / "icdar_results") if n.startswith("res_img_")]


def _image_bytes(width, height):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


LOAD_SCRIPT = r"""
import sys, numpy as np, tensorflow as tf
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = fn(image_bytes=tf.constant([open(sys.argv[2], "rb").read()] * 2))
b, s, n = out["boxes"], out["scores"], out["num_detections"]
assert b.dtype == tf.float32 and s.dtype == tf.float32 and n.dtype == tf.int32, (b.dtype, s.dtype, n.dtype)
assert b.shape[0] == 2 and b.shape[2] == 8 and s.shape == b.shape[:2] and n.shape == (2,)
assert np.all(b.numpy()[:, int(n[0]):] == 0)
print("LOADED", b.shape)
"""


def test_export_loads_in_fresh_processes(finished_job, tmp_path):
    _, results, _ = finished_job
    export = results["export"]
    image = tmp_path / "img.png"
    image.write_bytes(_image_bytes(80, 48))  # not square: exercises the padding in the serving graph
    script = tmp_path / "load.py"
    script.write_text(LOAD_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), export, str(image)], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and "LOADED" in proc.stdout, proc.stderr[-3000:]
    np.save(tmp_path / "inputs.npy", np.array([image.read_bytes()], dtype=object))
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    proc = subprocess.run(
        [
            cli,
            "run",
            "--dir",
            export,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"image_bytes={tmp_path / 'inputs.npy'}",
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "num_detections" in proc.stdout and "boxes" in proc.stdout


def test_tuning_keeps_the_configured_terms_of_the_ordinary_loss(monkeypatch):
    sys.path.insert(0, ROOT)
    from configs import det as det_config
    from tfls.configuration import ConfigError, validate
    from tfls.detection import detector

    parts = {"rpn_cls": 1.0, "rpn_reg": 2.0, "roi_cls": 4.0, "roi_reg": 8.0}
    monkeypatch.setattr(detector, "detection_loss", lambda out: (sum(parts.values()), dict(parts)))
    config = det_config.get_config()
    config.train.init_from = ""
    task = DetectionTask(config)
    assert float(task.tuning_ordinary_loss({}, None)) == 15.0  # the default: all four (`mixed`)
    config.tune.ordinary_terms = DetectionTask.tuning_variants["paper"]["tune.ordinary_terms"]
    assert float(DetectionTask(config).tuning_ordinary_loss({}, None)) == 7.0  # the RoI regression left out
    for bad in (("roi_cls", "box"), (), ("roi_cls", "roi_cls")):
        config.tune.ordinary_terms = bad
        with pytest.raises(ConfigError, match="tune.ordinary_terms"):
            validate(config, DetectionTask)
