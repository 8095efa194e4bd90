"""Scene word crops (tfls/recognition/scene_words.py): jitter bounds, crops against the NumPy rectification,
labels and skipped-word counts, the pool and the batch mixture, and the config checks."""

import os

import numpy as np
import pytest

from tfls import configuration
from tfls.configuration import ConfigError
from tfls.detection import scenes
from tfls.ocr.crop import rectify_numpy
from tfls.ocr.export import MARGIN
from tfls.recognition import scene_words
from tfls.recognition.charset import Charset
from tfls.recognition.task import RecognitionTask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOX = np.array([[[100.0, 50.0], [200.0, 50.0], [200.0, 70.0], [100.0, 70.0]]], np.float32)  # 100 x 20 px


def test_no_jitter_leaves_quads_unchanged():
    out = scene_words.jitter_quads(BOX, np.random.default_rng(0), 0.0)
    np.testing.assert_array_equal(out, BOX)


def test_jitter_stays_within_its_bounds_and_varies():
    # amount 0.1 on a 100 x 20 box: x moves by at most 50 * 0.1 (scale) + 0.05 * 100 (slide) + 0.05 * 20
    # (corner) = 11 px; y by at most 10 * 0.15 (scale) + 0.05 * 20 (corner) = 2.5 px.
    rng = np.random.default_rng(1)
    quads = np.repeat(BOX, 500, axis=0)
    out = scene_words.jitter_quads(quads, rng, 0.1)
    dx, dy = np.abs(out - quads)[..., 0], np.abs(out - quads)[..., 1]
    assert dx.max() <= 11.0 + 1e-4 and dy.max() <= 2.5 + 1e-4
    assert dx.max() > 7.0 and dy.max() > 1.5  # the bounds are reached, not just respected
    # A rotated box moves the same way in its own frame: rotate the box and the bounds hold along its axes.
    angle = np.deg2rad(30.0)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    turned = (quads - 150.0) @ rot.T
    moved = scene_words.jitter_quads(turned, np.random.default_rng(1), 0.1)
    back = moved @ rot  # into the box's frame
    np.testing.assert_allclose(back, out - 150.0, atol=1e-3)


def _scene():
    image = np.zeros((90, 300, 3), np.uint8)
    image[..., 0] = np.arange(300, dtype=np.uint8)[None, :] % 251
    image[..., 1] = (np.arange(90, dtype=np.uint8)[:, None] * 2) % 251
    image[..., 2] = 77
    quads = np.array(
        [
            BOX[0],
            [[10.0, 10.0], [60.0, 12.0], [58.0, 30.0], [9.0, 28.0]],
            [[5.0, 40.0], [50.0, 40.0], [50.0, 50.0], [5.0, 50.0]],
            [[220.0, 10.0], [290.0, 10.0], [290.0, 30.0], [220.0, 30.0]],
            [[220.0, 40.0], [290.0, 40.0], [290.0, 60.0], [220.0, 60.0]],
        ],
        np.float32,
    )
    return scenes.Scene(image, quads, ["Hello", "###", "toolongwords", "a-b", "Go2"])


def test_scene_examples_match_the_numpy_rectification_and_count_skipped_words():
    charset = Charset(max_length=10)
    skipped = {}
    images, texts = scene_words.scene_word_examples(
        _scene(), charset, (32, 100, 1), np.random.default_rng(0), 0.0, skipped
    )
    assert texts == ["hello", "go2"]
    assert skipped == {"dont_care": 1, "too_long": 1, "outside_charset": 1}
    scene = _scene()
    reference = rectify_numpy(scene.image, scene.quads[[0, 4]], 32, 100, margin=MARGIN, supersample=2)
    grey = reference @ np.array([0.2989, 0.587, 0.114])  # ITU-R 601 luma, as tf.image.rgb_to_grayscale
    assert images.dtype == np.uint8 and images.shape == (2, 32, 100, 1)
    np.testing.assert_allclose(images[..., 0].astype(np.float64), grey, atol=1.0)


def test_a_scene_with_no_usable_word_gives_empty_arrays():
    scene = scenes.Scene(np.zeros((20, 20, 3), np.uint8), np.zeros((1, 4, 2), np.float32), ["###"])
    images, texts = scene_words.scene_word_examples(scene, Charset(max_length=5), (16, 40, 1), None)
    assert images.shape == (0, 16, 40, 1) and texts == []


def _small_task(**overrides):
    config = configuration.load_config(os.path.join(ROOT, "configs", "str.py"))
    config.train.init_from = ""
    config.data.corpus_size = 200
    config.data.train_pool = 12
    config.data.scene_pool = 20
    config.data.scene_fraction = 0.25
    config.data.scene_mix.canvas_sizes = "160x120"
    config.data.scene_mix.max_height = 40
    config.train.batch_size = 8
    for key, value in overrides.items():
        section, name = key.split(".")
        config[section][name] = value
    return RecognitionTask(configuration.validate(config, RecognitionTask))


def _scene_words(task, pool, indices):
    """The cared-for, readable words of the pool stream's scenes `indices`, in order, rendered directly."""
    words = []
    for i in indices:
        scene = scenes.render_indexed(pool.renderer, (task.config.data.seed, scene_words.SCENE_STREAM), i)
        words += [task.charset.normalize(t) for t in scene.texts if t != "###" and task.charset.is_valid(t)]
    return words


def test_the_pool_holds_the_words_of_its_scenes_in_order_and_is_reproducible():
    task = _small_task()
    pool = task.scene_pool
    rng = np.random.default_rng(0)
    first = pool.sample(3, rng)
    assert list(first) == [0, 1, 2]
    # The pool's labels are the cared-for words of scenes 0, 1, ... of its stream, in order.
    expected = _scene_words(task, pool, range(pool.scenes))
    assert [task.charset.decode(row) for row in pool.labels[: pool.filled]] == expected[: pool.filled]
    while not pool.full:
        pool.sample(4, rng)
    assert pool.filled == 20
    again = _small_task().scene_pool
    again.sample(20, np.random.default_rng(5))
    np.testing.assert_array_equal(again.images, pool.images)
    np.testing.assert_array_equal(again.labels, pool.labels)
    # Once full, samples are drawn from the whole pool.
    index = pool.sample(200, rng)
    assert index.min() >= 0 and index.max() < 20 and len(set(index.tolist())) > 10


def test_a_later_pool_starts_at_its_first_scene():
    first = _small_task(**{"data.scene_pool": 40}).scene_pool
    task = _small_task(**{"data.scene_pool": 40, "data.scene_pool_start": 2})
    later = task.scene_pool
    rng = np.random.default_rng(0)
    while first.scenes < 2:
        first.sample(1, rng)
    skipped = first.filled  # the crops of scenes 0 and 1
    while not first.full:
        first.sample(4, rng)
    while not later.full:
        later.sample(4, rng)
    # Its labels are the words of scenes 2, 3, ... rendered directly, and its crops the earlier pool's from scene 2 on.
    expected = _scene_words(task, later, range(2, 2 + later.scenes))
    assert [task.charset.decode(row) for row in later.labels] == expected[: later.filled]
    shared = first.filled - skipped
    assert shared > 0
    np.testing.assert_array_equal(later.images[:shared], first.images[skipped:])
    np.testing.assert_array_equal(later.labels[:shared], first.labels[skipped:])
    with pytest.raises(ConfigError, match=r"config.data.scene_pool_start=-1"):
        configuration.validate(
            configuration.load_config(os.path.join(ROOT, "configs", "str.py"), {"data.scene_pool_start": -1}),
            RecognitionTask,
        )


def test_training_batches_hold_the_configured_share_of_scene_crops():
    task = _small_task()
    x, y = next(iter(task.train_dataset(0)))
    assert x.shape == (8, 32, 100, 1) and y.shape == (8, 11)
    pool = task.scene_pool
    scene_rows = {bytes(r) for r in pool.images[: pool.filled].reshape(pool.filled, -1)}
    rows = np.round(x.numpy()).astype(np.uint8).reshape(8, -1)
    assert sum(bytes(r) in scene_rows for r in rows) == 2  # round(0.25 * 8)


def test_mixed_batches_add_n_scene_crops_to_each_word_batch():
    class Pool:
        images = np.full((5, 2, 2, 1), 255, np.uint8)
        labels = np.ones((5, 3), np.int32)

        def sample(self, count, rng):
            return rng.integers(0, 5, count)

    words = iter([(np.zeros((6, 2, 2, 1), np.uint8), np.zeros((6, 3), np.int32))] * 3)
    for images, labels in scene_words.mixed_batches(words, Pool(), 2, seed=0):
        assert images.shape == (8, 2, 2, 1) and labels.shape == (8, 3)
        assert int((images[:, 0, 0, 0] == 255).sum()) == 2 and int(labels[:, 0].sum()) == 2


def test_scene_settings_are_checked():
    def config(**overrides):
        return configuration.load_config(os.path.join(ROOT, "configs", "str.py"), overrides)

    with pytest.raises(ConfigError, match=r"config.data.scene_fraction=0.5: must be 0 unless data.train_pool > 0"):
        configuration.validate(config(**{"data.scene_fraction": 0.5, "data.train_pool": 0}), RecognitionTask)
    with pytest.raises(ConfigError, match=r"config.data.scene_fraction=1.0: must be a finite number in \[0.0, 0.9\]"):
        configuration.validate(config(**{"data.scene_fraction": 1.0}), RecognitionTask)
    with pytest.raises(ConfigError, match=r"data.scene_mix.*max_height"):
        configuration.validate(
            config(**{"data.scene_fraction": 0.3, "data.scene_mix.max_height": 1000}), RecognitionTask
        )


def test_reset_training_data_makes_a_stream_independent_of_what_ran_before():
    """Word and scene pools fill as training asks, so a stream's first batches depend on what an earlier stage
    rendered in the same process; `reset_training_data` (called by the job before tune and before the
    control) restores the batches a fresh process draws."""

    def first_batches(task, seed, n=2):
        it = iter(task.train_dataset(seed))
        return [next(it)[0].numpy() for _ in range(n)]

    fresh = first_batches(_small_task(), 5)
    task = _small_task()
    first_batches(task, 1, 3)  # an earlier stage (another seed) renders part of both pools
    after = first_batches(task, 5)
    assert any(not np.array_equal(a, b) for a, b in zip(fresh, after))  # the state leaks without a reset
    task.reset_training_data()
    for a, b in zip(fresh, first_batches(task, 5)):
        np.testing.assert_array_equal(a, b)


def test_val_scenes_are_crops_of_held_out_scenes_and_leave_the_other_sets_alone():
    """`val_scenes` (data.val_scenes_size > 0): the first crops are the words of scene 0, 1, ... of the held-out
    stream, cut exactly as the training pool cuts its scenes; never the training stream's scenes."""
    overrides = {"data.eval_size": 4, "data.scene_jitter": 0.0}
    without = _small_task(**overrides)
    without.eval_datasets()
    assert "val_scenes" not in without._eval_sets
    task = _small_task(**overrides, **{"data.val_scenes_size": 7})
    task.eval_datasets()
    images, labels = task._eval_sets["val_scenes"]
    assert images.shape == (7, 32, 100, 1) and labels.shape == (7, 11)
    # Rendered directly: held-out scenes in order, their cared-for readable words, crops by scene_word_examples.
    seed = task.config.data.seed
    expected_images, expected_words, i = [], [], 0
    while len(expected_words) < 7:
        scene = scenes.render_indexed(task.scene_renderer, (seed, scene_words.SCENE_EVAL_STREAM), i)
        rng = np.random.default_rng([seed, scene_words.SCENE_EVAL_STREAM + 1, i])
        crops, words = scene_words.scene_word_examples(scene, task.charset, task.image_shape, rng)
        expected_images.append(crops)
        expected_words += words
        i += 1
    assert [task.charset.decode(row) for row in labels] == expected_words[:7]
    np.testing.assert_array_equal(images, np.concatenate(expected_images)[:7])
    # Not the training pool's scenes: its first crops are other words or other pixels.
    pool = _small_task(**overrides).scene_pool
    pool.sample(7, np.random.default_rng(0))
    assert not np.array_equal(pool.images[:7], images)
    for name in ("val", "test", "test_ood"):  # unchanged by the extra set
        np.testing.assert_array_equal(task._eval_sets[name][0], without._eval_sets[name][0])
    assert "val_scenes" in RecognitionTask.selection_only_sets


def test_val_scenes_refuse_scenes_without_usable_words():
    class NoWords:
        def render(self, rng):
            return scenes.Scene(np.zeros((20, 20, 3), np.uint8), np.zeros((1, 4, 2), np.float32), ["###"])

    charset = Charset(max_length=10)
    with pytest.raises(ValueError, match=r"val_scenes: 200 scenes in a row hold no word .*dont_care': 200"):
        scene_words.scene_eval_arrays(NoWords(), charset, (32, 100, 1), 0, 3)
    images, labels = scene_words.scene_eval_arrays(NoWords(), charset, (32, 100, 1), 0, 0)
    assert images.shape == (0, 32, 100, 1) and labels.shape == (0, 11)


def test_val_scenes_size_is_checked_with_the_scene_mix():
    def config(**overrides):
        return configuration.load_config(os.path.join(ROOT, "configs", "str.py"), overrides)

    with pytest.raises(ConfigError, match=r"config.data.val_scenes_size=-1"):
        configuration.validate(config(**{"data.val_scenes_size": -1}), RecognitionTask)
    with pytest.raises(ConfigError, match=r"data.scene_mix.*max_height"):
        configuration.validate(
            config(**{"data.scene_fraction": 0.0, "data.val_scenes_size": 5, "data.scene_mix.max_height": 1000}),
            RecognitionTask,
        )
