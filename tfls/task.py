"""The contract between a task (STR, detection, a user's own) and the job that runs its stages."""

import abc


class Task(abc.ABC):
    """One application of the learned-surrogate method.

    The job (`tfls.job`) drives every stage through this interface and nothing else:
    config -> data -> model -> tuner -> evaluation -> export.

    Conventions:
      * `x` and `y` are whatever the task's datasets yield as `(x, y)` batches (nested structures allowed).
      * `forward` runs the model once; `ordinary_loss` and `surrogate_pairs` read its outputs, so a tuning
        step that uses both pays for one forward pass.
      * All losses returned are per-replica means; the tuner scales them for tf.distribute.
    """

    name: str = "task"
    #: the metric that selects checkpoints and heads the comparison (a key of `evaluate`'s dict)
    primary_metric: str = ""
    #: "max" when higher is better, "min" when lower is better
    primary_metric_mode: str = "max"
    #: metrics the comparison tables show, `{name: "max" | "min"}`; empty = just the primary metric
    report_metrics: dict = {}
    #: the evaluation set that selects checkpoints; it is never reported as a test set
    validation_set: str = "val"
    #: further sets that only ever select (e.g. `train.select_on`'s), never reported as test sets
    selection_only_sets: tuple = ()
    #: the config file `--task=<this task>` uses when no `--config` is given (relative to the repository)
    default_config: str = ""

    def __init__(self, config):
        self.config = config

    @classmethod
    def reported_metrics(cls):
        """`{name: mode}` of the metrics the tables compare, the primary one first."""
        metrics = {cls.primary_metric: cls.primary_metric_mode}
        metrics.update(cls.report_metrics or {})
        return metrics

    @classmethod
    def validate_config(cls, config):
        """Task-specific config checks, before anything runs.

        Returns:
          A list of `(key, value, what is allowed)` problems; empty when the config is fine.
        """
        del config
        return []

    @abc.abstractmethod
    def train_dataset(self, seed, input_context=None):
        """Infinite tf.data.Dataset of `(x, y)` training batches (per-replica batch when input_context is given)."""

    def reset_training_data(self):
        """Forget what the training stream has rendered so far (pools filled as training asks): the job calls it
        before tuning and before the control, so each stage's data depend on its own seed only, not on the
        stages that ran before it in the same process. A task without such state needs nothing here."""
        return None

    @abc.abstractmethod
    def eval_datasets(self):
        """Dict `{set_name: finite tf.data.Dataset of (x, y) batches}` used by `evaluate`."""

    @abc.abstractmethod
    def build_model(self):
        """A built keras.Model (weights created: call it once on real-shaped inputs)."""

    @abc.abstractmethod
    def forward(self, model, x, y, training):
        """Run the model on a batch; returns any nested structure of tensors ("outputs")."""

    def tuning_forward(self, model, x, y, training):
        """The forward pass of surrogate tuning; by default `forward`. A task whose model runs differently
        at inference than in training (an attention decoder: teacher-forced vs free-running) returns here
        what inference emits, so the surrogate judges what a user would read."""
        return self.forward(model, x, y, training)

    @abc.abstractmethod
    def ordinary_loss(self, outputs, y):
        """Scalar differentiable loss the model is normally trained with (CE, CTC, CE + smooth L1)."""

    def tuning_ordinary_loss(self, outputs, y):
        """The ordinary-loss term of surrogate tuning (weighted by `tune.ordinary_loss_weight`); by default
        the whole `ordinary_loss`. A task whose ordinary loss has a part the surrogate replaces (detection:
        the RoI head's box regression) may keep only the other parts here, as the paper tunes; the control
        always trains with the whole `ordinary_loss`."""
        return self.ordinary_loss(outputs, y)

    #: optional method `(pred, target) -> [N]`: the task's metric on `surrogate_pairs` with its exact gradient
    #: (None: the metric has none, as edit distance). `tune.objective="exact"` tunes on it instead of the
    #: surrogate distance: an oracle ablation that tells a wrong surrogate apart from an objective that does
    #: not pay at this scale.
    differentiable_metric = None

    @abc.abstractmethod
    def surrogate_pairs(self, outputs, y):
        """`(pred, target, weight)`: surrogate-space predictions (differentiable), their targets, and a
        float weight per pair (0 for padding), shapes `[N, ...]`, `[N, ...]`, `[N]`."""

    @abc.abstractmethod
    def build_surrogate(self):
        """A `tfls.surrogate.Surrogate` (embedding built, metric and global pair generator attached)."""

    @abc.abstractmethod
    def evaluate(self, model, dataset, tag=None):
        """Real metrics of `model` on a finite dataset: dict `{metric_name: python number}`.

        `tag` ("<model>/<set>", e.g. "tuned/test") names the evaluate stage's final evaluation of one
        model on one set; a task that writes per-model files (detection's ICDAR result files) puts them under
        it, so evaluating the next model does not overwrite them. Evaluations during training pass None."""

    @abc.abstractmethod
    def export(self, model, path):
        """Write a TF Serving SavedModel of `model` to `path` (signature `serving_default`)."""

    def write_summaries(self, writer, model, surrogate, step):
        """Optional: task images (predictions drawn, scatter plots) to a tf.summary writer."""
        del writer, model, surrogate, step

    def serving_examples(self, n):
        """Optional: `n` encoded images (PNG/JPEG bytes) as a client would send them to the export, used by
        the serving benchmark and tests."""
        raise NotImplementedError(f"{type(self).__name__} does not provide serving examples")
