"""Losses checked against values computed by hand."""

import numpy as np
import pytest
import tensorflow as tf

from tfls.surrogate import losses


def test_approximation_loss_hand_values():
    e_hat = tf.constant([1.0, 2.5, 0.0])
    e = tf.constant([2.0, 2.0, 0.0])
    # |1-2| + |2.5-2| + 0 = 1.5 over 3 pairs
    assert float(losses.approximation_loss(e_hat, e)) == pytest.approx(0.5)
    # weights (1, 3, 0): (1*1 + 3*0.5) / 4
    assert float(losses.approximation_loss(e_hat, e, [1.0, 3.0, 0.0])) == pytest.approx(0.625)
    assert float(losses.approximation_loss(e_hat, e, [0.0, 0.0, 0.0])) == 0.0


def test_gradient_penalty_known_gradient():
    # e_hat = 3 * ||p - t||: its gradient w.r.t. p has norm exactly 3 everywhere (away from p = t),
    # so the penalty is (3 - 1)^2 = 4 for every pair.
    def distance(p, t):
        return 3.0 * tf.norm(p - t, axis=-1)

    pred = tf.constant([[1.0, 2.0], [0.0, -4.0]])
    target = tf.constant([[0.0, 0.0], [1.0, 1.0]])
    assert float(losses.gradient_penalty(distance, pred, target)) == pytest.approx(4.0, rel=1e-5)


def test_gradient_penalty_linear_case_and_weights():
    # e_hat = a . p has gradient a; with a = (0.6, 0.8) the norm is 1 (penalty 0), with 2a it is 2 (penalty 1).
    a = tf.constant([0.6, 0.8])

    def distance(p, t):
        scale = tf.where(t[:, 0] > 0, 2.0, 1.0)
        return scale * tf.reduce_sum(p * a, axis=-1)

    pred = tf.constant([[1.0, 1.0], [5.0, -2.0]])
    target = tf.constant([[0.0, 0.0], [1.0, 0.0]])
    assert float(losses.gradient_penalty(distance, pred, target)) == pytest.approx(0.5, rel=1e-5)
    assert float(losses.gradient_penalty(distance, pred, target, [1.0, 0.0])) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.gradient_penalty(distance, pred, target, [0.0, 2.0])) == pytest.approx(1.0, rel=1e-5)


def test_one_sided_gradient_penalty_spares_norms_below_one():
    # gradients (0.3, 0.4) (norm 0.5) and (1.2, 1.6) (norm 2): two-sided 0.25 and 1, one-sided 0 and 1
    def distance(p, t):
        scale = tf.where(t[:, 0] > 0, 4.0, 1.0)
        return scale * tf.reduce_sum(p * tf.constant([0.3, 0.4]), axis=-1)

    pred = tf.constant([[1.0, 1.0], [5.0, -2.0]])
    target = tf.constant([[0.0, 0.0], [1.0, 0.0]])
    assert float(losses.gradient_penalty(distance, pred, target)) == pytest.approx(0.625, rel=1e-5)
    assert float(losses.gradient_penalty(distance, pred, target, one_sided=True)) == pytest.approx(0.5, rel=1e-5)


def test_gradient_penalty_is_differentiable_in_surrogate_weights():
    w = tf.Variable(2.0)

    def distance(p, t):
        return w * tf.norm(p - t, axis=-1)

    pred = tf.constant([[3.0, 4.0]])
    target = tf.zeros([1, 2])
    with tf.GradientTape() as tape:
        penalty = losses.gradient_penalty(distance, pred, target)
    # penalty = (|w| - 1)^2, d/dw = 2 (w - 1) = 2 at w = 2
    assert float(penalty) == pytest.approx(1.0, rel=1e-5)
    assert float(tape.gradient(penalty, w)) == pytest.approx(2.0, rel=1e-4)


def test_robust_weights_ramp():
    e_hat = tf.constant([1.0, 1.15, 1.3, 2.0])
    e = tf.constant([1.0, 1.0, 1.0, 1.0])
    # threshold 0.1: errors 0, 0.15, 0.3, 1.0 -> weights 1, 0.5, 0, 0
    np.testing.assert_allclose(losses.robust_weights(e_hat, e, 0.1).numpy(), [1.0, 0.5, 0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(losses.robust_weights(e_hat, e, 0.0).numpy(), [1.0, 1.0, 1.0, 1.0])


def test_losses_inside_tf_function_match_eager():
    e_hat = tf.constant([0.5, 1.5])
    e = tf.constant([1.0, 1.0])
    eager = losses.approximation_loss(e_hat, e)
    graph = tf.function(losses.approximation_loss)(e_hat, e)
    assert float(eager) == pytest.approx(float(graph))
