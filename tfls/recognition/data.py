"""tf.data pipelines for word images: the synthetic renderer (streamed or pooled) and LMDB word datasets.

Every pipeline yields `(images float32 [B, H, W, C] in [0, 255], labels int32 [B, max_length + 1])`, labels
encoded with the `Charset` (EOS/blank = 0, EOS-padded).
"""

import logging
import os
import threading

import lmdb
import numpy as np
import tensorflow as tf
from PIL import Image

from tfls import images as images_lib
from tfls.recognition.renderer import render_example

log = logging.getLogger(__name__)


# The synthetic held-out sets: `val` (selection, early stopping), `test` (reported) with the training fonts
# and mix; `test_ood` (reported) with held-out fonts and the harder mix; `val_hard` (selection only, rendered
# when `data.val_hard_size` > 0) with the training fonts and the training stream's hard mix. New sets go at
# the end: a set's seed is its index here.
EVAL_SETS = ("val", "test", "test_ood", "val_hard")
# Held-out streams are seeded with (seed, _EVAL_STREAM + k, index): training streams are (seed, index), so
# the two can only meet at a training index of 2**31, which no pool or stream reaches.
_EVAL_STREAM = 2**31


def eval_set_seed(seed, name):
    """The render seed of held-out set `name` (one of `EVAL_SETS`) for data seed `seed`."""
    if name not in EVAL_SETS:
        raise ValueError(f"unknown held-out set {name!r}; known: {EVAL_SETS}")
    return (int(seed), _EVAL_STREAM + EVAL_SETS.index(name))


def render_arrays(renderer, sampler, charset, seed, start, count):
    """Renders examples `start .. start + count - 1` of stream `seed` (an int, or `eval_set_seed(...)`).

    Returns:
      `(images uint8 [count, H, W, C], labels int32 [count, max_length + 1], texts list of str)`.
    """
    images, texts = [], []
    for i in range(start, start + count):
        image, text = render_example(renderer, sampler, seed, i)
        images.append(image)
        texts.append(charset.normalize(text))
    shape = (renderer.height, renderer.width, renderer.channels)
    images = np.stack(images) if images else np.zeros((0, *shape), np.uint8)
    return images, charset.encode_batch(texts), texts


def _to_float(images, labels):
    return tf.cast(images, tf.float32), labels


def synthetic_stream(renderer, sampler, charset, seed, batch_size, parallel_calls=2):
    """Infinite stream of freshly rendered batches (batch b of seed s is always the same images).

    Rendering runs in `tf.py_function` workers; `parallel_calls` of them work ahead of training.
    """
    shape = (renderer.height, renderer.width, renderer.channels)
    width = charset.sequence_length

    def render_batch(b):
        images, labels, _ = render_arrays(renderer, sampler, charset, seed, int(b) * batch_size, batch_size)
        return images, labels

    def map_fn(b):
        images, labels = tf.py_function(render_batch, [b], [tf.uint8, tf.int32])
        images.set_shape((batch_size, *shape))
        labels.set_shape((batch_size, width))
        return images, labels

    ds = tf.data.Dataset.range(2**62).map(map_fn, num_parallel_calls=parallel_calls, deterministic=True)
    return ds.map(_to_float).prefetch(2)


class ProgressivePool:
    """A training pool of `size` rendered words, filled as training asks for it.

    The pool holds example `i` of stream `seed` at index `i` (so its content never depends on the order it
    was filled in), rendered in blocks of `block` consecutive examples. While it fills, each batch renders
    blocks the stream's seed picks at random among those not yet rendered, so jobs with other seeds see
    other images from their first step (a post-tuning of a few hundred steps renders what it uses, not the
    whole pool, and its seeds differ in data as well as in initialisation); once full, batches are drawn at
    random from it.

    Args:
      renderer, sampler, charset: as for `render_arrays`.
      seed: the pool's render stream.
      size: images in the full pool.
      start: the pool holds examples `start .. start + size - 1` of the stream (a continued training can
        draw images the first one never saw).
      block: examples rendered together.
    """

    def __init__(self, renderer, sampler, charset, seed, size, start=0, block=32):
        self.renderer, self.sampler, self.charset = renderer, sampler, charset
        self.seed = seed
        self.size = int(size)
        self.start = int(start)
        self.block = max(int(block), 1)
        shape = (renderer.height, renderer.width, renderer.channels)
        self.images = np.zeros((self.size, *shape), np.uint8)
        self.labels = np.zeros((self.size, charset.sequence_length), np.int32)
        self._rendered = np.zeros(-(-self.size // self.block), bool)
        # images in each block (the last one may be short)
        self._block_sizes = np.minimum(self.size - self.block * np.arange(len(self._rendered)), self.block)
        # The job opens a new stream at every checkpoint boundary while the last one may still prefetch.
        self._lock = threading.Lock()

    @property
    def filled(self):
        """Images rendered so far."""
        return int(self._block_sizes[self._rendered].sum())

    def fill_block(self, b):
        """Renders block `b` (if not yet rendered); returns its indices."""
        lo, hi = b * self.block, min((b + 1) * self.block, self.size)
        with self._lock:
            if not self._rendered[b]:
                images, labels, _ = render_arrays(
                    self.renderer, self.sampler, self.charset, self.seed, self.start + lo, hi - lo
                )
                self.images[lo:hi], self.labels[lo:hi] = images, labels
                self._rendered[b] = True
        return np.arange(lo, hi)

    def batches(self, batch_size, seed):
        """Infinite generator of `(images, labels)` batches: new images while the pool fills, then random ones."""
        rng = np.random.default_rng(seed)
        while True:
            index = np.zeros(0, np.int64)
            while len(index) < batch_size and not self._rendered.all():
                todo = np.flatnonzero(~self._rendered)
                index = np.concatenate([index, self.fill_block(int(rng.choice(todo)))])
            index = index[:batch_size]
            if len(index) < batch_size:  # only once the pool is full
                index = np.concatenate([index, rng.integers(0, self.size, batch_size - len(index))])
            yield self.images[index], self.labels[index]

    def dataset(self, batch_size, seed):
        """The pool as an infinite tf.data stream of float32 image batches."""
        return generator_dataset(
            lambda: self.batches(batch_size, seed), batch_size, self.images.shape[1:], self.labels.shape[1]
        )


def generator_dataset(make_batches, batch_size, image_shape, label_width):
    """An infinite tf.data stream of float32 image batches from `make_batches()`, a generator of
    `(uint8 images [batch_size, *image_shape], int32 labels [batch_size, label_width])`."""
    spec = (
        tf.TensorSpec((batch_size, *image_shape), tf.uint8),
        tf.TensorSpec((batch_size, label_width), tf.int32),
    )
    ds = tf.data.Dataset.from_generator(make_batches, output_signature=spec)
    return ds.map(_to_float).prefetch(2)


def array_dataset(images, labels, batch_size, shuffle_seed=None, repeat=False, drop_remainder=False):
    """Batches in-memory arrays; shuffled and repeated for training, in order once for evaluation."""
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle_seed is not None:
        ds = ds.shuffle(min(len(images), 20000), seed=shuffle_seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=drop_remainder).map(_to_float).prefetch(2)


def lmdb_key(kind, index):
    """The community's LMDB key, e.g. `image-000000001` (1-based)."""
    return f"{kind}-{index:09d}".encode()


def decode_image(data, height, width, channels, max_pixels=images_lib.MAX_PIXELS):
    """Encoded bytes -> uint8 `[height, width, channels]` (resized; 16-bit scaled, alpha dropped).

    Raises:
      ValueError: undecodable data, or an image with more than `max_pixels` (refused before decoding).
    """
    with images_lib.open_checked(data, max_pixels) as img:
        array = images_lib.pil_to_array(img, channels)
    img = Image.fromarray(array[..., 0] if channels == 1 else array).resize((width, height), Image.BILINEAR)
    return np.asarray(img, np.uint8).reshape(height, width, channels)


_ENVIRONMENTS = {}


def _open_readonly(path):
    # LMDB refuses to open one environment twice in a process; train and eval sets may share a path.
    key = os.path.realpath(path)
    if key not in _ENVIRONMENTS:
        try:
            _ENVIRONMENTS[key] = lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False)
        except lmdb.Error as e:
            raise ValueError(f"cannot open LMDB {path!r}: {e}") from e
    return _ENVIRONMENTS[key]


class LmdbWordDataset:
    """One LMDB word dataset (keys `num-samples`, `image-%09d`, `label-%09d`, 1-based).

    Labels are normalised by the charset; too long, empty or out-of-charset labels are filtered when the
    dataset is opened (counted by reason in `filtered`). Undecodable images are skipped while reading,
    counted in `corrupt` and named in the log.

    Args:
      path: folder of the LMDB environment.
      charset: the `Charset`.
      image_shape: `(H, W, C)` images are resized to.
    """

    def __init__(self, path, charset, image_shape=(32, 100, 1)):
        self.path = str(path)
        self.charset = charset
        self.image_shape = tuple(image_shape)
        self.env = _open_readonly(self.path)
        self.filtered = {}
        self.corrupt = 0
        self.indices = []
        with self.env.begin() as txn:
            raw = txn.get(b"num-samples")
            if raw is None:
                raise ValueError(f"LMDB {self.path!r} has no 'num-samples' key")
            try:
                self.num_samples = int(raw.decode())
            except ValueError as e:
                raise ValueError(f"LMDB {self.path!r}: 'num-samples' is not an integer: {raw!r}") from e
            for i in range(1, self.num_samples + 1):
                label = txn.get(lmdb_key("label", i))
                if label is None:
                    reason = "missing label record"
                else:
                    try:
                        reason = charset.invalid_reason(label.decode("utf-8"))
                    except UnicodeDecodeError:
                        reason = "label is not UTF-8"
                if reason is None:
                    self.indices.append(i)
                else:
                    self.filtered[reason] = self.filtered.get(reason, 0) + 1
        if self.filtered:
            log.warning(
                "LMDB %s: filtered %d of %d labels: %s",
                self.path,
                sum(self.filtered.values()),
                self.num_samples,
                self.filtered,
            )

    def __len__(self):
        return len(self.indices)

    def read(self, index):
        """`(image uint8 [H, W, C], label str)` of 1-based record `index`, or None if the image is corrupt."""
        with self.env.begin() as txn:
            label = txn.get(lmdb_key("label", index)).decode("utf-8")
            data = txn.get(lmdb_key("image", index))
        try:
            if data is None:
                raise ValueError("missing image record")
            image = decode_image(data, *self.image_shape)
        except Exception as e:  # PIL raises many types for bad data (OSError, SyntaxError, ValueError, ...)
            self.corrupt += 1
            log.warning("LMDB %s: skipping %s (label %r): %s", self.path, lmdb_key("image", index).decode(), label, e)
            return None
        return image, self.charset.normalize(label)

    def examples(self, shuffle_seed=None, repeat=False):
        """Generator of `(image, label ids)`; shuffles the valid indices each epoch when given a seed."""
        rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
        while True:
            order = list(self.indices)
            if rng is not None:
                rng.shuffle(order)
            yielded = 0
            for index in order:
                example = self.read(index)
                if example is not None:
                    yielded += 1
                    yield example[0], self.charset.encode(example[1])
            if not repeat:
                return
            if not yielded:
                # Repeating would spin forever without producing a batch.
                raise ValueError(f"LMDB {self.path!r}: none of the {len(order)} usable records has a decodable image")

    def dataset(self, shuffle_seed=None, repeat=False):
        """Unbatched tf.data of `(image uint8, label ids)`."""
        spec = (
            tf.TensorSpec(self.image_shape, tf.uint8),
            tf.TensorSpec([self.charset.sequence_length], tf.int32),
        )
        return tf.data.Dataset.from_generator(lambda: self.examples(shuffle_seed, repeat), output_signature=spec)


def lmdb_mixture(datasets, ratios, batch_size, seed):
    """Infinite batches mixing several LMDBs with fixed shares of every batch (like the MJ/ST 0.5/0.5 split).

    Args:
      datasets: list of `LmdbWordDataset`.
      ratios: shares of each batch, one per dataset (normalised; each share gets at least one sample).
      batch_size: total batch size.
      seed: shuffle seed.

    Returns:
      tf.data of `(images float32, labels int32)` batches of exactly `batch_size`.
    """
    if len(datasets) != len(ratios) or not datasets:
        raise ValueError(f"need one ratio per LMDB, got {len(datasets)} datasets and {len(ratios)} ratios")
    for d in datasets:
        if len(d) == 0:
            raise ValueError(f"LMDB {d.path!r} has no usable records after filtering")
    ratios = np.asarray(ratios, np.float64) / np.sum(ratios)
    sizes = np.maximum(1, np.floor(ratios * batch_size).astype(int))
    sizes[-1] = batch_size - sizes[:-1].sum()
    if sizes[-1] < 1:
        raise ValueError(f"batch_size {batch_size} too small for {len(datasets)} LMDBs")
    parts = [
        d.dataset(shuffle_seed=seed + i, repeat=True).batch(int(n), drop_remainder=True)
        for i, (d, n) in enumerate(zip(datasets, sizes))
    ]
    ds = tf.data.Dataset.zip(tuple(parts)).map(
        lambda *batches: (tf.concat([b[0] for b in batches], 0), tf.concat([b[1] for b in batches], 0))
    )
    return ds.map(_to_float).prefetch(2)


def lmdb_eval_dataset(dataset, batch_size):
    """One ordered pass over an `LmdbWordDataset` in batches (corrupt images skipped and counted)."""
    return dataset.dataset().batch(batch_size).map(_to_float).prefetch(2)
