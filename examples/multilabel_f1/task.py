"""A metric no built-in task uses, brought as a user would: 1 - F1 of a multi-label classifier.

A sample has K binary labels; the classifier outputs K sigmoid probabilities, thresholded at 0.5. Its
per-sample F1 (2 TP / (2 TP + FP + FN) over the K labels) is what users judge it by, and the thresholding
makes it flat almost everywhere: binary cross-entropy is what one trains with instead. The learned surrogate
of `1 - F1` is all this file adds to the core: the metric (`one_minus_f1`), a pair generator
(`NearbyPredictions`) and an embedding network (`f1_embedding`).

    python -m tfls.main --task=examples.multilabel_f1.task:MultiLabelF1Task \
        --config=examples/multilabel_f1/config.py --workdir=/tmp/multilabel_f1
"""

import keras
import numpy as np
import tensorflow as tf

from tfls import summaries
from tfls.surrogate import PairGenerator, Surrogate
from tfls.task import Task

THRESHOLD = 0.5


def per_sample_f1(pred_labels, true_labels):
    """F1 of each sample's predicted label set against its true one.

    Args:
      pred_labels: `[N, K]` booleans (or 0/1), the labels predicted on.
      true_labels: `[N, K]` booleans (or 0/1), the true labels.

    Returns:
      `[N]` float64 `2 TP / (2 TP + FP + FN)`; 1 for a sample with no true and no predicted label (nothing
      to find, nothing claimed).
    """
    pred = np.asarray(pred_labels, bool)
    true = np.asarray(true_labels, bool)
    tp = np.sum(pred & true, axis=-1)
    wrong = np.sum(pred ^ true, axis=-1)
    denominator = 2 * tp + wrong
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 1.0)


def one_minus_f1(pred, target):
    """The true metric of the surrogate: `1 - F1` of `pred >= 0.5` against `target >= 0.5`, shape `[N]`.

    Args:
      pred: `[N, K]` probabilities (model outputs, or a generator's soft predictions).
      target: `[N, K]` binary labels.
    """
    return (1.0 - per_sample_f1(np.asarray(pred) >= THRESHOLD, np.asarray(target) >= THRESHOLD)).astype(np.float32)


class NearbyPredictions(PairGenerator):
    """Global pairs: a label vector drawn with the data's label rates, and a plausible prediction near it.

    The prediction flips each label with a per-sample rate (0 for a share of samples, else up to
    `max_flip_rate`), then turns the flipped labels into probabilities on the right side of 0.5 with a
    per-sample confidence: from barely past the threshold (0.5 +- small) to nearly 0 or 1, so the surrogate
    sees both soft model-like outputs and near-binary ones, over the whole range of F1.

    Args:
      label_rates: `[K]` probability that each label is on.
      max_flip_rate: the largest per-sample flip rate.
      exact_share: share of pairs whose thresholded prediction equals the label (F1 = 1, soft probabilities).
    """

    def __init__(self, label_rates, max_flip_rate=0.5, exact_share=0.2):
        self.label_rates = np.asarray(label_rates, np.float64)
        self.max_flip_rate = float(max_flip_rate)
        self.exact_share = float(exact_share)

    def generate(self, n, rng):
        k = self.label_rates.shape[0]
        target = rng.random((n, k)) < self.label_rates
        flip_rate = rng.uniform(0.0, self.max_flip_rate, (n, 1)) * (rng.random((n, 1)) >= self.exact_share)
        predicted = target ^ (rng.random((n, k)) < flip_rate)
        confidence = rng.uniform(0.3, 5.0, (n, 1))  # a sample's typical logit magnitude
        # > 0, so the threshold keeps `predicted`; <= 9, so probabilities stay inside (1e-4, 1 - 1e-4).
        margin = np.minimum(rng.exponential(confidence, (n, k)) + 1e-3, 9.0)
        pred = 1.0 / (1.0 + np.exp(-np.where(predicted, margin, -margin)))
        return pred.astype(np.float32), target.astype(np.float32)


class SoftThreshold(keras.layers.Layer):
    """`tanh(sharpness * logit(p))`: probabilities mapped to (-1, 1) with a steep, smooth step at 0.5.

    The metric thresholds at 0.5, so what the embedding must resolve is which side of 0.5 each probability
    is on; an MLP fed raw probabilities learns that step slowly (its inputs barely move across it).
    """

    def __init__(self, sharpness=4.0, **kwargs):
        super().__init__(**kwargs)
        self.sharpness = float(sharpness)

    def call(self, probabilities):
        p = keras.ops.clip(probabilities, 1e-4, 1.0 - 1e-4)
        return keras.ops.tanh(self.sharpness * (keras.ops.log(p) - keras.ops.log(1.0 - p)))

    def get_config(self):
        return {**super().get_config(), "sharpness": self.sharpness}


def f1_embedding(num_labels, units=(128, 128), dim=32, sharpness=4.0):
    """h_phi: K probabilities -> `SoftThreshold` -> MLP -> a `dim`-vector (no normalisation layers: the
    gradient penalty needs per-sample gradients)."""
    layers = [keras.Input((num_labels,)), SoftThreshold(sharpness)]
    layers += [keras.layers.Dense(u, activation="gelu") for u in units]
    layers += [keras.layers.Dense(dim)]
    return keras.Sequential(layers, name="f1_embedding")


class MultiLabelF1Task(Task):
    """Synthetic features -> K labels from a fixed random teacher network; an MLP with K sigmoid outputs."""

    name = "multilabel_f1"
    primary_metric = "f1"
    primary_metric_mode = "max"
    report_metrics = {"micro_f1": "max", "exact_match": "max"}
    validation_set = "val"
    default_config = "examples/multilabel_f1/config.py"

    @classmethod
    def validate_config(cls, config):
        from tfls.configuration import check_int

        problems = [
            check_int(config, "data.features", 1),
            check_int(config, "data.labels", 1),
            check_int(config, "data.teacher_hidden", 1),
            check_int(config, "data.eval_size", 1),
            check_int(config, "eval.batch_size", 1),
        ]
        low, high = config.data.positive_rate_range
        if not 0.0 < low <= high < 1.0:
            problems.append(("data.positive_rate_range", (low, high), "(low, high) with 0 < low <= high < 1"))
        return [p for p in problems if p is not None]

    def __init__(self, config):
        super().__init__(config)
        d = config.data
        rng = np.random.default_rng(d.seed)
        self.teacher = (
            rng.normal(size=(d.features, d.teacher_hidden)) / np.sqrt(d.features),
            rng.normal(size=(d.teacher_hidden, d.labels)),
        )
        # Per-label thresholds of the teacher's scores that give label rates spread over positive_rate_range.
        self.label_rates = np.linspace(*d.positive_rate_range, d.labels)
        scores = self._scores(rng.normal(size=(20_000, d.features)))
        self.thresholds = np.array([np.quantile(scores[:, j], 1.0 - r) for j, r in enumerate(self.label_rates)])
        self._eval_sets = None

    def _scores(self, x):
        w1, w2 = self.teacher
        return np.tanh(x @ w1) @ w2

    def _batch(self, rng, n):
        x = rng.normal(size=(n, self.config.data.features))
        return x.astype(np.float32), (self._scores(x) > self.thresholds).astype(np.float32)

    def train_dataset(self, seed, input_context=None):
        batch = self.config.train.batch_size
        if input_context is not None:
            batch = input_context.get_per_replica_batch_size(batch)
        d = self.config.data

        def batches():
            rng = np.random.default_rng(seed)
            while True:
                yield self._batch(rng, batch)

        spec = (tf.TensorSpec((batch, d.features), tf.float32), tf.TensorSpec((batch, d.labels), tf.float32))
        return tf.data.Dataset.from_generator(batches, output_signature=spec).prefetch(2)

    def eval_datasets(self):
        """`val` (checkpoint selection) and `test` (reported): `data.eval_size` samples each, fixed seeds."""
        if self._eval_sets is None:
            d = self.config.data
            self._eval_sets = {
                name: self._batch(np.random.default_rng(d.seed * 1000 + offset), d.eval_size)
                for name, offset in (("val", 101), ("test", 202))
            }
        batch = self.config.eval.batch_size
        return {name: tf.data.Dataset.from_tensor_slices(xy).batch(batch) for name, xy in self._eval_sets.items()}

    def build_model(self):
        d, m = self.config.data, self.config.model
        layers = [keras.Input((d.features,))]
        layers += [keras.layers.Dense(u, activation="relu") for u in m.hidden]
        layers += [keras.layers.Dense(d.labels, activation="sigmoid")]
        model = keras.Sequential(layers, name="multilabel_classifier")
        model(tf.zeros((1, d.features)))
        return model

    def forward(self, model, x, y, training):
        del y
        return model(x, training=training)

    def ordinary_loss(self, outputs, y):
        return tf.reduce_mean(keras.losses.binary_crossentropy(y, outputs))

    def surrogate_pairs(self, outputs, y):
        return outputs, y, tf.ones(tf.shape(outputs)[:1])

    def build_surrogate(self):
        s = self.config.surrogate
        return Surrogate(
            f1_embedding(self.config.data.labels, tuple(s.embedding_units), s.embedding_dim, s.sharpness),
            one_minus_f1,
            NearbyPredictions(self.label_rates, s.max_flip_rate, s.exact_share),
            (self.config.data.labels,),
            seed=self.config.seed,
        )

    def evaluate(self, model, dataset, tag=None):
        """Mean per-sample F1 (primary), micro F1 (TP, FP, FN pooled over samples and labels), exact match."""
        del tag
        f1_sum, exact, count = 0.0, 0, 0
        tp = fp = fn = 0
        for x, y in dataset:
            pred = np.asarray(model(x, training=False)) >= THRESHOLD
            true = y.numpy() >= THRESHOLD
            f1_sum += float(np.sum(per_sample_f1(pred, true)))
            exact += int(np.sum(np.all(pred == true, axis=-1)))
            count += int(true.shape[0])
            tp += int(np.sum(pred & true))
            fp += int(np.sum(pred & ~true))
            fn += int(np.sum(~pred & true))
        return {
            "f1": f1_sum / max(count, 1),
            "micro_f1": 2 * tp / max(2 * tp + fp + fn, 1),
            "exact_match": exact / max(count, 1),
            "num_samples": count,
        }

    def export(self, model, path):
        """SavedModel with `serving_default(features float32 [None, F])` -> `probabilities`, `labels` (int32)."""
        features = self.config.data.features

        @tf.function(input_signature=[tf.TensorSpec([None, features], tf.float32, name="features")])
        def serve(x):
            probabilities = model(x, training=False)
            return {"probabilities": probabilities, "labels": tf.cast(probabilities >= THRESHOLD, tf.int32)}

        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serving_default", serve)
        archive.write_out(path, verbose=False)

    def write_summaries(self, writer, model, surrogate, step):
        """Scatter of the surrogate distance against the true 1 - F1 on held-out global pairs."""
        del model
        pred, target = surrogate.held_out_pairs(512, seed=12345)
        e_hat = surrogate.distance(pred, target).numpy()
        with writer.as_default(step=step):
            tf.summary.image(
                "surrogate/scatter", summaries.scatter_image(one_minus_f1(pred, target), e_hat, "1 - F1")[None]
            )
