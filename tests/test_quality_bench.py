"""bench/quality.py's run identity (what `--reuse` compares): a setting added later at its neutral value leaves
it as it was, any other value or setting changes it, and a base ignores `tune.*`."""

import os
import sys

import ml_collections

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "bench"))
from helpers import load_bench  # noqa: E402

quality = load_bench("quality")


def _config(**tune):
    return ml_collections.ConfigDict({"seed": 0, "tune": {"learning_rate": 1e-4, **tune}, "data": {"x": 1}})


def test_identity_ignores_a_neutral_default_added_later_and_nothing_else():
    stages = ["tune", "evaluate"]
    before = quality._identity(_config(), stages)  # a run stamped before tune.objective existed
    assert quality._identity(_config(objective="surrogate"), stages) == before
    assert quality._identity(_config(objective="exact"), stages) != before
    assert quality._identity(_config(learning_rate=2e-5), stages) != before
    assert quality._identity(_config(), ["tune"]) != before
    # the base's identity never reads tune.*
    base = quality.BASE_STAGES
    assert quality._identity(_config(objective="exact", learning_rate=2e-5), base) == quality._identity(_config(), base)


def _fake_runs(monkeypatch):
    """`run_seed` with every sub-run replaced by a result (no job runs) and the scatter plot recorded."""
    drawn = []

    def fake_sub_run(task, config, d, stages, models, *args):
        return {m: {"val": {"accuracy": 1.0}} for m in models}, False

    monkeypatch.setattr(quality, "_sub_run", fake_sub_run)
    monkeypatch.setattr(quality, "scatter_plot", lambda task, path: drawn.append(path))
    return drawn


def test_only_the_main_table_draws_the_scatter_figure(monkeypatch, tmp_path):
    drawn = _fake_runs(monkeypatch)
    out = quality.run_seed("str", 0, ["tuned"], {}, str(tmp_path))
    assert out["variants"]["tuned"]["metrics"] == {"val": {"accuracy": 1.0}}
    assert len(drawn) == 1 and drawn[0].endswith("surrogate_pairs.npz")
    quality.run_seed("str", 0, ["tuned"], {}, str(tmp_path), scatter=False)  # an investigation's --output
    quality.run_seed("str", 1, ["tuned"], {}, str(tmp_path))  # not seed 0
    assert len(drawn) == 1
