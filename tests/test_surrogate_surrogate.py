"""Surrogate: distance, metric through py_function or in the graph, global pairs in the step or as a stream."""

import numpy as np
import pytest
import tensorflow as tf
import toy_task

from tfls.surrogate import PairGenerator, Surrogate


def _surrogate(seed=0):
    return Surrogate(
        toy_task.zero_one_embedding(), toy_task.zero_one, toy_task.ConfusionGenerator(), (toy_task.CLASSES,), seed=seed
    ).build()


def test_distance_is_euclidean_distance_of_embeddings():
    s = _surrogate()
    rng = np.random.default_rng(0)
    pred = rng.random((4, toy_task.CLASSES)).astype(np.float32)
    target = rng.random((4, toy_task.CLASSES)).astype(np.float32)
    expected = np.linalg.norm(s.embedding(pred).numpy() - s.embedding(target).numpy(), axis=1)
    np.testing.assert_allclose(s.distance(pred, target).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_true_metric_eager_and_in_graph():
    s = _surrogate()
    pred = np.array([[0.1, 0.9, 0, 0, 0], [0.8, 0.2, 0, 0, 0]], np.float32)
    target = np.array([[0, 1, 0, 0, 0], [0, 1, 0, 0, 0]], np.float32)
    np.testing.assert_array_equal(s.true_metric(pred, target).numpy(), [0.0, 1.0])
    graph = tf.function(lambda p, t: s.true_metric(p, t))
    out = graph(tf.constant(pred), tf.constant(target))
    np.testing.assert_array_equal(out.numpy(), [0.0, 1.0])


def test_global_pairs_shapes_and_seeding():
    a, b = _surrogate(seed=3), _surrogate(seed=3)
    pa = a.global_pairs(8)
    pb = b.global_pairs(8)
    assert pa[0].shape == (8, toy_task.CLASSES)
    np.testing.assert_array_equal(pa[0].numpy(), pb[0].numpy())
    graph_pairs = tf.function(lambda: a.global_pairs(8))()
    assert graph_pairs[1].shape == (8, toy_task.CLASSES)


def test_generator_with_wrong_shape_is_a_clear_error():
    class Bad(PairGenerator):
        def generate(self, n, rng):
            return np.zeros((n, 3), np.float32), np.zeros((n, 3), np.float32)

    s = Surrogate(toy_task.zero_one_embedding(), toy_task.zero_one, Bad(), (toy_task.CLASSES,))
    with pytest.raises(Exception, match="Bad.generate returned shapes"):
        s.global_pairs(4)


def _zero_one_tf(pred, target):
    return tf.cast(tf.not_equal(tf.argmax(pred, -1), tf.argmax(target, -1)), tf.float32)


def test_true_metric_uses_the_in_graph_metric_when_given():
    s = Surrogate(
        toy_task.zero_one_embedding(),
        toy_task.zero_one,
        toy_task.ConfusionGenerator(),
        (toy_task.CLASSES,),
        metric_fn_tf=_zero_one_tf,
    ).build()
    pred, target = s.held_out_pairs(64, seed=1)
    np.testing.assert_array_equal(s.true_metric(pred, target).numpy(), toy_task.zero_one(pred, target))
    graph = tf.function(s.true_metric).get_concrete_function(tf.constant(pred), tf.constant(target)).graph
    assert not {op.type for op in graph.get_operations()} & {"PyFunc", "EagerPyFunc"}
    jit = tf.function(s.true_metric, jit_compile=True)
    np.testing.assert_array_equal(jit(pred, target).numpy(), toy_task.zero_one(pred, target))


def test_global_pair_dataset_is_the_step_stream_with_its_metric():
    a, b = _surrogate(seed=3), _surrogate(seed=3)
    stream = iter(b.global_pair_dataset(8))
    for _ in range(3):
        pred, target = a.global_pairs(8)
        s_pred, s_target, s_e = next(stream)
        np.testing.assert_array_equal(pred.numpy(), s_pred.numpy())
        np.testing.assert_array_equal(target.numpy(), s_target.numpy())
        np.testing.assert_array_equal(s_e.numpy(), toy_task.zero_one(s_pred.numpy(), s_target.numpy()))
    assert s_pred.shape == (8, toy_task.CLASSES) and s_e.shape == (8,)
    b.reseed(3)  # a new stream starts from the surrogate's current seed
    np.testing.assert_array_equal(
        next(iter(b.global_pair_dataset(8)))[0].numpy(), _surrogate(seed=3).global_pairs(8)[0]
    )


def test_approximation_errors_per_set_and_pooled():
    """Each set's local error is the mean |e_hat - e| of its own pairs; the pooled figure weighs every pair
    once (checked against the pairs' values computed here)."""
    from tfls.surrogate.evaluation import approximation_errors

    task = toy_task.ZeroOneTask(toy_task.toy_config())
    model, surrogate = task.build_model(), task.build_surrogate().build()
    data = list(task.train_dataset(0).take(3))
    sets = {
        "a": tf.data.Dataset.from_tensors(data[0]),
        "b": tf.data.Dataset.from_tensors(data[1]).concatenate(tf.data.Dataset.from_tensors(data[2])),
    }
    summary, _ = approximation_errors(surrogate, task, model, sets, 16)
    errors = {}
    for name, batches in (("a", data[:1]), ("b", data[1:])):
        errs = []
        for x, y in batches:
            pred = model(x)
            errs.append(np.abs(surrogate.distance(pred, y).numpy() - toy_task.zero_one(pred.numpy(), y.numpy())))
        errors[name] = np.concatenate(errs)
    for name in ("a", "b"):
        np.testing.assert_allclose(summary["approx_l1_local_by_set"][name], errors[name].mean(), rtol=1e-5)
    np.testing.assert_allclose(summary["approx_l1_local"], np.concatenate(list(errors.values())).mean(), rtol=1e-5)
    assert summary["num_local_pairs"] == sum(len(v) for v in errors.values())


@pytest.mark.parametrize("kind", ["l2", "l1", "squared_l2"])
def test_distance_kinds_by_hand(kind):
    """The identity embedding: e_hat is the chosen distance of the raw vectors, computed here in NumPy."""
    import keras

    embedding = keras.Sequential([keras.Input((3,)), keras.layers.Identity()])
    surrogate = Surrogate(embedding, lambda p, t: np.zeros(len(p)), None, (3,), distance=kind).build()
    a = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [1.0, -1.0, 0.5]], np.float32)
    b = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 1.0, 0.5]], np.float32)
    expected = {
        "l2": [np.sqrt(4 + 9), 0.0, np.sqrt(8)],
        "l1": [5.0, 0.0, 4.0],
        "squared_l2": [13.0, 0.0, 8.0],
    }[kind]
    np.testing.assert_allclose(surrogate.distance(a, b).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_l1_adds_independent_differences_linearly_and_l2_in_quadrature():
    """k one-hot rows changed, each a different direction: L1 and squared L2 grow as k, L2 as sqrt(k)."""
    import keras

    embedding = keras.Sequential([keras.Input((4, 5)), keras.layers.Flatten()])
    target = np.tile(np.eye(5, dtype=np.float32)[0], (4, 1))[None]
    preds = []
    for k in range(1, 5):
        p = target[0].copy()
        p[:k] = np.eye(5, dtype=np.float32)[1]
        preds.append(p)
    preds = np.stack(preds)
    targets = np.repeat(target, 4, axis=0)
    ks = np.arange(1, 5)
    values = {
        kind: Surrogate(embedding, None, None, (4, 5), distance=kind).build().distance(preds, targets).numpy()
        for kind in ("l2", "l1", "squared_l2")
    }
    np.testing.assert_allclose(values["l1"], 2 * ks, rtol=1e-6)
    np.testing.assert_allclose(values["squared_l2"], 2 * ks, rtol=1e-6)
    np.testing.assert_allclose(values["l2"], np.sqrt(2 * ks), rtol=1e-5)


def test_unknown_distance_is_refused():
    with pytest.raises(ValueError, match="surrogate distance must be one of"):
        Surrogate(None, None, None, (3,), distance="cosine")
