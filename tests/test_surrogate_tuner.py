"""SurrogateTuner / SurrogatePretrainer / OrdinaryTrainer on the toy 0-1 loss task (a third metric)."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
import toy_task

from tfls.surrogate import OrdinaryTrainer, SurrogatePretrainer, SurrogateTuner


def _snapshot(variables):
    return [v.numpy().copy() for v in variables]


def _changed(before, variables):
    return any(not np.array_equal(b, v.numpy()) for b, v in zip(before, variables))


class _PhaseRecorder(SurrogateTuner):
    """Records theta and phi right after phase 1 (the surrogate updates)."""

    def _surrogate_step(self, local=None):
        out = super()._surrogate_step(local)
        self.after_phase1 = (_snapshot(self.model.trainable_variables), _snapshot(self.surrogate.trainable_variables))
        return out


def test_tuner_alternates_phi_then_theta():
    task = toy_task.ZeroOneTask(toy_task.toy_config())
    model, surrogate = task.build_model(), task.build_surrogate().build()
    tuner = _PhaseRecorder(model, surrogate, task.forward, task.surrogate_pairs, inner_steps=2, global_batch_size=16)
    tuner.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1), run_eagerly=True)
    theta0, phi0 = _snapshot(model.trainable_variables), _snapshot(surrogate.trainable_variables)
    x, y = next(iter(task.train_dataset(0)))
    tuner.train_step((x, y))
    theta1, phi1 = tuner.after_phase1
    # phase 1: phi moved, theta did not
    assert all(np.array_equal(a, b) for a, b in zip(theta0, theta1))
    assert any(not np.array_equal(a, b) for a, b in zip(phi0, phi1))
    # phase 2: theta moved, phi did not
    assert _changed(theta1, model.trainable_variables)
    assert not _changed(phi1, surrogate.trainable_variables)


def test_frozen_surrogate_only_moves_theta():
    task = toy_task.ZeroOneTask(toy_task.toy_config())
    model, surrogate = task.build_model(), task.build_surrogate().build()
    tuner = SurrogateTuner(model, surrogate, task.forward, task.surrogate_pairs, update_surrogate=False)
    tuner.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    phi0 = _snapshot(surrogate.trainable_variables)
    tuner.fit(task.train_dataset(0), steps_per_epoch=3, epochs=1, verbose=0)
    assert not _changed(phi0, surrogate.trainable_variables)


def test_third_metric_pretrain_and_tune():
    """A user's own metric (0-1 loss) with nothing but an embedding, a generator and the metric function."""
    task = toy_task.ZeroOneTask(toy_task.toy_config())
    surrogate = task.build_surrogate().build()
    pretrainer = SurrogatePretrainer(surrogate, global_batch_size=64, grad_penalty_weight=0.01)
    pretrainer.compile(keras.optimizers.Adam(3e-3))
    pretrainer.fit(tf.data.Dataset.from_tensors(0.0).repeat(), steps_per_epoch=800, epochs=1, verbose=0)

    pred, target = surrogate.held_out_pairs(1000, seed=2024)
    e = toy_task.zero_one(pred, target)
    constant_error = np.mean(np.abs(e - np.median(e)))  # the best constant predictor under L1
    approx_error = np.mean(np.abs(surrogate.distance(pred, target).numpy() - e))
    print(f"0-1 loss surrogate: held-out |e_hat - e| = {approx_error:.4f}, constant predictor {constant_error:.4f}")
    assert approx_error < 0.25 * constant_error

    # tuning the model on the surrogate alone improves its real 0-1 loss on held-out data
    model = task.build_model()
    before = task.evaluate(model, task.eval_datasets()["heldout"])["accuracy"]
    tuner = SurrogateTuner(
        model, surrogate, task.forward, task.surrogate_pairs, global_batch_size=32, grad_penalty_weight=0.01
    )
    tuner.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-3))
    history = tuner.fit(task.train_dataset(1), steps_per_epoch=150, epochs=1, verbose=0)
    after = task.evaluate(model, task.eval_datasets()["heldout"])["accuracy"]
    assert set(history.history) >= {"surrogate_loss", "true_metric", "approx_global", "approx_local", "grad_norm"}
    assert after > max(before, 0.8)


@tf.custom_gradient
def _nan_gradient(x):
    """Identity forward, NaN backward: a finite loss whose gradients are NaN on every CPU and kernel."""

    def grad(dy):
        return dy * np.nan

    return tf.identity(x), grad


def _toy_tuner(pairs_fn=None, embedding_wrapper=None, **kwargs):
    task = toy_task.ZeroOneTask(toy_task.toy_config())
    model, surrogate = task.build_model(), task.build_surrogate()
    if embedding_wrapper is not None:
        surrogate.embedding = embedding_wrapper(surrogate.embedding)
    surrogate.build()
    tuner = SurrogateTuner(
        model, surrogate, task.forward, pairs_fn or task.surrogate_pairs, global_batch_size=8, **kwargs
    )
    tuner.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    return task, model, surrogate, tuner


def test_nan_loss_stops_before_update():
    def nan_weight_pairs(outputs, y):
        # NaN pair weights make the loss NaN whatever the activations do with NaN inputs
        return outputs, y, tf.fill(tf.shape(y)[:1], np.nan)

    task, model, surrogate, tuner = _toy_tuner(nan_weight_pairs)
    theta0, phi0 = _snapshot(model.trainable_variables), _snapshot(surrogate.trainable_variables)
    with pytest.raises(tf.errors.InvalidArgumentError, match="non-finite"):
        tuner.fit(task.train_dataset(0), steps_per_epoch=1, epochs=1, verbose=0)
    assert not _changed(theta0, model.trainable_variables)
    assert not _changed(phi0, surrogate.trainable_variables)


def test_finite_loss_with_nan_model_gradients_stops_before_update():
    def nan_gradient_pairs(outputs, y):
        return _nan_gradient(outputs), y, tf.ones(tf.shape(y)[:1])

    task, model, _, tuner = _toy_tuner(nan_gradient_pairs)
    theta0 = _snapshot(model.trainable_variables)
    x, y = next(iter(task.train_dataset(0)))
    assert np.isfinite(task.ordinary_loss(model(x), y).numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"non-finite model gradients[\s\S]*at step[\s\S]*1"):
        tuner.fit(task.train_dataset(0), steps_per_epoch=1, epochs=1, verbose=0)
    assert not _changed(theta0, model.trainable_variables)


def test_nan_surrogate_gradients_stop_before_update():
    def wrap(embedding):
        return keras.Sequential([embedding, keras.layers.Lambda(_nan_gradient)])

    # no gradient penalty: its inner gradient would pass through the NaN backward and make the loss NaN
    task, model, surrogate, tuner = _toy_tuner(embedding_wrapper=wrap, grad_penalty_weight=0.0)
    theta0, phi0 = _snapshot(model.trainable_variables), _snapshot(surrogate.trainable_variables)
    with pytest.raises(tf.errors.InvalidArgumentError, match="non-finite surrogate gradients"):
        tuner.fit(task.train_dataset(0), steps_per_epoch=1, epochs=1, verbose=0)
    assert not _changed(theta0, model.trainable_variables)
    assert not _changed(phi0, surrogate.trainable_variables)

    pretrainer = SurrogatePretrainer(surrogate, global_batch_size=8, grad_penalty_weight=0.0)
    pretrainer.compile(keras.optimizers.SGD(0.1))
    with pytest.raises(tf.errors.InvalidArgumentError, match="non-finite surrogate gradients"):
        pretrainer.fit(tf.data.Dataset.from_tensors(0.0).repeat(), steps_per_epoch=1, epochs=1, verbose=0)
    assert not _changed(phi0, surrogate.trainable_variables)


def test_ordinary_trainer_nan_gradients_stop_before_update():
    task = toy_task.ZeroOneTask(toy_task.toy_config())
    model = task.build_model()

    def forward(model, x, y, training):
        return _nan_gradient(model(x, training=training))

    trainer = OrdinaryTrainer(model, forward, task.ordinary_loss)
    trainer.compile(keras.optimizers.SGD(0.1))
    theta0 = _snapshot(model.trainable_variables)
    with pytest.raises(tf.errors.InvalidArgumentError, match="non-finite model gradients"):
        trainer.fit(task.train_dataset(0), steps_per_epoch=1, epochs=1, verbose=0)
    assert not _changed(theta0, model.trainable_variables)


_MIRRORED = textwrap.dedent(
    """
    import json, sys
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
    import toy_task
    from tfls.surrogate import OrdinaryTrainer, SurrogateTuner

    def run(strategy, tune):
        task = toy_task.ZeroOneTask(toy_task.toy_config())
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model, surrogate = task.build_model(), task.build_surrogate().build()
            if tune:
                trainer = SurrogateTuner(model, surrogate, task.forward, task.surrogate_pairs, global_batch_size=8)
                trainer.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05))
            else:
                trainer = OrdinaryTrainer(model, task.forward, task.ordinary_loss)
                trainer.compile(keras.optimizers.SGD(0.5))
        data = task.train_dataset(0).take(5)
        init = [v.numpy().copy() for v in model.trainable_variables]
        hist = trainer.fit(data, epochs=1, verbose=0)
        moved = max(float(np.max(np.abs(a - v.numpy()))) for a, v in zip(init, model.trainable_variables))
        return [v.numpy() for v in model.trainable_variables], hist.history, moved

    single, _, moved = run(tf.distribute.get_strategy(), False)
    mirrored_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored, _, _ = run(mirrored_strategy, False)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(single, mirrored))
    _, tune_hist, _ = run(mirrored_strategy, True)
    print(json.dumps({"replicas": mirrored_strategy.num_replicas_in_sync, "diff": diff, "moved": moved,
                      "tune": {k: float(v[-1]) for k, v in tune_hist.items()}}))
    """
)


def test_mirrored_two_cpus_matches_single_device():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-c", _MIRRORED, os.path.dirname(os.path.abspath(__file__))],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert out["moved"] > 1e-3  # training really changed the weights
    assert out["diff"] < 1e-5
    assert all(np.isfinite(v) for v in out["tune"].values())
    assert out["tune"]["approx_global"] > 0
