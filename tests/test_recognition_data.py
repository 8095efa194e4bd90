"""Renderer determinism, synthetic pipelines, LMDB writer/reader with filtered and corrupt records."""

import io
import logging

import lmdb
import numpy as np
import pytest
from PIL import Image

from tfls.recognition import data as data_lib
from tfls.recognition.charset import Charset
from tfls.recognition.corpus import WordSampler
from tfls.recognition.make_lmdb import main as make_lmdb_main
from tfls.recognition.make_lmdb import write_lmdb
from tfls.recognition.renderer import WordRenderer, render_example

CS = Charset(max_length=6)


def png(value, size=(20, 10)):
    buf = io.BytesIO()
    Image.new("L", size, value).save(buf, format="PNG")
    return buf.getvalue()


def test_renderer_is_deterministic_and_varied():
    r = WordRenderer(distortions={"perspective": 0.1, "curve": 0.1, "noise": 5.0, "jpeg": 0.5, "blur": 0.5})
    s = WordSampler(CS, ["hello", "abc", "text"], 0.3, 6)
    a, la = render_example(r, s, 3, 7)
    b, lb = render_example(r, s, 3, 7)
    c, _ = render_example(r, s, 3, 8)
    assert a.shape == (32, 100, 1) and a.dtype == np.uint8
    assert la == lb and np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.std() > 5  # text is visible, not a blank image
    with pytest.raises(ValueError, match="unknown distortion"):
        WordRenderer(distortions={"wobble": 1})


def test_synthetic_stream_matches_render_arrays():
    r = WordRenderer(height=16, width=40)
    s = WordSampler(CS, ["ab", "cd"], 0.0)
    ds = data_lib.synthetic_stream(r, s, CS, seed=5, batch_size=3, parallel_calls=1)
    it = iter(ds)
    next(it)
    x, y = next(it)  # batch 1 = examples 3..5
    images, labels, texts = data_lib.render_arrays(r, s, CS, 5, 3, 3)
    np.testing.assert_array_equal(x.numpy(), images.astype(np.float32))
    np.testing.assert_array_equal(y.numpy(), labels)
    assert [CS.decode(row) for row in y.numpy()] == texts


def test_lmdb_round_trip_with_filtered_and_corrupt_records(tmp_path, caplog):
    records = [
        (png(10), "abc"),
        (png(20), "toolongword"),  # filtered: > 6
        (b"not an image", "bad"),  # corrupt
        (png(30), "a#b"),  # filtered: outside charset
        (png(40), "XY1"),  # kept, case-folded
    ]
    assert write_lmdb(str(tmp_path / "db"), records) == 5
    with caplog.at_level(logging.WARNING):
        ds = data_lib.LmdbWordDataset(str(tmp_path / "db"), CS, (8, 12, 1))
        assert ds.num_samples == 5 and len(ds) == 3
        assert sum(ds.filtered.values()) == 2
        out = list(ds.examples())
    assert [CS.decode(ids) for _, ids in out] == ["abc", "xy1"]
    assert ds.corrupt == 1
    assert "image-000000003" in caplog.text
    assert out[1][0].shape == (8, 12, 1) and int(out[1][0][0, 0, 0]) == 40
    batches = list(data_lib.lmdb_eval_dataset(data_lib.LmdbWordDataset(str(tmp_path / "db"), CS, (8, 12, 1)), 2))
    assert sum(int(x.shape[0]) for x, _ in batches) == 2


def test_lmdb_mixture_batch_shares(tmp_path):
    write_lmdb(str(tmp_path / "a"), [(png(0), "aa")] * 4)
    write_lmdb(str(tmp_path / "b"), [(png(255), "bb")] * 4)
    sets = [data_lib.LmdbWordDataset(str(tmp_path / n), CS, (4, 4, 1)) for n in "ab"]
    x, y = next(iter(data_lib.lmdb_mixture(sets, [0.75, 0.25], 8, seed=0)))
    texts = [CS.decode(row) for row in y.numpy()]
    assert texts == ["aa"] * 6 + ["bb"] * 2
    assert x.shape == (8, 4, 4, 1)


def test_lmdb_without_num_samples_is_a_clear_error(tmp_path):
    env = lmdb.open(str(tmp_path / "x"))
    env.close()
    with pytest.raises(ValueError, match="num-samples"):
        data_lib.LmdbWordDataset(str(tmp_path / "x"), CS)


def test_make_lmdb_from_gt_file_counts_skips(tmp_path, caplog):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "1.png").write_bytes(png(50))
    (tmp_path / "img" / "2.png").write_bytes(b"garbage")
    gt = tmp_path / "gt.txt"
    gt.write_text("img/1.png\tok\nimg/2.png\tbroken\nimg/3.png\tmissing\nno tab here\n")
    with caplog.at_level(logging.INFO):
        assert make_lmdb_main(["--gt_file", str(gt), "--output", str(tmp_path / "out")]) == 0
    assert "skipped 3" in caplog.text and "2.png" in caplog.text and "3.png" in caplog.text
    ds = data_lib.LmdbWordDataset(str(tmp_path / "out"), CS, (10, 20, 1))
    assert ds.num_samples == 1 and CS.decode(next(ds.examples())[1]) == "ok"
