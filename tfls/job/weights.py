"""Weights handed between stages: every variable of a model or layer, written atomically, read strictly."""

import os
import shutil

import tensorflow as tf

from tfls.job.workdir import JobError


class Weights(tf.Module):
    """Every variable of a Keras model or layer, by position in `obj.weights`.

    Checkpoints go through this instead of the Keras object itself: `tf.train.Checkpoint` follows Keras 3
    object tracking, which misses sub-layers a layer keeps in a plain Python list (seen here: 2 of the 8
    variables of an MLP embedding were saved). Positions are stable for the same config, and restoring
    asserts that every variable was matched.
    """

    def __init__(self, obj):
        super().__init__(name="weights")
        self.values = {f"w{i:04d}": v for i, v in enumerate(obj.weights)}


def has_weights(folder):
    return tf.train.latest_checkpoint(folder) is not None


def save_weights(folder, obj):
    """Write `obj`'s variables to `folder` atomically (a temporary folder, then a rename)."""
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    name = os.path.basename(folder)
    tmp = os.path.join(parent, f".{name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tf.train.Checkpoint(weights=Weights(obj)).write(os.path.join(tmp, "weights"))
    with open(os.path.join(tmp, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "weights"\n')
    old = folder + f".old-{os.getpid()}"
    if os.path.exists(folder):
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def load_weights(folder, obj, what="weights"):
    """Read `obj`'s variables from `folder`; every variable must be matched.

    Args:
      folder: written by `save_weights` (or a user's checkpoint in the same format).
      obj: the model or layer to fill.
      what: a name for the error messages ("baseline weights", ...).

    Raises:
      JobError: no checkpoint in `folder`, or one that does not fit `obj`.
    """
    path = tf.train.latest_checkpoint(folder)
    if path is None:
        raise JobError(f"no {what} in {folder}: run the stage that makes them first")
    try:
        tf.train.Checkpoint(weights=Weights(obj)).read(path).assert_existing_objects_matched().expect_partial()
    except (AssertionError, ValueError, tf.errors.NotFoundError) as e:
        raise JobError(f"{what} in {folder} do not fit the current model: {str(e)[:300]}") from None
