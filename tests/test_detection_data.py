"""Detection inputs: packing, resizing with the aspect kept, multi-scale training and rotation (eager and
inside Dataset.map), scene pools and evaluation sets, ICDAR folders."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfls.detection import boxes as box_lib
from tfls.detection import data as data_lib


def _target():
    quads = np.array([[[40, 60], [80, 60], [80, 70], [40, 70]]], np.float32)
    return {k: tf.constant(v) for k, v in data_lib.pack_annotation(quads, [False], 128.0, 4).items()}


def test_pack_annotation_pads_normalises_and_counts_truncation():
    quads = np.tile(np.array([[[0, 0], [10, 0], [10, 5], [0, 5]]], np.float32), (6, 1, 1))
    stats = {}
    t = data_lib.pack_annotation(quads, [False] * 5 + [True], 100.0, 4, stats)
    assert stats["truncated_boxes"] == 2
    np.testing.assert_array_equal(t["valid"], [1, 1, 1, 1])
    np.testing.assert_allclose(t["boxes"][0], [0.05, 0.025, 0.1, 0.05, 1, 0], atol=1e-6)
    empty = data_lib.pack_annotation(np.zeros((0, 4, 2)), [], 100.0, 3)
    assert empty["valid"].sum() == 0 and empty["boxes"].shape == (3, 6)


def test_rotation_moves_boxes_with_the_image_eager_and_in_map():
    image = np.zeros((128, 128, 3), np.float32)
    image[60:70, 40:80] = 1.0  # a bright bar exactly where the box is
    target = _target()
    angle = tf.constant(np.deg2rad(30.0), tf.float32)
    rotated, out = data_lib.rotate_example(tf.constant(image), target, angle)
    box = out["boxes"].numpy()[0]
    np.testing.assert_allclose(np.degrees(np.arctan2(box[5], box[4])), 30.0, atol=1e-3)
    quad = box_lib.six_to_quad(box) * 128
    centre_px = quad.mean(0)
    assert rotated.numpy()[int(centre_px[1]), int(centre_px[0])].mean() > 0.9
    np.testing.assert_allclose(out["quads"].numpy()[0] * 128, quad, atol=0.05)
    ds = tf.data.Dataset.from_tensors((tf.constant(image), target)).map(
        lambda im, t: data_lib.rotate_example(im, t, angle)
    )
    rotated_map, out_map = next(iter(ds))
    np.testing.assert_allclose(rotated_map.numpy(), rotated.numpy(), atol=1e-5)
    np.testing.assert_allclose(out_map["boxes"].numpy(), out["boxes"].numpy(), atol=1e-6)


def test_boxes_leaving_the_image_become_invalid():
    quads = np.array([[[2, 2], [20, 2], [20, 8], [2, 8]]], np.float32)
    target = {k: tf.constant(v) for k, v in data_lib.pack_annotation(quads, [False], 128.0, 2).items()}
    _, out = data_lib.rotate_example(tf.zeros((128, 128, 3)), target, tf.constant(np.deg2rad(45.0)))
    assert out["valid"].numpy()[0] == 0


def test_resize_and_pad_keeps_the_aspect_ratio_of_non_square_images():
    image = np.zeros((50, 100, 3), np.uint8)
    image[10:20, 60:80] = 255  # a white block at x 60..80, y 10..20
    for fn in (data_lib.resize_and_pad, data_lib.pad_to_square_and_resize):
        resized, side = fn(tf.constant(image), 64)
        assert resized.shape == (64, 64, 3) and float(side) == 100.0
        bright = np.argwhere(resized.numpy().mean(-1) > 0.5)
        # the block lands at its coordinates / side * 64 (x 38.4..51.2, y 6.4..12.8); below row 32 is padding
        assert bright[:, 1].min() >= 38 and bright[:, 1].max() <= 51 and bright[:, 0].min() >= 6
        assert bright[:, 0].max() <= 13 and resized.numpy()[33:].max() == 0
    tall, side = data_lib.resize_and_pad(tf.zeros((120, 30, 3), tf.uint8), 64)
    assert float(side) == 120.0 and tall.shape == (64, 64, 3)
    mapped = tf.data.Dataset.from_tensors(tf.constant(image)).map(lambda im: data_lib.resize_and_pad(im, 64)[0])
    np.testing.assert_allclose(next(iter(mapped)).numpy(), resized.numpy(), atol=1e-6)


def _bar_example():
    """A 200 x 100 (w x h) image with a bright bar at x 40..120, y 30..50, and its quad."""
    image = np.zeros((100, 200, 3), np.uint8)
    image[30:50, 40:120] = 255
    quads = np.zeros((4, 4, 2), np.float32)
    quads[0] = [[40, 30], [120, 30], [120, 50], [40, 50]]
    valid = np.array([1, 0, 0, 0], np.float32)
    return tf.constant(image), tf.constant(quads), tf.constant(valid), tf.zeros(4)


@pytest.mark.parametrize("scale", [(0.5, 0.5), (1.0, 1.0), (1.6, 1.6)])
def test_multiscale_moves_the_boxes_with_the_image_eager_and_in_map(scale):
    image, quads, valid, dontcare = _bar_example()
    seed = tf.constant([3, 4], tf.int64)
    out, target = data_lib.multiscale_example(image, quads, valid, dontcare, 64, scale, seed)
    assert out.shape == (64, 64, 3)
    if target["valid"].numpy()[0] > 0:
        box = target["boxes"].numpy()[0]
        centre = box_lib.six_to_quad(box).mean(0) * 64
        assert out.numpy()[int(centre[1]), int(centre[0])].mean() > 0.9
        np.testing.assert_allclose(box[2] / box[3], 4.0, rtol=0.05)
        np.testing.assert_allclose(box[3] * 64, 20 * scale[0] * 64 / 200, rtol=0.05)
    ds = tf.data.Dataset.from_tensors((image, quads, valid, dontcare)).map(
        lambda *ex: data_lib.multiscale_example(*ex, 64, scale, seed)
    )
    mapped, mapped_target = next(iter(ds))
    np.testing.assert_allclose(mapped.numpy(), out.numpy(), atol=1e-6)
    np.testing.assert_allclose(mapped_target["quads"].numpy(), target["quads"].numpy(), atol=1e-6)
    assert target["valid"].numpy()[1:].sum() == 0


def test_words_cut_by_the_border_become_dontcare_or_are_dropped():
    quads = np.array(
        [
            [[0.2, 0.2], [0.4, 0.2], [0.4, 0.3], [0.2, 0.3]],  # inside
            [[0.9, 0.5], [1.1, 0.5], [1.1, 0.6], [0.9, 0.6]],  # half outside: don't care
            [[0.95, 0.7], [1.3, 0.7], [1.3, 0.8], [0.95, 0.8]],  # mostly outside: dropped
        ],
        np.float32,
    )
    target = data_lib.target_from_quads(tf.constant(quads), tf.ones(3), tf.zeros(3))
    np.testing.assert_array_equal(target["valid"].numpy(), [1, 1, 0])
    np.testing.assert_array_equal(target["dontcare"].numpy(), [0, 1, 0])
    np.testing.assert_allclose(target["boxes"].numpy()[2], [0, 0, 0, 0, 1, 0])


@pytest.fixture(scope="module")
def small_renderer():
    from tfls.detection import scenes
    from tfls.recognition.charset import Charset
    from tfls.recognition.corpus import WordSampler

    sampler = WordSampler(Charset(), ["open", "exit", "sale", "stop", "cafe"], random_fraction=0.0)
    mix = {"canvas_sizes": "160x120,120x160", "max_words": 4, "min_height": 10, "max_height": 24}
    return scenes.SceneRenderer(None, sampler, mix)


def test_scene_pool_training_batches_are_deterministic_with_static_shapes(small_renderer):
    pool = data_lib.ScenePool(small_renderer, (0, 0), 5, long_side=80, max_boxes=4)
    a = next(iter(data_lib.scene_train_dataset(pool, 3, 4, 64, (0.6, 1.25), 10.0)))
    assert len(pool.examples) >= 3
    again = data_lib.ScenePool(small_renderer, (0, 0), 5, long_side=80, max_boxes=4)
    b = next(iter(data_lib.scene_train_dataset(again, 3, 4, 64, (0.6, 1.25), 10.0)))
    assert a[0].shape == (3, 64, 64, 3) and a[1]["boxes"].shape == (3, 4, 6)
    np.testing.assert_allclose(a[0].numpy(), b[0].numpy())
    boxes, valid = a[1]["boxes"].numpy(), a[1]["valid"].numpy() > 0
    assert valid.any() and np.all(boxes[valid][:, 2] >= boxes[valid][:, 3])  # canonical: w >= h
    stored = Image.open(io.BytesIO(pool.examples[0][0]))
    assert max(stored.size) <= 80


def test_scene_pool_start_takes_later_scenes_of_the_same_stream(small_renderer):
    rng = np.random.default_rng(0)
    first = data_lib.ScenePool(small_renderer, (0, 0), 4, long_side=80, max_boxes=4)
    later = data_lib.ScenePool(small_renderer, (0, 0), 2, long_side=80, max_boxes=4, start=2)
    a = [first.example(rng) for _ in range(4)]
    b = [later.example(rng) for _ in range(2)]
    for got, want in zip(b, a[2:]):
        assert got[0] == want[0]  # the same JPEG bytes: scene start + i of the stream
        np.testing.assert_allclose(got[1], want[1])
    assert b[0][0] != a[0][0]
    with pytest.raises(ValueError, match="start must be >= 0"):
        data_lib.ScenePool(small_renderer, (0, 0), 2, long_side=80, max_boxes=4, start=-1)


def test_evaluation_arrays_keep_texts_and_the_long_side(small_renderer):
    images, targets = data_lib.render_eval_arrays(small_renderer, (1, 2), 3, 64, 4)
    assert images.shape == (3, 64, 64, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(targets["side"], [160.0, 160.0, 160.0])
    x, y = next(iter(data_lib.eval_dataset(images, targets, 2)))
    assert x.shape == (2, 64, 64, 3) and y["texts"].dtype == tf.string
    n = int(y["valid"].numpy()[0].sum())
    texts = [t.decode() for t in y["texts"].numpy()[0]]
    assert all(texts[:n]) and not any(texts[n:])


def test_icdar_folder_datasets_read_images_and_normalise_by_padded_side(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((60, 120, 3), 200, np.uint8)).save(tmp_path / "img_3.jpg")
    (tmp_path / "gt_img_3.txt").write_bytes("\ufeff12,6,36,6,36,18,12,18,word\r\n0,0,6,0,6,6,0,6,###\r\n".encode())
    stats = {}
    x, y = next(iter(data_lib.icdar_dataset(str(tmp_path), None, 64, 8, 2, stats)))
    assert x.shape == (1, 64, 64, 3) and float(y["side"][0]) == 120.0 and int(y["image_id"][0]) == 3
    np.testing.assert_allclose(y["boxes"].numpy()[0, 0], [0.2, 0.1, 0.2, 0.1, 1, 0], atol=1e-6)
    np.testing.assert_array_equal(y["dontcare"].numpy()[0, :2], [0, 1])
    assert [t.decode() for t in y["texts"].numpy()[0, :2]] == ["word", "###"]
    x, y = next(iter(data_lib.icdar_train_dataset(str(tmp_path), None, 64, 8, 2, seed=0, max_rotate_deg=0)))
    assert x.shape == (2, 64, 64, 3)
    # scale 1: the width fills the input; the 120 x 60 image sits at a random height on the padding
    box = y["boxes"].numpy()[0, 0]
    np.testing.assert_allclose(box[[0, 2, 3, 4, 5]], [0.2, 0.2, 0.1, 1, 0], atol=1e-5)
    assert 0.1 - 1e-5 <= box[1] <= 0.6 + 1e-5
