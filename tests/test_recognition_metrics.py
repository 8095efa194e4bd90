"""STR metrics against hand-computed values, including empty strings."""

import numpy as np
import pytest
import tensorflow as tf

from tfls.recognition.charset import Charset
from tfls.recognition.lsed import RandomStringPairGenerator, edit_distance_metric
from tfls.recognition.metrics import (
    WordMetrics,
    decode_argmax_tf,
    edit_distance_metric_tf,
    edit_distances,
    edit_distances_tf,
    levenshtein_tf,
    normalized_similarity,
)


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


CHARSET = Charset()  # 0-9a-z, max_length 25: z matrices [N, 26, 37]


def _z(rows, noise_rng=None):
    """Class-id rows -> one-hot z `[N, T, 37]` (plus small noise that keeps every argmax)."""
    z = np.eye(CHARSET.num_classes, dtype=np.float32)[np.asarray(rows)]
    if noise_rng is not None:
        z += noise_rng.uniform(0, 0.4, z.shape).astype(np.float32)
    return z


def _ids(text, length=26, fill=0):
    out = [fill] * length
    out[: len(text)] = [CHARSET.characters.index(c) + 1 for c in text]
    return out


def _check_in_graph_equals_numpy(pred, target, ctc):
    expected = edit_distance_metric(CHARSET, ctc)(pred, target)
    metric = edit_distance_metric_tf(ctc)
    np.testing.assert_array_equal(metric(pred, target).numpy(), expected)
    np.testing.assert_array_equal(tf.function(metric, jit_compile=True)(pred, target).numpy(), expected)
    mapped = tf.data.Dataset.from_tensors((pred, target)).map(metric)
    np.testing.assert_array_equal(next(iter(mapped)).numpy(), expected)
    return expected


@pytest.mark.parametrize("ctc", [False, True])
def test_in_graph_edit_distance_equals_numpy_on_random_matrices(ctc):
    rng = np.random.default_rng(0)
    # EOS / blank rates from 5% to 70% of the rows, few classes: repeats and matches are common
    eos_rate = np.repeat([0.05, 0.3, 0.7], 200)[:, None]
    pred, target = (np.where(rng.random((600, 26)) < eos_rate, 0, rng.integers(1, 6, (600, 26))) for _ in "ab")
    target[::4] = pred[::4]  # the same ids under different scores: distance 0
    expected = _check_in_graph_equals_numpy(_z(pred, rng), _z(target, rng), ctc)
    assert expected[::4].max() == 0 and expected.max() >= 10


@pytest.mark.parametrize("ctc", [False, True])
def test_in_graph_edit_distance_equals_numpy_on_generator_pairs(ctc):
    generator = RandomStringPairGenerator(
        CHARSET, _Words(), ctc_frames=25 if ctc else None, realistic_fraction=0.5, garbage_after_eos=0.5
    )
    pred, target = generator.generate(256, np.random.default_rng(1))
    assert _check_in_graph_equals_numpy(pred, target, ctc).max() > 0


class _Words:
    def sample(self, rng):
        return "".join(rng.choice(list("abcab1"), size=int(rng.integers(0, 12))))


ATTENTION_CASES = {
    "both_empty": (_ids(""), _ids(""), 0),
    "empty_vs_word": (_ids(""), _ids("abc"), 3),
    "word_vs_empty": (_ids("abcd"), _ids(""), 4),
    "eos_first_then_garbage": ([0] + _ids("abc")[:25], _ids(""), 0),
    "garbage_after_eos_ignored": (_ids("ab")[:3] + [5] * 23, _ids("ab"), 0),
    "no_eos_full_length": (_ids("b")[:1] * 26, _ids("b" * 25), 1),
    "repeats_kept": (_ids("aaab"), _ids("ab"), 2),
    "substitution": (_ids("kitten"), _ids("sitten"), 1),
    "kitten_sitting": (_ids("kitten"), _ids("sitting"), 3),
}
CTC_CASES = {
    "all_blank": ([0] * 26, [0] * 26, 0),
    "blank_vs_word": ([0] * 26, [1, 0, 2, 0, 3] + [0] * 21, 3),
    "repeats_merged": ([1, 1, 1, 2, 2] + [0] * 21, [1, 2] + [0] * 24, 0),
    "blank_separates_repeats": ([1, 0, 1] + [0] * 23, [1] + [0] * 25, 1),
    "repeat_across_blank_vs_merged": ([1, 1, 0, 1, 1] + [0] * 21, [1, 0, 1] + [0] * 23, 0),
    "no_blank_full_length": (list(range(1, 27)), list(range(1, 27)), 0),
    "one_long_run": ([5] * 26, [5] + [0] * 25, 0),
}


@pytest.mark.parametrize("ctc", [False, True])
def test_in_graph_edit_distance_edge_cases(ctc):
    cases = CTC_CASES if ctc else ATTENTION_CASES
    pred, target, distances = zip(*cases.values())
    expected = _check_in_graph_equals_numpy(_z(pred), _z(target), ctc)
    assert dict(zip(cases, expected.tolist())) == dict(zip(cases, distances))


def test_decode_argmax_packs_characters_left():
    ids, lengths = decode_argmax_tf(_z([[1, 1, 0, 2, 2, 0, 0, 3] + [0] * 18]), ctc=True)
    assert lengths.numpy().tolist() == [3]
    assert ids.numpy()[0, :4].tolist() == [1, 2, 3, 0]
    ids, lengths = decode_argmax_tf(_z([[4, 4, 0, 2] + [0] * 22]), ctc=False)
    assert lengths.numpy().tolist() == [2] and ids.numpy()[0, :3].tolist() == [4, 4, 0]


def test_levenshtein_tf_unequal_widths_and_lengths():
    a = np.array([[1, 2, 3, 9], [7, 7, 7, 7]])
    b = np.array([[1, 3, 3, 0, 0, 0], [8, 8, 8, 8, 8, 8]])
    got = levenshtein_tf(a, [3, 0], b, [3, 6]).numpy()
    assert got.tolist() == [1, 6]
