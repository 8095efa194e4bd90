"""LS-ED embedding: shapes, per-sample independence (no batch coupling), config round trip."""

import numpy as np
import tensorflow as tf

from tfls.recognition.embedding import EditDistanceEmbedding


def test_shapes_and_per_sample_independence():
    emb = EditDistanceEmbedding(filters=(8, 8), embedding_dim=5)
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
    emb = EditDistanceEmbedding(filters=(8,), kernel_size=5, embedding_dim=3, layer_norm=False)
    clone = EditDistanceEmbedding.from_config(emb.get_config())
    assert (clone.filters, clone.kernel_size, clone.embedding_dim, clone.layer_norm) == ((8,), 5, 3, False)


def test_checkpoint_restores_every_weight(tmp_path):
    # The job saves weights with tf.train.Checkpoint; layers held in plain lists were once left out.
    emb = EditDistanceEmbedding(filters=(8, 8), embedding_dim=5)
    z = tf.random.uniform([2, 9, 6])
    out = emb(z).numpy()
    path = tf.train.Checkpoint(obj=emb).write(str(tmp_path / "weights"))
    names = [n for n, _ in tf.train.list_variables(path) if n.startswith("obj/")]
    assert len(names) == len(emb.variables)
    clone = EditDistanceEmbedding(filters=(8, 8), embedding_dim=5)
    clone(z)
    tf.train.Checkpoint(obj=clone).read(path).assert_consumed()
    np.testing.assert_allclose(clone(z).numpy(), out, atol=1e-6)
