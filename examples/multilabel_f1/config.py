"""1 - F1 of a multi-label classifier (examples/multilabel_f1/task.py): the whole job in a couple of minutes.

From the repository root (python -m puts it on the import path):
  python -m tfls.main --task=examples.multilabel_f1.task:MultiLabelF1Task \
      --config=examples/multilabel_f1/config.py --workdir=/tmp/multilabel_f1
The `task` key below names the task too, so `--task` may be left out when this config is given.
"""

import ml_collections

from tfls.config_base import base_config


def get_config():
    config = base_config()
    config.task = "examples.multilabel_f1.task:MultiLabelF1Task"

    config.train.steps = 1500
    config.train.batch_size = 64
    config.train.learning_rate = 2e-3
    config.train.eval_every = 500
    config.train.checkpoint_every = 500
    config.train.log_every = 100

    s = config.surrogate
    s.pretrain_steps = 2000
    s.batch_size = 256
    s.learning_rate = 1e-3
    s.eval_pairs = 2000
    s.embedding_units = (128, 128)
    s.embedding_dim = 32
    s.sharpness = 4.0  # SoftThreshold: the steepness of the embedding's step at probability 0.5
    # lambda: 1 - F1 jumps by 0.1-1 where a probability crosses 0.5, far steeper than a unit gradient.
    s.grad_penalty_weight = 0.01
    s.max_flip_rate = 0.5  # NearbyPredictions: the largest per-sample share of flipped labels
    s.exact_share = 0.2  # NearbyPredictions: pairs whose thresholded prediction is right (F1 = 1)

    config.tune.steps = 500
    config.tune.learning_rate = 3e-4

    config.data = ml_collections.ConfigDict()
    config.data.seed = 0
    config.data.features = 16
    config.data.labels = 8
    config.data.teacher_hidden = 32  # the fixed random network whose thresholded scores are the labels
    config.data.positive_rate_range = (0.1, 0.4)  # label rates, spread evenly over the K labels
    config.data.eval_size = 2000  # samples in each of val and test

    config.model = ml_collections.ConfigDict()
    config.model.hidden = (64, 64)

    config.eval = ml_collections.ConfigDict()
    config.eval.batch_size = 500
    return config
