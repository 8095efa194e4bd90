"""Detection inputs: packing, rotation augmentation (eager and inside Dataset.map), padding to square."""

import ml_collections
import numpy as np
import tensorflow as tf

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


def test_pad_to_square_keeps_aspect():
    image = tf.zeros((50, 100, 3), tf.uint8)
    resized, side = data_lib.pad_to_square_and_resize(image, 64)
    assert resized.shape == (64, 64, 3) and float(side) == 100.0


def test_train_dataset_is_deterministic_and_static_batch():
    cfg = ml_collections.ConfigDict(
        dict(
            image_size=64, max_words=2, min_height=8, max_height=12, max_angle_deg=30.0, dontcare_prob=0.2, max_boxes=4
        )
    )
    images, targets = data_lib.scene_pool(6, 0, cfg)
    assert images.shape == (6, 64, 64, 3) and targets["boxes"].shape == (6, 4, 6)
    a = next(iter(data_lib.train_dataset(images, targets, 3, seed=4, max_rotate_deg=10)))
    b = next(iter(data_lib.train_dataset(images, targets, 3, seed=4, max_rotate_deg=10)))
    assert a[0].shape == (3, 64, 64, 3)
    np.testing.assert_allclose(a[0].numpy(), b[0].numpy())
    ev = list(data_lib.eval_dataset(images, targets, 4))
    assert [int(x.shape[0]) for x, _ in ev] == [4, 2]


def test_icdar_folder_datasets_read_images_and_normalise_by_padded_side(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((60, 120, 3), 200, np.uint8)).save(tmp_path / "img_3.jpg")
    (tmp_path / "gt_img_3.txt").write_bytes("\ufeff12,6,36,6,36,18,12,18,word\r\n0,0,6,0,6,6,0,6,###\r\n".encode())
    stats = {}
    x, y = next(iter(data_lib.icdar_dataset(str(tmp_path), None, 64, 8, 2, stats)))
    assert x.shape == (1, 64, 64, 3) and float(y["side"][0]) == 120.0 and int(y["image_id"][0]) == 3
    np.testing.assert_allclose(y["boxes"].numpy()[0, 0], [0.2, 0.1, 0.2, 0.1, 1, 0], atol=1e-6)
    np.testing.assert_array_equal(y["dontcare"].numpy()[0, :2], [0, 1])
    x, y = next(iter(data_lib.icdar_train_dataset(str(tmp_path), None, 64, 8, 2, seed=0, max_rotate_deg=0)))
    assert x.shape == (2, 64, 64, 3)
    np.testing.assert_allclose(y["boxes"].numpy()[0, 0], [0.2, 0.1, 0.2, 0.1, 1, 0], atol=1e-5)
