"""ICDAR 2015 reader (hand-made files and the real test ground truth) and the evaluation protocol."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tfls.detection import icdar

GT_ZIP = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "icdar2015_test_gt.zip")


def _rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def test_parse_bom_crlf_commas_in_transcription_and_dontcare():
    text = "\ufeff1,2,11,2,11,7,1,7,Hello, world\r\n0,0,4,0,4,4,0,4,###\r\n\r\n".encode("utf-8")
    ann = icdar.parse_gt(text, "gt_img_1.txt")
    assert ann.texts == ["Hello, world", "###"]
    np.testing.assert_array_equal(ann.dontcare, [False, True])
    np.testing.assert_allclose(ann.quads[0], _rect(1, 2, 11, 7))


def test_bad_line_raises_with_file_and_line_or_is_skipped_and_counted():
    text = "1,2,3,4,5,6,7,8,ok\nnot,a,box\n1,2,3,4,5,6,7,x,bad\n"
    with pytest.raises(icdar.ICDARFormatError, match=r"gt_img_7.txt: line 2"):
        icdar.parse_gt(text, "gt_img_7.txt")
    stats = {}
    ann = icdar.parse_gt(text, "gt_img_7.txt", skip_bad=True, stats=stats)
    assert len(ann.texts) == 1 and stats["skipped"] == 2


@pytest.mark.skipif(not os.path.exists(GT_ZIP), reason=f"real ICDAR 2015 gt not found at {GT_ZIP}")
def test_reader_on_real_test_ground_truth_matches_plain_line_count():
    # Independent count: raw bytes, non-empty lines, and lines whose last field is exactly ###.
    lines = dontcare = 0
    with zipfile.ZipFile(GT_ZIP) as z:
        for name in z.namelist():
            for raw in z.read(name).split(b"\n"):
                raw = raw.strip().lstrip(b"\xef\xbb\xbf")
                if raw:
                    lines += 1
                    dontcare += raw.rsplit(b",", 1)[-1] == b"###"
    data = icdar.read_gt_zip(GT_ZIP)
    assert len(data) == 500 and sorted(data) == list(range(1, 501))
    assert sum(len(a.texts) for a in data.values()) == lines
    assert sum(int(a.dontcare.sum()) for a in data.values()) == dontcare
    assert all(a.quads.shape[1:] == (4, 2) for a in data.values())
    # The ground truth evaluated against itself is perfect.
    acc = icdar.ICDARAccumulator()
    for a in list(data.values())[:50]:
        acc.add(a.quads[~a.dontcare], a.quads, a.dontcare)
    assert acc.result()["hmean"] == pytest.approx(1.0)


def test_protocol_iou_exactly_half_is_not_a_match():
    gt = _rect(0, 0, 3, 1)[None]
    det = _rect(1, 0, 3, 1)[None]  # IoU = 2 / 3
    assert icdar.match_image(det, gt, [False])["matched"] == 1
    det = _rect(0, 0, 2, 1)[None]
    gt = _rect(1, 0, 3, 1)[None]  # IoU = 1 / 3
    assert icdar.match_image(det, gt, [False])["matched"] == 0
    gt = _rect(0, 0, 4, 1)[None]
    det = _rect(0, 0, 2, 1)[None]  # IoU exactly 0.5
    assert icdar.match_image(det, gt, [False])["matched"] == 0


def test_protocol_one_to_one_and_dontcare():
    gt = np.stack([_rect(0, 0, 10, 4), _rect(20, 0, 30, 4), _rect(40, 0, 50, 4)])
    dontcare = [False, False, True]
    dets = np.stack(
        [
            _rect(0, 0, 10, 4),
            _rect(0.5, 0, 10, 4),  # two on gt 0: one match, one false positive
            _rect(41, 0, 49, 4),  # inside the don't-care box: ignored
            _rect(38, 0, 48, 4),  # 80% inside don't care: ignored
            _rect(34, 0, 44, 4),
        ]
    )  # 40% inside don't care: counts, matches nothing
    r = icdar.match_image(dets, gt, dontcare)
    assert r["matched"] == 1 and r["num_care_gt"] == 2 and r["num_care_det"] == 3
    assert r["pairs"] == [(0, 0)]
    acc = icdar.ICDARAccumulator()
    acc.add(dets, gt, dontcare)
    acc.add(np.zeros((0, 4, 2)), _rect(0, 0, 5, 5)[None], [False])  # a missed word in a second image
    res = acc.result()
    assert res["precision"] == pytest.approx(1 / 3) and res["recall"] == pytest.approx(1 / 3)
    assert res["hmean"] == pytest.approx(1 / 3) and res["num_images"] == 2


def test_write_results_roundtrip(tmp_path):
    quads = np.stack([_rect(1.4, 2.6, 10, 7)])
    icdar.write_results(str(tmp_path), 12, quads)
    ann = icdar.parse_gt((tmp_path / "res_img_12.txt").read_bytes(), "res_img_12.txt")
    np.testing.assert_allclose(ann.quads[0], _rect(1, 3, 10, 7))
    np.testing.assert_array_equal(icdar.parse_result_file((tmp_path / "res_img_12.txt").read_bytes()), ann.quads)


# ----------------------------------------------------------------------------------------------------------
# The official script's rules, one by one, on hand-computed cases.


def _scores(r):
    return r["precision"], r["recall"], r["hmean"]


def test_dontcare_ground_truth_is_neither_needed_nor_counted():
    gt = np.stack([_rect(0, 0, 10, 10), _rect(20, 0, 30, 10), _rect(40, 0, 50, 10)])
    dets = np.stack([_rect(0, 0, 10, 10), _rect(20, 0, 30, 10)])  # the word and one don't-care box
    r = icdar.evaluate_image(dets, gt, [False, True, True])
    assert (r["num_care_gt"], r["num_care_det"], r["matched"]) == (1, 1, 1)
    assert r["gt_dontcare"] == [1, 2] and r["det_dontcare"] == [1]
    assert _scores(r) == (1.0, 1.0, 1.0)
    # Only the exact transcription ### is don't care; a double-quoted one is unquoted first (official grammar).
    text = '0,0,9,0,9,9,0,9,###\n0,0,9,0,9,9,0,9, ###\n0,0,9,0,9,9,0,9,###a\n0,0,9,0,9,9,0,9,"###"\n'
    assert icdar.parse_gt_file(text).dontcare.tolist() == [True, False, False, True]


def test_dontcare_detection_one_box_strictly_more_than_half_inside():
    gt = np.stack([_rect(0, 0, 10, 10), _rect(100, 100, 110, 110)])
    dets = np.stack(
        [
            _rect(4, 0, 14, 10),  # 60 % inside: ignored
            _rect(5, 0, 15, 10),  # exactly 50 %: counts (false positive)
            _rect(6, 0, 16, 10),  # 40 %: counts (false positive)
            _rect(100, 100, 110, 110),
        ]
    )
    r = icdar.evaluate_image(dets, gt, [True, False])
    assert r["det_dontcare"] == [0] and r["num_care_det"] == 3 and r["pairs"] == [(1, 3)]
    assert _scores(r) == pytest.approx((1 / 3, 1.0, 0.5))


def test_dontcare_detection_two_boxes_is_judged_per_box_not_summed():
    # 40 % of the first detection lies in each don't-care box (80 % in both together): it is a false positive.
    gt = np.stack([_rect(0, 0, 8, 10), _rect(12, 0, 20, 10), _rect(100, 100, 110, 110)])
    dets = np.stack([_rect(4, 0, 16, 10), _rect(100, 100, 110, 110)])
    r = icdar.evaluate_image(dets, gt, [True, True, False])
    assert r["det_dontcare"] == [] and r["num_care_det"] == 2 and r["matched"] == 1
    assert icdar.match_image(dets, gt, [True, True, False]) == {
        "matched": 1,
        "num_care_gt": 1,
        "num_care_det": 2,
        "pairs": [(2, 1)],
    }
    assert _scores(r) == pytest.approx((0.5, 1.0, 2 / 3))


def test_dontcare_detection_overlapping_boxes():
    gt = np.stack([_rect(0, 0, 10, 10), _rect(5, 0, 15, 10), _rect(100, 100, 110, 110)])
    dets = np.stack(
        [
            _rect(0, 0, 20, 10),  # 50 % in each box (sum 100 %, union 75 %): counts
            _rect(6, 0, 9, 10),  # inside both boxes: ignored
            _rect(9, 0, 19, 10),  # 10 % in the first, 60 % in the second: ignored
            _rect(100, 100, 110, 110),
        ]
    )
    r = icdar.evaluate_image(dets, gt, [True, True, False])
    assert r["det_dontcare"] == [1, 2] and r["num_care_det"] == 2 and r["pairs"] == [(2, 3)]
    assert _scores(r) == pytest.approx((0.5, 1.0, 2 / 3))


def test_greedy_matching_in_file_order():
    gt = np.stack([_rect(0, 0, 10, 10), _rect(2, 0, 12, 10)])
    shared = _rect(1, 0, 11, 10)  # IoU 9/11 with both boxes
    only_first = _rect(-2, 0, 8, 10)  # IoU 2/3 with the first box, 3/7 with the second
    r = icdar.evaluate_image(np.stack([shared, only_first]), gt, [False, False])
    assert r["pairs"] == [(0, 0)] and _scores(r) == pytest.approx((0.5, 0.5, 0.5))
    r = icdar.evaluate_image(np.stack([only_first, shared]), gt, [False, False])
    assert r["pairs"] == [(0, 0), (1, 1)] and _scores(r) == (1.0, 1.0, 1.0)
    assert r["mean_matched_iou"] == pytest.approx((2 / 3 + 9 / 11) / 2)
    # The first detection above the threshold wins, not the best one.
    r = icdar.evaluate_image(np.stack([_rect(2, 0, 12, 10), _rect(0, 0, 10, 10)]), gt[:1], [False])
    assert r["pairs"] == [(0, 0)] and r["mean_matched_iou"] == pytest.approx(2 / 3)
    assert _scores(r) == pytest.approx((0.5, 1.0, 2 / 3))


def test_images_without_cared_for_ground_truth():
    dontcare_only = _rect(0, 0, 10, 10)[None]
    none = np.zeros((0, 4, 2))
    # Only don't-care boxes: perfect without detections and with detections ignored as don't care.
    assert _scores(icdar.evaluate_image(none, dontcare_only, [True])) == (1.0, 1.0, 1.0)
    assert _scores(icdar.evaluate_image(_rect(1, 1, 9, 9)[None], dontcare_only, [True])) == (1.0, 1.0, 1.0)
    # No cared-for box: recall 1, precision 0 with any cared-for detection.
    assert _scores(icdar.evaluate_image(_rect(50, 0, 60, 10)[None], dontcare_only, [True])) == (0.0, 1.0, 0.0)
    assert _scores(icdar.evaluate_image(_rect(50, 0, 60, 10)[None], none, [])) == (0.0, 1.0, 0.0)
    assert _scores(icdar.evaluate_image(none, none, [])) == (1.0, 1.0, 1.0)
    # Cared-for boxes and no detection at all: precision 0 (not 1).
    assert _scores(icdar.evaluate_image(none, _rect(0, 0, 10, 10)[None], [False])) == (0.0, 0.0, 0.0)
    # The method pools counts: 1 match, 1 cared-for box, 2 cared-for detections.
    gt = {
        "1": icdar.Annotation(_rect(0, 0, 10, 10)[None], ["w"], np.array([False])),
        "2": icdar.Annotation(none, [], np.zeros(0, bool)),
    }
    res = icdar.evaluate(gt, {"1": _rect(0, 0, 10, 10)[None], "2": _rect(50, 0, 60, 10)[None]}, per_sample=True)
    assert (res["method"]["precision"], res["method"]["recall"]) == (0.5, 1.0)
    assert res["method"]["hmean"] == pytest.approx(2 / 3)
    assert [res["per_sample"][k]["hmean"] for k in ("1", "2")] == [1.0, 0.0]
    empty = icdar.evaluate({"2": gt["2"]}, {})
    assert empty["method"]["precision"] == empty["method"]["recall"] == empty["method"]["hmean"] == 0.0


def test_iou_threshold_changes_the_match():
    gt = _rect(0, 0, 10, 10)[None]
    dets = np.stack([_rect(2, 0, 12, 10), _rect(0, 0, 10, 8)])  # IoU 2/3 and 0.8
    r = icdar.evaluate_image(dets, gt, [False])
    assert r["pairs"] == [(0, 0)] and r["mean_matched_iou"] == pytest.approx(2 / 3)
    r = icdar.evaluate_image(dets, gt, [False], iou_threshold=0.7)
    assert r["pairs"] == [(0, 1)] and r["mean_matched_iou"] == pytest.approx(0.8)
    assert _scores(icdar.evaluate_image(dets, gt, [False], iou_threshold=0.8)) == (0.0, 0.0, 0.0)
    acc = icdar.ICDARAccumulator(iou_threshold=0.7)
    acc.add(dets, gt, [False])
    assert acc.result()["mean_matched_iou"] == pytest.approx(0.8) and acc.result()["precision"] == 0.5


# ----------------------------------------------------------------------------------------------------------
# Files: readers, errors, the command line, the real ground truth.

GT_FILES = {
    "gt_img_1.txt": "\ufeff0,0,10,0,10,10,0,10,Hello, world\r\n40,0,50,0,50,10,40,10,###\r\n",
    "gt_img_2.txt": '100,100,110,100,110,110,100,110,"say ""hi"""\n',
    "gt_img_10.txt": "",
}
RESULT_FILES = {
    "res_img_1.txt": "0,0,10,0,10,10,0,10\r\n 41 , 1,49,1,49,9,41,9\r\n60,0,70,0,70,10,60,10\r\n",
    "res_img_2.txt": "100,100,110,100,110,108,100,108\n",
}


def _write(folder, files, extra=None):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {**files, **(extra or {})}.items():
        (folder / name).write_bytes(text.encode("utf-8"))
    return folder


def _zip(path, files, prefix=""):
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(prefix + name, text.encode("utf-8"))
    return path


def test_folder_and_zip_readers_agree(tmp_path):
    gt_dir = _write(tmp_path / "gt", GT_FILES, extra={"README.txt": "ignored", "img_1.jpg": "ignored"})
    res_dir = _write(tmp_path / "res", RESULT_FILES)
    gt_zip, res_zip = _zip(tmp_path / "gt.zip", GT_FILES), _zip(tmp_path / "res.zip", RESULT_FILES)
    gt, res = icdar.read_gt(str(gt_dir)), icdar.read_results(str(res_dir))
    assert list(gt) == ["1", "2", "10"] and list(res) == ["1", "2"]
    assert gt["1"].texts == ["Hello, world", "###"] and gt["1"].dontcare.tolist() == [False, True]
    assert gt["2"].texts == ['say ""hi""'] and gt["10"].quads.shape == (0, 4, 2)
    np.testing.assert_array_equal(res["1"][1], _rect(41, 1, 49, 9))
    for key in gt:
        zipped = icdar.read_gt(str(gt_zip))[key]
        np.testing.assert_array_equal(zipped.quads, gt[key].quads)
        assert zipped.texts == gt[key].texts
    for key in res:
        np.testing.assert_array_equal(icdar.read_results(str(res_zip))[key], res[key])
    # image 1: 1 match, the second detection ignored, the third a false positive; image 2: IoU 0.8;
    # image 10: nothing. Pooled: 2 matches, 2 cared-for boxes, 3 cared-for detections.
    out = icdar.evaluate_files(str(gt_zip), str(res_dir), per_sample=True)
    assert out["method"]["precision"] == pytest.approx(2 / 3) and out["method"]["recall"] == 1.0
    assert out["method"]["mean_matched_iou"] == pytest.approx(0.9)
    sample = out["per_sample"]["1"]
    assert sample["pairs"] == [{"gt": 0, "det": 0}] and sample["detDontCare"] == [1] and sample["gtDontCare"] == [1]
    assert sample["precision"] == 0.5 and sample["gtPolPoints"][0] == [0, 0, 10, 0, 10, 10, 0, 10]
    assert out["per_sample"]["10"]["hmean"] == 1.0


def test_submission_files_must_be_known_and_at_the_top_level(tmp_path):
    gt = str(_write(tmp_path / "gt", GT_FILES))
    with pytest.raises(icdar.ICDARFormatError, match=r"unexpected file 'res/res_img_1.txt'"):
        icdar.evaluate_files(gt, str(_zip(tmp_path / "nested.zip", RESULT_FILES, prefix="res/")))
    with pytest.raises(icdar.ICDARFormatError, match=r"unexpected file 'notes.txt'"):
        icdar.read_results(str(_write(tmp_path / "res", RESULT_FILES, extra={"notes.txt": ""})))
    with pytest.raises(icdar.ICDARFormatError, match=r"res_img_7.txt has no ground truth gt_img_7.txt"):
        icdar.evaluate_files(gt, str(_write(tmp_path / "res7", {"res_img_7.txt": ""})))
    with pytest.raises(icdar.ICDARFormatError, match=r"no such folder or zip file"):
        icdar.read_gt(str(tmp_path / "missing"))
    with pytest.raises(icdar.ICDARFormatError, match=r"no gt_img_<id>.txt files"):
        icdar.read_gt(str(tmp_path / "res"))


@pytest.mark.parametrize(
    "name, line, message",
    [
        ("res_img_3.txt", "0,0,10,0,10,10,0,10,0.9", "expected exactly 8 integer coordinates .*, got 9 fields"),
        ("res_img_3.txt", "0,0,10,0,10.5,10,0,10", "coordinate 5 '10.5' is not an integer"),
        ("res_img_3.txt", "0,0,10,0,10,10,0", "expected exactly 8 .*, got 7 fields"),
        ("res_img_3.txt", "0,0,0,10,10,10,10,0", "corners are counter-clockwise"),
        ("gt_img_3.txt", "0,0,10,0,10,10,0,10", "expected 8 integer coordinates and a transcription .*, got 8 fields"),
        ("gt_img_3.txt", "0,0,10,0,10,10,zero,10,w", "coordinate 7 'zero' is not an integer"),
    ],
)
def test_malformed_evaluation_line_names_file_and_line(tmp_path, name, line, message):
    good = "0,0,10,0,10,10,0,10" + (",w" if name.startswith("gt") else "")
    folder = _write(tmp_path / "files", {name: "\ufeff" + good + "\r\n" + line + "\r\n"})
    read = icdar.read_gt if name.startswith("gt") else icdar.read_results
    with pytest.raises(icdar.ICDARFormatError, match=rf"{name}: line 2: {message}"):
        read(str(folder))


def _cli(*args):
    root = os.path.join(os.path.dirname(__file__), "..")
    cmd = [sys.executable, "-m", "tfls.detection.icdar_eval", *args]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)


def test_cli_prints_official_json_and_one_line_errors(tmp_path):
    gt, res = _write(tmp_path / "gt", GT_FILES), _write(tmp_path / "res", RESULT_FILES)
    out = tmp_path / "result.json"
    run = _cli(f"--gt={gt}", f"--submission={res}", "--per-sample", f"--output={out}")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result == json.loads(out.read_text())
    assert result["calculated"] is True and result["Message"] == ""
    assert result["method"]["precision"] == pytest.approx(2 / 3) and result["method"]["recall"] == 1.0
    assert result["method"]["hmean"] == pytest.approx(0.8)
    assert set(result["per_sample"]) == {"1", "2", "10"}
    assert {"precision", "recall", "hmean", "pairs", "iouMat", "gtDontCare", "detDontCare"} <= set(
        result["per_sample"]["1"]
    )
    run = _cli(f"--gt={gt}", f"--submission={res}", "--iou=0.8")  # image 2's IoU is exactly 0.8: no match
    assert json.loads(run.stdout)["method"]["recall"] == 0.5 and json.loads(run.stdout)["per_sample"] == {}
    _write(tmp_path / "bad", {"res_img_1.txt": "0,0,10,0,10,10,0,10\n1,2,3\n"})
    for args, message in [
        ([f"--gt={gt}", f"--submission={tmp_path / 'bad'}"], "res_img_1.txt: line 2: expected exactly 8"),
        ([f"--gt={tmp_path / 'nowhere'}", f"--submission={res}"], "nowhere: no such folder or zip file"),
        ([f"--gt={gt}", f"--submission={res}", "--iou=1.5"], "must lie in [0, 1)"),
        ([f"--gt={gt}"], "the following arguments are required: --submission"),
    ]:
        run = _cli(*args)
        assert run.returncode == 2 and run.stdout == ""
        assert run.stderr.count("\n") == 1 and run.stderr.startswith("tfls: error: ") and message in run.stderr


@pytest.mark.skipif(not os.path.exists(GT_ZIP), reason=f"real ICDAR 2015 gt not found at {GT_ZIP}")
def test_real_ground_truth_as_a_submission(tmp_path):
    # 40 real files; expected figures from an independent count of the raw lines.
    gt_dir, same, everything, dropped = (tmp_path / d for d in ("gt", "same", "all", "dropped"))
    for folder in (gt_dir, same, everything, dropped):
        folder.mkdir()
    care = images_with_care = 0
    with zipfile.ZipFile(GT_ZIP) as z:
        for name in sorted(z.namelist())[:40]:
            raw = z.read(name)
            (gt_dir / name).write_bytes(raw)
            lines = [line for line in raw.decode("utf-8-sig").split("\r\n") if line]
            cared = [",".join(line.split(",")[:8]) for line in lines if line.split(",", 8)[8] != "###"]
            res_name = name.replace("gt_img_", "res_img_")
            (same / res_name).write_text("\n".join(cared))
            (everything / res_name).write_text("\r\n".join(",".join(line.split(",")[:8]) for line in lines))
            (dropped / res_name).write_text("\n".join(cared[1:]))
            care += len(cared)
            images_with_care += bool(cared)
    for submission in (same, everything):
        method = json.loads(_cli(f"--gt={gt_dir}", f"--submission={submission}").stdout)["method"]
        assert (method["precision"], method["recall"], method["hmean"], method["num_care_gt"]) == (1, 1, 1, care)
    method = icdar.evaluate_files(str(gt_dir), str(dropped))["method"]
    assert method["precision"] == 1.0 and method["recall"] == pytest.approx((care - images_with_care) / care)
