"""The four-stage text recognizer: transformation -> features -> sequence model -> prediction (CTC | attention).

`Recognizer(images, targets=None)` returns logits `[B, T, C + 1]` (class 0 = EOS / blank). The attention
head is teacher-forced when `targets` are given and decodes greedily otherwise; T is `max_length + 1` for
attention and the feature sequence length (W / 4) for CTC.
"""

import keras
import tensorflow as tf

from tfls.recognition.backbones import bilstm_encoder, resnet_backbone, vgg_backbone
from tfls.recognition.tps import TPSTransformer


@keras.saving.register_keras_serializable(package="tfls")
class AttentionDecoder(keras.layers.Layer):
    """Bahdanau-attention LSTM decoder (as in the four-stage STR framework).

    At step t: `e = w^T tanh(W_h H + W_s s_{t-1})`, `alpha = softmax(e)`, `ctx = alpha H`,
    `s_t = LSTM([ctx, onehot(y_{t-1})], s_{t-1})`, logits `= W_o s_t`.

    Args:
      num_classes: C + 1 output classes (0 = EOS).
      hidden: LSTM state size.
      steps: decoding steps (max_length + 1).
    """

    def __init__(self, num_classes, hidden=256, steps=26, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.hidden = int(hidden)
        self.steps = int(steps)
        self.go_token = self.num_classes  # input-only index

    def build(self, input_shape):
        feat = int(input_shape[-1])
        self.key_proj = keras.layers.Dense(self.hidden, use_bias=False, name="key_proj")
        self.key_proj.build((None, None, feat))
        self.query_proj = keras.layers.Dense(self.hidden, name="query_proj")
        self.query_proj.build((None, self.hidden))
        self.score = keras.layers.Dense(1, use_bias=False, name="score")
        self.score.build((None, None, self.hidden))
        self.cell = keras.layers.LSTMCell(self.hidden, name="cell")
        self.cell.build((None, feat + self.num_classes + 1))
        self.classifier = keras.layers.Dense(self.num_classes, name="classifier")
        self.classifier.build((None, self.hidden))

    def _step(self, features, keys, prev, state):
        h, c = state
        energy = self.score(tf.tanh(keys + self.query_proj(h)[:, None, :]))  # [B, T, 1]
        alpha = tf.nn.softmax(energy, axis=1)
        context = tf.reduce_sum(alpha * features, axis=1)
        out, (h, c) = self.cell(tf.concat([context, prev], axis=-1), [h, c])
        return self.classifier(out), (h, c)

    def call(self, features, targets=None, feedback="argmax"):
        """Decodes `steps` symbols.

        Args:
          features: `[B, T, D]`.
          targets: int `[B, steps]` for teacher forcing, or None to decode freely (as at inference).
          feedback: free decoding only: "argmax" feeds back the one-hot of the emitted symbol (no gradient
            through the choice, exactly what inference does); "soft" feeds back the step's softmax, so
            gradients also flow through the symbols the decoder conditions on.

        Returns:
          logits `[B, steps, num_classes]`.
        """
        if feedback not in ("argmax", "soft"):
            raise ValueError(f"feedback must be 'argmax' or 'soft', got {feedback!r}")
        batch = tf.shape(features)[0]
        keys = self.key_proj(features)
        state = (tf.zeros([batch, self.hidden]), tf.zeros([batch, self.hidden]))
        prev = tf.one_hot(tf.fill([batch], self.go_token), self.num_classes + 1)
        logits = []
        for t in range(self.steps):
            step_logits, state = self._step(features, keys, prev, state)
            logits.append(step_logits)
            if targets is not None:
                prev = tf.one_hot(tf.cast(targets[:, t], tf.int32), self.num_classes + 1)
            elif feedback == "soft":
                prev = tf.pad(tf.nn.softmax(step_logits, axis=-1), [[0, 0], [0, 1]])
            else:
                prev = tf.one_hot(tf.argmax(step_logits, axis=-1, output_type=tf.int32), self.num_classes + 1)
        return tf.stack(logits, axis=1)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, hidden=self.hidden, steps=self.steps)
        return config


class Recognizer(keras.Model):
    """Transformation (none | tps) -> features (vgg | resnet) -> sequence (none | bilstm) -> ctc | attn.

    Args:
      num_classes: C + 1.
      max_length: longest label (attention decodes max_length + 1 steps).
      image_shape: `(H, W, C)`; inputs are raw pixel values in [0, 255].
      transformation, feature_extractor, sequence_model, prediction: stage names.
      channels: backbone widths; resnet_blocks: ResNet blocks per stage.
      hidden: BiLSTM and attention state size.
      num_fiducials: TPS fiducial points.
    """

    def __init__(
        self,
        num_classes,
        max_length,
        image_shape=(32, 100, 1),
        transformation="none",
        feature_extractor="vgg",
        sequence_model="bilstm",
        prediction="attn",
        channels=(64, 128, 256, 512),
        resnet_blocks=(1, 2, 5, 3),
        hidden=256,
        num_fiducials=20,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for value, allowed in (
            (transformation, ("none", "tps")),
            (feature_extractor, ("vgg", "resnet")),
            (sequence_model, ("none", "bilstm")),
            (prediction, ("ctc", "attn")),
        ):
            if value not in allowed:
                raise ValueError(f"unknown recognizer stage {value!r}; expected one of {allowed}")
        self.num_classes = int(num_classes)
        self.max_length = int(max_length)
        self.image_shape = tuple(image_shape)
        self.prediction = prediction
        self.stages = (transformation, feature_extractor, sequence_model, prediction)
        self.transform = TPSTransformer(num_fiducials, name="tps") if transformation == "tps" else None
        if feature_extractor == "vgg":
            self.features = vgg_backbone(self.image_shape, tuple(channels))
        else:
            self.features = resnet_backbone(self.image_shape, tuple(channels), tuple(resnet_blocks))
        feat_dim = int(channels[-1])
        self.sequence = bilstm_encoder(feat_dim, hidden) if sequence_model == "bilstm" else None
        seq_dim = hidden if sequence_model == "bilstm" else feat_dim
        if prediction == "attn":
            self.head = AttentionDecoder(self.num_classes, hidden, self.max_length + 1, name="attention")
        else:
            self.head = keras.layers.Dense(self.num_classes, name="ctc_classifier")
        self.seq_dim = seq_dim

    @property
    def is_ctc(self):
        """True for the CTC head."""
        return self.prediction == "ctc"

    def call(self, images, targets=None, training=None, feedback="argmax"):
        """Logits `[B, T, C + 1]`; attention is teacher-forced on `targets` or decodes freely with `feedback`."""
        x = tf.cast(images, tf.float32) / 127.5 - 1.0
        if self.transform is not None:
            x = self.transform(x, training=training)
        x = self.features(x, training=training)
        if self.sequence is not None:
            x = self.sequence(x, training=training)
        if self.is_ctc:
            return self.head(x)
        return self.head(x, targets=targets, feedback=feedback)

    def build_with_sample(self, batch_size=2):
        """Creates every weight by running both inference and teacher-forced paths on zeros."""
        images = tf.zeros([batch_size, *self.image_shape])
        self(images, training=False)
        if not self.is_ctc:
            self(images, targets=tf.zeros([batch_size, self.max_length + 1], tf.int32), training=False)
        return self
