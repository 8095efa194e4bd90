"""Every stage combination builds and trains one step; attention teacher forcing and greedy decoding."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfls.recognition.recognizer import AttentionDecoder, Recognizer

TINY = dict(channels=(4, 4, 8, 8), resnet_blocks=(1, 1, 1, 1), hidden=8, num_fiducials=6)


@pytest.mark.parametrize(
    "stages", list(itertools.product(["none", "tps"], ["vgg", "resnet"], ["none", "bilstm"], ["ctc", "attn"]))
)
def test_stage_combination_trains_one_step(stages):
    model = Recognizer(7, 3, (16, 24, 1), *stages, **TINY).build_with_sample()
    x = tf.random.uniform([2, 16, 24, 1], 0, 255)
    y = tf.constant([[1, 2, 0, 0], [3, 0, 0, 0]])
    opt = keras.optimizers.Adam(1e-2)
    with tf.GradientTape() as tape:
        logits = model(x, targets=None if stages[3] == "ctc" else y, training=True)
        if stages[3] == "ctc":
            assert logits.shape == (2, 6, 7)  # width 24 / 4 frames
            lengths = tf.reduce_sum(tf.cast(y > 0, tf.int32), 1)
            loss = tf.reduce_mean(
                tf.nn.ctc_loss(y, logits, lengths, tf.fill([2], 6), logits_time_major=False, blank_index=0)
            )
        else:
            assert logits.shape == (2, 4, 7)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in grads)
    before = [v.numpy().copy() for v in model.trainable_variables]
    opt.apply_gradients(zip(grads, model.trainable_variables))
    assert np.isfinite(float(loss))
    assert any(not np.allclose(b, v.numpy()) for b, v in zip(before, model.trainable_variables))


def test_attention_greedy_feeds_back_argmax_and_teacher_forcing_feeds_targets():
    decoder = AttentionDecoder(num_classes=5, hidden=6, steps=4)
    features = tf.random.normal([3, 7, 10], seed=1)
    decoder.build(features.shape)
    greedy = decoder(features).numpy()
    # Teacher forcing with the greedy argmax as targets reproduces greedy decoding exactly.
    targets = np.argmax(greedy, -1)
    np.testing.assert_allclose(decoder(features, targets=targets).numpy(), greedy, atol=1e-5)
    # Other targets change every step after the first but never the first.
    other = (targets + 1) % 5
    forced = decoder(features, targets=other).numpy()
    np.testing.assert_allclose(forced[:, 0], greedy[:, 0], atol=1e-5)
    assert not np.allclose(forced[:, 1:], greedy[:, 1:])


def test_unknown_stage_is_rejected():
    with pytest.raises(ValueError, match="stage 'lstm'"):
        Recognizer(7, 3, sequence_model="lstm")


def test_free_running_argmax_feedback_is_inference_decoding():
    decoder = AttentionDecoder(num_classes=5, hidden=6, steps=4)
    features = tf.random.normal([2, 7, 10], seed=2)
    decoder.build(features.shape)
    np.testing.assert_allclose(decoder(features, feedback="argmax").numpy(), decoder(features).numpy(), atol=1e-6)
    soft = decoder(features, feedback="soft").numpy()
    np.testing.assert_allclose(soft[:, 0], decoder(features).numpy()[:, 0], atol=1e-6)  # same first step
    with pytest.raises(ValueError, match="feedback"):
        decoder(features, feedback="beam")


def test_soft_feedback_passes_gradient_through_previous_symbols():
    decoder = AttentionDecoder(num_classes=5, hidden=6, steps=3)
    features = tf.random.normal([2, 7, 10], seed=3)
    decoder.build(features.shape)
    bias = decoder.classifier.bias

    def grad_of_last_step(feedback):
        # the bias moves step 0's logits; with argmax feedback step 2 sees step 0 only through the LSTM
        # state (which does not depend on the bias), with soft feedback also through the fed-back softmax
        with tf.GradientTape() as tape:
            logits = decoder(features, feedback=feedback)
            last = tf.reduce_sum(logits[:, 2] * tf.constant([1.0, -2.0, 3.0, 0.5, -1.0]))
        return tape.gradient(last, bias).numpy()

    direct = np.array([1.0, -2.0, 3.0, 0.5, -1.0]) * 2  # d(last)/d(bias) through step 2's own classifier
    np.testing.assert_allclose(grad_of_last_step("argmax"), direct, atol=1e-5)
    assert not np.allclose(grad_of_last_step("soft"), direct, atol=1e-4)
