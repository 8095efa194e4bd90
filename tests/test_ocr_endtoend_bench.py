"""bench/ocr_endtoend.py's glue: rendered scenes scored end to end through a stand-in system, RapidOCR's lines
split into words, the report's section, and the one-line errors. No RapidOCR and no trained weights needed."""

import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from helpers import load_bench as _module  # noqa: E402

bench = _module("ocr_endtoend")
report = _module("report")


@pytest.fixture(scope="module")
def two_scenes():
    """Two scenes of the detection task's `test` set (configs/det.py) that hold cared-for words."""
    task = bench.scene_task()
    gt, images = bench.render_set(task, "test", 5)
    keys = [k for k, ann in gt.items() if (~ann.dontcare).any()][:2]
    assert len(keys) == 2, "the first 5 test scenes should hold two with cared-for words"
    return {k: gt[k] for k in keys}, {k: images[k] for k in keys}


def _stand_in(gt, images, edit=None):
    """A system that returns each scene's ground truth (boxes and texts), optionally edited per scene."""
    by_bytes = {images[k]: k for k in gt}

    def predict(data):
        key = by_bytes[data]
        quads, texts = np.array(gt[key].quads, np.float64), list(gt[key].texts)
        if edit:
            quads, texts = edit(key, quads, texts)
        return quads, texts

    return predict


def _cared(gt):
    return [(k, i) for k, ann in gt.items() for i in np.flatnonzero(~ann.dontcare)]


def test_scenes_carry_boxes_texts_and_dontcare(two_scenes):
    gt, images = two_scenes
    for key, ann in gt.items():
        assert ann.quads.shape == (len(ann.texts), 4, 2)
        assert list(ann.dontcare) == [t == "###" for t in ann.texts]
        assert images[key][:8] == b"\x89PNG\r\n\x1a\n"


def test_ground_truth_scores_one(two_scenes):
    gt, images = two_scenes
    r = bench.score_system(_stand_in(gt, images), gt, images)
    assert r["num_scenes"] == 2
    assert r["num_care_gt"] == len(_cared(gt))
    for key in ("precision", "recall", "hmean", "detection_precision", "detection_recall", "detection_hmean"):
        assert r[key] == pytest.approx(1.0), key
    assert r["ms_per_image_median"] >= 0.0 and r["ms_per_image_p90"] >= r["ms_per_image_median"]
    assert all(e["read"] == e["gt"] for e in r["examples"])


def test_case_is_ignored_and_one_wrong_text_costs_one_word(two_scenes):
    gt, images = two_scenes
    cared = _cared(gt)
    n = len(cared)
    wrong_key, wrong_index = cared[-1]

    def edit(key, quads, texts):
        texts = [t.upper() for t in texts]
        if key == wrong_key:
            texts[wrong_index] = texts[wrong_index] + "X"
        return quads, texts

    r = bench.score_system(_stand_in(gt, images, edit), gt, images)
    assert r["num_correct"] == n - 1
    assert r["recall"] == pytest.approx((n - 1) / n)
    assert r["precision"] == pytest.approx((n - 1) / n)
    assert r["hmean"] == pytest.approx((n - 1) / n)
    assert r["detection_hmean"] == pytest.approx(1.0)


def test_missing_word_and_extra_box(two_scenes):
    gt, images = two_scenes
    cared = _cared(gt)
    n = len(cared)
    drop_key, drop_index = cared[0]

    def edit(key, quads, texts):
        if key == drop_key:
            keep = [i for i in range(len(texts)) if i != drop_index]
            quads, texts = quads[keep], [texts[i] for i in keep]
            # a box far from every word: a false detection
            quads = np.concatenate([quads, [[[0, 0], [3, 0], [3, 2], [0, 2]]]])
            texts = texts + ["nothing"]
        return quads, texts

    r = bench.score_system(_stand_in(gt, images, edit), gt, images)
    assert r["recall"] == pytest.approx((n - 1) / n)
    assert r["precision"] == pytest.approx((n - 1) / n)  # n - 1 right of n cared-for detections
    assert r["detection_recall"] == pytest.approx((n - 1) / n)


def test_rapidocr_lines_become_words():
    line = [[0.0, 0.0], [120.0, 0.0], [120.0, 20.0], [0.0, 20.0]]
    chars = list("Ab cd!")
    cells = [[[20 * i, 0], [20 * i + 20, 0], [20 * i + 20, 20], [20 * i, 20]] for i in range(6)]
    quads, texts = bench.rapidocr_words([[line, "Ab cd!", 0.9, cells, chars, [0.9] * 6]])
    assert texts == ["ab", "cd"]
    np.testing.assert_allclose(quads[0], [[0, 0], [40, 0], [40, 20], [0, 20]], atol=1e-6)
    np.testing.assert_allclose(quads[1], [[60, 0], [120, 0], [120, 20], [60, 20]], atol=1e-6)

    # Without character boxes: cut by character counts; punctuation alone is dropped.
    quads, texts = bench.rapidocr_words([[line, "ab - cd", 0.9]])
    assert texts == ["ab", "cd"]
    np.testing.assert_allclose(quads[0][:, 0], [0, 120 * 2 / 7, 120 * 2 / 7, 0], atol=1e-6)

    # A vertical line (quad starting at its top-left): words follow its long side.
    tall = [[10.0, 0.0], [30.0, 0.0], [30.0, 100.0], [10.0, 100.0]]
    quads, texts = bench.rapidocr_words([[tall, "ab cd", 0.9]])
    assert texts == ["ab", "cd"]
    np.testing.assert_allclose(quads[0], [[30, 0], [30, 40], [10, 40], [10, 0]], atol=1e-6)

    # Character boxes of a line read backwards are reflected along it.
    mirrored = bench.mirror_along_line(line, np.array(cells[:2], np.float64))
    np.testing.assert_allclose(mirrored[0][:, 0], [120, 100, 100, 120], atol=1e-6)
    np.testing.assert_allclose(mirrored[1][:, 1], [0, 0, 20, 20], atol=1e-6)

    quads, texts = bench.rapidocr_words(None)
    assert quads.shape == (0, 4, 2) and texts == []


def test_report_section():
    row = {
        "precision": 0.5,
        "recall": 0.25,
        "hmean": 1 / 3,
        "detection_hmean": 0.75,
        "ms_per_image_median": 812.4,
    }
    data = {
        "command": "python bench/ocr_endtoend.py --systems=rapidocr",
        "machine": {"cpus": 2, "git_commit": "abc", "date": "today"},
        "scenes": {"seed": 17, "sets": {"test": {"num_scenes": 150, "num_care_words": 900}}},
        "systems": {"rapidocr": {"description": "RapidOCR", "test": row}},
        "pending": {"tfls": "waits for weights/det"},
    }
    text = "\n".join(report.ocr_endtoend_chapter(data))
    assert "## OCR end to end" in text
    assert "### `test` (150 scenes, 900 cared-for words)" in text
    assert "| RapidOCR (PP-OCRv4 det + cls + rec) | 0.500 | 0.250 | 0.333 | 0.750 | 812 |" in text
    assert "waits for weights/det" in text
    assert "test_ood" not in text
    missing = "\n".join(report.ocr_endtoend_chapter({}))
    assert "Not yet measured: run `python bench/ocr_endtoend.py" in missing
    # another setting of the bench, kept as ocr_endtoend_<tag>.json: its own chapter, titled with the tag
    tagged = report.ocr_endtoend_chapter(data, name="ocr_endtoend_one_scale.json")
    assert tagged[0] == "## OCR end to end (one_scale)"
    assert tagged[1:] == report.ocr_endtoend_chapter(data)[1:]


def test_missing_detector_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(bench, "DEFAULT_DETECTOR", str(tmp_path / "det"))
    with pytest.raises(SystemExit) as e:
        bench.main(["--limit=1"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tfls: error: ") and str(tmp_path / "det") in err[0]
    assert "python -m tfls.ship" in err[0]

    empty = tmp_path / "empty"
    empty.mkdir()
    for detector in (str(tmp_path / "nowhere"), str(empty)):
        with pytest.raises(SystemExit):
            bench.main([f"--detector={detector}", "--limit=1"])
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("tfls: error: ") and detector in err[0], err
