"""Shipping a baseline: weights plus provenance taken from the workdir, and `train.init_from` reading them."""

import json
import os

import numpy as np
import pytest
import toy_task

from tfls import job as job_lib
from tfls import ship


def test_ship_copies_weights_and_provenance_that_init_from_reads(tmp_path):
    config = toy_task.toy_config()
    job = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "work"))
    job.run(["train", "evaluate"])
    out = tmp_path / "weights" / "toy"
    provenance = ship.ship(str(tmp_path / "work"), str(out), "python run_toy_job.py", commit="abc123", notes="n")
    assert provenance["baseline_metrics"] == json.loads((tmp_path / "work" / "results.json").read_text())["baseline"]
    assert provenance["commit"] == "abc123" and provenance["seed"] == config.seed
    assert provenance["train_wall_time_s"] > 0 and provenance["fingerprint"] == job.state["fingerprint"]
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == config.train.steps
    md = (out / "PROVENANCE.md").read_text()
    assert "abc123" in md and "| heldout |" in md
    assert provenance["selection_sets"] == ["val"] and "checkpoint selected on: `val`\n" in md
    # the shipped folder is what a new job takes as its baseline
    config.train.init_from = str(out)
    other = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "work2"))
    other.run(["train"])
    other.load_weights("baseline", other.model)
    for a, b in zip(job.model.weights, other.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_provenance_names_every_selection_set(tmp_path):
    config = toy_task.toy_config()
    config.train.select_on = "val,heldout"
    job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "work")).run(["train", "evaluate"])
    provenance = ship.ship(str(tmp_path / "work"), str(tmp_path / "out"), "cmd", commit="abc123")
    assert provenance["selection_sets"] == ["val", "heldout"]
    assert "checkpoint selected on: `val` + `heldout` (pooled)" in (tmp_path / "out" / "PROVENANCE.md").read_text()


def test_ship_refuses_a_workdir_without_a_baseline(tmp_path):
    os.makedirs(tmp_path / "empty")
    with pytest.raises(SystemExit, match="holds no baseline weights"):
        ship.ship(str(tmp_path / "empty"), str(tmp_path / "out"), "cmd")


def test_shipped_config_drops_the_training_machine_start_paths(tmp_path):
    # a baseline warm-started from a folder of the training machine: that path must not travel with the weights
    config = toy_task.toy_config()
    start = tmp_path / "start"
    job_lib.Job(toy_task.ZeroOneTask(config), config, str(start)).run(["train"])
    config.train.warm_start = str(start / "models" / "baseline")
    job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "work")).run(["train", "evaluate"])
    assert json.loads((tmp_path / "work" / "config.json").read_text())["train"]["warm_start"]
    out = tmp_path / "weights" / "toy"
    ship.ship(str(tmp_path / "work"), str(out), "python run_toy_job.py --config.train.warm_start=...", commit="c")
    train = json.loads((out / "config.json").read_text())["train"]
    assert train["warm_start"] == "" and train["init_from"] == ""
    assert train["steps"] == config.train.steps


def test_shipped_surrogate_is_what_surrogate_init_from_loads(tmp_path):
    config = toy_task.toy_config()
    config.surrogate.embedding_dim = 16  # recorded with the weights (the toy embedding itself ignores it)
    job = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "work"))
    job.run(["train", "pretrain", "evaluate"])
    out = tmp_path / "weights" / "toy_surrogate"
    provenance = ship.ship(str(tmp_path / "work"), str(out), "cmd", commit="c", model="surrogate_pretrained")
    figures = json.loads((tmp_path / "work" / "results.json").read_text())["surrogate"]
    assert provenance["model"] == "surrogate_pretrained"
    assert provenance["surrogate_metrics"]["global pairs"]["approx_l1"] == figures["approx_l1_global"]
    assert provenance["train_wall_time_s"] == job.results["stage_wall_s"]["pretrain"]
    assert "pretrained surrogate" in (out / "PROVENANCE.md").read_text()
    # a new job takes it as its pretrained surrogate: the same weights, no pretraining step run
    config.surrogate.init_from = str(out)
    config.surrogate.pretrain_steps = 100000  # would take minutes if it pretrained
    other = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "work2"))
    other.run(["train", "pretrain"])
    assert other.results["surrogate_from"] == str(out)
    assert not os.path.exists(tmp_path / "work2" / "checkpoints" / "pretrain")
    fresh = toy_task.ZeroOneTask(config).build_surrogate().build()
    job_lib.weights.load_weights(str(tmp_path / "work2" / "models" / "surrogate_pretrained"), fresh.embedding)
    job.load_weights("surrogate_pretrained", job.surrogate.embedding)
    for a, b in zip(job.surrogate.embedding.weights, fresh.embedding.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_surrogate_init_from_refuses_weights_pretrained_with_other_settings(tmp_path):
    config = toy_task.toy_config()
    config.surrogate.embedding_dim = 16
    job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "work")).run(["train", "pretrain", "evaluate"])
    out = tmp_path / "s"
    ship.ship(str(tmp_path / "work"), str(out), "cmd", commit="c", model="surrogate_pretrained")
    config.surrogate.init_from = str(out)
    config.surrogate.embedding_dim = 32
    config.surrogate.distance = "l1"
    other = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "work2"))
    with pytest.raises(job_lib.JobError, match=r"surrogate\.distance \(weights: 'l2', this job: 'l1'\).*embedding_dim"):
        other.run(["train", "pretrain"])


def test_ship_refuses_a_workdir_without_a_pretrained_surrogate(tmp_path):
    config = toy_task.toy_config()
    job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "work")).run(["train", "evaluate"])
    with pytest.raises(SystemExit, match="no surrogate_pretrained weights: run the pretrain stage"):
        ship.ship(str(tmp_path / "work"), str(tmp_path / "out"), "cmd", model="surrogate_pretrained")
