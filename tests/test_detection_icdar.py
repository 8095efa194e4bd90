"""ICDAR 2015 reader (hand-made files and the real test ground truth) and the evaluation protocol."""

import os
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
