"""Hostile input: each bad LMDB record, ICDAR line, image or serving request gets a clear error or a counted
skip, never a crash deep in TensorFlow and never a silent loss. docs/HOSTILE_INPUTS.md lists the outcomes."""

import io
import logging
import os
import sys
import threading
import time

import lmdb
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfls import images as images_lib
from tfls.detection import data as det_data
from tfls.detection import icdar
from tfls.detection.task import DetectionTask
from tfls.recognition import data as rec_data
from tfls.recognition.charset import Charset
from tfls.recognition.make_lmdb import gt_file_examples, write_lmdb
from tfls.recognition.recognizer import Recognizer
from tfls.recognition.serving import export_recognizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from configs import det as det_config  # noqa: E402


def encode(array, fmt="PNG", mode=None):
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format=fmt)
    return buf.getvalue()


def huge_png(side=10000):
    """A one-colour 10000 x 10000 grey PNG: about 100 kB on disk, 100 MB (grey) or 300 MB (RGB) decoded."""
    buf = io.BytesIO()
    Image.new("L", (side, side), 128).save(buf, format="PNG")
    return buf.getvalue()


ARRAY16 = (np.arange(12 * 20, dtype=np.uint16).reshape(12, 20) * 250 + 3000).astype(np.uint16)

# Images of every odd kind that must decode: name -> (bytes, expected grey mean when known).
ODD_IMAGES = {
    "1x1": (encode(np.full((1, 1, 3), 200, np.uint8)), 200.0),
    "grayscale": (encode(np.full((10, 30), 90, np.uint8)), 90.0),
    "rgba": (encode(np.dstack([np.full((10, 30, 3), 60, np.uint8), np.zeros((10, 30), np.uint8)])), 60.0),
    "grey_alpha": (encode(np.dstack([np.full((10, 30), 70, np.uint8), np.full((10, 30), 255, np.uint8)])), 70.0),
    "png16": (encode(ARRAY16), float(np.mean(ARRAY16 / 257.0))),
    "gif": (encode(np.full((10, 30), 40, np.uint8), "GIF"), None),
    "bmp": (encode(np.full((10, 30, 3), 150, np.uint8), "BMP"), 150.0),
    "jpeg": (encode(np.full((10, 30, 3), 100, np.uint8), "JPEG"), 100.0),
}
NOT_IMAGES = {"empty": b"", "text": b"this is not an image", "truncated_png": encode(np.zeros((8, 8), np.uint8))[:40]}


class PeakRss:
    """Samples this process's resident memory in a thread; `growth_mb` is the peak above the start."""

    def __enter__(self):
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self._rss()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _rss(self):
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self._rss())
        self.growth_mb = (self.peak - self.start) / 2**20


# ----------------------------------------------------------------------------------------------------------
# LMDB word datasets


def raw_lmdb(path, records):
    """Writes raw key -> bytes records (no checks), so that any hostile layout can be built."""
    env = lmdb.open(str(path), map_size=1 << 28)
    with env.begin(write=True) as txn:
        for key, value in records.items():
            txn.put(key.encode(), value)
    env.close()
    return str(path)


def word_records(pairs, num_samples=True):
    records = {}
    for i, (image, label) in enumerate(pairs, 1):
        if image is not None:
            records[f"image-{i:09d}"] = image
        if label is not None:
            records[f"label-{i:09d}"] = label if isinstance(label, bytes) else label.encode()
    if num_samples:
        records["num-samples"] = str(len(pairs)).encode()
    return records


GOOD = encode(np.full((10, 30), 128, np.uint8))


def test_lmdb_without_num_samples_is_refused_by_name(tmp_path):
    path = raw_lmdb(tmp_path / "no_count", word_records([(GOOD, "abc")], num_samples=False))
    with pytest.raises(ValueError, match=r"no_count.*has no 'num-samples' key"):
        rec_data.LmdbWordDataset(path, Charset())
    path = raw_lmdb(tmp_path / "bad_count", {**word_records([(GOOD, "abc")]), "num-samples": b"twelve"})
    with pytest.raises(ValueError, match=r"bad_count.*'num-samples' is not an integer: b'twelve'"):
        rec_data.LmdbWordDataset(path, Charset())


def test_lmdb_labels_are_filtered_and_counted_by_reason(tmp_path, caplog):
    pairs = [
        (GOOD, "good"),
        (GOOD, ""),
        (GOOD, "a" * 1000),
        (GOOD, "caf\u00e9"),
        (GOOD, "x$y"),
        (GOOD, b"\xff\xfeab"),
        (GOOD, None),
        (GOOD, "UPPER"),  # case-folded by the default charset: kept
    ]
    path = raw_lmdb(tmp_path / "labels", word_records(pairs))
    with caplog.at_level(logging.WARNING):
        ds = rec_data.LmdbWordDataset(path, Charset())
    assert ds.indices == [1, 8]
    assert ds.filtered == {
        "empty label": 1,
        "label longer than 25 characters": 1,
        "characters outside the charset: '\u00e9'": 1,
        "characters outside the charset: '$'": 1,
        "label is not UTF-8": 1,
        "missing label record": 1,
    }
    assert "filtered 6 of 8 labels" in caplog.text
    labels = [ds.charset.decode(ids) for _, ids in ds.examples()]
    assert labels == ["good", "upper"]


def test_lmdb_corrupt_and_odd_images(tmp_path, caplog):
    pairs = [(image, "ok") for image, _ in ODD_IMAGES.values()]
    pairs += [(NOT_IMAGES["text"], "junk"), (NOT_IMAGES["truncated_png"], "cut"), (None, "noimage")]
    pairs += [(huge_png(), "huge")]
    path = raw_lmdb(tmp_path / "images", word_records(pairs))
    ds = rec_data.LmdbWordDataset(path, Charset(), image_shape=(8, 16, 1))
    with caplog.at_level(logging.WARNING), PeakRss() as rss:
        examples = list(ds.examples())
    assert len(examples) == len(ODD_IMAGES) and ds.corrupt == 4
    for name in ("image-000000009", "image-000000010", "image-000000011", "image-000000012"):
        assert f"skipping {name}" in caplog.text
    assert "missing image record" in caplog.text and "10000x10000 pixels" in caplog.text
    assert rss.growth_mb < 60, f"the 10000 x 10000 image was decoded: {rss.growth_mb:.0f} MB"
    for (name, (_, mean)), (image, _) in zip(ODD_IMAGES.items(), examples):
        assert image.shape == (8, 16, 1) and image.dtype == np.uint8
        if mean is not None:
            assert abs(image.mean() - mean) < 2.0, (name, image.mean(), mean)
    # Through tf.data as training uses it, the skipped records are simply not there.
    batches = list(rec_data.lmdb_eval_dataset(ds, 4))
    assert sum(int(b[0].shape[0]) for b in batches) == len(ODD_IMAGES)


def test_lmdb_with_no_decodable_image_fails_instead_of_spinning(tmp_path):
    path = raw_lmdb(tmp_path / "all_bad", word_records([(b"junk", "abc"), (b"", "def")]))
    ds = rec_data.LmdbWordDataset(path, Charset())
    with pytest.raises(ValueError, match=r"all_bad.*none of the 2 usable records has a decodable image"):
        next(ds.examples(shuffle_seed=0, repeat=True))
    with pytest.raises(ValueError, match=r"empty.* has no usable records after filtering"):
        empty = rec_data.LmdbWordDataset(raw_lmdb(tmp_path / "empty", word_records([])), Charset())
        rec_data.lmdb_mixture([empty], [1], 2, 0)


def test_make_lmdb_gt_file_with_hostile_lines(tmp_path, caplog):
    folder = tmp_path / "words"
    folder.mkdir()
    (folder / "a.png").write_bytes(GOOD)
    (folder / "bad.png").write_bytes(b"not a png")
    (folder / "huge.png").write_bytes(huge_png())
    lines = [
        b"\xef\xbb\xbfa.png\tfirst\r\n",  # BOM + CRLF
        b"a.png\t\r\n",  # empty label: written, the reader filters it
        b"a.png\t" + b"z" * 1000 + b"\r\n",  # 1000 characters: written, the reader filters it
        b"a.png\tx$y\n",  # out of the charset: written, the reader filters it
        b"a.png\tcaf\xe9\n",  # Latin-1, not UTF-8
        b"no tab here\n",
        b"missing.png\tword\n",
        b"bad.png\tword\n",
        b"huge.png\tword\n",
        b"\n",
    ]
    gt = folder / "gt.txt"
    gt.write_bytes(b"".join(lines))
    stats = {}
    with caplog.at_level(logging.WARNING):
        count = write_lmdb(str(tmp_path / "out"), gt_file_examples(str(gt), stats=stats))
    assert count == 4
    assert stats == {
        "written": 4,
        "non_utf8_line": 1,
        "malformed_line": 1,
        "missing_file": 1,
        "corrupt_image": 1,
        "image_too_large": 1,
    }
    for lineno in (5, 6, 7, 8, 9):
        assert f"gt.txt:{lineno}:" in caplog.text
    ds = rec_data.LmdbWordDataset(str(tmp_path / "out"), Charset())
    assert [ds.charset.decode(ids) for _, ids in ds.examples()] == ["first"]
    assert sum(ds.filtered.values()) == 3 and "empty label" in ds.filtered


# ----------------------------------------------------------------------------------------------------------
# ICDAR 2015 annotation files and images

CLOCKWISE = "10,10,50,10,50,30,10,30,word"


@pytest.mark.parametrize(
    "line, message",
    [
        ("10,10,50,10,50,30,10", "expected 8 coordinates and a transcription, got 7 fields"),
        ("10,10,50,10,50,thirty,10,30,word", "could not convert string to float: 'thirty'"),
        ("10,10,50,10,50,nan,10,30,word", "non-finite coordinate"),
    ],
)
def test_icdar_malformed_lines_name_file_and_line(line, message):
    text = CLOCKWISE + "\n" + line + "\n"
    with pytest.raises(icdar.ICDARFormatError, match=rf"gt_img_7.txt: line 2: {message}"):
        icdar.parse_gt(text, "gt_img_7.txt")
    stats = {}
    ann = icdar.parse_gt(text, "gt_img_7.txt", skip_bad=True, stats=stats)
    assert len(ann.quads) == 1 and stats == {"skipped": 1}


def test_icdar_extra_fields_are_part_of_the_transcription():
    ann = icdar.parse_gt("10,10,50,10,50,30,10,30,9,10,w\n10,10,50,10,50,30,10,30")
    assert ann.texts == ["9,10,w", ""] and len(ann.quads) == 2


def test_icdar_bom_and_crlf_parse_like_a_clean_file():
    dont_care = CLOCKWISE[:-4] + "###"
    clean = icdar.parse_gt((CLOCKWISE + "\n" + dont_care + "\n").encode())
    hostile = icdar.parse_gt(b"\xef\xbb\xbf" + (CLOCKWISE + "\r\n" + dont_care + "\r\n").encode())
    np.testing.assert_array_equal(clean.quads, hostile.quads)
    assert clean.texts == hostile.texts == ["word", "###"]
    assert clean.dontcare.tolist() == hostile.dontcare.tolist() == [False, True]


def test_icdar_non_utf8_bytes():
    data = (CLOCKWISE + "\n").encode() + b"10,10,50,10,50,30,10,30,caf\xe9\n"
    offset = data.index(b"\xe9")
    with pytest.raises(icdar.ICDARFormatError, match=rf"gt_img_3.txt: line 2: not UTF-8 at byte {offset}"):
        icdar.parse_gt(data, "gt_img_3.txt")
    stats = {}
    ann = icdar.parse_gt(data, "gt_img_3.txt", skip_bad=True, stats=stats)
    assert stats == {"non_utf8": 1} and ann.texts == ["word", "caf\ufffd"] and len(ann.quads) == 2


def test_icdar_counter_clockwise_and_self_intersecting_quads_are_reordered():
    lines = [
        CLOCKWISE,
        "10,10,10,30,50,30,50,10,ccw",  # the same box, counter-clockwise
        "10,10,50,30,50,10,10,30,bowtie",  # the same corners, connected across
    ]
    stats = {}
    ann = icdar.parse_gt("\n".join(lines), stats=stats)
    assert stats == {"counter_clockwise": 1, "self_intersecting": 1}
    for quad in ann.quads:
        np.testing.assert_array_equal(quad, ann.quads[0])
    assert not ann.dontcare.any()
    result = icdar.match_image(ann.quads[:1], ann.quads, ann.dontcare)
    assert result["matched"] == 1 and result["num_care_gt"] == 3


def test_icdar_degenerate_quads_become_dont_care():
    lines = [CLOCKWISE, "10,10,50,10,50,10,10,10,flat", "20,20,20,20,20,20,20,20,point", "0,0,1,1,2,2,3,3,line"]
    stats = {}
    ann = icdar.parse_gt("\n".join(lines), stats=stats)
    assert stats == {"degenerate": 3}
    assert ann.dontcare.tolist() == [False, True, True, True]
    result = icdar.match_image(ann.quads, ann.quads, ann.dontcare)
    assert result == {"matched": 1, "num_care_gt": 1, "num_care_det": 4, "pairs": [(0, 0)]}
    packed = det_data.pack_annotation(ann.quads, ann.dontcare, 64.0, 8)
    assert np.isfinite(packed["boxes"]).all()


def icdar_folder(tmp_path, image_files):
    for name, data in image_files.items():
        (tmp_path / f"img_{name}").write_bytes(data)
        image_id = name.split(".")[0]
        (tmp_path / f"gt_img_{image_id}.txt").write_text("1,1,5,1,5,3,1,3,w\n" + "1,1,2,x\n")
    return str(tmp_path)


def icdar_images():
    files = {}
    for i, (data, _) in enumerate(ODD_IMAGES.values(), 1):
        files[f"{i}.jpg" if data[:2] == b"\xff\xd8" else f"{i}.png"] = data
    files["20.png"] = NOT_IMAGES["text"]
    files["21.png"] = NOT_IMAGES["truncated_png"]
    files["22.png"] = huge_png()
    return files


def test_icdar_eval_folder_with_odd_and_bad_images(tmp_path, caplog):
    folder = icdar_folder(tmp_path, icdar_images())
    stats = {}
    with caplog.at_level(logging.WARNING), PeakRss() as rss:
        ds = det_data.icdar_dataset(folder, None, 32, 4, 16, stats)
    batch = next(iter(ds))
    assert batch[0].shape == (len(ODD_IMAGES), 32, 32, 3)
    assert stats == {"skipped": 11, "corrupt_image": 2, "image_too_large": 1}
    assert "img_22.png: image of 10000x10000 pixels" in caplog.text and "img_20.png" in caplog.text
    assert rss.growth_mb < 150, rss.growth_mb


def test_icdar_train_folder_checks_headers_before_streaming(tmp_path):
    folder = icdar_folder(tmp_path, icdar_images())
    stats = {}
    ds = det_data.icdar_train_dataset(folder, None, 32, 4, 4, seed=0, max_rotate_deg=5.0, stats=stats)
    images, target = next(iter(ds))
    assert images.shape == (4, 32, 32, 3) and np.isfinite(target["boxes"].numpy()).all()
    assert stats == {"skipped": 11, "corrupt_image": 2, "image_too_large": 1}


# ----------------------------------------------------------------------------------------------------------
# Both exported SavedModels


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_exports")
    charset = Charset("abc", max_length=3)
    recognizer = Recognizer(
        charset.num_classes, 3, (16, 24, 1), "none", "vgg", "none", "attn", channels=(4, 4, 8, 8), hidden=8
    ).build_with_sample()
    export_recognizer(recognizer, charset, str(root / "str"))

    config = det_config.get_config()
    config.data.image_size = 64
    config.model.update(widths=(8, 8, 16), channels=16, head_units=32, rpn_pre_nms=30, rpn_post_nms=8)
    config.model.max_detections = 8
    task = DetectionTask(config)
    task.export(task.build_model(), str(root / "det"))
    loaded = {name: tf.saved_model.load(str(root / name)).signatures["serving_default"] for name in ("str", "det")}
    loaded["paths"] = {name: str(root / name) for name in ("str", "det")}
    return loaded


# Runs the export's serving_default through the TF1 session-based loader (the one TF Serving's C++ loader
# mirrors) on an empty batch, and prints each output's shape and dtype.
SESSION_EMPTY_BATCH = """
import sys
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
with tf.compat.v1.Session(graph=tf.Graph()) as sess:
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], sys.argv[1])
    sig = meta.signature_def["serving_default"]
    names = sorted(sig.outputs)
    values = sess.run([sig.outputs[n].name for n in names], {sig.inputs["image_bytes"].name: []})
    for n, v in zip(names, values):
        print("OUT", n, tuple(v.shape), v.dtype)
"""


@pytest.mark.parametrize("name", ["str", "det"])
def test_serving_odd_images_and_empty_batch(exports, name):
    fn = exports[name]
    out = fn(image_bytes=tf.constant([data for data, _ in ODD_IMAGES.values()]))
    first = out["text"] if name == "str" else out["boxes"]
    assert first.shape[0] == len(ODD_IMAGES)
    empty = fn(image_bytes=tf.constant([], tf.string))
    assert all(v.shape[0] == 0 for v in empty.values()), {k: v.shape for k, v in empty.items()}
    # same declared trailing shapes and dtypes as a real answer
    assert {k: (v.shape[1:], v.dtype) for k, v in empty.items()} == {k: (v.shape[1:], v.dtype) for k, v in out.items()}


@pytest.mark.parametrize("name", ["str", "det"])
def test_serving_empty_batch_in_the_session_based_loader(exports, name):
    import subprocess

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-c", SESSION_EMPTY_BATCH, exports["paths"][name]],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    shapes = {line.split()[1]: line.split(" ", 2)[2] for line in proc.stdout.splitlines() if line.startswith("OUT")}
    expected = {"text": "(0,) object", "confidence": "(0,) float32"}
    if name == "det":
        expected = {"boxes": "(0, 8, 8) float32", "scores": "(0, 8) float32", "num_detections": "(0,) int32"}
    assert shapes == expected


@pytest.mark.parametrize("name", ["str", "det"])
@pytest.mark.parametrize("kind", sorted(NOT_IMAGES))
def test_serving_refuses_bytes_that_are_not_an_image(exports, name, kind):
    message = "not a non-empty JPEG, PNG, GIF or BMP image" if kind != "truncated_png" else "PNG"
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        exports[name](image_bytes=tf.constant([ODD_IMAGES["grayscale"][0], NOT_IMAGES[kind]]))


@pytest.mark.parametrize("name", ["str", "det"])
def test_serving_refuses_a_huge_image_before_decoding(exports, name):
    data = huge_png()
    with PeakRss() as rss, pytest.raises(tf.errors.InvalidArgumentError, match="image larger than 33554432 pixels"):
        exports[name](image_bytes=tf.constant([data]))
    assert rss.growth_mb < 60, f"{name}: {rss.growth_mb:.0f} MB"
    print(f"{name}: 10000 x 10000 PNG refused, peak RSS growth {rss.growth_mb:.1f} MB")


def test_header_size_matches_decoded_size_in_graph_and_eagerly():
    graph = tf.function(images_lib.header_size)
    for name, (data, _) in ODD_IMAGES.items():
        shape = tf.io.decode_image(data, expand_animations=False).shape[:2]
        assert tuple(int(v) for v in images_lib.header_size(tf.constant(data))) == tuple(shape), name
        assert tuple(int(v) for v in graph(tf.constant(data))) == tuple(shape), name
    for data in NOT_IMAGES.values():
        if not data.startswith(b"\x89PNG"):
            assert [int(v) for v in graph(tf.constant(data))] == [-1, -1]


# ----------------------------------------------------------------------------------------------------------
# A non-finite loss at the job level (the tuner's own refusal is tested in test_surrogate_tuner.py)


def test_job_stops_with_the_step_and_keeps_finite_weights_when_the_input_turns_infinite(tmp_path):
    import toy_task

    from tfls import job as job_lib

    class InfiniteFromBatch5(toy_task.ZeroOneTask):
        # The job draws a fresh stream at each checkpoint boundary (every 10 steps), so batch 5 is step 5.
        def train_dataset(self, seed, input_context=None):
            ds = super().train_dataset(seed, input_context).enumerate()
            return ds.map(lambda i, xy: (tf.where(i >= 5, xy[0] * np.inf, xy[0]), xy[1]))

    config = toy_task.toy_config()
    job = job_lib.Job(InfiniteFromBatch5(config), config, str(tmp_path))
    with pytest.raises(job_lib.JobError, match=r"\[train\] stopped between steps 0 and 10: .*non-finite ordinary loss"):
        job.run(["train"])
    assert all(np.isfinite(w).all() for w in job.model.get_weights())
    assert "train" not in job.state["completed"]
