"""Random string pairs: distances against Levenshtein, layouts, CTC alignments."""

import Levenshtein
import numpy as np

from tfls.recognition.charset import Charset
from tfls.recognition.corpus import WordSampler, random_edit
from tfls.recognition.random_strings import (
    RandomStringPairGenerator,
    ctc_alignment,
    decode_matrices,
    edit_distance_metric,
)

CS = Charset(max_length=8)
SAMPLER = WordSampler(CS, ["hello", "world", "abc", "text", "aabb"], random_fraction=0.2)


def test_random_edit_bounded_by_edit_count():
    rng = np.random.default_rng(0)
    for k in range(6):
        for _ in range(50):
            out = random_edit("hello", rng, CS.characters, 8, k)
            assert Levenshtein.distance(out, "hello") <= k and len(out) <= 8


def test_attention_pairs_metric_matches_levenshtein():
    gen = RandomStringPairGenerator(CS, SAMPLER, max_edits=4, soft_mix=0.4)
    rng = np.random.default_rng(1)
    pred, target = gen.generate(200, rng)
    assert pred.shape == target.shape == (200, 9, 37)
    np.testing.assert_allclose(pred.sum(-1), 1.0, atol=1e-5)
    preds = decode_matrices(pred, CS, ctc=False)
    targets = decode_matrices(target, CS, ctc=False)
    expected = [Levenshtein.distance(p, t) for p, t in zip(preds, targets)]
    np.testing.assert_array_equal(edit_distance_metric(CS, False)(pred, target), expected)
    assert set(expected) >= {0, 1, 2, 3}  # distances are spread, not all equal
    # Re-draw the same strings from the same seed: the softened matrices still decode to them.
    p2, t2 = gen.sample_strings(200, np.random.default_rng(1))
    assert targets[:20] == [t[:8] for t in t2[:20]]


def test_ctc_alignment_collapses_to_label():
    rng = np.random.default_rng(2)
    for label in ["aab", "hello", "a", "", "lll"] * 20:
        ids = CS.encode(label)[: len(label)]
        path = ctc_alignment(ids, 16, rng)
        assert len(path) == 16 and CS.decode_ctc(path) == label


def test_ctc_pairs_metric_matches_levenshtein():
    gen = RandomStringPairGenerator(CS, SAMPLER, max_edits=3, ctc_frames=25, soft_mix=0.0)
    pred, target = gen.generate(100, np.random.default_rng(3))
    assert pred.shape == (100, 25, 37)
    a, b = decode_matrices(pred, CS, ctc=True), decode_matrices(target, CS, ctc=True)
    np.testing.assert_array_equal(
        edit_distance_metric(CS, True)(pred, target), [Levenshtein.distance(x, y) for x, y in zip(a, b)]
    )
