"""A learned surrogate of a metric: e_hat(pred, target) = ||h_phi(pred) - h_phi(target)||_2."""

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
    """

    def __init__(self, embedding, metric_fn, pair_generator, pred_shape, seed=0):
        self.embedding = embedding
        self.metric_fn = metric_fn
        self.pair_generator = pair_generator
        self.pred_shape = tuple(int(d) for d in pred_shape)
        self.reseed(seed)

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
        """Per-pair surrogate distance `||h(pred) - h(target)||_2`, shape `[N]`."""
        pred = tf.cast(pred, tf.float32)
        target = tf.cast(target, tf.float32)
        n = tf.shape(pred)[0]
        both = self.embedding(tf.concat([pred, target], axis=0))
        diff = both[:n] - both[n:]
        return tf.sqrt(tf.reduce_sum(tf.square(diff), axis=-1) + 1e-12)

    def _metric_numpy(self, pred, target):
        pred = np.asarray(pred)
        target = np.asarray(target)
        values = np.asarray(self.metric_fn(pred, target), np.float32).reshape(-1)
        if values.shape[0] != pred.shape[0]:
            raise ValueError(f"metric_fn returned {values.shape[0]} values for {pred.shape[0]} pairs")
        return values

    def true_metric(self, pred, target):
        """The true metric of each pair through `tf.py_function`, shape `[N]`, no gradient."""
        pred = tf.stop_gradient(tf.cast(pred, tf.float32))
        target = tf.stop_gradient(tf.cast(target, tf.float32))
        values = tf.py_function(self._metric_numpy, [pred, target], tf.float32)
        values.set_shape([pred.shape[0]])
        return values

    def _generate_numpy(self, n):
        pred, target = self.pair_generator.generate(int(n), self._rng)
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

    def held_out_pairs(self, n, seed):
        """`n` global pairs drawn from a separate, fixed stream (for measuring approximation error)."""
        pred, target = self.pair_generator.generate(int(n), np.random.default_rng(seed))
        return np.asarray(pred, np.float32), np.asarray(target, np.float32)
