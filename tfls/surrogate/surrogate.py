"""A learned surrogate of a metric: e_hat(pred, target) = ||h_phi(pred) - h_phi(target)||_2 (the paper's), or the
L1 or squared L2 distance of the two embeddings (`Surrogate.set_distance`)."""

import abc

import numpy as np
import tensorflow as tf


class PairGenerator(abc.ABC):
    """Source of global pairs: a ground-truth-like label and a randomly distorted copy of it."""

    @abc.abstractmethod
    def generate(self, n, rng):
        """Draw `n` pairs.

        Args:
          n: number of pairs.
          rng: `np.random.Generator` to draw from (the only source of randomness).

        Returns:
          `(pred, target)` float32 numpy arrays shaped `[n, *pred_shape]`.
        """


DISTANCES = ("l2", "l1", "squared_l2")


class Surrogate:
    """Embedding network + the true metric + a global pair generator.

    Args:
      embedding: keras Layer or Model mapping `[N, *pred_shape]` float32 to `[N, D]`. It must treat
        samples independently (no BatchNorm in training mode): the gradient penalty needs per-sample
        gradients.
      metric_fn: numpy callable `(pred, target) -> [N]` with the true metric of each pair.
      pair_generator: a `PairGenerator` for global pairs.
      pred_shape: shape of one prediction, without the batch axis.
      seed: seed of the generator's random stream.
      metric_fn_tf: optional in-graph twin of `metric_fn`, `(pred, target) -> [N]` in TF ops. When given,
        `true_metric` uses it instead of `tf.py_function`, so a step needs no Python (XLA, TPU); it must
        agree with `metric_fn` (the NumPy metric stays the reference for evaluation and global pairs).
      distance: how the two embeddings are compared (`DISTANCES`): "l2" (the paper), "l1" or "squared_l2".
    """

    def __init__(self, embedding, metric_fn, pair_generator, pred_shape, seed=0, metric_fn_tf=None, distance="l2"):
        self.set_distance(distance)
        self.embedding = embedding
        self.metric_fn = metric_fn
        self.metric_fn_tf = metric_fn_tf
        self.pair_generator = pair_generator
        self.pred_shape = tuple(int(d) for d in pred_shape)
        self.reseed(seed)

    def set_distance(self, kind):
        """Choose how embeddings are compared: "l2" `||a - b||_2` (the paper), "l1" `||a - b||_1`, or
        "squared_l2" `||a - b||_2^2`.

        Why not always L2: a Euclidean distance adds independent differences in quadrature, so k edits at k
        places, each moving the embedding in its own direction, give about sqrt(k) times one edit's distance
        (the binary cube's Hamming metric is exactly sqrt-compressed in L2, and no embedding in L2 avoids a
        distortion growing with the length). L1, and squared L2, add such differences linearly (Hamming embeds
        in both isometrically). Squared L2 also has a gradient that shrinks as a pair closes, where L2's and
        L1's keep their size down to a distance of zero. (On STR neither fitted better than L2 in
        `bench/surrogate_capacity.py`'s study: the compression of large distances there is mostly the gradient
        penalty's pull towards unit slope.) The embedding's weights do not depend on the choice, but a
        surrogate must be used with the distance it was fitted with.
        """
        if kind not in DISTANCES:
            raise ValueError(f"surrogate distance must be one of {', '.join(DISTANCES)}; got {kind!r}")
        self.distance_kind = kind
        return self

    def reseed(self, seed):
        """Restart the global pair stream from `seed` (used on resume and per worker)."""
        self._rng = np.random.default_rng(seed)

    def build(self):
        """Create the embedding's weights by calling it on zeros of the real shape."""
        self.embedding(tf.zeros((2,) + self.pred_shape, tf.float32))
        return self

    @property
    def trainable_variables(self):
        return self.embedding.trainable_variables

    @property
    def variables(self):
        return self.embedding.variables

    def distance(self, pred, target):
        """Per-pair surrogate distance of `h(pred)` and `h(target)` (`set_distance`; by default
        `||h(pred) - h(target)||_2`), shape `[N]`."""
        pred = tf.cast(pred, tf.float32)
        target = tf.cast(target, tf.float32)
        # One embedding call for both halves; tf.split rather than slicing at a dynamic n: under XLA the
        # gradient of that slice inside the lazy penalty's tf.cond got a wrong (empty) shape.
        embedded_pred, embedded_target = tf.split(self.embedding(tf.concat([pred, target], axis=0)), 2, axis=0)
        diff = embedded_pred - embedded_target
        if self.distance_kind == "l1":
            return tf.reduce_sum(tf.abs(diff), axis=-1)
        squared = tf.reduce_sum(tf.square(diff), axis=-1)
        if self.distance_kind == "squared_l2":
            return squared
        return tf.sqrt(squared + 1e-12)

    def _metric_numpy(self, pred, target):
        pred = np.asarray(pred)
        target = np.asarray(target)
        values = np.asarray(self.metric_fn(pred, target), np.float32).reshape(-1)
        if values.shape[0] != pred.shape[0]:
            raise ValueError(f"metric_fn returned {values.shape[0]} values for {pred.shape[0]} pairs")
        return values

    def true_metric(self, pred, target):
        """The true metric of each pair, shape `[N]`, no gradient: `metric_fn_tf` in the graph when the
        surrogate has one, else `metric_fn` through `tf.py_function`."""
        pred = tf.stop_gradient(tf.cast(pred, tf.float32))
        target = tf.stop_gradient(tf.cast(target, tf.float32))
        if self.metric_fn_tf is not None:
            values = tf.reshape(tf.cast(self.metric_fn_tf(pred, target), tf.float32), [-1])
            return tf.stop_gradient(tf.ensure_shape(values, [pred.shape[0]]))
        values = tf.py_function(self._metric_numpy, [pred, target], tf.float32)
        values.set_shape([pred.shape[0]])
        return values

    def _generate_numpy(self, n, rng=None):
        pred, target = self.pair_generator.generate(int(n), self._rng if rng is None else rng)
        pred = np.asarray(pred, np.float32)
        target = np.asarray(target, np.float32)
        expected = (int(n),) + self.pred_shape
        if pred.shape != expected or target.shape != expected:
            raise ValueError(
                f"{type(self.pair_generator).__name__}.generate returned shapes {pred.shape} and "
                f"{target.shape}, expected {expected}"
            )
        return pred, target

    def global_pairs(self, n):
        """`n` global pairs `(pred, target)` as tensors, drawn through `tf.py_function`."""
        pred, target = tf.py_function(self._generate_numpy, [n], [tf.float32, tf.float32])
        pred.set_shape((n,) + self.pred_shape)
        target.set_shape((n,) + self.pred_shape)
        return pred, target

    def global_pair_dataset(self, n):
        """An endless `tf.data` stream of global pairs with their true metric, batches of `n`.

        The same pairs `global_pairs` would draw, in the same order (it draws from the surrogate's current
        random stream, set by `reseed`), with the NumPy `metric_fn` computed beside them in the input
        pipeline. Zipped beside the training batches and prefetched, it takes the generator and the metric of
        global pairs out of the step function (`SurrogateTuner(..., global_pairs="dataset")`).

        Returns:
          A dataset of `(pred, target, e)`: float32 `[n, *pred_shape]` twice and `[n]`.
        """
        n = int(n)
        rng = self._rng

        def pairs():
            while True:
                pred, target = self._generate_numpy(n, rng)
                yield pred, target, self._metric_numpy(pred, target)

        spec = tf.TensorSpec((n,) + self.pred_shape, tf.float32)
        signature = (spec, spec, tf.TensorSpec((n,), tf.float32))
        return tf.data.Dataset.from_generator(pairs, output_signature=signature).prefetch(2)

    def held_out_pairs(self, n, seed):
        """`n` global pairs drawn from a separate, fixed stream (for measuring approximation error)."""
        pred, target = self.pair_generator.generate(int(n), np.random.default_rng(seed))
        return np.asarray(pred, np.float32), np.asarray(target, np.float32)
