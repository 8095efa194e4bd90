"""Reading photos: the in-graph crop against its NumPy reference, reading order, the ICDAR 2015 end-to-end
matcher on hand-computed cases, the OCR export in a fresh process (both loaders), and `tfls read`."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import load_file
from PIL import Image

from tfls.detection import boxes as box_lib
from tfls.detection import icdar
from tfls.ocr import endtoend
from tfls.ocr.crop import quad_homographies, rectify, rectify_numpy
from tfls.ocr.reading_order import reading_order

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DET_SET = [
    "data.image_size=64",
    "model.rpn_pre_nms=30",
    "model.rpn_post_nms=8",
    "model.head_units=32",
    "model.max_detections=8",
    "eval.score_threshold=0.0",
]
STR_SET = ["model.channels=(4,4,8,8)", "model.hidden=8"]
OUTPUT_DTYPES = {
    "boxes": "float32",
    "texts": "object",
    "box_scores": "float32",
    "text_confidences": "float32",
    "num_words": "int32",
}


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)


def _encode(array, fmt="PNG"):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


# ---- crop ----------------------------------------------------------------------------------------------


def _ramp_image(height, width):
    """Channel 0 = 2x + 1, channel 1 = 3y + 5 at each pixel centre: bilinear sampling reads it exactly."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    return np.stack([2 * x + 1, 3 * y + 5], -1).astype(np.float32)


@pytest.mark.parametrize("margin", [0.0, 0.25])
def test_rotated_box_gives_the_expected_pixels(margin):
    image = _ramp_image(80, 100)
    cx, cy, w, h, angle = 50.0, 40.0, 40.0, 12.0, np.deg2rad(30.0)
    quad = box_lib.angle_box_to_quad([cx, cy, w, h, angle])
    out_h, out_w = 6, 20
    # Crop pixel (i, j) is the box-frame point at fractions (u, v) of the (widened) box, turned by `angle`.
    mu, mv = margin * h / w, margin
    u = -mu + (1 + 2 * mu) * (np.arange(out_w) + 0.5) / out_w
    v = -mv + (1 + 2 * mv) * (np.arange(out_h) + 0.5) / out_h
    du, dv = (u[None, :] - 0.5) * w, (v[:, None] - 0.5) * h
    x = cx + np.cos(angle) * du - np.sin(angle) * dv
    y = cy + np.sin(angle) * du + np.cos(angle) * dv
    expected = np.stack([2 * x + 1, 3 * y + 5], -1)
    got = rectify(image, quad[None], out_h, out_w, margin=margin).numpy()[0]
    np.testing.assert_allclose(got, expected, atol=2e-3)
    np.testing.assert_allclose(rectify_numpy(image, quad[None], out_h, out_w, margin=margin)[0], expected, atol=2e-3)


def test_crop_matches_numpy_reference_on_perspective_quads():
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 255, (40, 60, 3)).astype(np.float32)
    quads = np.array(
        [
            [[5, 6], [40, 3], [44, 20], [8, 25]],  # perspective
            [[10, 10], [30, 10], [30, 20], [10, 20]],  # upright
            [[-5, 30], [70, 28], [66, 50], [-2, 45]],  # overhangs the image: border pixels repeat
            [[20, 20], [20, 20], [20, 20], [20, 20]],  # flat: no NaN
        ],
        np.float32,
    )
    for margin, supersample in ((0.0, 1), (0.2, 2)):
        got = rectify(image, quads, 8, 16, margin=margin, supersample=supersample).numpy()
        want = rectify_numpy(image, quads, 8, 16, margin=margin, supersample=supersample)
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, want, atol=2e-3)
    # Heckbert's closed form puts the unit square's corners on the quad's corners.
    coeffs = quad_homographies(quads[:3]).numpy()
    for c, quad in zip(coeffs, quads):
        for (u, v), corner in zip([(0, 0), (1, 0), (1, 1), (0, 1)], quad):
            z = c[6] * u + c[7] * v + 1
            point = [(c[0] * u + c[1] * v + c[2]) / z, (c[3] * u + c[4] * v + c[5]) / z]
            np.testing.assert_allclose(point, corner, atol=1e-3)


def test_crop_same_eagerly_in_tf_function_and_in_dataset_map():
    rng = np.random.default_rng(4)
    image = rng.uniform(0, 255, (30, 50, 1)).astype(np.float32)
    quads = np.array([[[3, 4], [40, 8], [38, 20], [2, 16]]], np.float32)
    eager = rectify(image, quads, 8, 24, margin=0.1, supersample=2).numpy()
    traced = tf.function(
        lambda im, q: rectify(im, q, 8, 24, margin=0.1, supersample=2),
        input_signature=[tf.TensorSpec([None, None, 1]), tf.TensorSpec([None, 4, 2])],
    )(image, quads).numpy()
    ds = tf.data.Dataset.from_tensors((image, quads)).map(lambda im, q: rectify(im, q, 8, 24, 0.1, 2))
    mapped = next(iter(ds)).numpy()
    np.testing.assert_allclose(traced, eager, atol=1e-3)
    np.testing.assert_allclose(mapped, eager, atol=1e-3)


def test_reading_order_lines_then_left_to_right():
    def box(cx, cy, w=20.0, h=10.0, deg=0.0):
        return box_lib.angle_box_to_quad([cx, cy, w, h, np.deg2rad(deg)])

    # Line 1 at y ~ 20 (one word slightly lower and tilted), line 2 at y ~ 50; slot 4 is padding.
    quads = np.stack([box(80, 50), box(60, 22, deg=8), box(20, 20), box(20, 52), box(0, 0), box(100, 19)])
    valid = np.array([True, True, True, True, False, True])
    order = reading_order(quads[None], valid[None]).numpy()[0]
    assert order.tolist() == [2, 1, 5, 3, 0, 4]
    # Nothing valid: the slots keep their places.
    assert reading_order(quads[None], np.zeros((1, 6), bool)).numpy()[0].tolist() == list(range(6))


# ---- end to end evaluation ----------------------------------------------------------------------------


def _rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def test_endtoend_hand_computed_image():
    gt = np.stack([_rect(0, 0, 100, 20), _rect(0, 40, 100, 60), _rect(0, 80, 100, 100), _rect(200, 0, 260, 40)])
    gt_texts = ["Hotel,", "open", "24h", "###"]
    dets = np.stack(
        [
            _rect(2, 0, 100, 20),  # IoU 0.98 with "Hotel,": read "HOTEL" (case and the GT's final comma)
            _rect(0, 41, 100, 61),  # IoU 0.905 with "open": read "opem", wrong
            _rect(205, 5, 255, 35),  # inside the don't-care box: ignored
            _rect(300, 300, 340, 320),  # nothing there
        ]
    )
    r = endtoend.evaluate_image(dets, ["HOTEL", "opem", "xx", "yy"], gt, gt_texts, [t == "###" for t in gt_texts])
    assert r["pairs"] == [(0, 0), (1, 1)] and r["pairs_correct"] == [True, False]
    assert r["det_dontcare"] == [2]
    assert (r["correct"], r["num_care_gt"], r["num_care_det"]) == (1, 3, 3)
    assert r["e2e_precision"] == pytest.approx(1 / 3) and r["e2e_recall"] == pytest.approx(1 / 3)
    assert r["hmean"] == pytest.approx(2 / 3)  # detection alone: 2 of 3 either way


def test_endtoend_pairs_boxes_first_then_judges_text():
    gt = np.stack([_rect(0, 0, 100, 20)])
    # Both detections overlap the word; the first in file order takes it (greedy, as detection) although only
    # the second reads it right, which then counts as a false detection.
    dets = np.stack([_rect(0, 0, 90, 20), _rect(0, 0, 100, 20)])
    acc = endtoend.EndToEndAccumulator()
    r = acc.add(dets, ["hotei", "hotel"], gt, ["hotel"], [False])
    assert r["pairs"] == [(0, 0)] and r["correct"] == 0
    # IoU exactly 0.5 does not match (strictly greater, as detection and the official script).
    acc.add(np.stack([_rect(0, 0, 100, 10)]), ["tall"], gt, ["tall"], [False])
    acc.add(np.stack([_rect(0, 0, 100, 11)]), ["TALL"], gt, ["tall"], [False])
    result = acc.result()
    assert (result["num_correct"], result["num_matched"], result["num_care_gt"], result["num_care_det"]) == (1, 2, 3, 4)
    assert result["precision"] == pytest.approx(0.25) and result["recall"] == pytest.approx(1 / 3)
    assert result["hmean"] == pytest.approx(2 * 0.25 / 3 / (0.25 + 1 / 3))


@pytest.mark.parametrize(
    "gt_text, det_text, official, exact",
    [
        ("Hotel", "hOTEL", True, True),
        ("(24h)", "24h", True, False),
        ("hotel.", "hotel", True, False),
        ("'tis", "tis", True, False),
        ("a.b", "ab", False, False),  # only the first and last character may be dropped
        ("hotel", "hotel.", False, False),  # the allowance is the ground truth's, not the detection's
        ("hotel", "", False, False),
    ],
)
def test_transcription_match(gt_text, det_text, official, exact):
    assert endtoend.transcription_match(gt_text, det_text) is official
    assert endtoend.transcription_match(gt_text, det_text, exact=True) is exact


def test_endtoend_command_on_files(tmp_path, capsys):
    gt_dir, res_dir = tmp_path / "gt", tmp_path / "res"
    gt_dir.mkdir()
    (gt_dir / "gt_img_1.txt").write_text("0,0,100,0,100,20,0,20,Hotel\n0,40,100,40,100,60,0,60,###\n")
    (gt_dir / "gt_img_2.txt").write_text("10,10,50,10,50,30,10,30,a,b\n")
    (gt_dir / "gt_img_3.txt").write_text("")
    endtoend.write_results(res_dir, 1, [_rect(0, 0, 100, 20), _rect(0, 40, 100, 60)], ["hotel", "junk"])
    endtoend.write_results(res_dir, 2, [_rect(10, 10, 50, 30)], ["a,b"])
    assert endtoend.read_results(str(res_dir))["2"][1] == ["a,b"]
    assert endtoend.main([f"--gt={gt_dir}", f"--submission={res_dir}", "--per-sample"]) == 0
    result = json.loads(capsys.readouterr().out)
    method = result["method"]
    assert (method["num_correct"], method["num_care_gt"], method["num_care_det"]) == (2, 2, 2)
    assert method["hmean"] == 1.0 and method["detection_hmean"] == 1.0
    assert result["per_sample"]["3"]["hmean"] == 1.0  # nothing to find, nothing found
    assert result["per_sample"]["1"]["detDontCare"] == [1]
    # A result line without its transcription is a one-line error naming the file and line.
    (res_dir / "res_img_2.txt").write_text("10,10,50,10,50,30,10,30\n")
    with pytest.raises(SystemExit) as exit_info:
        endtoend.main([f"--gt={gt_dir}", f"--submission={res_dir}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tfls: error: ") and "res_img_2.txt: line 1" in err[0]


def test_endtoend_counts_as_detection_when_every_text_is_right():
    rng = np.random.default_rng(0)
    gt = {}
    results = {}
    for k in range(5):
        quads = np.stack([_rect(x, 10 * k, x + 30, 10 * k + 8) for x in (0, 50, 100)])
        texts = ["one", "###", "three"]
        gt[str(k)] = icdar.Annotation(quads.astype(np.float32), texts, np.array([t == "###" for t in texts]))
        keep = rng.random(3) < 0.7
        results[str(k)] = (quads[keep] + 1, [t.upper() for t, m in zip(texts, keep) if m])
    e2e = endtoend.evaluate(gt, results)["method"]
    det = icdar.evaluate(gt, {k: q for k, (q, _) in results.items()})["method"]
    for name in ("precision", "recall", "hmean"):
        assert e2e[name] == pytest.approx(det[name]) and e2e[f"detection_{name}"] == pytest.approx(det[name])


# ---- the OCR export --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny untrained detector and recognizer, their weights folders and their own exports."""
    from tfls import registry
    from tfls.configuration import load_config
    from tfls.job.weights import save_weights
    from tfls.recognition.serving import export_recognizer

    base = tmp_path_factory.mktemp("ocr_models")
    built = {}
    for name, overrides in (("det", DET_SET), ("str", STR_SET)):
        cls = registry.task_class(name)
        task = cls(load_config(registry.default_config_path(cls), overrides))
        model = task.build_model()
        save_weights(str(base / f"{name}_weights"), model)
        with open(base / f"{name}_weights" / "config.json", "w") as f:
            json.dump(task.config.to_dict(), f)  # as the job and tfls.ship record it
        built[name] = (task, model)
    det_task, detector = built["det"]
    str_task, recognizer = built["str"]
    det_task.export(detector, str(base / "det" / "1"))
    export_recognizer(recognizer, str_task.charset, str(base / "str" / "1"))
    return base, built


def _scene_files(folder):
    from tfls.ocr.photos import render_photo

    photo, _, _ = render_photo(np.random.default_rng(5), 160, 120, 4, 10, 20)
    jpeg, _, _ = render_photo(np.random.default_rng(6), 300, 200, 3, 12, 24)
    paths = {"photo": folder / "photo.png", "jpeg": folder / "photo.jpg", "blank": folder / "blank.png"}
    paths["photo"].write_bytes(_encode(photo))
    paths["jpeg"].write_bytes(_encode(jpeg, "JPEG"))
    paths["blank"].write_bytes(_encode(np.full((90, 70, 3), 255, np.uint8)))
    return paths


@pytest.fixture(scope="module")
def ocr_export(models, tmp_path_factory):
    """The OCR export built by the command line from the weights folders (each with the config.json that
    trained it), and rendered photos."""
    base, _ = models
    output = base / "ocr" / "1"
    cmd = [sys.executable, "-m", "tfls.ocr.export", f"--detector-weights={base / 'det_weights'}"]
    # Untrained recognizers are unsure of every word: keep them all (no lowest text confidence).
    cmd += [f"--recognizer-weights={base / 'str_weights'}", f"--output={output}", "--min-text-confidence=0"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "det_weights" in proc.stdout and "str_weights" in proc.stdout
    return output, _scene_files(tmp_path_factory.mktemp("ocr_images"))


LOAD_SCRIPT = r"""
import json, sys, numpy as np, tensorflow as tf
path, npy = sys.argv[1], sys.argv[2]
batches = {"images": np.load(npy, allow_pickle=True), "empty": np.zeros([0], dtype=object)}

def describe(out):
    return {k: {"shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype),
                "value": [[x.decode() for x in row] for row in v] if k == "texts" else np.asarray(v).tolist()}
            for k, v in out.items()}

report = {"tf2": {}, "tf1": {}}
fn = tf.saved_model.load(path).signatures["serving_default"]
for name, batch in batches.items():
    report["tf2"][name] = describe({k: v.numpy() for k, v in fn(image_bytes=tf.constant(batch, tf.string)).items()})
with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
    sig = meta.signature_def["serving_default"]
    report["signature"] = {k: {"dtype": tf.dtypes.as_dtype(v.dtype).name,
                               "shape": [d.size for d in v.tensor_shape.dim]} for k, v in sig.outputs.items()}
    report["inputs"] = sorted(sig.inputs)
    fetch = {k: v.name for k, v in sig.outputs.items()}
    for name, batch in batches.items():
        report["tf1"][name] = describe(sess.run(fetch, {sig.inputs["image_bytes"].name: batch}))
print("REPORT " + json.dumps(report))
"""


def test_ocr_export_in_a_fresh_process_through_both_loaders(models, ocr_export, tmp_path):
    from tfls.ocr.export import SCALES, ocr_function, scaled_detectors

    _, built = models
    path, files = ocr_export
    pb = (path / "saved_model.pb").read_bytes()
    assert b"EagerPyFunc" not in pb and b"PyFunc" not in pb
    images = [files["photo"].read_bytes(), files["blank"].read_bytes(), files["jpeg"].read_bytes()]
    npy = tmp_path / "inputs.npy"
    np.save(npy, np.array(images, dtype=object), allow_pickle=True)
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(path), str(npy)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("REPORT "))[7:])

    assert report["inputs"] == ["image_bytes"]
    k = built["det"][1].max_detections
    declared = {"boxes": [-1, k, 8], "texts": [-1, k], "box_scores": [-1, k], "text_confidences": [-1, k]}
    declared["num_words"] = [-1]
    assert {name: s["shape"] for name, s in report["signature"].items()} == declared
    assert {name: s["dtype"] for name, s in report["signature"].items()} == {
        "boxes": "float32",
        "texts": "string",
        "box_scores": "float32",
        "text_confidences": "float32",
        "num_words": "int32",
    }
    det_task, detector = built["det"]
    str_task, recognizer = built["str"]
    expected = ocr_function(
        detector,
        det_task.config.data.image_size,
        det_task.config.eval.score_threshold,
        recognizer,
        str_task.charset.lookup_table(),
        min_text_confidence=0.0,
        scale_detectors=scaled_detectors(detector, det_task.config, SCALES),  # the export's default scales
    )(tf.constant(images))
    for loader in ("tf2", "tf1"):
        out = report[loader]["images"]
        for name, dtype in OUTPUT_DTYPES.items():
            assert out[name]["dtype"] == dtype and out[name]["shape"][0] == 3
            empty = report[loader]["empty"][name]
            assert empty["shape"][0] == 0 and empty["shape"][1:] == out[name]["shape"][1:], (loader, name)
        num = np.array(out["num_words"]["value"])
        np.testing.assert_array_equal(num, expected["num_words"].numpy())
        np.testing.assert_allclose(out["boxes"]["value"], expected["boxes"].numpy(), atol=1e-3)
        assert out["texts"]["value"] == [[t.decode() for t in row] for row in expected["texts"].numpy()]
        # Rows after num_words are padding.
        for i, n in enumerate(num):
            assert all(t == "" for t in out["texts"]["value"][i][n:])
            assert not np.any(np.array(out["boxes"]["value"][i][n:])) and not np.any(out["box_scores"]["value"][i][n:])
    assert expected["num_words"].numpy()[0] > 0  # untrained, threshold 0: the recognizer did run
    # The export holds the recognizer and one detector per side of its scales (the default two), each with the
    # detector's values: an export that dropped the scales would hold one.
    loaded = tf.saved_model.load(str(path))
    first = detector.variables[0].numpy()  # the backbone's first kernel: a fingerprint of a detector copy
    copies = [v for v in loaded.variables if tuple(v.shape) == first.shape and np.array_equal(v.numpy(), first)]
    assert len(copies) == len(SCALES) == 2
    assert len(loaded.variables) == len(SCALES) * len(detector.variables) + len(recognizer.variables)


def test_scale_sides_are_multiples_of_the_input_on_the_stride():
    from tfls.ocr.export import scale_sides

    assert scale_sides(512, [1, 2]) == [512, 1024]
    assert scale_sides(512, [2.0, 1.0, 1.0]) == [1024, 512]  # order kept, repeats dropped
    assert scale_sides(512, [1, 1.3]) == [512, 664]  # 665.6 -> the nearest multiple of 8
    assert scale_sides(1024, [1, 1.3], 32) == [1024, 1344]  # ResNet-50 + FPN: 1331.2 -> a multiple of 32
    for bad in ([2.0], [1.0, -1.0], [1.0, float("inf")], [1.0, float("nan")], []):
        with pytest.raises(ValueError, match="detector scales"):
            scale_sides(512, bad)


def test_merge_scales_keeps_the_best_of_overlapping_boxes_hand_computed():
    from tfls.ocr.export import merge_scales

    boxes = tf.constant(
        [
            [
                [0.5, 0.5, 0.2, 0.1, 1.0, 0.0],  # A, 1x, 0.9
                [0.2, 0.2, 0.1, 0.05, 1.0, 0.0],  # C, 1x, 0.7
                [0.8, 0.8, 0.1, 0.1, 1.0, 0.0],  # D, 1x, not kept by its scale (score threshold)
                [0.51, 0.5, 0.2, 0.1, 1.0, 0.0],  # B, 2x: IoU with A = 0.19 / 0.21 = 0.905 -> suppressed
                [0.5, 0.8, 0.1, 0.04, 0.0, 1.0],  # E, 2x, 0.8, a word standing upright, found at 2x only
            ]
        ]
    )
    scores = tf.constant([[0.9, 0.7, 0.95, 0.85, 0.8]])
    valid = tf.constant([[True, True, False, True, True]])
    out_boxes, out_scores, keep = merge_scales(boxes, scores, valid, 4, 0.3)
    assert keep.numpy().tolist() == [[True, True, True, False]]
    np.testing.assert_allclose(out_scores.numpy(), [[0.9, 0.8, 0.7, 0.0]], atol=1e-6)
    np.testing.assert_allclose(out_boxes.numpy()[0, :3], boxes.numpy()[0, [0, 4, 1]], atol=1e-6)
    assert not out_boxes.numpy()[0, 3].any()


def test_scaled_detectors_hold_the_detectors_weights_at_other_sides(models):
    from tfls.ocr.export import scaled_detectors

    _, built = models
    det_task, detector = built["det"]
    side = det_task.config.data.image_size
    extra = scaled_detectors(detector, det_task.config, [1.0, 2.0])
    assert [s for _, s in extra] == [2 * side]
    clone = extra[0][0]
    assert clone.image_size == 2 * side
    for a, b in zip(detector.get_weights(), clone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert scaled_detectors(detector, det_task.config, [1.0]) == []


def test_export_command_refuses_bad_scales(tmp_path):
    cmd = [sys.executable, "-m", "tfls.ocr.export", "--detector-weights=x", "--recognizer-weights=y"]
    for bad, why in (("2", "must be one of them"), ("1,zero", "could not convert")):
        proc = subprocess.run(
            cmd + [f"--output={tmp_path / 'o'}", f"--scales={bad}"],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 2 and f"--scales={bad}" in proc.stderr and why in proc.stderr, proc.stderr
        assert not (tmp_path / "o").exists()


def test_min_text_confidence_drops_unsure_words_and_keeps_the_order(models, ocr_export):
    from tfls.ocr.export import ocr_function

    _, built = models
    _, files = ocr_export
    det_task, detector = built["det"]
    str_task, recognizer = built["str"]
    images = tf.constant([files["photo"].read_bytes(), files["jpeg"].read_bytes()])

    def serve(confidence):
        return ocr_function(
            detector, 64, 0.0, recognizer, str_task.charset.lookup_table(), min_text_confidence=confidence
        )(images)

    full = serve(0.0)
    counts = full["num_words"].numpy()
    conf = [full["text_confidences"][i, : counts[i]].numpy() for i in range(2)]
    values = np.sort(np.concatenate(conf))
    assert len(np.unique(values)) > 2  # the cut below splits the words
    cut = float(values[len(values) // 2])
    filtered = serve(cut)
    for i in range(2):
        kept = np.flatnonzero(conf[i] >= cut)  # the words that stay, in their reading order
        n = int(filtered["num_words"][i])
        assert n == len(kept)
        np.testing.assert_allclose(filtered["boxes"][i, :n].numpy(), full["boxes"][i].numpy()[kept], atol=1e-4)
        assert filtered["texts"][i, :n].numpy().tolist() == full["texts"][i].numpy()[kept].tolist()
        np.testing.assert_allclose(filtered["text_confidences"][i, :n].numpy(), conf[i][kept], rtol=1e-5)
        np.testing.assert_allclose(filtered["box_scores"][i, :n].numpy(), full["box_scores"][i].numpy()[kept])
        assert not filtered["boxes"][i, n:].numpy().any() and not filtered["box_scores"][i, n:].numpy().any()
        assert all(t == b"" for t in filtered["texts"][i, n:].numpy())


def test_image_without_words_skips_the_recognizer(models):
    from tfls.ocr.export import ocr_function

    _, built = models
    det_task, detector = built["det"]
    str_task, recognizer = built["str"]
    serve = ocr_function(detector, 64, 1.01, recognizer, str_task.charset.lookup_table())
    out = serve(tf.constant([_encode(np.full((50, 80, 3), 255, np.uint8)), _encode(np.zeros((30, 30, 3), np.uint8))]))
    assert out["num_words"].numpy().tolist() == [0, 0]
    assert out["texts"].shape == (2, detector.max_detections) and not out["boxes"].numpy().any()
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a non-empty"):
        serve(tf.constant([b"not an image"]))


def test_export_command_refuses_a_workdir_of_another_config(models, tmp_path):
    from tfls.job.workdir import Workdir
    from tfls.ocr.export import ExportError, load_task_model

    base, built = models
    det_task, detector = built["det"]
    workdir = tmp_path / "wd"
    Workdir(str(workdir), "det", det_task.config)
    with pytest.raises(ExportError, match="another data/model config"):
        load_task_model("det", workdir=str(workdir), overrides=["data.image_size=96"])
    with pytest.raises(ExportError, match="no tuned or baseline weights"):
        load_task_model("det", workdir=str(workdir), overrides=DET_SET)
    # The config.json a job writes is the default; an override on top of it still changes the fingerprint.
    (workdir / "config.json").write_text(json.dumps(det_task.config.to_dict()))
    with pytest.raises(ExportError, match="no tuned weights"):
        load_task_model("det", workdir=str(workdir), which="tuned")
    with pytest.raises(ExportError, match="another data/model config"):
        load_task_model("det", workdir=str(workdir), overrides=["model.channels=32"])


# ---- tfls read ---------------------------------------------------------------------------------------------


def _read(*args):
    cmd = [sys.executable, "-m", "tfls.main", "read", *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)


def _our_lines(stderr):
    """stderr without TensorFlow's start-up lines (C++ logging that no environment variable silences)."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("tfls")]


def test_read_command_json_draw_and_bad_files(ocr_export, tmp_path):
    path, files = ocr_export
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    missing = tmp_path / "missing.jpg"
    drawn = tmp_path / "drawn"
    drawn.mkdir()
    # A folder of versions: the highest one is used.
    proc = _read(files["photo"], bad, files["jpeg"], missing, f"--ocr={path.parent}", "--json", f"--draw={drawn}")
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = _our_lines(proc.stderr)
    assert len(errors) == 2, proc.stderr
    assert errors[0].startswith(f"tfls: error: {bad}: ") and "not a decodable image" in errors[0]
    assert errors[1] == f"tfls: error: {missing}: No such file or directory"
    result = json.loads(proc.stdout)
    assert [r["image"] for r in result["images"]] == [str(files["photo"]), str(files["jpeg"])]
    assert [e["image"] for e in result["errors"]] == [str(bad), str(missing)]
    assert (result["images"][1]["width"], result["images"][1]["height"]) == (300, 200)
    words = result["images"][0]["words"]
    assert words and set(words[0]) == {"text", "box_score", "text_confidence", "box"} and len(words[0]["box"]) == 8
    # Same image names in one folder: the second drawing gets a suffix; each keeps its image's size.
    assert Image.open(drawn / "photo.png").size == (160, 120)
    assert Image.open(drawn / "photo_2.png").size == (300, 200)


def test_read_command_with_two_exports_prints_words_in_reading_order(models, ocr_export, tmp_path):
    base, _ = models
    path, files = ocr_export
    out_png = tmp_path / "out.png"
    exports = (f"--detector={base / 'det' / '1'}", f"--recognizer={base / 'str'}")
    pair = _read(files["photo"], *exports, f"--draw={out_png}", "--min-text-confidence=0")
    assert pair.returncode == 0, pair.stderr[-3000:]
    lines = pair.stdout.strip().splitlines()
    n = int(lines[0].split(": ")[1].split()[0])
    assert lines[0] == f"{files['photo']}: {n} word{'s' if n != 1 else ''}" and len(lines) == n + 1
    boxes = []
    for line in lines[1:]:
        text, box_score, confidence, coords = line.split("\t")
        assert 0.0 <= float(box_score) <= 1.0 and 0.0 <= float(confidence) <= 1.0
        boxes.append([float(v) for v in coords.split(",")])
    assert Image.open(out_png).size == (160, 120)
    # The same detector and reading order as an OCR export that detects at one scale (the detection export's
    # input side): the same boxes in the same order.
    one_scale = tmp_path / "ocr1x"
    cmd = [sys.executable, "-m", "tfls.ocr.export", f"--detector-weights={base / 'det_weights'}", "--scales=1"]
    cmd += [f"--recognizer-weights={base / 'str_weights'}", f"--output={one_scale}", "--min-text-confidence=0"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = _read(files["photo"], f"--ocr={one_scale}", "--json")
    assert single.returncode == 0, single.stderr[-3000:]
    ocr_boxes = [w["box"] for w in json.loads(single.stdout)["images"][0]["words"]]
    np.testing.assert_allclose(boxes, ocr_boxes, atol=0.051)
    # No confidence reaches above 1: every word is dropped.
    none = _read(files["photo"], *exports, "--min-text-confidence=1.01")
    assert none.returncode == 0 and none.stdout.strip() == f"{files['photo']}: 0 words", none.stdout


def test_read_command_usage_errors(ocr_export, tmp_path):
    path, files = ocr_export
    for args, message in (
        ((files["photo"], f"--ocr={path}", f"--detector={path}"), "either --ocr"),
        ((files["photo"], f"--detector={path}"), "--detector and --recognizer go together"),
        ((files["photo"], f"--ocr={tmp_path}"), "no SavedModel"),
        ((files["photo"], f"--ocr={path}", "--draw=out.gif"), "--draw=out.gif"),
    ):
        proc = _read(*args)
        err = _our_lines(proc.stderr)
        assert proc.returncode == 2 and len(err) == 1 and err[0].startswith("tfls: error: "), proc.stderr
        assert message in err[0]


def _shipped(name):
    folder = os.path.join(ROOT, "weights", name)
    return folder if tf.train.latest_checkpoint(folder) else None


@pytest.mark.skipif(
    not (_shipped("det") and _shipped("str")),
    reason="recovering words needs trained models: no shipped weights in weights/det and weights/str yet "
    "(the command path is tested above with untrained ones)",
)
def test_read_recovers_the_words_of_rendered_scenes_with_shipped_weights(tmp_path):
    """`tfls read --ocr` on the detection task's own `test` scenes (configs/det.py, rendered as the task renders
    them, PNG at their own sizes) finds and reads their words: scored by the ICDAR 2015 end-to-end rule."""
    from helpers import load_bench

    if os.path.join(ROOT, "bench") not in sys.path:
        sys.path.insert(0, os.path.join(ROOT, "bench"))
    bench = load_bench("ocr_endtoend")
    output = tmp_path / "ocr" / "1"
    cmd = [sys.executable, "-m", "tfls.ocr.export", f"--detector-weights={_shipped('det')}"]
    cmd += [f"--recognizer-weights={_shipped('str')}", f"--output={output}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    gt, images = bench.render_set(bench.scene_task(), "test", 12)
    paths = []
    for key, data in images.items():
        paths.append(tmp_path / f"scene_{key}.png")
        paths[-1].write_bytes(data)
    proc = _read(*paths, f"--ocr={output}", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout)["images"]
    assert len(found) == len(gt)
    acc = endtoend.EndToEndAccumulator()
    for ann, image in zip(gt.values(), found):
        words = image["words"]
        det = np.array([w["box"] for w in words], np.float64).reshape(-1, 4, 2)
        acc.add(det, [w["text"] for w in words], ann.quads, list(ann.texts), ann.dontcare)
    result = acc.result()
    # a floor that only a working crop-and-read pipeline clears (untrained models score ~0); the figure itself
    # is bench/ocr_endtoend.py's (docs/RESULTS.md, "OCR end to end")
    assert result["hmean"] >= 0.35 and result["detection_hmean"] >= 0.5, result


# ---- the serving client ------------------------------------------------------------------------------------


def test_client_prints_ocr_rows_and_models_config_lists_ocr():
    from google.protobuf import text_format
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.config import model_server_config_pb2

    client = load_file("tfls_export_client", "export", "client.py")
    response = predict_pb2.PredictResponse()
    outputs = {
        "boxes": np.arange(16, dtype=np.float32).reshape(1, 2, 8),
        "texts": np.array([[b"hello", b""]], dtype=object),
        "box_scores": np.array([[0.9, 0.0]], np.float32),
        "text_confidences": np.array([[0.75, 0.0]], np.float32),
        "num_words": np.array([1], np.int32),
    }
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    rows = client.grpc_outputs_to_rows(response)
    assert client.format_prediction("photo.jpg", rows[0]).splitlines() == [
        "photo.jpg\t1 words",
        "  hello\t0.900\t0.750\t0.0,1.0,2.0,3.0,4.0,5.0,6.0,7.0",
    ]
    config = model_server_config_pb2.ModelServerConfig()
    with open(os.path.join(ROOT, "export", "models.config")) as f:
        text_format.Parse(f.read(), config)
    assert [c.name for c in config.model_config_list.config] == ["str", "det", "ocr"]
