"""Detection inputs: synthetic scene pools and ICDAR 2015 folders as tf.data, with multi-scale training.

Every dataset yields `(image, target)`; `image` is float32 `[S, S, 3]` in [0, 1] (S = `data.image_size`) and
`target` a dict: `boxes [M, 6]` (normalised, canonical form), `quads [M, 4, 2]` (normalised corners),
`valid [M]`, `dontcare [M]` (float32 flags), `side` and `image_id` (int32); evaluation sets also carry
`texts [M]` (tf.string transcriptions, `###` for don't care, "" for padding).

Aspect ratio is kept everywhere: an image is resized so that its long side fills S, then padded at the bottom
and right to S x S (`resize_and_pad`). Normalised coordinates are fractions of S, one scale for both axes, so
normalised boxes stay rectangles with their angles, and `side` = the original's long side in pixels maps them
back (`quads * side` = original pixels). Training draws a random scale first (`scale_range`, relative to the
long side filling S): larger images are cropped at a random place, smaller ones placed at a random place on
the padding; words cut by the crop become don't care (half or more inside) or are dropped.
"""

import io
import logging
import threading

import numpy as np
import tensorflow as tf
from PIL import Image

from tfls import images as images_lib
from tfls.detection import boxes as box_lib
from tfls.detection import icdar, scenes

log = logging.getLogger(__name__)

_EMPTY_BOX = (0.0, 0.0, 0.0, 0.0, 1.0, 0.0)
# A cropped word stays cared for with at least this share of its box inside the image; with less (but at
# least half) it becomes don't care, below half it is dropped.
_KEEP_INSIDE, _DONTCARE_INSIDE = 0.9, 0.5


def resize_and_pad(image, size):
    """Resize keeping the aspect ratio so that the long side is `size`, then pad bottom and right to a square.

    Args:
      image: `[H, W, 3]` uint8 (or float in 0..255), TF.

    Returns:
      `(image [size, size, 3] float32 in [0, 1], side)`: `side` (float32) is the original's long side in
      pixels, so normalised coordinates (fractions of `size`) times `side` are original pixels.
    """
    shape = tf.shape(image)
    side = tf.maximum(shape[0], shape[1])
    scale = tf.cast(size, tf.float32) / tf.cast(side, tf.float32)
    new_h = tf.clip_by_value(tf.cast(tf.round(tf.cast(shape[0], tf.float32) * scale), tf.int32), 1, size)
    new_w = tf.clip_by_value(tf.cast(tf.round(tf.cast(shape[1], tf.float32) * scale), tf.int32), 1, size)
    # Resize the uint8 image, then scale: no float32 copy of a large original.
    resized = tf.image.resize(image, tf.stack([new_h, new_w]), antialias=True) / 255.0
    padded = tf.pad(resized, [[0, size - new_h], [0, size - new_w], [0, 0]])
    padded = tf.ensure_shape(tf.clip_by_value(padded, 0.0, 1.0), [size, size, 3])
    return padded, tf.cast(side, tf.float32)


def pad_to_square_and_resize(image, size):
    """The former name of `resize_and_pad` (same contract: `[size, size, 3]` in [0, 1], long side)."""
    return resize_and_pad(image, size)


def pack_annotation(quads, dontcare, side, max_boxes, stats=None, name="", texts=None):
    """Padded numpy targets from pixel quads; words beyond `max_boxes` are dropped and counted.

    Args:
      quads: `[n, 4, 2]` pixel corners.
      dontcare: `[n]` flags.
      side: pixels per normalised unit (the long side of the original).
      max_boxes: M.
      stats: optional dict counting `truncated_boxes`.
      texts: optional transcriptions; when given the result has `texts` (object array of str, "" padding).
    """
    del name
    quads = np.asarray(quads, np.float32).reshape(-1, 4, 2)
    dontcare = np.asarray(dontcare, bool).reshape(-1)
    if len(quads) > max_boxes:
        if stats is not None:
            stats["truncated_boxes"] = stats.get("truncated_boxes", 0) + len(quads) - max_boxes
        quads, dontcare = quads[:max_boxes], dontcare[:max_boxes]
    n = len(quads)
    out_quads = np.zeros((max_boxes, 4, 2), np.float32)
    out_quads[:n] = quads / side
    boxes = np.tile(np.asarray(_EMPTY_BOX, np.float32), (max_boxes, 1))
    if n:
        boxes[:n] = box_lib.np_canonical(box_lib.quad_to_six(out_quads[:n]))
    valid = np.zeros(max_boxes, np.float32)
    valid[:n] = 1
    dc = np.zeros(max_boxes, np.float32)
    dc[:n] = dontcare
    out = {"boxes": boxes, "quads": out_quads, "valid": valid, "dontcare": dc}
    if texts is not None:
        padded = np.full(max_boxes, "", object)
        padded[:n] = list(texts)[:n]
        out["texts"] = padded
    return out


# Synthetic scenes ---------------------------------------------------------------------------------------


def _encode_jpeg(image, quality=95):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


class ScenePool:
    """A training pool of `size` rendered scenes, filled as training asks for it.

    The first pass renders new scenes (scene `i` of stream `seed`, so the content never depends on the order
    of filling); once full, examples are drawn at random. Each scene is kept as a JPEG (quality 95) scaled
    so that its long side is at most `long_side` (the largest training scale needs no more), with its word
    quads in those pixels: a 1280x720 scene costs about 100 kB instead of 2.7 MB.

    Args:
      renderer: a `scenes.SceneRenderer`.
      seed: the pool's render stream.
      size: scenes in the full pool.
      long_side: pixels of the stored long side.
      max_boxes: M, words kept per scene.
      start: the pool holds scenes `start .. start + size - 1` of the stream (a continued training can
        take scenes the earlier runs never saw).
    """

    def __init__(self, renderer, seed, size, long_side, max_boxes, start=0):
        if int(start) < 0:
            raise ValueError(f"ScenePool start must be >= 0, got {start}")
        self.renderer, self.seed, self.size, self.start = renderer, seed, int(size), int(start)
        self.long_side, self.max_boxes = int(long_side), int(max_boxes)
        self.examples = []
        self.stats = {}
        self._lock = threading.Lock()

    def _render(self, index):
        scene = scenes.render_indexed(self.renderer, self.seed, self.start + index)
        height, width = scene.image.shape[:2]
        scale = min(1.0, self.long_side / max(height, width))
        image = scene.image
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
        packed = pack_annotation(scene.quads * scale, scene.dontcare, 1.0, self.max_boxes, self.stats)
        return _encode_jpeg(image), packed["quads"], packed["valid"], packed["dontcare"]

    def example(self, rng):
        """The next new scene while the pool fills, then a random one."""
        with self._lock:
            if len(self.examples) < self.size:
                self.examples.append(self._render(len(self.examples)))
                return self.examples[-1]
            return self.examples[int(rng.integers(self.size))]

    def dataset(self, seed):
        """Infinite tf.data stream of `(jpeg bytes, pixel quads [M, 4, 2], valid [M], dontcare [M])`."""
        m = self.max_boxes
        spec = (
            tf.TensorSpec([], tf.string),
            tf.TensorSpec([m, 4, 2], tf.float32),
            tf.TensorSpec([m], tf.float32),
            tf.TensorSpec([m], tf.float32),
        )

        def examples():
            rng = np.random.default_rng(seed)
            while True:
                yield self.example(rng)

        return tf.data.Dataset.from_generator(examples, output_signature=spec)


def render_eval_arrays(renderer, seed, count, image_size, max_boxes):
    """Scenes `0 .. count - 1` of stream `seed`, prepared as the detector sees them (`resize_and_pad`).

    Returns:
      `(images uint8 [count, S, S, 3], targets)`: targets as `pack_annotation` (with `texts`) plus `side`
      (each scene's long side) and `image_id` (its index).
    """
    images, targets = [], []
    for index in range(count):
        scene = scenes.render_indexed(renderer, seed, index)
        prepared, side = resize_and_pad(tf.constant(scene.image), image_size)
        images.append(np.round(prepared.numpy() * 255.0).astype(np.uint8))
        packed = pack_annotation(scene.quads, scene.dontcare, float(side), max_boxes, texts=scene.texts)
        packed["side"], packed["image_id"] = np.float32(side), np.int32(index)
        targets.append(packed)
    return np.stack(images), {k: np.stack([t[k] for t in targets]) for k in targets[0]}


def eval_dataset(images, targets, batch_size):
    """Finite, deterministic batches (no augmentation) of prepared uint8 images."""
    targets = {k: (v.astype(str) if v.dtype == object else v) for k, v in targets.items()}
    ds = tf.data.Dataset.from_tensor_slices((images, targets))
    return ds.map(lambda im, t: (tf.cast(im, tf.float32) / 255.0, t)).batch(batch_size)


# Training transforms --------------------------------------------------------------------------------------


def _inside_share(quads):
    """Share of each quad (`[M, 4, 2]`, normalised) inside the unit square, from a 5 x 3 grid of points."""
    u = tf.constant((np.arange(5) + 0.5) / 5, tf.float32)[None, None, :, None]
    v = tf.constant((np.arange(3) + 0.5) / 3, tf.float32)[None, :, None, None]
    top = quads[:, None, None, 0] + u * (quads[:, None, None, 1] - quads[:, None, None, 0])
    bottom = quads[:, None, None, 3] + u * (quads[:, None, None, 2] - quads[:, None, None, 3])
    points = top + v * (bottom - top)  # [M, 3, 5, 2]
    inside = tf.reduce_all((points >= 0.0) & (points <= 1.0), -1)
    return tf.reduce_mean(tf.cast(inside, tf.float32), [1, 2])


def target_from_quads(quads, valid, dontcare):
    """Targets from normalised quads: canonical boxes, with words cut by the image border dropped (less than
    half inside) or made don't care (less than 90 % inside)."""
    share = _inside_share(quads)
    valid = valid * tf.cast(share >= _DONTCARE_INSIDE, tf.float32)
    dontcare = tf.maximum(dontcare, tf.cast(share < _KEEP_INSIDE, tf.float32)) * valid
    boxes = tf.where(valid[:, None] > 0, box_lib.canonical(box_lib.tf_quad_to_six(quads)), tf.constant(_EMPTY_BOX))
    return {"boxes": boxes, "quads": quads, "valid": valid, "dontcare": dontcare}


def multiscale_example(image, quads, valid, dontcare, size, scale_range, seed):
    """One training example at a random scale: resize, crop or place on the padding, normalise the quads.

    Args:
      image: `[H, W, 3]` uint8.
      quads: `[M, 4, 2]` pixel corners of `image`.
      valid, dontcare: `[M]` flags.
      size: S.
      scale_range: `(low, high)`: the long side becomes `scale * S`, scale uniform in the range (1 = fills S).
      seed: int64 `[2]` stateless seed.

    Returns:
      `(image [S, S, 3] float32 in [0, 1], target dict)` (`target_from_quads`).
    """
    seeds = tf.random.experimental.stateless_split(seed, 3)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.random.stateless_uniform([], seeds[0], scale_range[0], scale_range[1])
    factor = scale * size / tf.reduce_max(shape)
    new = tf.maximum(tf.cast(tf.round(shape * factor), tf.int32), 1)
    resized = tf.image.resize(image, new, antialias=True) / 255.0
    # Larger than S: a random S x S window; smaller: a random place on the S x S canvas.
    window = tf.minimum(new, size)
    crop_at = tf.cast(
        tf.floor(tf.random.stateless_uniform([2], seeds[1]) * tf.cast(new - window + 1, tf.float32)), tf.int32
    )
    crop_at = tf.minimum(crop_at, new - window)
    cropped = tf.slice(resized, tf.concat([crop_at, [0]], 0), tf.concat([window, [3]], 0))
    place_at = tf.cast(
        tf.floor(tf.random.stateless_uniform([2], seeds[2]) * tf.cast(size - window + 1, tf.float32)), tf.int32
    )
    place_at = tf.minimum(place_at, size - window)
    out = tf.pad(
        cropped, [[place_at[0], size - window[0] - place_at[0]], [place_at[1], size - window[1] - place_at[1]], [0, 0]]
    )
    out = tf.ensure_shape(tf.clip_by_value(out, 0.0, 1.0), [size, size, 3])
    shift = tf.cast(place_at - crop_at, tf.float32)[::-1]  # (x, y)
    norm_quads = (quads * factor + shift) / float(size)
    return out, target_from_quads(norm_quads, valid, dontcare)


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


def _augment(image, target, seed, max_rotate_deg):
    seeds = tf.random.experimental.stateless_split(seed, 3)
    if max_rotate_deg > 0:
        angle = tf.random.stateless_uniform([], seeds[0], -1.0, 1.0) * np.deg2rad(max_rotate_deg)
        image, target = rotate_example(image, target, angle)
    gain = tf.random.stateless_uniform([], seeds[1], 0.8, 1.2)
    bias = tf.random.stateless_uniform([], seeds[2], -0.1, 0.1)
    image = tf.clip_by_value((image - 0.5) * gain + 0.5 + bias, 0.0, 1.0)
    return image, target


def training_batches(examples, batch_size, seed, image_size, scale_range, max_rotate_deg, decode):
    """Infinite augmented batches (static batch size) from a stream of `(image, pixel quads, valid, dontcare)`.

    Args:
      examples: tf.data stream of examples; `decode(image) -> uint8 [H, W, 3]` reads its first field.
      scale_range: multi-scale range (`multiscale_example`); rotation up to `max_rotate_deg` follows.
    """
    seeds = tf.data.Dataset.random(seed=seed).map(lambda v: tf.cast(v % (2**31 - 1), tf.int64))

    def prepare(sd, example):
        image, quads, valid, dontcare = example
        split = tf.random.experimental.stateless_split(tf.stack([sd, sd // 7 + 1]), 2)
        image, target = multiscale_example(decode(image), quads, valid, dontcare, image_size, scale_range, split[0])
        image, target = _augment(image, target, split[1], max_rotate_deg)
        target["side"] = tf.constant(float(image_size))
        return image, target

    ds = tf.data.Dataset.zip((seeds, examples)).map(prepare, num_parallel_calls=2, deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(2)


def scene_train_dataset(pool, batch_size, seed, image_size, scale_range, max_rotate_deg):
    """Training batches from a `ScenePool`."""
    return training_batches(
        pool.dataset(seed),
        batch_size,
        seed,
        image_size,
        scale_range,
        max_rotate_deg,
        lambda data: tf.ensure_shape(tf.io.decode_jpeg(data, channels=3), [None, None, 3]),
    )


# ICDAR 2015 folders -----------------------------------------------------------------------------------


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
        resized, side = resize_and_pad(tf.constant(rgb), image_size)
        t = pack_annotation(ann.quads, ann.dontcare, float(side), max_boxes, stats, path, texts=ann.texts)
        t["side"], t["image_id"] = np.float32(side), np.int32(image_id)
        images.append(np.round(resized.numpy() * 255.0).astype(np.uint8))
        targets.append(t)
    return eval_dataset(np.stack(images), {k: np.stack([t[k] for t in targets]) for k in targets[0]}, batch_size)


def icdar_train_dataset(
    image_dir, gt_dir, image_size, max_boxes, batch_size, seed, max_rotate_deg, stats=None, scale_range=(1.0, 1.0)
):
    """An ICDAR 2015 training folder streamed from disk: decode, multi-scale, augment (infinite).

    Annotations are parsed once (malformed lines skipped and counted in `stats`); images are decoded per
    step, so the folder never has to fit in memory.
    """
    items = _readable(icdar.read_dataset_dir(image_dir, gt_dir, skip_bad=True, stats=stats), stats, decode=False)
    paths = [path for _, path, _, _ in items]
    packed = [pack_annotation(ann.quads, ann.dontcare, 1.0, max_boxes, stats) for _, _, ann, _ in items]
    pixel_quads = np.stack([p["quads"] for p in packed])
    flags = {k: np.stack([p[k] for p in packed]) for k in ("valid", "dontcare")}
    files = tf.data.Dataset.from_tensor_slices((paths, pixel_quads, flags["valid"], flags["dontcare"]))
    examples = files.shuffle(len(paths), seed=seed).repeat()
    return training_batches(
        examples,
        batch_size,
        seed,
        image_size,
        scale_range,
        max_rotate_deg,
        lambda path: images_lib.decode_checked(tf.io.read_file(path), 3),
    )
