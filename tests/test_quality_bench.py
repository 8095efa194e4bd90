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
