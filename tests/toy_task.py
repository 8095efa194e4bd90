"""A third metric no task uses (0-1 loss of a K-class prediction), as a complete tiny Task.

It proves the core needs nothing but a metric function, a pair generator and an embedding network, and it
gives the job, resume and distribution tests a model that trains in seconds.
"""

import keras
import ml_collections
import numpy as np
import tensorflow as tf

from tfls.config_base import base_config
from tfls.surrogate import PairGenerator, Surrogate
from tfls.task import Task

CLASSES = 5
FEATURES = 6


def zero_one(pred, target):
    """1 where the predicted class (argmax) differs from the true class, else 0."""
    return (np.argmax(pred, axis=-1) != np.argmax(target, axis=-1)).astype(np.float32)


class ConfusionGenerator(PairGenerator):
    """A one-hot true class and a random probability vector whose argmax is right half of the time."""

    def generate(self, n, rng):
        true = rng.integers(0, CLASSES, size=n)
        wrong = rng.random(n) < 0.5
        shift = rng.integers(1, CLASSES, size=n)
        predicted = np.where(wrong, (true + shift) % CLASSES, true)
        logits = rng.normal(size=(n, CLASSES)).astype(np.float32)
        logits[np.arange(n), predicted] = logits.max(axis=1) + rng.uniform(0.1, 3.0, size=n)
        pred = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return pred.astype(np.float32), np.eye(CLASSES, dtype=np.float32)[true]


def zero_one_embedding():
    return keras.Sequential(
        [
            keras.Input((CLASSES,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(16),
        ],
        name="zero_one_embedding",
    )


def toy_config():
    config = base_config()
    config.train.steps = 60
    config.train.learning_rate = 0.02
    config.train.batch_size = 16
    config.train.eval_every = 30
    config.train.checkpoint_every = 10
    config.train.log_every = 10
    config.surrogate.pretrain_steps = 30
    config.surrogate.batch_size = 32
    config.surrogate.eval_pairs = 256
    config.tune.steps = 20
    config.tune.learning_rate = 1e-3
    config.model = ml_collections.ConfigDict({"hidden": 16})
    config.data = ml_collections.ConfigDict({"eval_size": 64})
    return config


class ZeroOneTask(Task):
    """Classify Gaussian features by which of CLASSES fixed random projections is largest."""

    name = "toy"
    primary_metric = "accuracy"
    primary_metric_mode = "max"
    validation_set = "val"

    def __init__(self, config):
        super().__init__(config)
        self.projection = np.random.default_rng(123).normal(size=(FEATURES, CLASSES)).astype(np.float32)

    def _batch(self, rng, n):
        x = rng.normal(size=(n, FEATURES)).astype(np.float32)
        return x, np.eye(CLASSES, dtype=np.float32)[np.argmax(x @ self.projection, axis=1)]

    def train_dataset(self, seed, input_context=None):
        batch = self.config.train.batch_size
        if input_context is not None:
            batch = input_context.get_per_replica_batch_size(batch)

        def gen():
            rng = np.random.default_rng(seed)
            while True:
                yield self._batch(rng, batch)

        spec = (tf.TensorSpec((batch, FEATURES), tf.float32), tf.TensorSpec((batch, CLASSES), tf.float32))
        return tf.data.Dataset.from_generator(gen, output_signature=spec)

    def eval_datasets(self):
        sets = {}
        for seed, name in ((999, "val"), (1999, "heldout")):
            x, y = self._batch(np.random.default_rng(seed), self.config.data.eval_size)
            sets[name] = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
        return sets

    def build_model(self):
        model = keras.Sequential(
            [
                keras.Input((FEATURES,)),
                keras.layers.Dense(self.config.model.hidden, activation="tanh"),
                keras.layers.Dense(CLASSES, activation="softmax"),
            ],
            name="toy_model",
        )
        model(tf.zeros((1, FEATURES)))
        return model

    def forward(self, model, x, y, training):
        del y
        return model(x, training=training)

    def ordinary_loss(self, outputs, y):
        return tf.reduce_mean(keras.losses.categorical_crossentropy(y, outputs))

    def surrogate_pairs(self, outputs, y):
        return outputs, y, tf.ones(tf.shape(outputs)[:1])

    def build_surrogate(self):
        return Surrogate(zero_one_embedding(), zero_one, ConfusionGenerator(), (CLASSES,), seed=self.config.seed)

    def evaluate(self, model, dataset, tag=None):
        wrong, total = 0.0, 0
        for x, y in dataset:
            wrong += float(np.sum(zero_one(model(x).numpy(), y.numpy())))
            total += int(y.shape[0])
        return {"accuracy": 1.0 - wrong / total, "num_samples": total}

    def export(self, model, path):
        model.export(path, verbose=False)
