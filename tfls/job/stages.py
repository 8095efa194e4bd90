"""The six stages of a job, in order: train, pretrain, tune, control, evaluate, export.

Each takes the `Job` and leaves its product in the workdir: weights in `models/<name>`, measurements in
`results.json`, the SavedModel in `export/<task>/<version>`.
"""

import math
import os
import shutil

import numpy as np
import tensorflow as tf
import tqdm

from tfls.job.fit import fit_with_checkpoints, make_optimizer
from tfls.job.weights import Weights, load_weights
from tfls.surrogate import OrdinaryTrainer, SurrogatePretrainer
from tfls.surrogate.evaluation import approximation_errors

STAGES = ("train", "pretrain", "tune", "control", "evaluate", "export")


def fmt(value):
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def train(job):
    """Ordinary training; the checkpoint best on the validation set becomes the baseline."""
    cfg = job.config.train
    task = job.task
    if cfg.get("warm_start", ""):
        # a checkpoint of this run, if any, is restored over these by fit_with_checkpoints
        source = os.path.expanduser(cfg.warm_start)
        load_weights(source, job.model, f"weights of train.warm_start={source!r}")
        job.results["warm_start"] = os.path.abspath(source)
        print(f"[train] starting from {source} (train.warm_start)", flush=True)
    with job.strategy.scope():
        optimizer = make_optimizer(cfg.optimizer, job.learning_rate_schedule(), cfg.clipnorm)
        trainer = OrdinaryTrainer(job.model, task.forward, task.ordinary_loss)
        trainer.compile(optimizer)
    best = tf.Variable(np.nan, dtype=tf.float64, trainable=False, name="best_metric")
    sign = 1.0 if task.primary_metric_mode == "max" else -1.0
    selection = job.selection_sets() if cfg.eval_every else []

    def on_boundary(step, logs, writer):
        if not cfg.eval_every or (step % cfg.eval_every and step != cfg.steps):
            return
        by_set = {name: task.evaluate(job.model, ds) for name, ds in selection}
        value = pooled_metric(by_set, task.primary_metric)
        improved = math.isnan(best.numpy()) or sign * value > sign * best.numpy()
        for name, metrics in by_set.items():
            tqdm.tqdm.write(f"[train] step {step} {name}: " + ", ".join(f"{k}={fmt(v)}" for k, v in metrics.items()))
        pooled = f" ({' + '.join(by_set)} pooled)" if len(by_set) > 1 else ""
        tqdm.tqdm.write(
            f"[train] step {step} selection {task.primary_metric}={fmt(value)}{pooled}"
            + (" (best so far, kept)" if improved else "")
        )
        if writer is not None:
            with writer.as_default(step=step):
                for name, metrics in by_set.items():
                    for k, v in metrics.items():
                        tf.summary.scalar(f"val/{name}/{k}", float(v))
                if len(by_set) > 1:
                    tf.summary.scalar(f"val/selection/{task.primary_metric}", float(value))
            task.write_summaries(writer, job.model, job.surrogate, step)
        if improved:
            best.assign(value)
            job.save_weights("baseline", job.model)

    fit_with_checkpoints(
        "train",
        trainer,
        cfg.steps,
        {"model": Weights(job.model), "optimizer": optimizer, "best": best},
        job.workdir,
        cfg,
        lambda step: job.dataset("train", step),
        on_boundary,
    )
    if not cfg.eval_every:
        job.save_weights("baseline", job.model)
    job.workdir.complete("train")


def pooled_metric(by_set, name):
    """`name` pooled over sets: each set's value weighted by its `num_samples` (1 where a set has none), so
    accuracy pools to the accuracy of all the sets' samples together."""
    weights = [float(m.get("num_samples", 1)) for m in by_set.values()]
    if not by_set or sum(weights) <= 0:
        raise ValueError(f"no samples to pool {name!r} over: sets {sorted(by_set)}")
    return sum(w * float(m[name]) for w, m in zip(weights, by_set.values())) / sum(weights)


def surrogate_kwargs(config):
    """The phi-side settings every surrogate trainer takes (pretrainer and tuner alike)."""
    s = config.surrogate
    return dict(
        global_batch_size=s.batch_size,
        grad_penalty_weight=s.grad_penalty_weight,
        robust_threshold=s.robust_threshold,
        grad_penalty_every=s.grad_penalty_every,
        grad_penalty_one_sided=bool(s.get("grad_penalty_one_sided", False)),
        global_pairs=s.global_pairs,
    )


def tuning_global_batch_size(config):
    """Global pairs per phi update while tuning: `tune.global_batch_size`, 0 meaning `surrogate.batch_size`."""
    return int(config.tune.get("global_batch_size", 0)) or config.surrogate.batch_size


def pretrain(job):
    """The surrogate on global pairs alone (phi only). `surrogate.pretrain_steps=0`: no pretraining and no
    `surrogate_pretrained` weights, so tuning starts phi from scratch on the model's own outputs (the STR
    default since session 17: local pairs only, chosen on `val`)."""
    s = job.config.surrogate
    if int(s.pretrain_steps) == 0:
        print("[pretrain] surrogate.pretrain_steps=0: no pretraining (phi starts from scratch when tuning)", flush=True)
        job.workdir.complete("pretrain")
        return
    with job.strategy.scope():
        optimizer = make_optimizer(s.optimizer, job.pretrain_learning_rate())
        trainer = SurrogatePretrainer(job.surrogate, **surrogate_kwargs(job.config))
        trainer.compile(optimizer, jit_compile=bool(job.config.tune.jit_compile))

    def on_boundary(step, logs, writer):
        del writer
        if step == s.pretrain_steps:
            tqdm.tqdm.write(f"[pretrain] step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in logs.items()))

    fit_with_checkpoints(
        "pretrain",
        trainer,
        s.pretrain_steps,
        {"embedding": Weights(job.surrogate.embedding), "optimizer": optimizer},
        job.workdir,
        job.config.train,
        lambda step: tf.data.Dataset.from_tensors(tf.zeros([1])).repeat(),
        on_boundary,
    )
    job.save_weights("surrogate_pretrained", job.surrogate.embedding)
    job.workdir.complete("pretrain")


def _fresh_stage(job, stage):
    return tf.train.latest_checkpoint(job.workdir.checkpoint_dir(stage)) is None


def tune(job):
    """Alternating surrogate / model updates from the baseline (the paper's post-tuning), after an optional
    warm-up of the surrogate alone on the baseline's own outputs (`tune.surrogate_warmup_steps`)."""
    s, t = job.config.surrogate, job.config.tune
    job.task.reset_training_data()  # the same batches whether or not another stage ran before in this process
    if _fresh_stage(job, "tune"):
        job.load_weights("baseline", job.model)
        if job.has_weights("surrogate_pretrained"):
            job.load_weights("surrogate_pretrained", job.surrogate.embedding)
        else:
            print("[tune] no pretrained surrogate found: phi starts from scratch", flush=True)
        warmup = int(t.get("surrogate_warmup_steps", 0))
        if warmup > 0:
            with job.strategy.scope():
                model_opt = make_optimizer(t.optimizer, t.learning_rate, t.clipnorm)
                surrogate_opt = make_optimizer(s.optimizer, s.learning_rate)
                fitter = job.make_tuner(model_opt, surrogate_opt, update_model=False)
            fit_with_checkpoints(
                "tune_warmup",
                fitter,
                warmup,
                {"embedding": Weights(job.surrogate.embedding), "surrogate_optimizer": surrogate_opt},
                job.workdir,
                job.config.train,
                lambda step: job.dataset("tune", 10**6 + step),
                before_chunk=lambda step: job.surrogate.reseed(job.config.seed * 1000 + 10**6 + step),
            )
    with job.strategy.scope():
        model_opt = make_optimizer(t.optimizer, t.learning_rate, t.clipnorm)
        surrogate_opt = make_optimizer(s.optimizer, s.learning_rate)
        tuner = job.make_tuner(model_opt, surrogate_opt)
    fit_with_checkpoints(
        "tune",
        tuner,
        t.steps,
        {
            "model": Weights(job.model),
            "embedding": Weights(job.surrogate.embedding),
            "model_optimizer": model_opt,
            "surrogate_optimizer": surrogate_opt,
        },
        job.workdir,
        job.config.train,
        lambda step: job.dataset("tune", step),
        before_chunk=lambda step: job.surrogate.reseed(job.config.seed * 1000 + step + 7 + job.workdir.worker),
    )
    job.save_weights("tuned", job.model)
    job.save_weights("tuned_surrogate", job.surrogate.embedding)
    job.workdir.complete("tune")


def control(job):
    """The same tuning steps and learning rate with the ordinary loss: what tuning is compared with."""
    t = job.config.tune
    task = job.task
    task.reset_training_data()  # the control's batches do not depend on tuning having run first
    if _fresh_stage(job, "control"):
        job.load_weights("baseline", job.model)
    with job.strategy.scope():
        optimizer = make_optimizer(t.optimizer, t.learning_rate, t.clipnorm)
        trainer = OrdinaryTrainer(job.model, task.forward, task.ordinary_loss)
        trainer.compile(optimizer)
    fit_with_checkpoints(
        "control",
        trainer,
        t.steps,
        {"model": Weights(job.model), "optimizer": optimizer},
        job.workdir,
        job.config.train,
        lambda step: job.dataset("control", step),
    )
    job.save_weights("control", job.model)
    job.workdir.complete("control")


def _surrogate_quality(job, eval_sets):
    """Approximation errors of the final surrogate on the final model, and of the pretrained one on the
    baseline; the held-out pairs go to surrogate_pairs.npz for scatter plots."""
    surrogate_name = "tuned_surrogate" if job.has_weights("tuned_surrogate") else "surrogate_pretrained"
    if not job.has_weights(surrogate_name):
        return None
    job.load_weights(surrogate_name, job.surrogate.embedding)
    model_name = "tuned" if job.has_weights("tuned") else "baseline"
    if job.has_weights(model_name):
        job.load_weights(model_name, job.model)
    pairs_count = job.config.surrogate.eval_pairs
    approx, pairs = approximation_errors(job.surrogate, job.task, job.model, eval_sets, pairs_count)
    if job.workdir.chief:
        np.savez(os.path.join(job.workdir.path, "surrogate_pairs.npz"), **pairs)
    approx["surrogate_weights"] = surrogate_name
    approx["local_pairs_from"] = model_name
    if job.has_weights("surrogate_pretrained") and job.has_weights("baseline"):
        job.load_weights("surrogate_pretrained", job.surrogate.embedding)
        job.load_weights("baseline", job.model)
        pre, _ = approximation_errors(job.surrogate, job.task, job.model, eval_sets, pairs_count)
        approx["pretrained_on_baseline"] = {k: v for k, v in pre.items() if k.startswith("approx")}
    return approx


def evaluate(job):
    """Real metrics of every model on every evaluation set, and the surrogate's approximation error."""
    task = job.task
    eval_sets = task.eval_datasets()
    job.results["validation_set"] = job.validation_set()[0]
    selected = [name for name, _ in job.selection_sets()]
    # the sets that selected the checkpoint and those that only ever select: none of them is a test set
    extra = [n for n in task.selection_only_sets if n in eval_sets and n not in selected]
    job.results["selection_sets"] = selected + extra
    for name in tuple(job.config.get("evaluate_models", ("baseline", "control", "tuned"))):
        if not job.has_weights(name):
            continue
        job.load_weights(name, job.model)
        job.results[name] = {}
        for set_name, ds in eval_sets.items():
            metrics = task.evaluate(job.model, ds, tag=f"{name}/{set_name}")
            job.results[name][set_name] = metrics
            print(
                f"[evaluate] {name} on {set_name}: " + ", ".join(f"{k}={fmt(v)}" for k, v in metrics.items()),
                flush=True,
            )
    reported = {k: v for k, v in eval_sets.items() if k not in job.results["selection_sets"]} or eval_sets
    approx = _surrogate_quality(job, reported)
    if approx is not None:
        job.results["surrogate"] = approx
        print(
            "[evaluate] surrogate: " + ", ".join(f"{k}={fmt(v)}" for k, v in approx.items() if not isinstance(v, dict)),
            flush=True,
        )
        if job.workdir.chief:
            writer = tf.summary.create_file_writer(job.workdir.write_dir("tensorboard", "evaluate"))
            task.write_summaries(writer, job.model, job.surrogate, 0)
            writer.flush()
    job.workdir.complete("evaluate")


def export(job):
    """A TF Serving SavedModel of the tuned model (the baseline when there is none), versioned atomically."""
    if not job.config.export.enabled:
        print("[export] disabled by config.export.enabled=False", flush=True)
        return
    name = "tuned" if job.has_weights("tuned") else "baseline"
    job.load_weights(name, job.model)
    base = job.workdir.write_dir("export", job.task.name)
    versions = [int(d) for d in os.listdir(base) if d.isdigit()]
    version = max(versions, default=0) + 1
    tmp = os.path.join(base, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    job.task.export(job.model, tmp)
    final = os.path.join(base, str(version))
    os.replace(tmp, final)
    job.results["export"] = final
    job.results["export_weights"] = name
    print(f"[export] {name} model -> {final}", flush=True)
    job.workdir.complete("export")
