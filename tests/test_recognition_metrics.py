"""STR metrics against hand-computed values, including empty strings."""

import numpy as np
import pytest
import tensorflow as tf

from tfls.recognition.metrics import WordMetrics, edit_distances, edit_distances_tf, normalized_similarity


def test_hand_computed_values():
    preds = ["hello", "", "wrld", "", "abc"]
    gts = ["hello", "", "world", "ab", "xyz"]
    np.testing.assert_array_equal(edit_distances(preds, gts), [0, 0, 1, 2, 3])
    np.testing.assert_allclose(normalized_similarity(preds, gts), [1.0, 1.0, 0.8, 0.0, 0.0])
    m = WordMetrics()
    m.update(preds[:2], gts[:2])
    m.update(preds[2:], gts[2:])
    r = m.result()
    assert r["accuracy"] == pytest.approx(40.0)
    assert r["total_edit_distance"] == 6
    assert r["normalized_edit_distance"] == pytest.approx(2.8 / 5)
    assert r["num_samples"] == 5
    # wrld <- world: one deletion; "" <- ab: two deletions; abc <- xyz: three substitutions
    assert (r["insertions"], r["deletions"], r["substitutions"]) == (0, 3, 3)
    # by ground-truth length: "" (0) -> 0; "ab", "xyz" (1-3) -> 2 + 3; "hello", "world" (4-6) -> 0 + 1
    assert r["edit_distance_len_0"] == 0 and r["edit_distance_len_1-3"] == 5 and r["edit_distance_len_4-6"] == 1


def test_edit_kinds_by_hand():
    from tfls.recognition.metrics import edit_kinds, length_bucket

    assert edit_kinds("hhello", "hello") == (1, 0, 0)  # a doubled letter is an insertion
    assert edit_kinds("helo", "hello") == (0, 1, 0)
    assert edit_kinds("he1lo", "hello") == (0, 0, 1)
    assert edit_kinds("hell0o!", "hello") == (2, 0, 0)  # distance 2 leaves only two insertions
    assert [length_bucket(n) for n in (0, 1, 3, 4, 9, 10, 25)] == ["0", "1-3", "1-3", "4-6", "7-9", "10+", "10+"]


def test_py_function_op_in_graph_and_dataset():
    p = tf.constant(["kitten", "", "abc"])
    g = tf.constant(["sitting", "a", "abc"])
    np.testing.assert_array_equal(tf.function(edit_distances_tf)(p, g).numpy(), [3, 1, 0])
    ds = tf.data.Dataset.from_tensors((p, g)).map(edit_distances_tf)
    np.testing.assert_array_equal(next(iter(ds)).numpy(), [3, 1, 0])
