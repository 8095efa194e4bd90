"""The third-metric example (examples/multilabel_f1): its metric by hand, its pair generator, and the whole
job through the command line, as a user would run it."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from examples.multilabel_f1 import config as config_lib
from examples.multilabel_f1.task import (
    MultiLabelF1Task,
    NearbyPredictions,
    SoftThreshold,
    one_minus_f1,
    per_sample_f1,
)
from tfls import configuration, registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = "examples.multilabel_f1.task:MultiLabelF1Task"


@pytest.mark.parametrize(
    "pred, target, expected",
    [
        ([0.9, 0.2, 0.7, 0.1], [1, 1, 0, 0], 0.5),  # {0, 2} vs {0, 1}: TP 1, FP 1, FN 1 -> F1 2/4
        ([0.6, 0.6, 0.6, 0.6], [1, 0, 0, 0], 0.6),  # TP 1, FP 3 -> F1 2/5
        ([0.1, 0.1, 0.1, 0.1], [0, 0, 0, 0], 0.0),  # nothing to find, nothing claimed: F1 1
        ([0.1, 0.1, 0.1, 0.1], [0, 1, 0, 0], 1.0),  # one miss, nothing found: F1 0
        ([0.9, 0.1, 0.1, 0.1], [0, 0, 0, 0], 1.0),  # one false alarm: F1 0
        ([0.5, 0.49, 0.2, 0.0], [1, 0, 0, 0], 0.0),  # 0.5 is on (>= threshold), 0.49 off
        ([0.8, 0.9, 0.3, 0.7], [1, 1, 0, 0], 1.0 - 4 / 5),  # TP 2, FP 1 -> F1 4/5
    ],
)
def test_one_minus_f1_matches_hand_computed_values(pred, target, expected):
    e = one_minus_f1(np.array([pred], np.float32), np.array([target], np.float32))
    assert e.dtype == np.float32 and e.shape == (1,)
    assert e[0] == pytest.approx(expected, abs=1e-6)


def test_per_sample_f1_equals_the_set_formula():
    """F1 of two label sets is 2 |A & B| / (|A| + |B|) (the Dice coefficient), 1 for two empty sets."""
    rng = np.random.default_rng(0)
    pred, true = rng.random((500, 6)) < 0.3, rng.random((500, 6)) < 0.3
    expected = []
    for p, t in zip(pred, true):
        a, b = set(np.flatnonzero(p)), set(np.flatnonzero(t))
        expected.append(1.0 if not a and not b else 2 * len(a & b) / (len(a) + len(b)))
    np.testing.assert_allclose(per_sample_f1(pred, true), expected, atol=1e-12)


class _Identity:
    """A "model" whose outputs are its inputs, so a dataset holds the predictions directly."""

    def __call__(self, x, training=False):
        return x


def test_evaluate_mean_micro_f1_and_exact_match_by_hand():
    task = MultiLabelF1Task(config_lib.get_config())
    probabilities = np.array([[0.9, 0.2, 0.7, 0.1], [0.1, 0.1, 0.1, 0.1], [0.8, 0.9, 0.3, 0.7]], np.float32)
    labels = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]], np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((probabilities, labels)).batch(2)
    metrics = task.evaluate(_Identity(), dataset)
    # per sample F1: 1/2, 1 (both empty), 4/5; pooled: TP 1 + 2, FP 1 + 1, FN 1 -> 6 / 9
    assert metrics["f1"] == pytest.approx((0.5 + 1.0 + 0.8) / 3)
    assert metrics["micro_f1"] == pytest.approx(6 / 9)
    assert metrics["exact_match"] == pytest.approx(1 / 3)
    assert metrics["num_samples"] == 3
    assert set(task.reported_metrics()) <= set(metrics)


def test_generator_shapes_ranges_and_determinism():
    rates = np.linspace(0.1, 0.4, 8)
    generator = NearbyPredictions(rates, max_flip_rate=0.5, exact_share=0.2)
    pred, target = generator.generate(20_000, np.random.default_rng(3))
    assert pred.shape == target.shape == (20_000, 8)
    assert pred.dtype == target.dtype == np.float32
    assert np.all((pred > 0) & (pred < 1))
    assert set(np.unique(target)) <= {0.0, 1.0}
    np.testing.assert_allclose(target.mean(axis=0), rates, atol=0.015)  # labels as frequent as the data's
    e = one_minus_f1(pred, target)
    assert np.all((e >= 0) & (e <= 1))
    assert 0.2 <= np.mean(e == 0) <= 0.6  # exact_share of right predictions, plus unflipped draws
    assert np.mean(e > 0.5) > 0.1  # and bad ones: the surrogate sees the whole range
    soft = pred[(e == 0)]
    assert np.mean((soft > 0.1) & (soft < 0.9)) > 0.2  # right predictions come with soft probabilities too
    again, _ = generator.generate(20_000, np.random.default_rng(3))
    np.testing.assert_array_equal(pred, again)


def test_soft_threshold_steps_at_one_half_and_round_trips():
    layer = SoftThreshold(4.0)
    out = np.asarray(layer(np.array([[0.0, 0.3, 0.5, 0.7, 1.0]], np.float32)))
    assert out[0, 2] == pytest.approx(0.0, abs=1e-6)
    assert out[0, 0] < -0.99 and out[0, 4] > 0.99 and out[0, 1] < -0.9 and out[0, 3] > 0.9
    assert SoftThreshold.from_config(layer.get_config()).sharpness == 4.0


def test_task_resolves_by_import_path_and_its_config_validates():
    cls = registry.task_class(TASK)
    assert cls is MultiLabelF1Task
    config = configuration.load_config(registry.default_config_path(cls))
    configuration.validate(config, cls)
    assert config.task == TASK
    with pytest.raises(configuration.ConfigError, match="positive_rate_range"):
        configuration.validate(
            configuration.load_config(registry.default_config_path(cls), ["data.positive_rate_range=(0.5, 1.2)"]),
            cls,
        )


def test_whole_job_from_the_command_line(tmp_path):
    """train, pretrain, tune, control, evaluate, export through `python -m tfls.main`, on a shortened config."""
    workdir = tmp_path / "job"
    overrides = [
        "--config.train.steps=300",
        "--config.train.eval_every=150",
        "--config.train.checkpoint_every=150",
        "--config.surrogate.pretrain_steps=300",
        "--config.surrogate.eval_pairs=300",
        "--config.tune.steps=100",
        "--config.data.eval_size=300",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfls.main",
            f"--task={TASK}",
            "--config=examples/multilabel_f1/config.py",
            f"--workdir={workdir}",
            *overrides,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "tuned vs control" in out.stdout and "surrogate approximation |e_hat - e|" in out.stdout
    with open(workdir / "results.json") as f:
        results = json.load(f)
    assert results["validation_set"] == "val"
    for model in ("baseline", "control", "tuned"):
        metrics = results[model]["test"]
        assert 0.0 <= metrics["f1"] <= 1.0 and metrics["num_samples"] == 300
        assert {"micro_f1", "exact_match"} <= set(metrics)
    surrogate = results["surrogate"]
    assert math.isfinite(surrogate["approx_l1_global"]) and math.isfinite(surrogate["approx_l1_local"])
    assert surrogate["approx_l1_global"] < 0.5
    export = results["export"]
    served = tf.saved_model.load(export).signatures["serving_default"](
        features=tf.zeros([2, config_lib.get_config().data.features])
    )
    assert served["probabilities"].shape == (2, 8) and served["labels"].dtype == tf.int32
