"""bench/lsed_gradient_check.py's measurements on hand-made logits, and surrogate_capacity's per-value means."""

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from helpers import load_bench as _module  # noqa: E402

check = _module("lsed_gradient_check")
capacity = _module("surrogate_capacity")
LETTERS = "-abc"  # class 0 ends the word


def _decode(logits):
    out = []
    for row in np.argmax(logits, axis=-1):
        text = ""
        for c in row:
            if c == 0:
                break
            text += LETTERS[c]
        out.append(text)
    return out


def test_cosine_by_hand():
    a = np.array([[[1.0, 0.0]], [[1.0, 1.0]], [[0.0, 2.0]]])
    b = np.array([[[2.0, 0.0]], [[-1.0, -1.0]], [[3.0, 0.0]]])
    np.testing.assert_allclose(check.cosine(a, b), [1.0, -1.0, 0.0], atol=1e-9)


def test_step_outcomes_follow_the_direction_and_its_size():
    """One word "ab" read as "cb" (row 0's margin 1 for the wrong class). A direction that lowers c and raises a
    in row 0 fixes it once the step passes the margin; the opposite direction never does."""
    logits = np.array([[[0.0, 2.0, 0.0, 3.0], [0.0, 0.0, 3.0, 0.0], [3.0, 0.0, 0.0, 0.0]]])
    assert _decode(logits) == ["cb"]
    grad = np.zeros_like(logits)
    grad[0, 0, 1], grad[0, 0, 3] = -1.0, 1.0  # descent raises a, lowers c; unit norm sqrt(2) after scaling
    out = check.step_outcomes(logits, grad, _decode, ["ab"], (0.5, 0.7, 0.75, 2.0))
    # the step moves each of the two logits by size / sqrt(2) towards each other: the margin of 1 closes at
    # size 1 / sqrt(2) = 0.707
    assert out[0.5][0] == 1 and out[0.7][0] == 1 and out[0.75][0] == 0 and out[2.0][0] == 0
    worse = check.step_outcomes(logits, -grad, _decode, ["ab"], (0.5, 2.0, 8.0))
    assert all(v[0] == 1 for v in worse.values())


def test_mean_by_value_by_hand():
    e = np.array([0, 0, 1, 3, 9, 12])
    e_hat = np.array([0.1, 0.3, 1.5, 2.0, 4.0, 6.0])
    out = capacity.mean_by_value(e, e_hat, max_value=6)
    assert out == {"0": [2, 0.2], "1": [1, 1.5], "3": [1, 2.0], ">6": [2, 5.0]}


def test_edit_kinds_makes_exactly_the_edits_it_names():
    import Levenshtein

    kinds = _module("lsed_edit_kinds")
    rng = np.random.default_rng(0)
    assert kinds.edit("hello", "delete_end", 2, rng, "abc") == "hel"
    assert kinds.edit("hello", "insert_end", 1, rng, "z") == "helloz"
    assert kinds.edit("a", "delete_inside", 1, rng, "abc") is None  # no inside to delete from
    for kind in kinds.KINDS:
        for k in (1, 2, 3):
            out = kinds.edit("station", kind, k, rng, "abcdefghijklmnopqrstuvwxyz")
            assert Levenshtein.distance(out, "station") <= k
            grows = kind.startswith("insert") or kind == "double"
            shrinks = kind.startswith("delete")
            assert len(out) == 7 + k * grows - k * shrinks
            if kind == "delete_end":
                assert out == "station"[: 7 - k]
            if kind == "substitute":
                assert Levenshtein.distance(out, "station") >= 1
