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
    # the shipped folder is what a new job takes as its baseline
    config.train.init_from = str(out)
    other = job_lib.Job(toy_task.ZeroOneTask(config), config, str(tmp_path / "work2"))
    other.run(["train"])
    other.load_weights("baseline", other.model)
    for a, b in zip(job.model.weights, other.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


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
