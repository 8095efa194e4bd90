"""Detection inputs: synthetic scene pools and ICDAR 2015 folders as tf.data, with rotation augmentation.

Every dataset yields `(image, target)`; `image` is float32 `[S, S, 3]` in [0, 1] and `target` a dict:
`boxes [M, 6]` (normalised, canonical angle), `quads [M, 4, 2]` (normalised corners), `valid [M]`,
`dontcare [M]` (float32 flags), `side` (pixels of the padded original square; quads * side = pixels) and
`image_id` (int32). Non-square images are padded at the bottom and right to a square, then resized.
"""

import logging

import numpy as np
import tensorflow as tf

from tfls import images as images_lib
from tfls.detection import boxes as box_lib
from tfls.detection import icdar, scenes

log = logging.getLogger(__name__)


def pad_to_square_and_resize(image, size):
    """`[H, W, 3]` uint8 (TF) -> (`[size, size, 3]` float32 in [0, 1], padded side as float32)."""
    shape = tf.shape(image)
    side = tf.maximum(shape[0], shape[1])
    padded = tf.pad(image, [[0, side - shape[0]], [0, side - shape[1]], [0, 0]])
    # Resize the uint8 image, then scale: no float32 copy of a large original.
    resized = tf.image.resize(padded, [size, size], antialias=True) / 255.0
    return tf.clip_by_value(resized, 0.0, 1.0), tf.cast(side, tf.float32)


def pack_annotation(quads, dontcare, side, max_boxes, stats=None, name=""):
    """Padded numpy targets from pixel quads; words beyond `max_boxes` are dropped and counted."""
    quads = np.asarray(quads, np.float32).reshape(-1, 4, 2)
    if len(quads) > max_boxes:
        if stats is not None:
            stats["truncated_boxes"] = stats.get("truncated_boxes", 0) + len(quads) - max_boxes
        quads, dontcare = quads[:max_boxes], np.asarray(dontcare)[:max_boxes]
    n = len(quads)
    out_quads = np.zeros((max_boxes, 4, 2), np.float32)
    out_quads[:n] = quads / side
    boxes = np.zeros((max_boxes, 6), np.float32)
    boxes[:, 4] = 1.0
    if n:
        boxes[:n] = box_lib.np_canonical(box_lib.quad_to_six(out_quads[:n]))
    valid = np.zeros(max_boxes, np.float32)
    valid[:n] = 1
    dc = np.zeros(max_boxes, np.float32)
    dc[:n] = np.asarray(dontcare, np.float32)
    return {"boxes": boxes, "quads": out_quads, "valid": valid, "dontcare": dc}


def scene_pool(num, seed, data_cfg):
    """Render `num` synthetic scenes into numpy arrays (images uint8 and packed targets)."""
    rng = np.random.default_rng(seed)
    images, targets = [], []
    for _ in range(num):
        image, quads, texts = scenes.render_scene(
            rng,
            size=data_cfg.image_size,
            max_words=data_cfg.max_words,
            min_height=data_cfg.min_height,
            max_height=data_cfg.max_height,
            max_angle_deg=data_cfg.max_angle_deg,
            dontcare_prob=data_cfg.dontcare_prob,
        )
        images.append(image)
        targets.append(
            pack_annotation(
                quads, [t == icdar.DONT_CARE for t in texts], float(data_cfg.image_size), data_cfg.max_boxes
            )
        )
    stacked = {k: np.stack([t[k] for t in targets]) for k in targets[0]}
    stacked["side"] = np.full(num, float(data_cfg.image_size), np.float32)
    stacked["image_id"] = np.arange(num, dtype=np.int32)
    return np.stack(images), stacked


def rotate_example(image, target, angle):
    """Rotate an image and its targets by `angle` radians about the centre (positive = clockwise on screen).

    Pixels brought in from outside are mid-grey; boxes whose centre leaves the image become invalid.
    """
    size = tf.cast(tf.shape(image)[0], tf.float32)
    angle = tf.cast(angle, tf.float32)
    c, s = tf.cos(angle), tf.sin(angle)
    centre = (size - 1.0) / 2.0
    transform = tf.stack([c, s, centre - c * centre - s * centre, -s, c, centre + s * centre - c * centre, 0.0, 0.0])
    rotated = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=tf.shape(image)[:2],
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
        fill_value=0.5,
    )[0]

    def turn(points):
        d = points - 0.5
        return tf.stack([0.5 + c * d[..., 0] - s * d[..., 1], 0.5 + s * d[..., 0] + c * d[..., 1]], -1)

    boxes = target["boxes"]
    centres = turn(boxes[:, :2])
    cs = tf.stack([c * boxes[:, 4] - s * boxes[:, 5], s * boxes[:, 4] + c * boxes[:, 5]], -1)
    new_boxes = box_lib.canonical(tf.concat([centres, boxes[:, 2:4], cs], -1))
    inside = tf.reduce_all((centres > 0.0) & (centres < 1.0), -1)
    valid = target["valid"] * tf.cast(inside, tf.float32)
    out = dict(target)
    out.update(
        {"boxes": new_boxes, "quads": turn(target["quads"]), "valid": valid, "dontcare": target["dontcare"] * valid}
    )
    return rotated, out


def _augment(max_rotate_deg):
    def fn(seed, image, target):
        seeds = tf.random.experimental.stateless_split(tf.stack([seed, seed // 7 + 1]), 3)
        image = tf.cast(image, tf.float32) / 255.0
        if max_rotate_deg > 0:
            angle = tf.random.stateless_uniform([], seeds[0], -1.0, 1.0) * np.deg2rad(max_rotate_deg)
            image, target = rotate_example(image, target, angle)
        gain = tf.random.stateless_uniform([], seeds[1], 0.8, 1.2)
        bias = tf.random.stateless_uniform([], seeds[2], -0.1, 0.1)
        image = tf.clip_by_value((image - 0.5) * gain + 0.5 + bias, 0.0, 1.0)
        return image, target

    return fn


def train_dataset(images, targets, batch_size, seed, max_rotate_deg):
    """Infinite shuffled, augmented batches (static batch size) from a rendered pool."""
    pool = tf.data.Dataset.from_tensor_slices((images, targets)).shuffle(len(images), seed=seed).repeat()
    seeds = tf.data.Dataset.random(seed=seed).map(lambda v: tf.cast(v % (2**31 - 1), tf.int64))
    ds = tf.data.Dataset.zip((seeds, pool)).map(
        lambda sd, ex: _augment(max_rotate_deg)(sd, *ex), num_parallel_calls=1, deterministic=True
    )
    return ds.batch(batch_size, drop_remainder=True).prefetch(2)


def eval_dataset(images, targets, batch_size):
    """Finite, deterministic batches (no augmentation)."""
    ds = tf.data.Dataset.from_tensor_slices((images, targets))
    return ds.map(lambda im, t: (tf.cast(im, tf.float32) / 255.0, t)).batch(batch_size)


def _readable(items, stats, decode):
    """Drops (counting in `stats` and logging) images that cannot be read or exceed `images_lib.MAX_PIXELS`.

    With `decode`, each item gains its uint8 RGB pixels; otherwise only the header is read and a PNG's
    chunks verified (the training stream decodes per step) and the item's fourth field is None.
    """
    out = []
    for image_id, path, ann in items:
        try:
            with images_lib.open_checked(path, name=path) as im:
                # verify() checks a PNG's chunks without decoding pixels; other formats fail at decode time.
                rgb = images_lib.pil_to_array(im, 3) if decode else im.verify()
        except Exception as e:  # PIL raises many types for bad data
            reason = "image_too_large" if isinstance(e, images_lib.ImageTooLarge) else "corrupt_image"
            if stats is not None:
                stats[reason] = stats.get(reason, 0) + 1
            log.warning("skipping %s: %s", path, e)
            continue
        out.append((image_id, path, ann, rgb))
    if not out:
        raise icdar.ICDARFormatError(f"no readable image among {len(items)} ICDAR images")
    return out


def icdar_dataset(image_dir, gt_dir, image_size, max_boxes, batch_size, stats=None):
    """An ICDAR 2015 folder (`img_<id>.jpg` + `gt_img_<id>.txt`) as a finite evaluation dataset.

    Malformed annotation lines and images without annotations are skipped and counted in `stats`.
    """
    items = _readable(icdar.read_dataset_dir(image_dir, gt_dir, skip_bad=True, stats=stats), stats, decode=True)
    images, targets = [], []
    for image_id, path, ann, rgb in items:
        resized, side = pad_to_square_and_resize(tf.constant(rgb), image_size)
        t = pack_annotation(ann.quads, ann.dontcare, float(side), max_boxes, stats, path)
        t["side"], t["image_id"] = np.float32(side), np.int32(image_id)
        images.append(resized.numpy())
        targets.append(t)
    stacked = {k: np.stack([t[k] for t in targets]) for k in targets[0]}
    return tf.data.Dataset.from_tensor_slices((np.stack(images), stacked)).batch(batch_size)


def icdar_train_dataset(image_dir, gt_dir, image_size, max_boxes, batch_size, seed, max_rotate_deg, stats=None):
    """An ICDAR 2015 training folder streamed from disk: decode, pad to square, resize, augment (infinite).

    Annotations are parsed once (malformed lines skipped and counted in `stats`); images are decoded per
    step, so the folder never has to fit in memory.
    """
    items = _readable(icdar.read_dataset_dir(image_dir, gt_dir, skip_bad=True, stats=stats), stats, decode=False)
    paths = [path for _, path, _, _ in items]
    packed = [pack_annotation(ann.quads, ann.dontcare, 1.0, max_boxes, stats) for _, _, ann, _ in items]
    pixel_quads = np.stack([p["quads"] for p in packed])
    flags = {k: np.stack([p[k] for p in packed]) for k in ("valid", "dontcare")}
    ids = np.array([i for i, _, _, _ in items], np.int32)

    def load(path, quads, valid, dontcare, image_id):
        image = images_lib.decode_checked(tf.io.read_file(path), 3)
        resized, side = pad_to_square_and_resize(image, image_size)
        quads = quads / side
        boxes = tf.where(
            valid[:, None] > 0,
            box_lib.canonical(box_lib.tf_quad_to_six(quads)),
            tf.constant([0, 0, 0, 0, 1, 0], tf.float32),
        )
        target = {
            "boxes": boxes,
            "quads": quads,
            "valid": valid,
            "dontcare": dontcare,
            "side": side,
            "image_id": image_id,
        }
        return tf.cast(resized * 255.0, tf.uint8), target

    files = tf.data.Dataset.from_tensor_slices((paths, pixel_quads, flags["valid"], flags["dontcare"], ids))
    pool = files.shuffle(len(paths), seed=seed).repeat().map(load, num_parallel_calls=tf.data.AUTOTUNE)
    seeds = tf.data.Dataset.random(seed=seed).map(lambda v: tf.cast(v % (2**31 - 1), tf.int64))
    ds = tf.data.Dataset.zip((seeds, pool)).map(
        lambda sd, ex: _augment(max_rotate_deg)(sd, *ex), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return ds.batch(batch_size, drop_remainder=True).prefetch(2)
