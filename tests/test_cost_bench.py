"""bench/cost.py's table of tuning rows: the config's own setting comes first, labelled the default, once."""

import os
import sys

import ml_collections
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from helpers import load_bench  # noqa: E402

cost = load_bench("cost")


def _config(global_pairs, every, jit, surrogate_every=1, global_batch_size=0):
    config = ml_collections.ConfigDict()
    config.surrogate = {"global_pairs": global_pairs, "grad_penalty_every": every}
    config.tune = {"jit_compile": jit, "surrogate_every": surrogate_every, "global_batch_size": global_batch_size}
    return config


def test_the_default_row_is_the_configs_setting():
    rows = cost.tuning_variants(_config("py_function", 1, False), True, "reduced")
    assert [r[0] for r in rows] == [
        "py_function metric, k=1 (default config)",
        "in-graph metric + pair stream, k=1, jit off",
        "in-graph metric + pair stream, k=4, jit off",
        "in-graph metric + pair stream, k=4, phi every 2 steps, jit off",
        "in-graph metric + pair stream, k=4, phi every 2 steps, 32 global pairs, jit off",
        "in-graph metric + pair stream, k=4, phi every 3 steps, 32 global pairs, jit off",
        "in-graph metric + pair stream, k=4, phi every 4 steps, 32 global pairs, jit off",
        "in-graph metric + pair stream, k=4, jit on",
    ]
    assert rows[0][1:] == (
        False,
        {"grad_penalty_every": 1, "global_pairs": "py_function", "surrogate_every": 1, "global_batch_size": 0},
        False,
    )

    rows = cost.tuning_variants(_config("dataset", 4, False), True, "reduced")
    assert rows[0] == (
        "in-graph metric + pair stream, k=4, jit off (default config)",
        True,
        {"grad_penalty_every": 4, "global_pairs": "dataset", "surrogate_every": 1, "global_batch_size": 0},
        False,
    )
    assert len(rows) == 8 and len({r[0].replace(" (default config)", "") for r in rows}) == 8

    rows = cost.tuning_variants(_config("dataset", 4, False, surrogate_every=2), True, "reduced")
    assert rows[0][0] == "in-graph metric + pair stream, k=4, phi every 2 steps, jit off (default config)"
    assert rows[0][2]["surrogate_every"] == 2 and len(rows) == 8

    rows = cost.tuning_variants(_config("dataset", 4, True), True, "all")
    assert rows[0][0] == "in-graph metric + pair stream, k=4, jit on (default config)" and rows[0][3] is True
    assert len(rows) == 10 and sum("default" in r[0] for r in rows) == 1


def test_a_setting_outside_the_table_is_added_and_no_in_graph_rows_without_a_metric():
    rows = cost.tuning_variants(_config("dataset", 2, False), True, "reduced")
    assert rows[0][0] == "in-graph metric + pair stream, k=2, jit off (default config)" and len(rows) == 9
    rows = cost.tuning_variants(_config("dataset", 4, False, 2, 32), True, "reduced")
    # the config's setting is a row of the table (moved first); every row pins its own global batch (0: the
    # pretraining batch), none inherits the config's
    assert [r[2]["global_batch_size"] for r in rows] == [32, 0, 0, 0, 0, 32, 32, 0]
    assert [r[2]["global_batch_size"] for r in cost.tuning_variants(_config("dataset", 4, False, 1, 16), True)] == [
        16,
        0,
        0,
        0,
        0,
        0,
        32,
        32,
        32,
        0,
        0,
    ]
    expected = "in-graph metric + pair stream, k=4, phi every 2 steps, 32 global pairs, jit off (default config)"
    assert rows[0][0] == expected
    assert rows[0][2]["global_batch_size"] == 32 and len(rows) == 8
    # a task without an in-graph metric: its config's pair stream cannot be timed in-graph, only py_function
    rows = cost.tuning_variants(_config("dataset", 4, True), False, "all")
    assert [r[0] for r in rows] == ["py_function metric, k=4 (default config)", "py_function metric, k=1"]
    assert not any(r[1] for r in rows)


def test_window_step_time_averages_each_cycle():
    # k=4: one heavy step (1.0 s) in every 4; the median of the steps (0.1) would leave it out; a cycle's
    # mean is (3 * 0.1 + 1.0) / 4 = 0.325
    durations = [1.0, 0.1, 0.1, 0.1] * 3
    assert abs(cost.window_step_time(durations, 4) - 0.325) < 1e-12
    assert abs(cost.window_step_time(durations, 1) - 0.1) < 1e-12
    # a stalled window is dropped by the median over windows; a partial last cycle is left out
    durations = [1.0, 0.1, 0.1, 0.1] * 2 + [5.0, 0.1, 0.1, 0.1] + [1.0, 0.1]
    assert abs(cost.window_step_time(durations, 4) - 0.325) < 1e-12
    with pytest.raises(ValueError, match="no whole cycle of 4"):
        cost.window_step_time([0.1, 0.2, 0.3], 4)


class _Tuner:
    def __init__(self, m, k, inner, weight=0.1, update=True):
        self.surrogate_every, self.grad_penalty_every, self.inner_steps = m, k, inner
        self.grad_penalty_weight, self.update_surrogate = weight, update


@pytest.mark.parametrize(
    "m,k,inner,weight,update,period",
    [
        (1, 1, 1, 0.1, True, 1),
        (1, 4, 1, 0.1, True, 4),  # penalty on every 4th phi update = every 4th step
        (2, 4, 1, 0.1, True, 8),  # phi on every 2nd step, penalty on every 4th of those
        (1, 4, 2, 0.1, True, 2),  # two phi updates per step: the penalty falls on every 2nd step
        (2, 4, 1, 0.0, True, 2),  # no penalty: only phi's own schedule
        (2, 4, 1, 0.1, False, 1),  # phi frozen: every step alike
    ],
)
def test_schedule_period(m, k, inner, weight, update, period):
    assert cost.schedule_period(_Tuner(m, k, inner, weight, update)) == period
    # by brute force: the pattern of (phi updated?, penalty due?) per model step repeats with that period
    pattern, phi_steps = [], 0
    for step in range(4 * period * k):
        due = update and step % m == 0
        penalties = 0
        if due:
            for _ in range(inner):
                penalties += weight > 0 and phi_steps % k == 0
                phi_steps += 1
        pattern.append((due, penalties))
    assert all(pattern[i] == pattern[i + period] for i in range(len(pattern) - period))


def test_timed_steps_round_up_to_whole_cycles():
    assert cost.timed_steps(8, 1) == 8  # an ordinary step: as asked
    assert cost.timed_steps(8, 8) == 24  # at least 3 cycles of a cycling step
    assert cost.timed_steps(30, 8) == 32  # else whole cycles, rounded up
    assert cost.timed_steps(5, 3) == 9


def test_paired_ratios_divide_each_timing_by_its_own_ordinary_one():
    assert cost.paired_ratios([0.4, 0.6, 0.5], [0.4, 0.5, 0.25]) == pytest.approx([1.0, 1.2, 2.0])
    with pytest.raises(ValueError, match="not paired"):
        cost.paired_ratios([0.4, 0.6], [0.4])
