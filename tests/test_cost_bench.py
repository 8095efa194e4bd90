"""bench/cost.py's table of tuning rows: the config's own setting comes first, labelled the default, once."""

import os
import sys

import ml_collections

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from helpers import load_bench  # noqa: E402

cost = load_bench("cost")


def _config(global_pairs, every, jit):
    config = ml_collections.ConfigDict()
    config.surrogate = {"global_pairs": global_pairs, "grad_penalty_every": every}
    config.tune = {"jit_compile": jit}
    return config


def test_the_default_row_is_the_configs_setting():
    rows = cost.tuning_variants(_config("py_function", 1, False), True, "reduced")
    assert [r[0] for r in rows] == [
        "py_function metric, k=1 (default config)",
        "in-graph metric + pair stream, k=1, jit off",
        "in-graph metric + pair stream, k=4, jit off",
        "in-graph metric + pair stream, k=4, jit on",
    ]
    assert rows[0][1:] == (False, {"grad_penalty_every": 1, "global_pairs": "py_function"}, False)

    rows = cost.tuning_variants(_config("dataset", 4, False), True, "reduced")
    assert rows[0] == (
        "in-graph metric + pair stream, k=4, jit off (default config)",
        True,
        {"grad_penalty_every": 4, "global_pairs": "dataset"},
        False,
    )
    assert len(rows) == 4 and len({r[0].replace(" (default config)", "") for r in rows}) == 4

    rows = cost.tuning_variants(_config("dataset", 4, True), True, "all")
    assert rows[0][0] == "in-graph metric + pair stream, k=4, jit on (default config)" and rows[0][3] is True
    assert len(rows) == 6 and sum("default" in r[0] for r in rows) == 1


def test_a_setting_outside_the_table_is_added_and_no_in_graph_rows_without_a_metric():
    rows = cost.tuning_variants(_config("dataset", 2, False), True, "reduced")
    assert rows[0][0] == "in-graph metric + pair stream, k=2, jit off (default config)" and len(rows) == 5
    # a task without an in-graph metric: its config's pair stream cannot be timed in-graph, only py_function
    rows = cost.tuning_variants(_config("dataset", 4, True), False, "all")
    assert [r[0] for r in rows] == ["py_function metric, k=4 (default config)", "py_function metric, k=1"]
    assert not any(r[1] for r in rows)
