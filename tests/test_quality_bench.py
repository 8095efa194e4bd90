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
    """`run_seed` with every sub-run replaced by a result (no job runs). Returns the scatter plots drawn and, per
    sub-run folder name, `(stages, fork, surrogate.pretrain_steps)` of its last call."""
    drawn, calls = [], {}

    def fake_sub_run(task, config, d, stages, models, reuse, trust, fork=None):
        calls[os.path.basename(d)] = (list(stages), fork, int(config.surrogate.pretrain_steps))
        return {m: {"val": {"accuracy": 1.0}} for m in models}, False

    monkeypatch.setattr(quality, "_sub_run", fake_sub_run)
    monkeypatch.setattr(quality, "scatter_plot", lambda task, path: drawn.append(path))
    return drawn, calls


def test_only_the_main_table_draws_the_scatter_figure(monkeypatch, tmp_path):
    drawn, _ = _fake_runs(monkeypatch)
    out = quality.run_seed("str", 0, ["tuned"], {}, str(tmp_path))
    assert out["variants"]["tuned"]["metrics"] == {"val": {"accuracy": 1.0}}
    assert len(drawn) == 1 and drawn[0].endswith("surrogate_pairs.npz")
    quality.run_seed("str", 0, ["tuned"], {}, str(tmp_path), scatter=False)  # an investigation's --output
    quality.run_seed("str", 1, ["tuned"], {}, str(tmp_path))  # not seed 0
    assert len(drawn) == 1


def test_a_variant_that_pretrains_otherwise_than_the_base_pretrains_its_own_surrogate(monkeypatch, tmp_path):
    """STR's default has no pretraining (surrogate.pretrain_steps=0): `tuned` forks the base as it is, while
    `paper_pairs` (3000 pretraining steps) runs its own pretrain stage and takes no surrogate from the base."""
    _, calls = _fake_runs(monkeypatch)
    out = quality.run_seed("str", 0, ["tuned", "paper_pairs"], {}, str(tmp_path))
    assert calls["base"][2] == 0 and calls["paper_pairs"][2] == 3000
    assert calls["tuned"][0] == ["tune", "evaluate"]
    assert calls["paper_pairs"][0] == ["pretrain", "tune", "evaluate"]
    assert calls["paper_pairs"][1][2] == {"keep": ("baseline",), "completed": ("train",)}
    assert out["variants"]["paper_pairs"]["own_pretraining"] and not out["variants"]["tuned"]["own_pretraining"]
    # with the base pretrained as the variant is (--set surrogate.pretrain_steps=3000), the base's is shared
    calls.clear()
    quality.run_seed("str", 0, ["paper_pairs"], {"surrogate.pretrain_steps": 3000}, str(tmp_path))
    assert calls["paper_pairs"][0] == ["tune", "evaluate"]
    assert calls["paper_pairs"][1][2]["keep"] == ("baseline", "surrogate_pretrained")
