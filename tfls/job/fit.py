"""The fit loop every stage runs: Keras `fit` in chunks between checkpoints, resumable, with live progress."""

import os
import sys

import keras
import tensorflow as tf
import tqdm

from tfls.job.workdir import JobError


def make_optimizer(name, learning_rate, clipnorm=0.0):
    """Keras optimizer by name with optional global-norm gradient clipping.

    Args:
      name: adam | adadelta | sgd.
      learning_rate: a float or a `keras.optimizers.schedules.LearningRateSchedule`.
      clipnorm: > 0 clips the global gradient norm.
    """
    kwargs = {"learning_rate": learning_rate}
    if clipnorm and clipnorm > 0:
        kwargs["global_clipnorm"] = clipnorm
    if name == "adam":
        return keras.optimizers.Adam(**kwargs)
    if name == "adadelta":
        return keras.optimizers.Adadelta(rho=0.95, epsilon=1e-8, **kwargs)
    if name == "sgd":
        return keras.optimizers.SGD(momentum=0.9, **kwargs)
    raise JobError(f"optimizer {name!r} is not one of adam, adadelta, sgd")


class Progress(keras.callbacks.Callback):
    """Live progress bar over a stage's global steps, plus TensorBoard scalars every `log_every` steps."""

    def __init__(self, bar, writer, start_step, log_every):
        super().__init__()
        self.bar = bar
        self.writer = writer
        self.step = start_step
        self.log_every = max(1, int(log_every))

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.bar.update(1)
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in list(logs.items())[:4]}, refresh=False)
        if self.writer is not None and self.step % self.log_every == 0:
            with self.writer.as_default(step=self.step):
                for k, v in logs.items():
                    tf.summary.scalar(k, v)


def boundaries(start, steps, every):
    """Steps after `start` at which a chunk of fit ends: multiples of each `every` entry, and `steps`."""
    every = [n for n in every if n and n > 0]
    bounds = sorted({b for n in every for b in range(n, steps, n)} | {steps})
    return [b for b in bounds if b > start]


def fit_with_checkpoints(
    stage,
    trainer,
    steps,
    trackables,
    workdir,
    train_config,
    dataset_fn,
    on_boundary=None,
    before_chunk=None,
):
    """Fit `trainer` for `steps` global steps, checkpointing at every boundary and resuming from the last.

    Args:
      stage: the stage's name (checkpoints/<stage>, tensorboard/<stage>, messages).
      trainer: a compiled keras.Model whose `fit` runs one step per batch.
      steps: total steps of the stage.
      trackables: dict of objects to checkpoint (weights, optimizers, selection state).
      workdir: the job's `Workdir`.
      train_config: the `train` config block (checkpoint_every, eval_every, log_every).
      dataset_fn: `step -> tf.data.Dataset` of batches from that step on.
      on_boundary: optional `(step, logs, writer) -> None` after each chunk, before the checkpoint.
      before_chunk: optional `step -> None` before each chunk (reseeding host-side generators).

    Returns:
      The last chunk's logs.

    Raises:
      JobError: a checkpoint that does not match, or a non-finite quantity stopped a step.
    """
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name=f"{stage}_step")
    ckpt = tf.train.Checkpoint(step=step_var, **trackables)
    manager = tf.train.CheckpointManager(ckpt, workdir.write_dir("checkpoints", stage), max_to_keep=2)
    if manager.latest_checkpoint:
        try:
            ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        except AssertionError as e:
            raise JobError(
                f"[{stage}] checkpoint {manager.latest_checkpoint} does not match this job's model, surrogate "
                f"and optimizers ({str(e)[:200]}); delete {os.path.dirname(manager.latest_checkpoint)} to "
                "restart the stage"
            ) from None
        print(f"[{stage}] resuming from step {int(step_var.numpy())} ({manager.latest_checkpoint})", flush=True)
    start = int(step_var.numpy())
    bounds = boundaries(start, steps, (train_config.checkpoint_every, getattr(train_config, "eval_every", 0)))
    writer = tf.summary.create_file_writer(workdir.write_dir("tensorboard", stage)) if workdir.chief else None
    bar = tqdm.tqdm(
        total=steps,
        initial=start,
        desc=stage,
        file=sys.stdout,
        dynamic_ncols=True,
        mininterval=1.0,
        disable=not workdir.chief,
    )
    progress = Progress(bar, writer, start, train_config.log_every)
    logs = {}
    step = start
    n = 0
    try:
        for bound in bounds:
            n = bound - step
            if before_chunk is not None:
                before_chunk(step)
            history = trainer.fit(dataset_fn(step), steps_per_epoch=n, epochs=1, verbose=0, callbacks=[progress])
            logs = {k: float(v[-1]) for k, v in history.history.items()}
            step = bound
            step_var.assign(step)
            if on_boundary is not None:
                on_boundary(step, logs, writer)
            manager.save(checkpoint_number=step)
            if writer is not None:
                writer.flush()
    except tf.errors.InvalidArgumentError as e:
        if "non-finite" in str(e):
            # In graph mode the first line is only "Graph execution error:"; name the checked quantity.
            first = next(line.strip() for line in str(e).splitlines() if "non-finite" in line)
            raise JobError(
                f"[{stage}] stopped between steps {step} and {step + n}: {first}; no weights were "
                f"updated with it; the last good checkpoint is step {step}"
            ) from None
        raise
    finally:
        bar.close()
    return logs
