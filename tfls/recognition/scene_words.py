"""Word crops cut from rendered scenes: the recognizer's share of SynthText-style training data.

The paper's recognizers learn from MJSynth (words rendered one at a time, as `renderer.py` does) and
SynthText (words cut out of text rendered into whole scenes). tfls's second source is the detection task's
scene renderer (`tfls.detection.scenes.SceneRenderer`) with the recognition task's training fonts, vocabulary
and the scene mix `data.scene_mix`: every cared-for word of a scene is rectified to the recognizer's input
exactly as the OCR export rectifies a detected word (`tfls.ocr.export.word_crops`: a perspective crop of the
quadrilateral, `MARGIN` of the word's height around it, grey for one channel), after its corners are jittered
the way a detector misplaces them (`data.scene_jitter`: each corner moves by up to that fraction of the word's
height, the box grows or shrinks along both axes and slides along the baseline). So the crops a reader sees in
training have the sizes (from ~8 px high), angles, perspective, backgrounds and clutter of scene words and the
imprecision of detected boxes, which the single-word renderer does not draw.

Words that cannot be labels are counted, never silently dropped: don't-care (`###`) words, empty ones, words
with characters outside the charset and words longer than `data.max_length` (`ScenePool.skipped`, logged
when the pool is full).
"""

import logging
import threading

import numpy as np
import tensorflow as tf

log = logging.getLogger(__name__)

#: scene render streams are seeded (data.seed, SCENE_STREAM, scene index): never a word stream's seed.
SCENE_STREAM = 2**30
#: the held-out scenes of `val_scenes` (data.seed, SCENE_EVAL_STREAM, index): never a training scene.
SCENE_EVAL_STREAM = 2**30 + 16
#: scenes rendered without a single usable word before `scene_eval_arrays` gives up
MAX_EMPTY_SCENES = 200


def jitter_quads(quads, rng, amount):
    """Detector-like misplacement of word quadrilaterals `[n, 4, 2]` (pixels, ICDAR order).

    Each box is scaled about its centre along its own axes (width by up to `amount`, height by up to
    `1.5 * amount`), slid along its baseline by up to `amount / 2` of its width, and each corner moved along
    both axes by up to `amount / 2` of the word's height; all in the box's own frame, so a rotated word moves
    as an upright one does. `amount` 0 returns the quads unchanged.
    """
    quads = np.asarray(quads, np.float32).reshape(-1, 4, 2)
    if amount <= 0 or len(quads) == 0:
        return quads.copy()
    n = len(quads)
    centre = quads.mean(axis=1, keepdims=True)
    along = 0.5 * ((quads[:, 1] - quads[:, 0]) + (quads[:, 2] - quads[:, 3]))  # [n, 2] width vector
    across = 0.5 * ((quads[:, 3] - quads[:, 0]) + (quads[:, 2] - quads[:, 1]))  # [n, 2] height vector
    width = np.linalg.norm(along, axis=-1, keepdims=True)
    height = np.linalg.norm(across, axis=-1, keepdims=True)
    u = along / np.maximum(width, 1e-6)
    v = across / np.maximum(height, 1e-6)
    # Corner coordinates in the box's own frame, scaled and shifted there, mapped back.
    rel = quads - centre
    a = np.einsum("nkd,nd->nk", rel, u)
    b = np.einsum("nkd,nd->nk", rel, v)
    sx = 1.0 + rng.uniform(-amount, amount, (n, 1))
    sy = 1.0 + rng.uniform(-1.5 * amount, 1.5 * amount, (n, 1))
    shift = rng.uniform(-0.5 * amount, 0.5 * amount, (n, 1)) * width
    a = a * sx + shift + rng.uniform(-0.5 * amount, 0.5 * amount, (n, 4)) * height
    b = b * sy + rng.uniform(-0.5 * amount, 0.5 * amount, (n, 4)) * height
    out = centre + a[..., None] * u[:, None, :] + b[..., None] * v[:, None, :]
    return out.astype(np.float32)


def scene_word_examples(scene, charset, image_shape, rng, jitter=0.0, skipped=None):
    """The recognizer's training examples in one scene.

    Args:
      scene: a `tfls.detection.scenes.Scene`.
      charset: the recognition `Charset` (labels are `charset.normalize`d).
      image_shape: the recognizer's `(height, width, channels)`.
      rng: numpy Generator for the jitter.
      jitter: see `jitter_quads`.
      skipped: optional dict; counts of words left out, by reason, are added to it.

    Returns:
      `(images uint8 [k, H, W, C], texts list of k str)`.
    """
    from tfls.ocr.export import word_crops

    skipped = {} if skipped is None else skipped
    keep, texts = [], []
    for j, text in enumerate(scene.texts):
        label = charset.normalize(text)
        if text == "###":
            reason = "dont_care"
        elif charset.is_valid(label):
            reason = None
        elif not label:
            reason = "empty"
        elif len(label) > charset.max_length:
            reason = "too_long"
        else:
            reason = "outside_charset"
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        keep.append(j)
        texts.append(label)
    h, w, c = image_shape
    if not keep:
        return np.zeros((0, h, w, c), np.uint8), []
    quads = jitter_quads(np.asarray(scene.quads, np.float32).reshape(-1, 4, 2)[keep], rng, jitter)
    crops = word_crops(tf.constant(scene.image), tf.constant(quads), image_shape).numpy()
    return np.clip(np.round(crops), 0, 255).astype(np.uint8), texts


def indexed_scene_examples(renderer, charset, image_shape, seed, stream, index, jitter=0.0, skipped=None):
    """`scene_word_examples` of scene `index` of stream `(seed, stream)`, its jitter drawn from
    `(seed, stream + 1, index)`: the same crops whatever else was rendered (training pool and `val_scenes`)."""
    from tfls.detection.scenes import render_indexed

    scene = render_indexed(renderer, (int(seed), int(stream)), index)
    rng = np.random.default_rng([int(seed), int(stream) + 1, int(index)])
    return scene_word_examples(scene, charset, image_shape, rng, jitter, skipped)


class ScenePool:
    """A pool of `size` scene word crops, filled scene by scene as training asks for it (like
    `data.ProgressivePool`), then reshuffled.

    Args:
      renderer: a `SceneRenderer` (training fonts).
      charset, image_shape: the recognizer's.
      seed: the data seed; scene `i` is `render_indexed(renderer, (seed, SCENE_STREAM), i)`.
      size: crops in the full pool.
      jitter: see `jitter_quads`.
      start: the first scene's index (a continued training takes new scenes by raising it).
    """

    def __init__(self, renderer, charset, image_shape, seed, size, jitter=0.0, start=0):
        if int(start) < 0:
            raise ValueError(f"ScenePool: start must be >= 0, got {start}")
        self.renderer, self.charset = renderer, charset
        self.start = int(start)
        self.image_shape = tuple(int(v) for v in image_shape)
        self.seed = int(seed)
        self.size = int(size)
        self.jitter = float(jitter)
        self.images = np.zeros((self.size, *self.image_shape), np.uint8)
        self.labels = np.zeros((self.size, charset.sequence_length), np.int32)
        self.filled = 0
        self.scenes = 0
        self.skipped = {}
        self._lock = threading.Lock()

    @property
    def full(self):
        return self.filled >= self.size

    def fill_scene(self):
        """Renders the next scene into the pool; returns the indices of its crops."""
        with self._lock:
            if self.full:
                return np.zeros(0, np.int64)
            images, texts = indexed_scene_examples(
                self.renderer,
                self.charset,
                self.image_shape,
                self.seed,
                SCENE_STREAM,
                self.start + self.scenes,
                self.jitter,
                self.skipped,
            )
            self.scenes += 1
            k = min(len(texts), self.size - self.filled)
            lo = self.filled
            if k:
                self.images[lo : lo + k] = images[:k]
                self.labels[lo : lo + k] = self.charset.encode_batch(texts[:k])
                self.filled += k
            if self.full:
                log.info(
                    "scene word pool full: %d crops from %d scenes; words left out: %s",
                    self.filled,
                    self.scenes,
                    self.skipped or "none",
                )
            return np.arange(lo, lo + k)

    def sample(self, count, rng):
        """`count` pool indices: new crops while the pool fills (rendering scenes as needed), then random."""
        index = np.zeros(0, np.int64)
        while len(index) < count and not self.full:
            index = np.concatenate([index, self.fill_scene()])
        index = index[:count]
        if len(index) < count:  # only once the pool is full
            index = np.concatenate([index, rng.integers(0, self.size, count - len(index))])
        return index


def scene_eval_arrays(renderer, charset, image_shape, seed, count, jitter=0.0):
    """`count` word crops of held-out scenes (`val_scenes`, a selection set): scenes 0, 1, ... of stream
    `SCENE_EVAL_STREAM` (`indexed_scene_examples`), taken in order until `count` crops are in; the last
    scene's extra crops are left out.

    Returns:
      `(images uint8 [count, H, W, C], labels int32 [count, sequence_length])`.

    Raises:
      ValueError: when `MAX_EMPTY_SCENES` scenes in a row hold no usable word (e.g. a `data.scene_mix`
      that draws no words, or words all outside the charset).
    """
    count = int(count)
    if count <= 0:
        return np.zeros((0, *image_shape), np.uint8), charset.encode_batch([])
    images, texts, skipped = [], [], {}
    index = empty = 0
    while len(texts) < count:
        crops, words = indexed_scene_examples(
            renderer, charset, image_shape, seed, SCENE_EVAL_STREAM, index, jitter, skipped
        )
        index += 1
        empty = 0 if words else empty + 1
        if empty >= MAX_EMPTY_SCENES:
            raise ValueError(
                f"val_scenes: {MAX_EMPTY_SCENES} scenes in a row hold no word the recognizer can label "
                f"({len(texts)} of data.val_scenes_size={count} crops found; words left out: {skipped or 'none'}); "
                "check data.scene_mix and the charset"
            )
        images.append(crops)
        texts += words
    log.info("val_scenes: %d crops from %d scenes; words left out: %s", count, index, skipped or "none")
    return np.concatenate(images)[:count], charset.encode_batch(texts[:count])


def mixed_batches(word_batches, scene_pool, n_scene, seed):
    """Infinite `(images, labels)` batches: each batch of `word_batches` (a generator, e.g.
    `ProgressivePool.batches(batch_size - n_scene, ...)`) with `n_scene` scene crops added, shuffled together."""
    rng = np.random.default_rng([int(seed), SCENE_STREAM + 2])
    for images, labels in word_batches:
        index = scene_pool.sample(int(n_scene), rng)
        images = np.concatenate([images, scene_pool.images[index]])
        labels = np.concatenate([labels, scene_pool.labels[index]])
        order = rng.permutation(len(labels))
        yield images[order], labels[order]
