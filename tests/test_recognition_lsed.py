"""LS-ED: the metric against Levenshtein, the global pair generator (recognizer-like edits, softmax-like
rows), and the embedding (shapes, per-sample independence, config round trip, checkpoints)."""

import Levenshtein
import numpy as np
import pytest
import tensorflow as tf

from tfls.recognition.charset import EOS, Charset
from tfls.recognition.corpus import WordSampler, random_edit
from tfls.recognition.lsed import (
    EditDistanceEmbedding,
    RandomStringPairGenerator,
    confusion_table,
    decode_matrices,
    edit_distance_metric,
    recognizer_like_edit,
    sharpen_rows,
    softmax_like,
)

CS = Charset(max_length=8)
SAMPLER = WordSampler(CS, ["hello", "world", "abc", "text", "aabb"], random_fraction=0.2)


@pytest.mark.parametrize("recurrent", [0, 4])
def test_shapes_and_per_sample_independence(recurrent):
    emb = EditDistanceEmbedding(filters=(8, 8), embedding_dim=5, recurrent=recurrent)
    z = tf.random.uniform([4, 9, 6])
    out = emb(z).numpy()
    assert out.shape == (4, 5)
    np.testing.assert_allclose(emb(z[:1]).numpy(), out[:1], atol=1e-5)
    # Per-sample gradients: changing sample 1 leaves the gradient of sample 0's output untouched.
    with tf.GradientTape() as tape:
        tape.watch(z)
        y = tf.reduce_sum(emb(z)[0])
    g = tape.gradient(y, z).numpy()
    assert np.abs(g[1:]).max() == 0.0 and np.abs(g[0]).max() > 0


def test_config_round_trip():
    emb = EditDistanceEmbedding(
        filters=(8, 8), kernel_size=5, embedding_dim=3, layer_norm=False, dilations=(1, 4), recurrent=6
    )
    clone = EditDistanceEmbedding.from_config(emb.get_config())
    assert (clone.filters, clone.kernel_size, clone.embedding_dim, clone.layer_norm) == ((8, 8), 5, 3, False)
    assert clone.dilations == (1, 4) and clone.recurrent == 6
    assert EditDistanceEmbedding.from_config(EditDistanceEmbedding(filters=(8,), sharpen=3.0).get_config()).sharpen == 3


def test_sharpen_rows_by_hand():
    z = np.array([[[0.9, 0.05, 0.05], [0.4, 0.35, 0.25]]], np.float32)
    out = sharpen_rows(z, 3.0).numpy()
    # cubes 0.729, 0.000125, 0.000125 (sum 0.72925) and 0.064, 0.042875, 0.015625 (sum 0.1225)
    np.testing.assert_allclose(out[0, 0], [0.729 / 0.72925, 0.000125 / 0.72925, 0.000125 / 0.72925], rtol=1e-5)
    np.testing.assert_allclose(out[0, 1], [0.064 / 0.1225, 0.042875 / 0.1225, 0.015625 / 0.1225], rtol=1e-5)
    np.testing.assert_array_equal(np.argmax(out, -1), np.argmax(z, -1))
    np.testing.assert_allclose(sharpen_rows(z, 1.0).numpy(), z)
    # a confident row lands near its one-hot, so the embedding sees it (almost) as the one-hot
    emb = EditDistanceEmbedding(filters=(8,), embedding_dim=4, sharpen=3.0)
    one_hot = np.eye(3, dtype=np.float32)[[0, 0]][None]
    soft = np.array([[[0.9, 0.05, 0.05], [0.9, 0.05, 0.05]]], np.float32)
    plain = EditDistanceEmbedding(filters=(8,), embedding_dim=4)
    plain(soft), emb(soft)
    plain.set_weights(emb.get_weights())
    near = np.linalg.norm(emb(soft).numpy() - emb(one_hot).numpy())
    far = np.linalg.norm(plain(soft).numpy() - plain(one_hot).numpy())
    assert near < 0.05 * far
    with pytest.raises(ValueError, match="sharpen"):
        EditDistanceEmbedding(filters=(8,), sharpen=0.0)


@pytest.mark.parametrize("recurrent", [0, 4])
def test_checkpoint_restores_every_weight(tmp_path, recurrent):
    # The job saves weights with tf.train.Checkpoint; layers held in plain lists were once left out.
    emb = EditDistanceEmbedding(filters=(8, 8), embedding_dim=5, recurrent=recurrent)
    z = tf.random.uniform([2, 9, 6])
    out = emb(z).numpy()
    path = tf.train.Checkpoint(obj=emb).write(str(tmp_path / "weights"))
    names = [n for n, _ in tf.train.list_variables(path) if n.startswith("obj/")]
    # every weight; a recurrent layer's dropout seed state (no dropout here) carries nothing to save
    assert len(names) == len([v for v in emb.variables if "seed_generator" not in v.path])
    clone = EditDistanceEmbedding(filters=(8, 8), embedding_dim=5, recurrent=recurrent)
    clone(z)
    tf.train.Checkpoint(obj=clone).read(path).assert_consumed()
    np.testing.assert_allclose(clone(z).numpy(), out, atol=1e-6)


def test_metric_counts_only_up_to_the_first_eos():
    # "ab" then EOS, then garbage "zz": the decoding, and so the distance to "ab", ignores the garbage
    eye = np.eye(CS.num_classes, dtype=np.float32)
    ids = [CS.encode("ab")[0], CS.encode("ab")[1], EOS, CS.encode("z")[0], CS.encode("z")[0], EOS, EOS, EOS, EOS]
    pred = eye[np.asarray(ids)][None]
    target = eye[CS.encode("abc")][None]
    assert decode_matrices(pred, CS, ctc=False) == ["ab"]
    assert edit_distance_metric(CS, False)(pred, target).tolist() == [1.0]


def test_recognizer_like_edits_stay_within_their_count():
    rng = np.random.default_rng(3)
    table = confusion_table(CS.characters)
    assert "0" in table["o"] and "o" in table["0"] and "l" in table["1"]
    for k in range(5):
        for _ in range(200):
            out = recognizer_like_edit("hello", rng, CS.characters, 8, k, table)
            assert Levenshtein.distance(out, "hello") <= k and len(out) <= 8 and set(out) <= set(CS.characters)


def test_softmax_like_rows_keep_argmax_and_sum_to_one():
    rng = np.random.default_rng(4)
    ids = CS.encode_batch(["hello", "ab", ""])
    alternatives = np.full(ids.shape, -1)
    alternatives[0, 1] = CS.encode("a")[0]
    z = softmax_like(ids, CS.num_classes, rng, alternatives, garbage_after_eos=1.0)
    np.testing.assert_allclose(z.sum(-1), 1.0, atol=1e-5)
    first_eos = np.argmax(ids == EOS, axis=1)
    for i in range(len(ids)):
        np.testing.assert_array_equal(np.argmax(z[i, : first_eos[i] + 1], -1), ids[i, : first_eos[i] + 1])
    # garbage after the EOS never changes what is read
    assert decode_matrices(z, CS, ctc=False) == ["hello", "ab", ""]
    assert z.max() < 1.0  # soft, not one-hot


@pytest.mark.parametrize("skew", [2.0, 6.0])
def test_softmax_like_confidence_follows_its_skew(skew):
    # p = 1 - 0.65 u^skew: its quantile q is 1 - 0.65 (1 - q)^skew; a row's max is p plus a little floor mass
    rng = np.random.default_rng(7)
    ids = rng.integers(1, CS.num_classes, size=(4000, 5))
    row_max = softmax_like(ids, CS.num_classes, rng, confidence_skew=skew).max(-1).ravel()
    for q in (0.5, 0.75):
        expected = 1.0 - 0.65 * (1.0 - q) ** skew
        assert expected - 0.01 < np.quantile(row_max, q) < expected + 0.02


def test_realistic_attention_pairs_metric_matches_levenshtein():
    gen = RandomStringPairGenerator(
        CS, SAMPLER, max_edits=4, realistic_fraction=0.7, small_edit_bias=0.5, garbage_after_eos=0.5
    )
    pred, target = gen.generate(300, np.random.default_rng(5))
    assert pred.shape == target.shape == (300, 9, 37)
    np.testing.assert_allclose(pred.sum(-1), 1.0, atol=1e-5)
    a, b = decode_matrices(pred, CS, ctc=False), decode_matrices(target, CS, ctc=False)
    e = edit_distance_metric(CS, False)(pred, target)
    np.testing.assert_array_equal(e, [Levenshtein.distance(x, y) for x, y in zip(a, b)])
    # the small-edit bias puts most pairs at 0-2 edits, as a converged recognizer's errors are
    assert np.mean(e <= 2) > 0.6 and e.max() >= 3


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


def test_eos_gate_hides_what_follows_the_first_eos():
    from tfls.recognition.lsed import eos_gate

    eye = np.eye(CS.num_classes, dtype=np.float32)
    a, b, z = CS.encode("a")[0], CS.encode("b")[0], CS.encode("z")[0]
    target = eye[[a, b, EOS, EOS, EOS]][None]
    garbage = eye[[a, b, EOS, z, a]][None]
    gated_t, gated_g = eos_gate(target).numpy(), eos_gate(garbage).numpy()
    assert gated_t.shape == (1, 5, CS.num_classes + 1)
    # rows up to and including the first EOS are kept, later ones are zero, and the last channel says "ended"
    np.testing.assert_allclose(gated_t[0, :3, :-1], target[0, :3], atol=1e-4)
    np.testing.assert_allclose(gated_t[0, 3:, :-1], 0.0, atol=1e-4)
    np.testing.assert_allclose(gated_t[0, :, -1], [0, 0, 0, 1, 1], atol=1e-4)
    np.testing.assert_allclose(gated_g, gated_t, atol=1e-4)
    # an embedding with the gate cannot tell them apart; one without it can
    gate = EditDistanceEmbedding(filters=(8,), embedding_dim=4, eos_gate=True)
    plain = EditDistanceEmbedding(filters=(8,), embedding_dim=4)
    np.testing.assert_allclose(gate(garbage).numpy(), gate(target).numpy(), atol=1e-3)
    assert not np.allclose(plain(garbage).numpy(), plain(target).numpy(), atol=1e-3)
    # the gate is differentiable in the EOS probability
    soft = tf.Variable(0.6 * target + 0.4 / CS.num_classes)
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(eos_gate(soft)[..., -1])
    assert np.abs(tape.gradient(out, soft).numpy()[0, :, EOS]).sum() > 0
