"""End-to-end figures in the detection evaluation (`eval.recognizer`): the real `DetectionTask.evaluate` on
the tiny config's rendered val/test/test_ood scenes with a detector that answers the ground truth and a
reading step that answers its transcriptions (one wrong word: (N - 1) / N counted by hand from the scenes),
the crops the reading step hands the recognizer against the NumPy crop reference, the metric keys without the
key, and the one-line errors of a bad path."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfls import configuration
from tfls.detection import data as data_lib
from tfls.detection.task import DetectionTask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "data.image_size=64",
    "data.eval_size=4",
    "data.scene.canvas_sizes=160x120",
    "data.scene.max_words=3",
    "data.scene.min_height=8",
    "data.scene.max_height=16",
    "data.scene.dontcare_prob=0.2",
    "data.ood_scene.canvas_sizes=120x160",
    "data.ood_scene.max_words=3",
    "data.ood_scene.dontcare_prob=0.2",
    "model.rpn_pre_nms=30",
    "model.rpn_post_nms=8",
    "model.head_units=32",
    "model.max_detections=8",
    "eval.batch_size=2",
    "eval.score_threshold=0.0",
]
OLD_KEYS = {"precision", "recall", "hmean", "hmean_iou70", "hmean_iou80", "mean_matched_iou", "num_images"}
E2E_KEYS = {"e2e_precision", "e2e_recall", "e2e_hmean"}
SETS = ("val", "test", "test_ood")


def _task(recognizer=""):
    config = configuration.load_config(os.path.join(ROOT, "configs", "det.py"), TINY)
    config.eval.recognizer = str(recognizer)
    return DetectionTask(config)


class GroundTruthOracle:
    """A detector and a reader that know the rendered scenes: an input image is recognised by its pixels,
    its detections are its ground-truth quads (don't care included, in annotation order), and each box reads
    the transcription (upper-cased) of the ground-truth box whose corners are nearest; don't-care boxes read
    "zzz", and the box `wrong = (set, scene, word)` reads "wrong"."""

    def __init__(self, task, wrong=None):
        self.scenes = {}
        for set_name in SETS:
            images, targets = task.eval_arrays(set_name)
            for index in range(len(images)):
                valid = targets["valid"][index] > 0
                self.scenes[images[index].tobytes()] = (
                    set_name,
                    index,
                    targets["quads"][index][valid] * targets["side"][index],
                    list(targets["texts"][index][valid]),
                    targets["dontcare"][index][valid] > 0,
                )
        self.wrong = wrong
        self.calls = 0

    def _scene(self, image):
        return self.scenes[np.round(np.asarray(image) * 255.0).astype(np.uint8).tobytes()]

    def predict_quads(self, model, x, side):
        del model, side
        return [(self._scene(image)[2], np.ones(len(self._scene(image)[2]))) for image in x]

    def read_boxes(self, x, detections, side):
        del side
        self.calls += 1
        out = []
        for image, quads in zip(x, detections):
            set_name, index, gt, texts, dontcare = self._scene(image)
            words = []
            for quad in quads:
                k = int(np.argmin(np.abs(gt - quad[None]).sum(axis=(1, 2))))
                words.append(
                    "zzz" if dontcare[k] else "wrong" if self.wrong == (set_name, index, k) else texts[k].upper()
                )
            out.append(words)
        return out


def _cared_words(task, set_name):
    """`[(scene, word index)]` of the cared-for ground-truth words of a set, counted from its arrays."""
    _, t = task.eval_arrays(set_name)
    return [
        (i, k)
        for i in range(len(t["valid"]))
        for k in range(int(t["valid"][i].sum()))
        if not t["dontcare"][i][k] and t["texts"][i][k] not in ("", "###")
    ]


@pytest.fixture(scope="module")
def scenes_task(tmp_path_factory):
    task = _task(tmp_path_factory.mktemp("recognizer_stub"))
    for set_name in SETS:
        task.eval_arrays(set_name)
    return task


def _evaluate_all(task, oracle, monkeypatch):
    monkeypatch.setattr(task, "predict_quads", oracle.predict_quads)
    monkeypatch.setattr(task, "read_boxes", oracle.read_boxes)
    sets = task.eval_datasets()
    assert set(sets) == set(SETS)
    return {name: task.evaluate(None, ds) for name, ds in sets.items()}


def test_end_to_end_figures_with_every_word_read_right(scenes_task, monkeypatch):
    oracle = GroundTruthOracle(scenes_task)
    dontcare = sum(int(dc.sum()) for _, _, _, _, dc in oracle.scenes.values())
    assert dontcare > 0, "the tiny scenes should hold don't-care words (their reading 'zzz' must not count)"
    metrics = _evaluate_all(scenes_task, oracle, monkeypatch)
    assert oracle.calls == 3 * 2  # every batch of every set read once (4 scenes, batches of 2)
    for set_name, m in metrics.items():
        assert set(m) == OLD_KEYS | E2E_KEYS, set_name
        assert m["num_images"] == 4
        assert m["precision"] == m["recall"] == m["hmean"] == 1.0, set_name  # the detector is the GT
        assert m["e2e_precision"] == m["e2e_recall"] == m["e2e_hmean"] == 1.0, set_name


def test_end_to_end_figures_with_one_word_read_wrong(scenes_task, monkeypatch):
    cared = _cared_words(scenes_task, "test")
    n = len(cared)
    assert n >= 2
    scene, word = cared[-1]  # in the second batch: the figures pool over batches
    assert scene >= 2
    metrics = _evaluate_all(scenes_task, GroundTruthOracle(scenes_task, wrong=("test", scene, word)), monkeypatch)
    m = metrics["test"]
    assert m["hmean"] == 1.0
    # n cared-for words, n cared-for detections (those of don't-care words are ignored), n - 1 read right
    assert m["e2e_precision"] == pytest.approx((n - 1) / n)
    assert m["e2e_recall"] == pytest.approx((n - 1) / n)
    assert m["e2e_hmean"] == pytest.approx((n - 1) / n)
    for other in ("val", "test_ood"):
        assert metrics[other]["e2e_hmean"] == 1.0


def test_without_the_key_the_metrics_are_the_old_ones(scenes_task, monkeypatch):
    task = _task("")
    task._eval_arrays = scenes_task._eval_arrays  # the same rendered scenes
    oracle = GroundTruthOracle(task)
    metrics = _evaluate_all(task, oracle, monkeypatch)
    assert oracle.calls == 0
    for m in metrics.values():
        assert set(m) == OLD_KEYS and m["hmean"] == 1.0


def _one_image_set(texts):
    """One 100 px image with two cared-for words (A, B) whose transcriptions are `texts`."""
    gt = np.array([[[10, 10], [30, 10], [30, 20], [10, 20]], [[50, 50], [90, 50], [90, 60], [50, 60]]], np.float32)
    target = data_lib.pack_annotation(gt, [False, False], 100.0, 4, texts=texts)
    target["side"], target["image_id"] = np.float32(100.0), np.int32(0)
    return data_lib.eval_dataset(np.zeros((1, 32, 32, 3), np.uint8), {k: v[None] for k, v in target.items()}, 1), gt


@pytest.mark.parametrize("texts", [None, ["hello", ""]], ids=["no texts", "a cared-for word without text"])
def test_sets_without_transcriptions_get_no_end_to_end_figures(tmp_path, monkeypatch, texts):
    task = _task(tmp_path)
    dataset, gt = _one_image_set(texts)
    monkeypatch.setattr(task, "predict_quads", lambda model, x, side: [(gt, np.ones(2))])
    monkeypatch.setattr(task, "read_boxes", lambda *args: pytest.fail("read a set without transcriptions"))
    metrics = task.evaluate(None, dataset)
    assert set(metrics) == OLD_KEYS and metrics["hmean"] == 1.0


# ---- the reading step itself ------------------------------------------------------------------------------


def test_read_boxes_crops_each_detection_from_the_detector_input(scenes_task, tmp_path):
    """Boxes in original pixels -> crops of the detector's input (x 255) at input pixels (quads * S / side),
    with the OCR export's margin and supersampling; texts split back per image in order."""
    from tfls.ocr import export
    from tfls.ocr.crop import rectify_numpy

    class Shape:
        image_shape = (8, 20, 3)

    seen = []

    def read(crops):
        seen.append(crops.numpy())
        return tf.constant([f"w{i}" for i in range(crops.shape[0])])

    task = _task(tmp_path)
    task._reader = (Shape(), read)
    images, targets = scenes_task.eval_arrays("test")
    x = tf.constant(images[:3], tf.float32) / 255.0
    side = targets["side"][:3]
    detections = [targets["quads"][i][: [2, 0, 1][i]] * side[i] for i in range(3)]  # 2, 0 and 1 boxes
    assert task.read_boxes(x, detections, side) == [["w0", "w1"], [], ["w2"]]
    expected = [
        rectify_numpy(images[i].astype(np.float64), q * (64.0 / side[i]), 8, 20, export.MARGIN, export.SUPERSAMPLE)
        for i, q in enumerate(detections)
        if len(q)
    ]
    np.testing.assert_allclose(seen[0], np.concatenate(expected), atol=0.05)
    assert task.read_boxes(x, [[], [], []], side) == [[], [], []] and len(seen) == 1


def test_a_real_recognizer_is_loaded_once_and_reads_strings(scenes_task, tmp_path):
    from tfls import registry
    from tfls.job.weights import save_weights

    cls = registry.task_class("str")
    str_task = cls(configuration.load_config(registry.default_config_path(cls), ["model.channels=(4,4,8,8)"]))
    save_weights(str(tmp_path / "str"), str_task.build_model())
    (tmp_path / "str" / "config.json").write_text(json.dumps(str_task.config.to_dict()))
    task = _task(tmp_path / "str")
    configuration.validate(task.config, DetectionTask)
    images, targets = scenes_task.eval_arrays("val")
    x = tf.constant(images[:2], tf.float32) / 255.0
    detections = [targets["quads"][i][: int(targets["valid"][i].sum())] * targets["side"][i] for i in range(2)]
    texts = task.read_boxes(x, detections, targets["side"][:2])
    assert [len(t) for t in texts] == [len(d) for d in detections]
    assert all(isinstance(t, str) for row in texts for t in row)
    reader = task.recognizer()
    task.read_boxes(x, detections, targets["side"][:2])
    assert task.recognizer() is reader


# ---- errors -----------------------------------------------------------------------------------------------


def _validation_error(value):
    config = _task().config
    config.eval.recognizer = str(value)
    with pytest.raises(configuration.ConfigError) as e:
        configuration.validate(config, DetectionTask)
    return str(e.value)


def test_a_missing_recognizer_path_is_one_line_naming_key_and_path(tmp_path):
    missing = tmp_path / "no_such_weights"
    message = _validation_error(missing)
    assert "\n" not in message and "config.eval.recognizer" in message and str(missing) in message


def test_a_folder_without_weights_is_refused_before_anything_runs(tmp_path):
    message = _validation_error(tmp_path)
    assert "\n" not in message and "config.eval.recognizer" in message and str(tmp_path) in message
    assert "weights" in message


def test_an_unloadable_recognizer_fails_in_one_line_naming_key_and_path(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"fingerprint": "not this one"}))  # a workdir of another job
    task = _task(tmp_path)
    configuration.validate(task.config, DetectionTask)  # exists and looks like a workdir
    with pytest.raises(configuration.ConfigError) as e:
        task.recognizer()
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"config.eval.recognizer={str(tmp_path)!r}: cannot load")
