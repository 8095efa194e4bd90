"""Runs the stages of a task's job (train, pretrain, tune, control, evaluate, export) in a workdir.

Every stage checkpoints every `checkpoint_every` steps and at its end; a restarted job with the same
workdir skips finished stages and resumes the current one at its saved step. Weights handed from stage to
stage live in `<workdir>/models/<name>/` (baseline, surrogate_pretrained, tuned, tuned_surrogate,
control); TensorBoard logs in `<workdir>/tensorboard/<stage>/`; the SavedModel in
`<workdir>/export/<task>/<version>/`; the summary in `<workdir>/results.json`.
"""

import hashlib
import json
import math
import os
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf
import tqdm

from tfls import distribute
from tfls.surrogate import OrdinaryTrainer, SurrogatePretrainer, SurrogateTuner

STAGES = ("train", "pretrain", "tune", "control", "evaluate", "export")
MODES = ("all",) + STAGES
HELD_OUT_SEED = 987_654_321


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


class JobError(RuntimeError):
    """A job cannot go on; the message says why and what to do."""


def parse_mode(mode, config):
    """Stages named by `--mode` ('all' or a comma-separated list), in job order."""
    names = [m.strip() for m in mode.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODES]
    if unknown or not names:
        raise JobError(f"--mode={mode!r}: unknown stage(s) {unknown}; choose from {', '.join(MODES)}")
    if "all" in names:
        names = [s for s in STAGES if s != "control" or config.tune.run_control]
    return [s for s in STAGES if s in names]


def make_optimizer(name, learning_rate, clipnorm=0.0):
    """Keras optimizer by name with optional global-norm gradient clipping."""
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


def config_fingerprint(config):
    """Hash of the parts of a config that make weights incompatible (data and model)."""
    parts = {
        k: config[k].to_dict() if hasattr(config[k], "to_dict") else config[k] for k in ("model", "data") if k in config
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def atomic_write_json(path, payload):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=False, default=float)
    os.replace(tmp, path)


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def summary_table(results):
    """Plain-text table of every model's metrics on every evaluation set."""
    rows = []
    for model_name in ("baseline", "control", "tuned"):
        for set_name, metrics in (results.get(model_name) or {}).items():
            rows.append([model_name, set_name] + [f"{k}={_fmt(v)}" for k, v in metrics.items()])
    if not rows:
        return "(no evaluation results)"
    width = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(len(r) for r in rows))]
    return "\n".join("  ".join(c.ljust(width[i]) for i, c in enumerate(r)) for r in rows)


class _Progress(keras.callbacks.Callback):
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


class Job:
    """One task's job in one workdir.

    Args:
      task: a `tfls.task.Task`.
      config: its `ml_collections.ConfigDict`.
      workdir: directory for checkpoints, logs, weights, exports and results.
    """

    def __init__(self, task, config, workdir):
        self.task = task
        self.config = config
        self.workdir = os.path.abspath(workdir)
        self.strategy = distribute.build_strategy(config)
        self.chief = distribute.is_chief(self.strategy)
        self.worker = distribute.worker_index(self.strategy)
        self.state_path = os.path.join(self.workdir, "state.json")
        self.results_path = os.path.join(self.workdir, "results.json")
        os.makedirs(self.workdir, exist_ok=True)
        self.state = self._load_state()
        self.results = self._load_results()
        keras.utils.set_random_seed(config.seed)  # same initial weights for the same seed (and on resume)
        with self.strategy.scope():
            self.model = task.build_model()
            self.surrogate = task.build_surrogate()
            self.surrogate.build()
        self.surrogate.reseed(config.seed * 1000 + 1 + self.worker)

    # ---- state, weights, checkpoints -------------------------------------------------------------
    def _load_state(self):
        fingerprint = config_fingerprint(self.config)
        if os.path.exists(self.state_path):
            with open(self.state_path) as f:
                state = json.load(f)
            if state.get("task") != self.task.name or state.get("fingerprint") != fingerprint:
                raise JobError(
                    f"workdir {self.workdir} was written by a different task or an incompatible config "
                    f"(task {state.get('task')!r}, fingerprint {state.get('fingerprint')} vs {fingerprint} "
                    "from the current data/model config); use a new --workdir or delete this one"
                )
            return state
        state = {"task": self.task.name, "fingerprint": fingerprint, "completed": []}
        self._save_state(state)
        return state

    def _save_state(self, state=None):
        if self.chief:
            atomic_write_json(self.state_path, state or self.state)

    def _load_results(self):
        if os.path.exists(self.results_path):
            with open(self.results_path) as f:
                return json.load(f)
        return {"task": self.task.name}

    def _write_dir(self, *parts):
        """Path for writing: the real one on the chief, a private scratch one on other workers."""
        if self.chief:
            path = os.path.join(self.workdir, *parts)
        else:
            path = os.path.join(self.workdir, "_worker_scratch", str(self.worker), *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def _weights_dir(self, name):
        # Every worker keeps its own copy (identical under synchronous training), so no worker ever reads a
        # file another one is still writing; only the chief's copy lands in the workdir proper.
        if self.chief:
            return os.path.join(self.workdir, "models", name)
        return os.path.join(self.workdir, "_worker_scratch", str(self.worker), "models", name)

    def has_weights(self, name):
        return tf.train.latest_checkpoint(self._weights_dir(name)) is not None

    def save_weights(self, name, obj):
        """Write `obj`'s variables to models/<name> atomically (temp dir, then rename)."""
        final = self._weights_dir(name)
        parent = os.path.dirname(final)
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f".{name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tf.train.Checkpoint(weights=Weights(obj)).write(os.path.join(tmp, "weights"))
        with open(os.path.join(tmp, "checkpoint"), "w") as f:
            f.write('model_checkpoint_path: "weights"\n')
        old = final + f".old-{os.getpid()}"
        if os.path.exists(final):
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)

    def load_weights(self, name, obj):
        path = tf.train.latest_checkpoint(self._weights_dir(name))
        if path is None:
            raise JobError(f"no {name} weights in {self._weights_dir(name)}: run the stage that makes them first")
        try:
            tf.train.Checkpoint(weights=Weights(obj)).read(path).assert_existing_objects_matched().expect_partial()
            return
        except (AssertionError, ValueError, tf.errors.NotFoundError) as e:
            error = e
        names = {n for n, _ in tf.train.list_variables(path)}
        if not any(n.startswith("weights/") for n in names) and any(n.startswith("obj/") for n in names):
            # written by tfls before 0.1.0's per-variable format: the Keras object graph
            tf.train.Checkpoint(obj=obj).read(path).assert_existing_objects_matched().expect_partial()
            print(f"[weights] {name}: read an older object-graph checkpoint", flush=True)
            return
        raise JobError(f"{name} weights in {self._weights_dir(name)} do not fit the current model: {error}")

    # ---- running a stage with fit -----------------------------------------------------------------
    def _dataset(self, stage, step):
        seed = (self.config.seed * 7919 + STAGES.index(stage) * 104729 + step * 31 + self.worker) % (2**31 - 1)
        dataset = self.task.train_dataset(seed)
        if self.strategy.extended._in_multi_worker_mode():
            # Each worker draws its own stream (seeded by worker index) instead of sharding one stream.
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
            dataset = dataset.with_options(options)
        return dataset

    def _run_fit(self, stage, trainer, steps, trackables, on_boundary=None, dataset_fn=None):
        """Fit `trainer` for `steps`, checkpointing and resuming; returns the last logs."""
        cfg = self.config.train
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name=f"{stage}_step")
        ckpt = tf.train.Checkpoint(step=step_var, **trackables)
        manager = tf.train.CheckpointManager(ckpt, self._write_dir("checkpoints", stage), max_to_keep=2)
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
        every = [n for n in (cfg.checkpoint_every, getattr(cfg, "eval_every", 0)) if n and n > 0]
        bounds = sorted({b for n in every for b in range(n, steps, n)} | {steps})
        bounds = [b for b in bounds if b > start]
        writer = tf.summary.create_file_writer(self._write_dir("tensorboard", stage)) if self.chief else None
        bar = tqdm.tqdm(
            total=steps,
            initial=start,
            desc=stage,
            file=sys.stdout,
            dynamic_ncols=True,
            mininterval=1.0,
            disable=not self.chief,
        )
        progress = _Progress(bar, writer, start, cfg.log_every)
        logs = {}
        step = start
        try:
            for bound in bounds:
                n = bound - step
                data = dataset_fn(step) if dataset_fn else self._dataset(stage, step)
                if stage == "tune":
                    self.surrogate.reseed(self.config.seed * 1000 + step + 7 + self.worker)
                history = trainer.fit(data, steps_per_epoch=n, epochs=1, verbose=0, callbacks=[progress])
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

    def _complete(self, stage):
        if stage not in self.state["completed"]:
            self.state["completed"].append(stage)
        self._save_state()

    # ---- stages ---------------------------------------------------------------------------------
    def stage_train(self):
        cfg = self.config.train
        task = self.task
        with self.strategy.scope():
            optimizer = make_optimizer(cfg.optimizer, cfg.learning_rate, cfg.clipnorm)
            trainer = OrdinaryTrainer(self.model, task.forward, task.ordinary_loss)
            trainer.compile(optimizer)
        best = tf.Variable(np.nan, dtype=tf.float64, trainable=False, name="best_metric")
        sign = 1.0 if task.primary_metric_mode == "max" else -1.0
        first_set = next(iter(task.eval_datasets().items())) if cfg.eval_every else None

        def on_boundary(step, logs, writer):
            if not cfg.eval_every or (step % cfg.eval_every and step != cfg.steps):
                return
            set_name, ds = first_set
            metrics = task.evaluate(self.model, ds)
            value = metrics[task.primary_metric]
            improved = math.isnan(best.numpy()) or sign * value > sign * best.numpy()
            tqdm.tqdm.write(
                f"[train] step {step} {set_name}: "
                + ", ".join(f"{k}={_fmt(v)}" for k, v in metrics.items())
                + (" (best so far, kept)" if improved else "")
            )
            if writer is not None:
                with writer.as_default(step=step):
                    for k, v in metrics.items():
                        tf.summary.scalar(f"val/{set_name}/{k}", float(v))
                task.write_summaries(writer, self.model, self.surrogate, step)
            if improved:
                best.assign(value)
                self.save_weights("baseline", self.model)

        self._run_fit(
            "train",
            trainer,
            cfg.steps,
            {"model": Weights(self.model), "optimizer": optimizer, "best": best},
            on_boundary,
        )
        if not cfg.eval_every:
            self.save_weights("baseline", self.model)
        self._complete("train")

    def _surrogate_kwargs(self):
        s = self.config.surrogate
        return dict(
            global_batch_size=s.batch_size,
            grad_penalty_weight=s.grad_penalty_weight,
            robust_threshold=s.robust_threshold,
        )

    def stage_pretrain(self):
        s = self.config.surrogate
        with self.strategy.scope():
            optimizer = make_optimizer(s.optimizer, s.learning_rate)
            trainer = SurrogatePretrainer(self.surrogate, **self._surrogate_kwargs())
            trainer.compile(optimizer)

        def counter(step):
            del step
            return tf.data.Dataset.from_tensors(tf.zeros([1])).repeat()

        def on_boundary(step, logs, writer):
            del writer
            if step == s.pretrain_steps:
                tqdm.tqdm.write(f"[pretrain] step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in logs.items()))

        self._run_fit(
            "pretrain",
            trainer,
            s.pretrain_steps,
            {"embedding": Weights(self.surrogate.embedding), "optimizer": optimizer},
            on_boundary,
            counter,
        )
        self.save_weights("surrogate_pretrained", self.surrogate.embedding)
        self._complete("pretrain")

    def _start_from_baseline(self, stage):
        ckpt_dir = os.path.join(self.workdir, "checkpoints", stage)
        if tf.train.latest_checkpoint(ckpt_dir) is None:
            self.load_weights("baseline", self.model)

    def make_tuner(self, model_optimizer, surrogate_optimizer):
        """The compiled `SurrogateTuner` of this job's model and surrogate, set up from the config."""
        s, t = self.config.surrogate, self.config.tune
        task = self.task
        tuner = SurrogateTuner(
            self.model,
            self.surrogate,
            task.forward,
            task.surrogate_pairs,
            task.ordinary_loss,
            inner_steps=s.inner_steps,
            local_weight=s.local_weight,
            ordinary_loss_weight=t.ordinary_loss_weight,
            update_surrogate=t.update_surrogate,
            **self._surrogate_kwargs(),
        )
        tuner.compile(model_optimizer, surrogate_optimizer)
        return tuner

    def stage_tune(self):
        s, t = self.config.surrogate, self.config.tune
        self._start_from_baseline("tune")
        if tf.train.latest_checkpoint(os.path.join(self.workdir, "checkpoints", "tune")) is None:
            if self.has_weights("surrogate_pretrained"):
                self.load_weights("surrogate_pretrained", self.surrogate.embedding)
            else:
                print("[tune] no pretrained surrogate found: phi starts from scratch", flush=True)
        with self.strategy.scope():
            model_opt = make_optimizer(t.optimizer, t.learning_rate, t.clipnorm)
            surrogate_opt = make_optimizer(s.optimizer, s.learning_rate)
            tuner = self.make_tuner(model_opt, surrogate_opt)
        self._run_fit(
            "tune",
            tuner,
            t.steps,
            {
                "model": Weights(self.model),
                "embedding": Weights(self.surrogate.embedding),
                "model_optimizer": model_opt,
                "surrogate_optimizer": surrogate_opt,
            },
        )
        self.save_weights("tuned", self.model)
        self.save_weights("tuned_surrogate", self.surrogate.embedding)
        self._complete("tune")

    def stage_control(self):
        t = self.config.tune
        task = self.task
        self._start_from_baseline("control")
        with self.strategy.scope():
            optimizer = make_optimizer(t.optimizer, t.learning_rate, t.clipnorm)
            trainer = OrdinaryTrainer(self.model, task.forward, task.ordinary_loss)
            trainer.compile(optimizer)
        self._run_fit("control", trainer, t.steps, {"model": Weights(self.model), "optimizer": optimizer})
        self.save_weights("control", self.model)
        self._complete("control")

    def approximation_errors(self, eval_sets, max_batches=20):
        """Mean |e_hat - e| of the current surrogate on held-out global pairs and on the current model's
        outputs over the evaluation sets (local pairs)."""
        s = self.config.surrogate
        g_pred, g_target = self.surrogate.held_out_pairs(s.eval_pairs, HELD_OUT_SEED)
        e_hat = self.surrogate.distance(g_pred, g_target).numpy()
        e = self.surrogate.true_metric(g_pred, g_target).numpy()
        result = {"approx_l1_global": float(np.mean(np.abs(e_hat - e))), "num_global_pairs": int(len(e))}
        self.approx_pairs = {"global_e_hat": e_hat, "global_e": e}
        errs, weights, local_hat, local_e = [], [], [], []
        for ds in eval_sets.values():
            for i, (x, y) in enumerate(ds):
                if i >= max_batches:
                    break
                outputs = self.task.forward(self.model, x, y, False)
                pred, target, weight = self.task.surrogate_pairs(outputs, y)
                d = self.surrogate.distance(pred, target).numpy()
                t = self.surrogate.true_metric(pred, target).numpy()
                errs.append(np.abs(d - t))
                weights.append(np.asarray(weight, np.float64))
                keep = np.asarray(weight) > 0
                local_hat.append(d[keep])
                local_e.append(t[keep])
        if errs:
            err, w = np.concatenate(errs), np.concatenate(weights)
            result["approx_l1_local"] = float(np.sum(err * w) / max(np.sum(w), 1e-12))
            result["num_local_pairs"] = int(np.sum(w > 0))
            self.approx_pairs.update(local_e_hat=np.concatenate(local_hat), local_e=np.concatenate(local_e))
        return result

    def stage_evaluate(self):
        task = self.task
        eval_sets = task.eval_datasets()
        for name in ("baseline", "control", "tuned"):
            if not self.has_weights(name):
                continue
            self.load_weights(name, self.model)
            self.results[name] = {}
            for set_name, ds in eval_sets.items():
                metrics = task.evaluate(self.model, ds, tag=f"{name}/{set_name}")
                self.results[name][set_name] = metrics
                print(
                    f"[evaluate] {name} on {set_name}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in metrics.items()),
                    flush=True,
                )
        surrogate_name = "tuned_surrogate" if self.has_weights("tuned_surrogate") else "surrogate_pretrained"
        if self.has_weights(surrogate_name):
            self.load_weights(surrogate_name, self.surrogate.embedding)
            model_name = "tuned" if self.has_weights("tuned") else "baseline"
            if self.has_weights(model_name):
                self.load_weights(model_name, self.model)
            approx = self.approximation_errors(eval_sets)
            if self.chief:
                # surrogate distance and true metric of every held-out pair, for scatter plots
                np.savez(os.path.join(self.workdir, "surrogate_pairs.npz"), **self.approx_pairs)
            approx["surrogate_weights"] = surrogate_name
            approx["local_pairs_from"] = model_name
            if self.has_weights("surrogate_pretrained") and self.has_weights("baseline"):
                self.load_weights("surrogate_pretrained", self.surrogate.embedding)
                self.load_weights("baseline", self.model)
                pre = self.approximation_errors(eval_sets)
                approx["pretrained_on_baseline"] = {k: v for k, v in pre.items() if k.startswith("approx")}
            self.results["surrogate"] = approx
            print(
                "[evaluate] surrogate: "
                + ", ".join(f"{k}={_fmt(v)}" for k, v in approx.items() if not isinstance(v, dict)),
                flush=True,
            )
            if self.chief:
                writer = tf.summary.create_file_writer(self._write_dir("tensorboard", "evaluate"))
                task.write_summaries(writer, self.model, self.surrogate, 0)
                writer.flush()
        self._complete("evaluate")

    def stage_export(self):
        if not self.config.export.enabled:
            print("[export] disabled by config.export.enabled=False", flush=True)
            return
        name = "tuned" if self.has_weights("tuned") else "baseline"
        self.load_weights(name, self.model)
        base = self._write_dir("export", self.task.name)
        versions = [int(d) for d in os.listdir(base) if d.isdigit()]
        version = max(versions, default=0) + 1
        tmp = os.path.join(base, f".tmp-{version}-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        self.task.export(self.model, tmp)
        final = os.path.join(base, str(version))
        os.replace(tmp, final)
        self.results["export"] = final
        self.results["export_weights"] = name
        print(f"[export] {name} model -> {final}", flush=True)
        self._complete("export")

    def run(self, stages):
        """Run `stages` in order, skipping those already completed in this workdir."""
        start = time.time()
        for stage in stages:
            if stage in self.state["completed"] and stage not in ("evaluate", "export"):
                print(f"[{stage}] already complete in {self.workdir}: skipped", flush=True)
                continue
            getattr(self, f"stage_{stage}")()
        self.results["task"] = self.task.name
        self.results["wall_time_s"] = round(time.time() - start, 2)
        self.results["stages"] = stages
        if self.chief:
            atomic_write_json(self.results_path, self.results)
        return self.results
