"""Losses that fit a surrogate: approximation of the metric, gradient quality, and robust filtering."""

import tensorflow as tf


def _weighted_mean(values, weight):
    values = tf.convert_to_tensor(values, tf.float32)
    if weight is None:
        return tf.reduce_mean(values)
    weight = tf.cast(weight, tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(values * weight), tf.reduce_sum(weight))


def approximation_loss(e_hat, e, weight=None):
    """Weighted mean of `|e_hat - e|`.

    Args:
      e_hat: `[N]` surrogate distances.
      e: `[N]` true metric values.
      weight: optional `[N]` non-negative weights (0 removes a pair, e.g. padding).

    Returns:
      Scalar loss; 0 when every weight is 0.
    """
    e = tf.stop_gradient(tf.cast(e, tf.float32))
    return _weighted_mean(tf.abs(tf.cast(e_hat, tf.float32) - e), weight)


def gradient_penalty(distance_fn, pred, target, weight=None, one_sided=False):
    """Gradient-quality loss `(||d e_hat / d pred||_2 - 1)^2`, averaged over pairs (`one_sided`:
    `max(0, ||d e_hat / d pred||_2 - 1)^2`, a Lipschitz bound that leaves flat regions alone).

    The gradient is taken per pair with respect to the prediction (the target is held fixed), as the model
    will see it during tuning. The returned value stays differentiable with respect to the surrogate's
    weights (double backpropagation), so it can be minimised.

    Args:
      distance_fn: callable `(pred, target) -> [N]` surrogate distances; it must treat pairs independently.
      pred: `[N, ...]` predictions in the surrogate's input space.
      target: `[N, ...]` targets.
      weight: optional `[N]` pair weights.
      one_sided: penalise only norms above 1.

    Returns:
      Scalar penalty.
    """
    pred = tf.stop_gradient(tf.cast(pred, tf.float32))
    target = tf.stop_gradient(tf.cast(target, tf.float32))
    with tf.GradientTape() as tape:
        tape.watch(pred)
        e_hat = distance_fn(pred, target)
        total = tf.reduce_sum(e_hat)
    grads = tape.gradient(total, pred)
    flat = tf.reshape(grads, [tf.shape(grads)[0], -1])
    norms = tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1) + 1e-12)
    excess = tf.nn.relu(norms - 1.0) if one_sided else norms - 1.0
    return _weighted_mean(tf.square(excess), weight)


def robust_weights(e_hat, e, threshold):
    """FEDS-style ramp: pairs whose approximation error exceeds `threshold` are down-weighted.

    Weight is 1 for `|e_hat - e| <= threshold`, falls linearly to 0 at `2 * threshold`, and is 0 beyond.
    A threshold `<= 0` turns the filter off (all weights 1). Weights carry no gradient.

    Args:
      e_hat: `[N]` surrogate distances.
      e: `[N]` true metric values.
      threshold: python float.

    Returns:
      `[N]` float32 weights in [0, 1].
    """
    e_hat = tf.cast(e_hat, tf.float32)
    if threshold is None or threshold <= 0:
        return tf.ones_like(e_hat)
    err = tf.abs(e_hat - tf.cast(e, tf.float32))
    w = tf.clip_by_value(2.0 - err / float(threshold), 0.0, 1.0)
    return tf.stop_gradient(w)
