"""CTC paths: random, peaky and forced alignments, in-place edits, and the CTC layouts of LS-ED pairs."""

import Levenshtein
import numpy as np

from tfls.recognition.charset import Charset
from tfls.recognition.corpus import WordSampler
from tfls.recognition.ctc_alignment import (
    ctc_alignment,
    ctc_forced_alignment,
    ctc_forced_alignments,
    edit_path,
    peaky_ctc_alignment,
)
from tfls.recognition.lsed import RandomStringPairGenerator, decode_matrices, edit_distance_metric

CS = Charset(max_length=8)
SAMPLER = WordSampler(CS, ["hello", "world", "abc", "text", "aabb"], random_fraction=0.2)


def test_ctc_alignment_collapses_to_label():
    rng = np.random.default_rng(2)
    for label in ["aab", "hello", "a", "", "lll"] * 20:
        ids = CS.encode(label)[: len(label)]
        path = ctc_alignment(ids, 16, rng)
        assert len(path) == 16 and CS.decode_ctc(path) == label


def test_ctc_pairs_metric_matches_levenshtein():
    gen = RandomStringPairGenerator(CS, SAMPLER, max_edits=3, ctc_frames=25, soft_mix=0.0, ctc_layout="random")
    pred, target = gen.generate(100, np.random.default_rng(3))
    assert pred.shape == (100, 25, 37)
    a, b = decode_matrices(pred, CS, ctc=True), decode_matrices(target, CS, ctc=True)
    np.testing.assert_array_equal(
        edit_distance_metric(CS, True)(pred, target), [Levenshtein.distance(x, y) for x, y in zip(a, b)]
    )


def test_ctc_forced_alignment_hand_computed():
    # Classes: 0 blank, 1 "a", 2 "b". Paths of "ab" over 3 frames and their probabilities:
    # abb .8*.5*.2 = .08, ab- .8*.5*.7 = .28, a-b .8*.3*.2 = .048, aab .8*.2*.2 = .032, -ab .1*.2*.2 = .004.
    probs = np.array([[0.1, 0.8, 0.1], [0.3, 0.2, 0.5], [0.7, 0.1, 0.2]])
    np.testing.assert_array_equal(ctc_forced_alignment(np.log(probs), [1, 2]), [1, 2, 0])
    # "aa" over 3 frames has the single path a-a, although every frame's argmax is "a" (which decodes "a").
    probs = np.array([[0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1]])
    np.testing.assert_array_equal(ctc_forced_alignment(np.log(probs), [1, 1]), [1, 0, 1])
    np.testing.assert_array_equal(ctc_forced_alignment(np.log(probs), []), [0, 0, 0])


def test_ctc_forced_alignment_matches_argmax_path_when_it_decodes_to_the_label():
    rng = np.random.default_rng(5)
    for label in ["hello", "aab", "x", "lll", ""]:
        ids = CS.encode(label)[: len(label)]
        path = peaky_ctc_alignment(ids, 16, rng)
        assert CS.decode_ctc(path) == label
        log_probs = np.log(0.02 + np.eye(CS.num_classes)[path])
        forced = ctc_forced_alignments(log_probs[None], CS.encode_batch([label]))[0]
        np.testing.assert_array_equal(forced, path)
        # Random posteriors: the forced path still collapses to the label.
        noisy = np.log(rng.dirichlet(np.ones(CS.num_classes), size=16))
        assert CS.decode_ctc(ctc_forced_alignment(noisy, ids)) == label


def test_ctc_forced_alignments_batch_matches_single():
    rng = np.random.default_rng(8)
    labels = ["hello", "", "aab", "zz", "world", "a"]
    log_probs = np.log(rng.dirichlet(np.ones(CS.num_classes), size=(len(labels), 12)))
    batch = ctc_forced_alignments(log_probs, CS.encode_batch(labels))
    for row, label, lp in zip(batch, labels, log_probs):
        np.testing.assert_array_equal(row, ctc_forced_alignment(lp, CS.encode(label)[: len(label)]))
        assert CS.decode_ctc(row) == label


def test_ctc_forced_alignment_against_brute_force():
    # Every path of 5 frames over {blank, a, b}: the best-scoring one that collapses to the label.
    import itertools

    rng = np.random.default_rng(9)
    paths = np.array(list(itertools.product(range(3), repeat=5)))
    collapsed = ["".join("-ab"[c] for j, c in enumerate(p) if c and (j == 0 or c != p[j - 1])) for p in paths]
    for label in ["ab", "aa", "a", "aba", "", "bab"]:
        log_probs = np.log(rng.dirichlet(np.ones(3), size=5))
        scores = log_probs[np.arange(5), paths].sum(axis=1)
        candidates = [i for i, c in enumerate(collapsed) if c == label]
        best = paths[max(candidates, key=lambda i: scores[i])]
        ids = [" ab".index(c) for c in label]
        np.testing.assert_array_equal(ctc_forced_alignment(log_probs, ids), best)


def test_edit_path_keeps_alignment_and_bounds_distance():
    rng = np.random.default_rng(6)
    for label in ["hello", "world", "aabb", "abc"] * 25:
        ids = CS.encode(label)[: len(label)]
        path = peaky_ctc_alignment(ids, 25, rng)
        edits = int(rng.integers(4))
        edited = edit_path(path, rng, edits, CS.num_characters)
        assert Levenshtein.distance(CS.decode_ctc(edited), label) <= edits
        if edits == 0:
            assert CS.decode_ctc(edited) == label


def test_aligned_ctc_pairs_metric_matches_levenshtein():
    gen = RandomStringPairGenerator(CS, SAMPLER, max_edits=3, ctc_frames=25, soft_mix=0.3, ctc_layout="aligned")
    pred, target = gen.generate(100, np.random.default_rng(7))
    assert pred.shape == target.shape == (100, 25, 37)
    a, b = decode_matrices(pred, CS, ctc=True), decode_matrices(target, CS, ctc=True)
    e = edit_distance_metric(CS, True)(pred, target)
    np.testing.assert_array_equal(e, [Levenshtein.distance(x, y) for x, y in zip(a, b)])
    assert set(e.tolist()) >= {0, 1, 2, 3}
