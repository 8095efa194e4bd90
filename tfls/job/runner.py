"""`Job`: one task's job in one workdir, built from a config; runs the stages it is asked for, in order."""

import json
import math
import os
import time

import keras
import tensorflow as tf

from tfls import distribute
from tfls.job import stages as stages_lib
from tfls.job import weights as weights_lib
from tfls.job.workdir import JobError, Workdir, atomic_write_json
from tfls.surrogate import SurrogateTuner

STAGES = stages_lib.STAGES
MODES = ("all",) + STAGES


def parse_mode(mode, config):
    """Stages named by `--mode` ('all' or a comma-separated list), in job order."""
    names = [m.strip() for m in mode.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODES]
    if unknown or not names:
        raise JobError(f"--mode={mode!r}: unknown stage(s) {unknown}; choose from {', '.join(MODES)}")
    if "all" in names:
        names = [s for s in STAGES if s != "control" or config.tune.run_control]
    return [s for s in STAGES if s in names]


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup_steps`, then a cosine decay to `peak * final_ratio` at `steps`."""

    def __init__(self, peak, steps, warmup_steps=0, final_ratio=0.0):
        self.peak = float(peak)
        self.steps = int(steps)
        self.warmup_steps = int(warmup_steps)
        self.final_ratio = float(final_ratio)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = float(max(self.warmup_steps, 1))
        warmup = self.peak * tf.minimum(1.0, (step + 1.0) / warm)
        span = float(max(self.steps - self.warmup_steps, 1))
        progress = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
        cosine = self.final_ratio + (1.0 - self.final_ratio) * 0.5 * (1.0 + tf.cos(math.pi * progress))
        return tf.where(step < self.warmup_steps, warmup, self.peak * cosine)

    def get_config(self):
        return {
            "peak": self.peak,
            "steps": self.steps,
            "warmup_steps": self.warmup_steps,
            "final_ratio": self.final_ratio,
        }


def _fmt_change(new, old):
    if old in (None, 0) or new is None:
        return "-"
    return f"{100.0 * (new - old) / abs(old):+.1f}%"


def summary_table(results, report_metrics=None):
    """Plain-text comparison: per evaluation set and reported metric, baseline, control and tuned side by side
    with tuned's relative change against each; the validation set is marked as used for selection.

    Args:
      results: the job's results dict.
      report_metrics: names of the metrics to compare (default: every metric the baseline has).
    """
    models = [m for m in ("baseline", "control", "tuned") if results.get(m)]
    if not models:
        return "(no evaluation results)"
    selection = results.get("selection_sets") or [results.get("validation_set")]
    rows = [["set", "metric"] + models + ["tuned vs baseline", "tuned vs control"]]
    for set_name, first in results[models[0]].items():
        label = f"{set_name} (selection only)" if set_name in selection else set_name
        for metric in report_metrics or list(first):
            values = [results[m].get(set_name, {}).get(metric) for m in models]
            if all(v is None for v in values):
                continue
            by = dict(zip(models, values))
            rows.append(
                [label, metric]
                + [fmt_value(v) for v in values]
                + [_fmt_change(by.get("tuned"), by.get("baseline")), _fmt_change(by.get("tuned"), by.get("control"))]
            )
    width = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(width[i]) for i, c in enumerate(r)).rstrip() for r in rows)


def fmt_value(value):
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


class Job:
    """One task's job in one workdir.

    Args:
      task: a `tfls.task.Task`.
      config: its `ml_collections.ConfigDict`.
      workdir: folder for checkpoints, logs, weights, exports and results.
    """

    def __init__(self, task, config, workdir):
        self.task = task
        self.config = config
        self.strategy = distribute.build_strategy(config)
        chief, worker = distribute.is_chief(self.strategy), distribute.worker_index(self.strategy)
        self.workdir = Workdir(workdir, task.name, config, chief, worker)
        keras.utils.set_random_seed(config.seed)  # same initial weights for the same seed (and on resume)
        with self.strategy.scope():
            self.model = task.build_model()
            self.surrogate = task.build_surrogate()
            self.surrogate.set_distance(config.surrogate.get("distance", "l2"))
            self.surrogate.build()
        self.surrogate.reseed(config.seed * 1000 + 1 + worker)
        self._eval_sets = None

    @property
    def results(self):
        return self.workdir.results

    @property
    def state(self):
        return self.workdir.state

    # ---- weights handed between stages ------------------------------------------------------------
    def has_weights(self, name):
        return weights_lib.has_weights(self.workdir.weights_dir(name))

    def save_weights(self, name, obj):
        weights_lib.save_weights(self.workdir.weights_dir(name), obj)

    def load_weights(self, name, obj):
        weights_lib.load_weights(self.workdir.weights_dir(name), obj, f"{name} weights")

    # ---- what the stages share ---------------------------------------------------------------------
    def dataset(self, stage, step):
        """The training stream of `stage` from `step` on: a seed per (job seed, stage, step, worker)."""
        worker = self.workdir.worker
        seed = (self.config.seed * 7919 + STAGES.index(stage) * 104729 + step * 31 + worker) % (2**31 - 1)
        dataset = self.task.train_dataset(seed)
        if self.strategy.extended._in_multi_worker_mode():
            # Each worker draws its own stream (seeded by worker index) instead of sharding one stream.
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
            dataset = dataset.with_options(options)
        return dataset

    def validation_set(self):
        """`(name, dataset)` of the set that selects checkpoints: the task's `validation_set`."""
        if self._eval_sets is None:
            self._eval_sets = self.task.eval_datasets()
        name = self.task.validation_set
        if name not in self._eval_sets:
            raise JobError(
                f"task {self.task.name!r} selects checkpoints on its {name!r} set, but its evaluation sets are "
                f"{sorted(self._eval_sets)}"
            )
        return name, self._eval_sets[name]

    def selection_sets(self):
        """`[(name, dataset), ...]`: the sets whose pooled primary metric selects the training checkpoint,
        `train.select_on` (comma-separated), or the task's `validation_set` alone when that is empty."""
        names = [n.strip() for n in str(self.config.train.get("select_on", "") or "").split(",") if n.strip()]
        if not names:
            return [self.validation_set()]
        self.validation_set()  # fills the sets
        missing = [n for n in names if n not in self._eval_sets]
        if missing:
            raise JobError(
                f"train.select_on names {missing}, which task {self.task.name!r} does not evaluate; its sets are "
                f"{sorted(self._eval_sets)} (recognition renders val_hard and val_scenes only when "
                "data.val_hard_size and data.val_scenes_size are > 0)"
            )
        return [(n, self._eval_sets[n]) for n in names]

    def learning_rate_schedule(self):
        """The training learning rate: constant, or warm-up then cosine decay (`train.schedule`)."""
        cfg = self.config.train
        if cfg.get("schedule", "constant") == "cosine":
            return WarmupCosine(cfg.learning_rate, cfg.steps, cfg.warmup_steps, cfg.final_learning_rate_ratio)
        return cfg.learning_rate

    def pretrain_learning_rate(self):
        """The surrogate's pretraining rate: constant, or cosine decay (`surrogate.pretrain_schedule`)."""
        s = self.config.surrogate
        if s.get("pretrain_schedule", "constant") == "cosine":
            return WarmupCosine(s.learning_rate, s.pretrain_steps, 0, s.pretrain_final_ratio)
        return s.learning_rate

    def make_tuner(self, model_optimizer, surrogate_optimizer, update_model=True):
        """The compiled `SurrogateTuner` of this job's model and surrogate, set up from the config
        (`update_model=False`: phi only, the surrogate's warm-up on the model's outputs)."""
        s, t = self.config.surrogate, self.config.tune
        phi_kwargs = stages_lib.surrogate_kwargs(self.config)
        if update_model:
            phi_kwargs["global_batch_size"] = stages_lib.tuning_global_batch_size(self.config)
        tuner = SurrogateTuner(
            self.model,
            self.surrogate,
            self.task.tuning_forward,
            self.task.surrogate_pairs,
            self.task.tuning_ordinary_loss,
            inner_steps=s.inner_steps,
            local_weight=s.local_weight,
            ordinary_loss_weight=t.ordinary_loss_weight,
            update_surrogate=t.update_surrogate,
            update_model=update_model,
            filter_threshold=float(t.get("filter_threshold", 0.0)),
            distance_power=float(t.get("distance_power", 1.0)),
            exact_objective_fn=self._exact_objective(),
            # the warm-up (phi only) updates phi on every step
            surrogate_every=int(t.get("surrogate_every", 1)) if update_model else 1,
            **phi_kwargs,
        )
        tuner.compile(model_optimizer, surrogate_optimizer, jit_compile=bool(t.jit_compile))
        return tuner

    def _exact_objective(self):
        """`tune.objective="exact"`: the task's differentiable metric (the oracle ablation), else None."""
        if self.config.tune.get("objective", "surrogate") != "exact":
            return None
        if self.task.differentiable_metric is None:
            raise JobError(
                f"config.tune.objective='exact' needs a differentiable metric, which task {self.task.name!r} "
                "does not have (Task.differentiable_metric); use tune.objective='surrogate'"
            )
        return self.task.differentiable_metric

    def _baseline_from_init(self):
        """`train.init_from`: a weights folder (models/baseline of another workdir, or shipped weights)
        becomes this job's baseline instead of training one."""
        source = os.path.expanduser(self.config.train.init_from)
        weights_lib.load_weights(source, self.model, f"weights of train.init_from={source!r}")
        self.save_weights("baseline", self.model)
        self.results["baseline_from"] = os.path.abspath(source)
        print(f"[train] baseline = {source} (train.init_from; no training)", flush=True)
        self.workdir.complete("train")

    # the settings that decide the surrogate's input and architecture: a pretrained surrogate must share them
    SURROGATE_SHAPE_KEYS = ("model.prediction", "data.characters", "data.max_length", "surrogate.distance")

    def _surrogate_from_init(self):
        """`surrogate.init_from`: a pretrained surrogate's weights folder (shipped, or models/surrogate_pretrained
        of another workdir) becomes this job's pretrained surrogate instead of pretraining one. When the
        folder holds the config that pretrained it, every embedding setting (`surrogate.embedding_*`,
        `surrogate.eos_gate`) and input setting must match this job's."""
        source = os.path.expanduser(self.config.surrogate.init_from)
        recorded_path = os.path.join(source, "config.json")
        if os.path.exists(recorded_path):
            with open(recorded_path) as f:
                recorded = json.load(f)
            here = json.loads(json.dumps(self.config.to_dict(), default=str))
            keys = list(self.SURROGATE_SHAPE_KEYS) + [
                f"surrogate.{k}"
                for k in sorted(set(here.get("surrogate", {})) | set(recorded.get("surrogate", {})))
                if k.startswith("embedding_") or k == "eos_gate"
            ]
            missing = object()

            def value(config, key):
                section, name = key.split(".")
                return config.get(section, {}).get(name, missing)

            differ = [
                f"{k} (weights: {value(recorded, k)!r}, this job: {value(here, k)!r})"
                for k in keys
                if value(recorded, k) != value(here, k)
            ]
            if differ:
                raise JobError(
                    f"surrogate.init_from={source!r} was pretrained with other settings: {'; '.join(differ)}. "
                    "Set them as the weights' config.json has them, or pretrain (surrogate.init_from='')"
                )
        weights_lib.load_weights(source, self.surrogate.embedding, f"weights of surrogate.init_from={source!r}")
        self.save_weights("surrogate_pretrained", self.surrogate.embedding)
        self.results["surrogate_from"] = os.path.abspath(source)
        print(f"[pretrain] surrogate = {source} (surrogate.init_from; no pretraining)", flush=True)
        self.workdir.complete("pretrain")

    def run(self, stages):
        """Run `stages` in order, skipping those already completed in this workdir."""
        start = time.time()
        every = int(self.config.tune.get("surrogate_every", 1))
        distributed = self.config.get("distribute", "none") != "none"
        tunes = "tune" in stages and not self.workdir.is_complete("tune")
        if tunes and every > 1 and self.config.tune.update_surrogate and distributed:
            # SurrogateTuner refuses it too; said here, before hours of training, not when tuning starts
            raise JobError(
                f"config.tune.surrogate_every={every} needs distribute=none (phi's skipped updates are a tf.cond, "
                f"which the {self.config.distribute!r} strategy's gradient sum cannot enter): set "
                "--config.tune.surrogate_every=1 to tune with a distribution strategy"
            )
        if tunes:
            self._exact_objective()  # a task without a differentiable metric: said before training, too
        if self.workdir.chief:
            atomic_write_json(os.path.join(self.workdir.path, "config.json"), self.config.to_dict())
        self.results["seed"] = self.config.seed
        for stage in stages:
            if self.workdir.is_complete(stage) and stage not in ("evaluate", "export"):
                print(f"[{stage}] already complete in {self.workdir.path}: skipped", flush=True)
                continue
            stage_start = time.time()
            if stage == "train" and self.config.train.get("init_from", ""):
                self._baseline_from_init()
            elif stage == "pretrain" and self.config.surrogate.get("init_from", ""):
                self._surrogate_from_init()
            else:
                getattr(stages_lib, stage)(self)
            # per stage; a resumed stage counts only this process' share
            self.results.setdefault("stage_wall_s", {})[stage] = round(time.time() - stage_start, 2)
        self.results["task"] = self.task.name
        self.results["wall_time_s"] = round(time.time() - start, 2)
        self.results["stages"] = stages
        self.workdir.save_results()
        return self.results
