"""Vocabulary, renderer determinism, synthetic pipelines and held-out sets, LMDB writer/reader with filtered
and corrupt records."""

import io
import logging
import os

import lmdb
import numpy as np
import pytest
import tensorflow as tf
from helpers import load_file
from PIL import Image

from tfls.recognition import data as data_lib
from tfls.recognition import fonts as fonts_lib
from tfls.recognition.charset import Charset
from tfls.recognition.corpus import NUMBER_FORMATS, WordSampler, frequent_words
from tfls.recognition.make_lmdb import main as make_lmdb_main
from tfls.recognition.make_lmdb import write_lmdb
from tfls.recognition.renderer import WordRenderer, render_example

CS = Charset(max_length=6)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def test_vocabulary_words_numbers_random_strings_and_case():
    cs = Charset(max_length=10)
    words = frequent_words(cs, 5000)
    assert len(words) == 5000 and len(set(words)) == 5000 and all(cs.is_valid(w) for w in words)
    s = WordSampler(
        cs,
        words,
        random_fraction=0.1,
        random_max_length=8,
        number_fraction=0.2,
        upper_fraction=0.25,
        title_fraction=0.25,
    )
    rng = np.random.default_rng(0)
    texts = [s.sample_text(rng) for _ in range(3000)]
    labels = [cs.normalize(t) for t in texts]
    assert all(cs.is_valid(label) and label == label.lower() for label in labels)
    assert all(len(label) <= cs.max_length for label in labels)
    upper = sum(t.isupper() for t in texts) / len(texts)
    title = sum(t[:1].isupper() and not t.isupper() for t in texts) / len(texts)
    assert 0.15 < upper < 0.35 and 0.1 < title < 0.35
    numeric = sum(any(c.isdigit() for c in label) for label in labels) / len(labels)
    assert 0.15 < numeric < 0.4
    assert len(set(labels)) > 1500  # tens of thousands of words: few repeats
    # 0-9a-z has no punctuation: no format that needs it is used.
    assert set(s.number_formats) >= {"integer", "year", "ordinal", "day_month", "quantity"}
    assert not {"decimal", "price", "clock"} & set(s.number_formats)
    # The label of an example is the rendered text lower-cased.
    renderer = WordRenderer(height=16, width=40)
    for i in range(20):
        _, label = render_example(renderer, s, 3, i)
        text = s.sample_text(np.random.default_rng([3, i]))
        assert label == text.lower()


def test_numbers_with_punctuation_when_the_charset_has_it():
    cs = Charset("0123456789abcdefghijklmnopqrstuvwxyz.,:$%/-", max_length=12)
    s = WordSampler(cs, ["word"], random_fraction=0.0, number_fraction=1.0)
    assert set(s.number_formats) == set(NUMBER_FORMATS)
    rng = np.random.default_rng(1)
    labels = [s.sample(rng) for _ in range(2000)]
    assert all(cs.is_valid(label) for label in labels)
    for mark in ".,:$%/-":
        assert any(mark in label for label in labels), mark
    # A case-sensitive charset keeps the case in the label.
    cased = Charset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 10, case_sensitive=True)
    s = WordSampler(cased, ["word", "text"], random_fraction=0.0, upper_fraction=1.0)
    assert s.sample(np.random.default_rng(0)) in ("WORD", "TEXT")


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


def str_config(**data):
    module = load_file("str_cfg", "configs", "str.py")
    config = module.get_config()
    config.data.update(dict(dict(corpus_size=200, eval_size=12, train_pool=0), **data))
    config.eval.batch_size = 5
    return config


def test_held_out_sets_sizes_fonts_and_seeds(tmp_path):
    from tfls.recognition.task import RecognitionTask

    write_lmdb(str(tmp_path / "IIIT5k"), [(png(90), "word")] * 3)
    task = RecognitionTask(str_config(eval_lmdb=str(tmp_path / "IIIT5k")))
    sets = task.eval_datasets()
    assert list(sets) == ["val", "test", "test_ood", "IIIT5k"]
    arrays = {}
    for name, ds in sets.items():
        batches = list(ds)
        arrays[name] = np.concatenate([x.numpy() for x, _ in batches])
        labels = np.concatenate([y.numpy() for _, y in batches])
        assert len(arrays[name]) == (3 if name == "IIIT5k" else 12)
        texts = [task.charset.decode(row) for row in labels]
        assert all(task.charset.is_valid(t) for t in texts)
    everything = np.concatenate([arrays[n] for n in ("val", "test", "test_ood")]).reshape(36, -1)
    assert len({row.tobytes() for row in everything}) == 36  # distinct images, within and across sets
    # Training, val and test use the training fonts; test_ood only held-out ones, with the harder mix.
    _, ood_fonts = fonts_lib.split_fonts()
    ood_paths = {f.path for f in ood_fonts}
    assert task.renderer.fonts and not set(task.renderer.fonts) & ood_paths
    assert set(task.ood_renderer.fonts) == ood_paths
    assert task.ood_renderer.distortions["rotation_deg"] > task.renderer.distortions["rotation_deg"]
    # Held-out seeds never meet a training stream, and val differs from test.
    seeds = {data_lib.eval_set_seed(task.config.data.seed, n) for n in data_lib.EVAL_SETS}
    assert len(seeds) == len(data_lib.EVAL_SETS) == 4  # val, test, test_ood and val_hard: four streams
    assert data_lib.eval_set_seed(1, "val") == (1, 2**31)  # a new set does not move the old sets' seeds
    val = data_lib.render_arrays(task.renderer, task.sampler, task.charset, data_lib.eval_set_seed(1, "val"), 0, 4)
    train = data_lib.render_arrays(task.renderer, task.sampler, task.charset, 1, 0, 4)
    assert not np.array_equal(val[0], train[0])
    np.testing.assert_array_equal(val[0], arrays["val"][:4].astype(np.uint8))
    assert len(task.serving_examples(2)) == 2


def test_training_pool_uses_training_fonts_only():
    from tfls.recognition.task import RecognitionTask

    task = RecognitionTask(str_config(train_pool=10))
    x, y = next(iter(task.train_dataset(seed=0)))
    assert x.shape[1:] == (32, 100, 1) and y.shape[1] == task.charset.sequence_length
    assert task._pool.size == 10 and task._pool.filled == 10  # a batch of 32 fills the pool of 10
    train_fonts, ood_fonts = task._font_split()
    train_paths, ood_paths = {f.path for f in train_fonts}, {f.path for f in ood_fonts}
    # the pool draws from the training stream's renderer: the ordinary mix and (data.hard_fraction) the harder
    # one, both with the training fonts only
    assert task._pool.renderer is task.train_renderer
    parts = [task.train_renderer.base, task.train_renderer.hard] if task.config.data.hard_fraction > 0 else []
    for renderer in parts or [task.renderer]:
        assert set(renderer.fonts) == train_paths
    assert train_paths.isdisjoint(ood_paths) and ood_paths


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


def test_progressive_pool_renders_on_demand_then_reuses():
    from tfls.recognition.charset import Charset
    from tfls.recognition.corpus import WordSampler
    from tfls.recognition.data import ProgressivePool, render_arrays
    from tfls.recognition.renderer import WordRenderer

    charset = Charset(max_length=6)
    sampler = WordSampler(charset, ["cat", "dog", "bird"], random_fraction=0.0)
    renderer = WordRenderer(16, 40)
    reference_images, reference_labels, _ = render_arrays(renderer, sampler, charset, 3, 0, 12)
    firsts = []
    for seed in range(4):
        pool = ProgressivePool(renderer, sampler, charset, seed=3, size=12, block=4)
        batches = pool.batches(4, seed=seed)
        first, second = next(batches), next(batches)
        assert pool.filled == 8
        # each batch is one whole block: examples 4b .. 4b + 3 of stream 3, whichever block the seed picked
        for images, labels in (first, second):
            b = [k for k in range(3) if np.array_equal(images, reference_images[4 * k : 4 * k + 4])]
            assert len(b) == 1
            np.testing.assert_array_equal(labels, reference_labels[4 * b[0] : 4 * b[0] + 4])
        assert not np.array_equal(first[0], second[0])
        firsts.append(first[0])
        next(batches)  # the last block
        assert pool.filled == 12
        # once full: the same content whatever the order, and batches drawn from it
        np.testing.assert_array_equal(pool.images, reference_images)
        for _ in range(3):
            more = next(batches)
            assert more[0].shape == (4, 16, 40, 1)
            assert all(any(np.array_equal(m, p) for p in pool.images) for m in more[0])
    # seeds start from different blocks (4 seeds, 3 blocks: not all the same)
    assert len({f.tobytes() for f in firsts}) > 1
    ds = pool.dataset(4, seed=1)
    x, y = next(iter(ds))
    assert x.dtype == tf.float32 and x.shape == (4, 16, 40, 1) and y.shape == (4, 7)
    # a pool that starts further along the stream holds the stream's later examples
    later = ProgressivePool(renderer, sampler, charset, seed=3, size=4, start=6, block=4)
    expected = render_arrays(renderer, sampler, charset, 3, 6, 4)[0]
    np.testing.assert_array_equal(next(later.batches(4, seed=0))[0], expected)
