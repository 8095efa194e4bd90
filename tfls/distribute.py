"""Builds the tf.distribute strategy in one place and says which worker may write files."""

import json
import os

import tensorflow as tf

STRATEGIES = ("none", "mirrored", "multi_worker", "tpu")


def build_strategy(config):
    """Strategy named by `config.distribute`.

    Args:
      config: the job config (`distribute`, `tpu_address`).

    Returns:
      A `tf.distribute.Strategy` (the default strategy for "none").
    """
    name = config.distribute
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "config.distribute=multi_worker needs the TF_CONFIG environment variable (see docs/DISTRIBUTED.md)"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=config.tpu_address or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"config.distribute={name!r} is not one of {', '.join(STRATEGIES)}")


def worker_index(strategy):
    """Index of this worker (0 outside multi-worker training)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return 0
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    index = int(resolver.task_id or 0)
    if resolver.task_type == "worker" and "chief" in cluster:
        index += len(cluster["chief"])
    return index


def is_chief(strategy):
    """True on the one worker that writes checkpoints, summaries, exports and results."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    if resolver.task_type == "chief":
        return True
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return resolver.task_type == "worker" and "chief" not in cluster and int(resolver.task_id or 0) == 0
