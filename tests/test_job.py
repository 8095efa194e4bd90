"""The stage runner on the toy task: all stages, outputs, resume after a kill, refusing a foreign workdir."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
import toy_task

from tfls import job as job_lib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def test_parse_mode():
    config = toy_task.toy_config()
    # the control runs by default: the honest comparison is part of every job
    assert job_lib.parse_mode("all", config) == ["train", "pretrain", "tune", "control", "evaluate", "export"]
    assert job_lib.parse_mode("tune,train", config) == ["train", "tune"]
    config.tune.run_control = False
    assert "control" not in job_lib.parse_mode("all", config)
    with pytest.raises(job_lib.JobError, match="unknown stage"):
        job_lib.parse_mode("train,fly", config)


def test_all_stages_write_results_weights_and_export(tmp_path):
    config = toy_task.toy_config()
    config.tune.run_control = True
    job = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path))
    results = job.run(job_lib.parse_mode("all", config))
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["task"] == "toy" and on_disk["wall_time_s"] > 0
    for name in ("baseline", "control", "tuned"):
        assert 0.0 <= on_disk[name]["heldout"]["accuracy"] <= 1.0
        assert on_disk[name]["heldout"]["num_samples"] == config.data.eval_size
    assert on_disk["surrogate"]["approx_l1_global"] >= 0 and "approx_l1_local" in on_disk["surrogate"]
    assert os.path.isdir(os.path.join(on_disk["export"], "variables"))
    assert tf.saved_model.load(on_disk["export"]) is not None
    # the baseline checkpoint is the best evaluated one, and it is what the tuned model started from
    assert results["baseline"]["heldout"]["accuracy"] > 0.5
    table = job_lib.summary_table(results, ["accuracy"])
    assert "val (selection only)" in table and results["validation_set"] == "val"
    row = next(line.split() for line in table.splitlines() if line.startswith("heldout"))
    base, ctrl, tuned = (results[m]["heldout"]["accuracy"] for m in ("baseline", "control", "tuned"))
    assert row[2:5] == [f"{base:.4f}", f"{ctrl:.4f}", f"{tuned:.4f}"]
    assert row[5] == f"{100 * (tuned - base) / base:+.1f}%" and row[6] == f"{100 * (tuned - ctrl) / ctrl:+.1f}%"
    assert not [p for p in os.listdir(os.path.dirname(on_disk["export"])) if p.startswith(".tmp")]

    # a second run in the same workdir skips finished training stages
    again = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path))
    assert again.state["completed"][:3] == ["train", "pretrain", "tune"]


def test_baseline_is_selected_on_the_validation_set_only(tmp_path):
    config = toy_task.toy_config()
    seen = []

    class Recording(toy_task.ZeroOneTask):
        def evaluate(self, model, dataset, tag=None):
            seen.append((tag, dataset is self._sets["val"]))
            return super().evaluate(model, dataset, tag)

        def eval_datasets(self):
            self._sets = super().eval_datasets()
            return self._sets

    job_lib.Job(Recording(config), config, str(tmp_path)).run(["train"])
    # train.eval_every=30 of 60 steps: two selections, both on `val`
    assert seen == [(None, True), (None, True)]


def _scripted_selection_run(tmp_path, select_on):
    """Trains the toy task for two selection boundaries whose scripted metrics disagree: `val` is best at the
    first (0.9 against 0.8), `val` and `heldout` pooled (10 and 30 samples) at the second (by hand:
    (0.9*10 + 0.5*30) / 40 = 0.6, then (0.8*10 + 0.7*30) / 40 = 0.725). Returns (saved baseline weights,
    the final weights)."""
    config = toy_task.toy_config()
    config.train.select_on = select_on
    script = {"val": [0.9, 0.8], "heldout": [0.5, 0.7]}
    counts = {"val": 10, "heldout": 30}

    class Scripted(toy_task.ZeroOneTask):
        def eval_datasets(self):
            self._sets = super().eval_datasets()
            return self._sets

        def evaluate(self, model, dataset, tag=None):
            name = next(n for n, ds in self._sets.items() if ds is dataset)
            return {"accuracy": script[name].pop(0), "num_samples": counts[name]}

    job = job_lib.Job(Scripted(config), config, str(tmp_path))
    job.run(["train"])
    final = [w.copy() for w in job.model.get_weights()]
    saved = Scripted(config).build_model()
    job.load_weights("baseline", saved)
    return saved.get_weights(), final


def test_select_on_pools_several_sets_by_their_sample_counts(tmp_path):
    saved, final = _scripted_selection_run(tmp_path / "pooled", "val,heldout")
    for a, b in zip(saved, final):  # the second boundary (the last step) won on the pooled accuracy
        np.testing.assert_array_equal(a, b)
    saved, final = _scripted_selection_run(tmp_path / "val", "")
    assert any(not np.array_equal(a, b) for a, b in zip(saved, final))  # val alone keeps the first


def test_pooled_metric_by_hand():
    from tfls.job.stages import pooled_metric

    by_set = {"val": {"accuracy": 90.0, "num_samples": 500}, "val_hard": {"accuracy": 70.0, "num_samples": 100}}
    assert pooled_metric(by_set, "accuracy") == pytest.approx((90.0 * 500 + 70.0 * 100) / 600)
    assert pooled_metric({"a": {"hmean": 0.5}, "b": {"hmean": 0.7}}, "hmean") == pytest.approx(0.6)


def test_select_on_an_unknown_set_is_refused_with_its_name(tmp_path):
    config = toy_task.toy_config()
    config.train.select_on = "val,val_hard"
    job = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path))
    with pytest.raises(job_lib.JobError, match=r"train.select_on names \['val_hard'\]"):
        job.run(["train"])


def test_selection_sets_are_marked_and_not_reported(tmp_path):
    results = {
        "validation_set": "val",
        "selection_sets": ["val", "val_hard"],
        "baseline": {n: {"accuracy": 0.5} for n in ("val", "test", "val_hard")},
    }
    table = job_lib.summary_table(results, ["accuracy"])
    assert "val (selection only)" in table and "val_hard (selection only)" in table
    assert "test (selection only)" not in table


def test_init_from_takes_a_baseline_instead_of_training(tmp_path):
    config = toy_task.toy_config()
    first = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "a"))
    first.run(["train"])
    config.train.init_from = str(tmp_path / "a" / "models" / "baseline")
    second = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "b"))
    second.run(["train"])
    assert second.results["baseline_from"] == config.train.init_from
    assert not (tmp_path / "b" / "checkpoints" / "train").exists()
    second.load_weights("baseline", second.model)
    for a, b in zip(first.model.weights, second.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_warm_start_trains_on_from_given_weights(tmp_path):
    config = toy_task.toy_config()
    first = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "a"))
    first.run(["train"])
    source = [w.numpy() for w in first.model.weights]
    config.seed = config.seed + 1  # another initialisation, which the warm start must replace
    config.train.warm_start = str(tmp_path / "a" / "models" / "baseline")
    config.train.steps, config.train.eval_every = 2, 0
    config.train.optimizer, config.train.learning_rate = "sgd", 1e-9
    second = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "b"))
    untrained = [w.numpy() for w in second.model.weights]
    assert any(not np.allclose(a, b) for a, b in zip(source, untrained))
    second.run(["train"])
    assert second.results["warm_start"] == config.train.warm_start
    assert (tmp_path / "b" / "checkpoints" / "train").exists()  # it trained
    for a, b in zip(source, second.model.weights):
        np.testing.assert_allclose(a, b.numpy(), atol=1e-6)


def test_warm_start_and_init_from_together_are_refused(tmp_path):
    from tfls.configuration import ConfigError, validate

    config = toy_task.toy_config()
    config.train.init_from = config.train.warm_start = str(tmp_path)
    with pytest.raises(ConfigError, match="train.warm_start"):
        validate(config, toy_task.ZeroOneTask)


def test_warmup_cosine_schedule_by_hand():
    schedule = job_lib.WarmupCosine(1.0, steps=110, warmup_steps=10, final_ratio=0.1)
    values = [float(schedule(s)) for s in (0, 4, 9, 10, 60, 110, 200)]
    # warm-up (s + 1) / 10; then 0.1 + 0.9 * (1 + cos(pi * (s - 10) / 100)) / 2
    np.testing.assert_allclose(values, [0.1, 0.5, 1.0, 1.0, 0.55, 0.1, 0.1], atol=1e-6)


def test_incompatible_workdir_is_refused(tmp_path):
    config = toy_task.toy_config()
    job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path))
    config.model.hidden = 32
    with pytest.raises(job_lib.JobError, match="incompatible config"):
        job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path))


def test_killed_run_resumes_at_saved_step(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [
        sys.executable,
        os.path.join(HERE, "run_toy_job.py"),
        str(tmp_path),
        "train,evaluate",
        "train.steps=4000",
        "train.checkpoint_every=50",
        "train.eval_every=0",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ckpt_dir = tmp_path / "checkpoints" / "train"
    deadline = time.time() + 120
    while time.time() < deadline and tf.train.latest_checkpoint(str(ckpt_dir)) is None:
        time.sleep(0.5)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)  # then SIGKILL if it has not gone within 10 s
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert proc.returncode != 0
    saved = int(tf.train.latest_checkpoint(str(ckpt_dir)).rsplit("-", 1)[1])
    assert 0 < saved < 4000
    state = json.loads((tmp_path / "state.json").read_text())
    assert "train" not in state["completed"]

    cmd[4] = "train.steps=" + str(saved + 100)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert f"resuming from step {saved}" in out.stdout
    assert json.loads((tmp_path / "state.json").read_text())["completed"] == ["train", "evaluate"]
    final = int(tf.train.latest_checkpoint(str(ckpt_dir)).rsplit("-", 1)[1])
    assert final == saved + 100
    resumed = json.loads((tmp_path / "results.json").read_text())["baseline"]["heldout"]["accuracy"]

    # the same run without interruption ends close to the resumed one (same seeds, same data positions)
    straight = tmp_path / "straight"
    cmd[2] = str(straight)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    uninterrupted = json.loads((straight / "results.json").read_text())["baseline"]["heldout"]["accuracy"]
    assert abs(resumed - uninterrupted) <= 0.05, (resumed, uninterrupted)


def test_tensorboard_scalars_are_written(tmp_path):
    config = toy_task.toy_config()
    job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path)).run(["train", "pretrain", "tune"])
    tags = {}
    for stage in ("train", "pretrain", "tune"):
        for event_file in (tmp_path / "tensorboard" / stage).glob("events.out.tfevents.*"):
            for event in tf.compat.v1.train.summary_iterator(str(event_file)):
                for value in event.summary.value:
                    tags.setdefault(stage, set()).add(value.tag)
    assert {"loss", "val/val/accuracy"} <= tags["train"]
    assert "approx_global" in tags["pretrain"]
    assert {"surrogate_loss", "true_metric", "approx_global", "approx_local", "grad_norm"} <= tags["tune"]


class _ListEmbedding(keras.layers.Layer):
    """Keeps its sub-layers in a plain list: Keras 3 tracking alone does not checkpoint them."""

    def __init__(self):
        super().__init__()
        self.blocks = [keras.layers.Dense(8, activation="relu") for _ in range(3)]
        self.head = keras.layers.Dense(4)

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def test_weights_of_layers_kept_in_lists_round_trip(tmp_path):
    config = toy_task.toy_config()
    job = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path))
    layer = _ListEmbedding()
    layer(tf.zeros((1, 5)))
    job.save_weights("listy", layer)
    other = _ListEmbedding()
    other(tf.zeros((1, 5)))
    job.load_weights("listy", other)
    assert len(layer.weights) == 8
    for a, b in zip(layer.weights, other.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_no_pretraining_leaves_phi_untouched_until_tuning_fits_it_on_local_pairs(tmp_path):
    """surrogate.pretrain_steps=0 (STR's default): the pretrain stage completes without training phi or writing
    `surrogate_pretrained`; tuning with local pairs only then starts from phi's initial weights and fits it."""
    config = toy_task.toy_config()
    config.surrogate.pretrain_steps, config.surrogate.local_weight = 0, 1.0
    job = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path))
    initial = [w.numpy().copy() for w in job.surrogate.embedding.weights]
    job.run(["train", "pretrain"])
    assert "pretrain" in job.state["completed"] and not job.has_weights("surrogate_pretrained")
    assert not (tmp_path / "checkpoints" / "pretrain").exists()
    for a, w in zip(initial, job.surrogate.embedding.weights):
        np.testing.assert_array_equal(a, w.numpy())
    job.run(["tune"])
    job.load_weights("tuned_surrogate", job.surrogate.embedding)
    moved = [np.abs(a - w.numpy()).max() for a, w in zip(initial, job.surrogate.embedding.weights)]
    assert max(moved) > 0


def test_tune_and_control_each_start_from_fresh_training_data(tmp_path):
    """The job resets the task's training-data state before tuning and before the control, ahead of the
    stage's first batch, so the control's batches do not depend on tuning having run first."""
    config = toy_task.toy_config()
    events = []

    class Recording(toy_task.ZeroOneTask):
        def reset_training_data(self):
            events.append("reset")

        def train_dataset(self, seed, input_context=None):
            if not events or events[-1] != "data":
                events.append("data")
            return super().train_dataset(seed, input_context)

    job = job_lib.Job(Recording(config), config, str(tmp_path))
    job.run(["train", "pretrain"])
    events.clear()
    job.run(["tune", "control"])
    assert events == ["reset", "data", "reset", "data"]


def test_tuning_knobs_reach_the_tuner_and_the_warmup_keeps_every_step(tmp_path):
    """tune.surrogate_every and tune.global_batch_size set the tuning step's phi schedule and global batch;
    the warm-up (phi alone) updates phi on every step with surrogate.batch_size pairs."""
    config = toy_task.toy_config()
    config.tune.surrogate_every, config.tune.global_batch_size = 3, 5
    job = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path))
    opt = lambda: keras.optimizers.SGD(0.1)  # noqa: E731
    tuner = job.make_tuner(opt(), opt())
    assert (tuner.surrogate_every, tuner.global_batch_size) == (3, 5)
    warmup = job.make_tuner(opt(), opt(), update_model=False)
    assert (warmup.surrogate_every, warmup.global_batch_size) == (1, config.surrogate.batch_size)
    config.tune.global_batch_size = 0  # 0: the pretraining batch
    assert job.make_tuner(opt(), opt()).global_batch_size == config.surrogate.batch_size


def test_surrogate_every_with_a_distribution_strategy_is_refused_before_any_stage(tmp_path):
    """distribute=mirrored and tune.surrogate_every=2 (a Mirrored strategy cannot sum gradients inside phi's
    tf.cond, even with one replica): the job stops at once with the setting to change, not after training and
    pretraining when tuning starts; a job whose tuning is done, or that does not tune, is not concerned."""
    config = toy_task.toy_config()
    config.tune.surrogate_every = 2
    config.distribute = "mirrored"
    job = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path))
    with pytest.raises(job_lib.JobError, match=r"surrogate_every=2 needs distribute=none .*'mirrored'.* set --config"):
        job.run(["train", "pretrain", "tune"])
    assert not job.workdir.is_complete("train")
    job.run([])
    config.tune.surrogate_every = 1
    job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path)).run([])


def test_evaluate_models_limits_what_the_evaluate_stage_measures(tmp_path):
    config = toy_task.toy_config()
    config.tune.run_control = True
    job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path)).run(["train", "pretrain", "tune", "control"])
    config.evaluate_models = ("control",)
    results = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path)).run(["evaluate"])
    assert "control" in results and "baseline" not in results and "tuned" not in results
    from tfls.configuration import ConfigError, validate

    for bad in (("best",), ()):
        config.evaluate_models = bad
        with pytest.raises(ConfigError, match="evaluate_models"):
            validate(config, toy_task.ZeroOneTask)


def test_exact_objective_needs_a_task_with_a_differentiable_metric(tmp_path):
    """tune.objective="exact" (the oracle ablation): refused before any stage for a task without a
    differentiable metric; a task with one gets it as the tuner's model objective."""
    config = toy_task.toy_config()
    config.tune.objective = "exact"
    job = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "plain"))
    with pytest.raises(job_lib.JobError, match=r"tune.objective='exact' needs a differentiable metric.*'toy'"):
        job.run(["train", "pretrain", "tune"])
    assert not job.workdir.is_complete("train")

    class WithMetric(toy_task.ZeroOneTask):
        def differentiable_metric(self, pred, target):
            return tf.reduce_sum(tf.abs(pred - target), -1)

    task = WithMetric(config)
    job = job_lib.Job(task, config, str(tmp_path / "exact"))
    opt = lambda: keras.optimizers.SGD(0.1)  # noqa: E731
    assert job.make_tuner(opt(), opt()).exact_objective_fn == task.differentiable_metric
    config.tune.objective = "surrogate"
    assert job_lib.Job(task, config, str(tmp_path / "surr")).make_tuner(opt(), opt()).exact_objective_fn is None
