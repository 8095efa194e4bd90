"""Keras models whose `train_step` fits a surrogate, tunes a task model with it, or trains ordinarily.

`SurrogateTuner` is the paper's post-tuning loop: each step first updates the surrogate's weights phi for
`inner_steps` steps on global pairs (random label generator) and local pairs (the model's current
predictions with their ground truth), with the model's weights theta fixed; then it updates theta by
minimising the surrogate distance `e_hat(f_theta(x), y)` with phi fixed (with `surrogate_every=m`, phi's
update runs on every m-th step only). `SurrogatePretrainer` fits phi
on global pairs alone; `OrdinaryTrainer` trains (or tunes, as a control) with the task's ordinary loss.

Global pairs reach a step one of two ways (`global_pairs=`): drawn inside the step through `tf.py_function`
("py_function", the default, any generator and metric), or as a `tf.data` stream of pairs with their true
metric that `fit` zips beside the training batches ("dataset"): the generator and the NumPy metric then run
in the input pipeline, prefetched, and with a surrogate that has an in-graph metric (`metric_fn_tf`, for the
local pairs) the step function holds no Python call and can be compiled with `jit_compile=True`.
"""

import keras
import tensorflow as tf

from tfls.surrogate import losses


def _num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


def _checked(value, name):
    """Stop the step (before any weight update) when a loss is NaN or Inf, naming the quantity."""
    return tf.debugging.check_numerics(value, f"non-finite {name}")


def _checked_gradients(grads, name, step):
    """Gradients that are safe to apply: stop the step when their global norm is NaN or Inf.

    A finite loss can still have non-finite gradients (an activation that maps NaN to 0 in the forward pass
    but not in the backward one, a custom op, a `tf.where` whose other branch is NaN); checking the loss
    alone would let them reach the weights. The error names the quantity and the optimizer's step.

    Args:
      grads: list of gradients (None entries allowed).
      name: what the gradients belong to, for the error message.
      step: the optimizer's `iterations` variable (the step about to be applied).

    Returns:
      `(grads, global_norm)`, the gradients depending on the check so no update can run before it.
    """
    present = [g for g in grads if g is not None]
    norm = tf.linalg.global_norm(present) if present else tf.constant(0.0)
    check = tf.debugging.Assert(
        tf.math.is_finite(norm), [f"non-finite {name} (global norm", norm, ") at step", step + 1], summarize=3
    )
    with tf.control_dependencies([check]):
        return [None if g is None else tf.identity(g) for g in grads], tf.identity(norm)


def _step_logs(metrics):
    """Metric results of a train step. Under MultiWorkerMirroredStrategy, Keras 3.15 reduces step outputs
    with a mean over axis 0, so scalars are returned as shape [1] there (the reduction gives a scalar)."""
    strategy = tf.distribute.get_strategy()
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()
    )
    return {m.name: tf.reshape(m.result(), [1]) if multi_worker else m.result() for m in metrics}


GLOBAL_PAIR_SOURCES = ("py_function", "dataset")


def _select_kernels(model, jit_compile):
    """A model whose layers have an XLA-compilable variant of some op (the detector's RoI pooling) exposes
    `use_xla_kernels(on)`; compiling a trainer with `jit_compile=True` switches it on, `False` back off."""
    hook = getattr(model, "use_xla_kernels", None)
    if callable(hook):
        hook(bool(jit_compile))  # "auto" may compile: the XLA variant computes the same values either way


def _uses_merge_call(strategy):
    """Whether `strategy` sums gradients through merge_call (Mirrored, MultiWorkerMirrored, TPU), which a
    tf.cond branch cannot hold; the default strategy and OneDeviceStrategy do not."""
    return not (
        isinstance(strategy, tf.distribute.OneDeviceStrategy)
        or type(strategy).__name__ == "_DefaultDistributionStrategy"
    )


def _check_global_pairs(value):
    if value not in GLOBAL_PAIR_SOURCES:
        raise ValueError(f"global_pairs must be one of {GLOBAL_PAIR_SOURCES}, got {value!r}")
    return value


def _build_optimizer(optimizer, variables):
    if variables and not optimizer.built:
        optimizer.build(variables)


class _PreBuilt:
    """Trainers here create every variable explicitly (models built by the task, optimizers built in
    `compile`), so Keras' symbolic build on the first batch is skipped: under MultiWorkerMirroredStrategy
    (Keras 3.15) it tries to reduce a PerReplica input batch and fails."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        del iterator, data_batch
        self.built = True


class _SurrogateFitting:
    """Shared phase-1 logic: one gradient step of phi on global and local pairs, and the global pair stream."""

    def _global_pair_stream(self):
        """The surrogate's global pairs for `fit` (global_pairs="dataset"): each element holds the pairs of
        one step, `inner_steps` blocks of `global_batch_size` per replica (Keras splits a batch across
        replicas)."""
        per_step = self.global_batch_size * getattr(self, "inner_steps", 1)
        return self.surrogate.global_pair_dataset(per_step * self.distribute_strategy.num_replicas_in_sync)

    def _global_blocks(self, global_pairs):
        """`inner_steps` `(pred, target, e)` blocks of one step's streamed pairs (None: drawn in the step)."""
        steps = getattr(self, "inner_steps", 1)
        if global_pairs is None:
            return [None] * steps
        n = self.global_batch_size
        return [tuple(t[i * n : (i + 1) * n] for t in global_pairs) for i in range(steps)]

    def _check_jit(self, kwargs, needs_metric_tf):
        if kwargs.get("jit_compile") is True and (
            self.global_pairs != "dataset" or (needs_metric_tf and self.surrogate.metric_fn_tf is None)
        ):
            raise ValueError(
                "jit_compile=True needs a step without tf.py_function: global_pairs='dataset'"
                + (" and a surrogate with metric_fn_tf (an in-graph metric)" if needs_metric_tf else "")
            )

    def _pair_terms(self, pred, target, e, weight):
        e_hat = self.surrogate.distance(pred, target)
        weight = weight * losses.robust_weights(e_hat, e, self.robust_threshold)
        approx = losses.approximation_loss(e_hat, e, weight)
        penalty = tf.constant(0.0)
        if self.grad_penalty_weight > 0:
            every = int(getattr(self, "grad_penalty_every", 1))
            if every <= 1:
                penalty = losses.gradient_penalty(self.surrogate.distance, pred, target, weight, self.one_sided)
            else:
                # Lazy regularisation: the penalty's double backward on every k-th phi step only, k times as
                # heavy, so its expected contribution stays the same.
                due = tf.equal(self.surrogate_optimizer.iterations % every, 0)
                penalty = tf.cond(
                    due,
                    lambda: (
                        float(every)
                        * losses.gradient_penalty(self.surrogate.distance, pred, target, weight, self.one_sided)
                    ),
                    lambda: tf.constant(0.0),
                )
        return approx, penalty

    def _surrogate_step(self, local=None, global_pairs=None):
        """Returns (loss, approx_global, approx_local) after applying one update to phi.

        `global_pairs`: `(pred, target, e)` from the stream, or None to draw them here (py_function)."""
        if global_pairs is None:
            g_pred, g_target = self.surrogate.global_pairs(self.global_batch_size)
            g_e = self.surrogate.true_metric(g_pred, g_target)
        else:
            g_pred, g_target, g_e = global_pairs
        g_weight = tf.ones_like(g_e)
        variables = self.surrogate.trainable_variables
        with tf.GradientTape() as tape:
            approx_g, penalty_g = self._pair_terms(g_pred, g_target, g_e, g_weight)
            loss = approx_g + self.grad_penalty_weight * penalty_g
            approx_l = tf.constant(0.0)
            if local is not None:
                l_pred, l_target, l_e, l_weight = local
                approx_l, penalty_l = self._pair_terms(l_pred, l_target, l_e, l_weight)
                local_loss = approx_l + self.grad_penalty_weight * penalty_l
                loss = (1.0 - self.local_weight) * loss + self.local_weight * local_loss
            loss = _checked(loss, "surrogate loss")
            scaled = loss / _num_replicas()
        grads = tape.gradient(scaled, variables)
        grads, _ = _checked_gradients(grads, "surrogate gradients", self.surrogate_optimizer.iterations)
        self.surrogate_optimizer.apply_gradients(zip(grads, variables))
        return loss, approx_g, approx_l


class SurrogateTuner(_PreBuilt, _SurrogateFitting, keras.Model):
    """Alternating post-tuning of a task model with a learned surrogate.

    Args:
      model: the task's keras.Model (theta).
      surrogate: a built `tfls.surrogate.Surrogate` (phi).
      forward_fn: `(model, x, y, training) -> outputs`.
      pairs_fn: `(outputs, y) -> (pred, target, weight)` in the surrogate's space.
      ordinary_loss_fn: optional `(outputs, y) -> scalar`, added with `ordinary_loss_weight`.
      inner_steps: J, phi updates per step.
      global_batch_size: global pairs per phi update.
      local_weight: share of the phi loss given to local pairs (0 = global only, 1 = local only).
      grad_penalty_weight: lambda of the gradient-quality loss.
      robust_threshold: FEDS ramp threshold on `|e_hat - e|` (<= 0: off).
      ordinary_loss_weight: weight of the ordinary loss in the model's objective.
      update_surrogate: False freezes phi during tuning (an ablation).
      grad_penalty_every: k; the gradient penalty on every k-th phi update only, weighted k times (lazy).
      grad_penalty_one_sided: penalise only gradient norms above 1 (`losses.gradient_penalty`).
      update_model: False runs phase 1 only: phi learns on global pairs and on the (fixed) model's own
        outputs, a warm-up of the surrogate where the model's errors are before theta moves.
      filter_threshold: FEDS on the model's objective: each example's surrogate distance is weighted by the
        ramp of `losses.robust_weights` on `|e_hat - e|` (1 up to the threshold, 0 from twice it), so
        examples the surrogate misjudges give the model no gradient (<= 0: off).
      surrogate_every: m; phi is updated (J times) on every m-th model step only, a cost lever: the surrogate
        update is most of a tuning step's overhead (docs/RESULTS.md, cost). 1 is the paper's alternation.
      global_pairs: "py_function" (drawn in the step) or "dataset" (a stream `fit` zips beside the training
        batches; `train_step` then takes `((x, y), (pred, target, e))`). With "dataset" and a surrogate that
        has `metric_fn_tf`, `compile(..., jit_compile=True)` works.
      exact_objective_fn: optional `(pred, target) -> [N]`, the true metric with its gradient; when given the
        model minimises it instead of the surrogate distance (an oracle ablation; phi is still fitted as
        usual, so the step does the same work and the surrogate's figures stay comparable).
    """

    def __init__(
        self,
        model,
        surrogate,
        forward_fn,
        pairs_fn,
        ordinary_loss_fn=None,
        inner_steps=1,
        global_batch_size=64,
        local_weight=0.5,
        grad_penalty_weight=0.1,
        robust_threshold=0.0,
        ordinary_loss_weight=0.0,
        update_surrogate=True,
        grad_penalty_every=1,
        grad_penalty_one_sided=False,
        update_model=True,
        global_pairs="py_function",
        filter_threshold=0.0,
        distance_power=1.0,
        surrogate_every=1,
        exact_objective_fn=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.global_pairs = _check_global_pairs(global_pairs)
        self.exact_objective_fn = exact_objective_fn
        self.surrogate_every = int(surrogate_every)
        if self.surrogate_every < 1:
            raise ValueError(f"surrogate_every must be >= 1, got {surrogate_every}")
        if self.surrogate_every > 1 and not update_model:
            # the schedule counts model steps, which a phi-only run never takes
            raise ValueError("surrogate_every > 1 needs update_model=True (a phi-only run updates phi every step)")
        self.filter_threshold = float(filter_threshold)
        self.distance_power = float(distance_power)
        if not self.distance_power > 0:
            raise ValueError(f"distance_power must be > 0, got {distance_power}")
        self.model = model
        self.surrogate = surrogate
        self.embedding = surrogate.embedding
        self.forward_fn = forward_fn
        self.pairs_fn = pairs_fn
        self.ordinary_loss_fn = ordinary_loss_fn
        self.inner_steps = int(inner_steps)
        self.global_batch_size = int(global_batch_size)
        self.local_weight = float(local_weight)
        self.grad_penalty_weight = float(grad_penalty_weight)
        self.robust_threshold = float(robust_threshold)
        self.ordinary_loss_weight = float(ordinary_loss_weight)
        self.update_surrogate = bool(update_surrogate)
        self.grad_penalty_every = int(grad_penalty_every)
        self.one_sided = bool(grad_penalty_one_sided)
        self.update_model = bool(update_model)
        self.surrogate_loss_tracker = keras.metrics.Mean(name="surrogate_loss")
        self.true_metric_tracker = keras.metrics.Mean(name="true_metric")
        self.approx_global_tracker = keras.metrics.Mean(name="approx_global")
        self.approx_local_tracker = keras.metrics.Mean(name="approx_local")
        self.phi_loss_tracker = keras.metrics.Mean(name="phi_loss")
        self.grad_norm_tracker = keras.metrics.Mean(name="grad_norm")
        self.kept_tracker = keras.metrics.Mean(name="kept")
        if ordinary_loss_fn is None and ordinary_loss_weight:
            raise ValueError("ordinary_loss_weight > 0 needs an ordinary_loss_fn")

    def compile(self, model_optimizer, surrogate_optimizer, **kwargs):
        kwargs.setdefault("jit_compile", False)
        self._check_jit(kwargs, needs_metric_tf=True)
        strategy = self.distribute_strategy
        if self.surrogate_every > 1 and self.update_surrogate and _uses_merge_call(strategy):
            # the skipped updates are a tf.cond around phi's apply_gradients, and a Mirrored / MultiWorker
            # strategy's gradient sum (merge_call) cannot sit inside control flow, even with one replica
            raise ValueError(
                f"tune.surrogate_every={self.surrogate_every} needs no distribution strategy (distribute=none; "
                f"this one is {type(strategy).__name__}): set --config.tune.surrogate_every=1 to tune with one"
            )
        _select_kernels(self.model, kwargs["jit_compile"])
        super().compile(**kwargs)
        self.model_optimizer = model_optimizer
        self.surrogate_optimizer = surrogate_optimizer
        _build_optimizer(model_optimizer, self.model.trainable_variables)
        _build_optimizer(surrogate_optimizer, self.surrogate.trainable_variables)

    @property
    def metrics(self):
        return [
            self.surrogate_loss_tracker,
            self.true_metric_tracker,
            self.approx_global_tracker,
            self.approx_local_tracker,
            self.phi_loss_tracker,
            self.grad_norm_tracker,
        ] + ([self.kept_tracker] if self.filter_threshold > 0 else [])

    def call(self, inputs, training=False):
        return self.model(inputs, training=training)

    def fit(self, x=None, *args, **kwargs):
        """`keras.Model.fit`; with global_pairs="dataset", `x` (a `tf.data.Dataset` of `(x, y)`) travels zipped
        with the surrogate's global pair stream, drawn from its current seed (`Surrogate.reseed`)."""
        if self.global_pairs == "dataset":
            if not isinstance(x, tf.data.Dataset):
                raise ValueError("global_pairs='dataset' needs the training data as a tf.data.Dataset")
            x = tf.data.Dataset.zip((x, self._global_pair_stream()))
        return super().fit(x, *args, **kwargs)

    def train_step(self, data):
        if self.global_pairs == "dataset":
            (x, y), global_pairs = data
        else:
            (x, y), global_pairs = data, None
        model_vars = self.model.trainable_variables
        with tf.GradientTape() as model_tape:
            outputs = self.forward_fn(self.model, x, y, True)
            pred, target, weight = self.pairs_fn(outputs, y)
            weight = tf.cast(weight, tf.float32)
            with model_tape.stop_recording():
                e = self.true_metric_fn(pred, target)
                local = (tf.stop_gradient(pred), target, e, weight)
                phi_loss, approx_g, approx_l, phi_updated = self._phi_update(local, global_pairs)
            exact = self.exact_objective_fn is not None
            # the surrogate's value: the model's objective, or (the oracle) only what FEDS filters with
            e_hat = self.surrogate.distance(pred, target) if not exact or self.filter_threshold > 0 else None
            model_weight = weight
            if self.filter_threshold > 0:
                # FEDS: the ramp is computed with phi after this step's update, on the pairs the model tunes on
                model_weight = weight * losses.robust_weights(e_hat, e, self.filter_threshold)
                self.kept_tracker.update_state(
                    tf.math.divide_no_nan(tf.reduce_sum(model_weight), tf.reduce_sum(weight))
                )
            if exact:
                # the oracle: the true metric's own gradient instead of the surrogate's (FEDS still filters)
                e_hat = tf.reshape(tf.cast(self.exact_objective_fn(pred, target), tf.float32), [-1])
            objective = e_hat if self.distance_power == 1.0 else tf.pow(e_hat, self.distance_power)
            surrogate_loss = tf.math.divide_no_nan(tf.reduce_sum(objective * model_weight), tf.reduce_sum(model_weight))
            loss = surrogate_loss
            if self.ordinary_loss_weight:
                loss = loss + self.ordinary_loss_weight * self.ordinary_loss_fn(outputs, y)
            loss = _checked(loss, "model loss (surrogate distance)")
            scaled = loss / _num_replicas()
        if self.update_model:
            grads = model_tape.gradient(scaled, model_vars)
            grads, grad_norm = _checked_gradients(grads, "model gradients", self.model_optimizer.iterations)
            self.model_optimizer.apply_gradients(zip(grads, model_vars))
        else:
            grad_norm = tf.constant(0.0)

        self.surrogate_loss_tracker.update_state(surrogate_loss)
        self.true_metric_tracker.update_state(tf.math.divide_no_nan(tf.reduce_sum(e * weight), tf.reduce_sum(weight)))
        # phi's figures average over the steps that updated phi only (surrogate_every > 1 skips some)
        self.approx_global_tracker.update_state(approx_g, sample_weight=phi_updated)
        self.approx_local_tracker.update_state(approx_l, sample_weight=phi_updated)
        self.phi_loss_tracker.update_state(phi_loss, sample_weight=phi_updated)
        self.grad_norm_tracker.update_state(grad_norm)
        return _step_logs(self.metrics)

    def _phi_update(self, local, global_pairs):
        """This step's phi update(s): J of them, on every `surrogate_every`-th model step only (a tf.cond on
        the model optimizer's step count; the streamed global pairs of a skipped step go unused). Returns
        `(phi_loss, approx_global, approx_local, updated)`, `updated` 1.0 or 0.0."""
        zeros = (tf.constant(0.0), tf.constant(0.0), tf.constant(0.0))
        if not self.update_surrogate:
            return zeros + (tf.constant(0.0),)

        def update():
            out = zeros
            for block in self._global_blocks(global_pairs):
                out = self._surrogate_step(local, block)
            return tuple(tf.cast(v, tf.float32) for v in out)

        if self.surrogate_every <= 1:
            return update() + (tf.constant(1.0),)
        due = tf.equal(self.model_optimizer.iterations % self.surrogate_every, 0)
        return tf.cond(due, update, lambda: zeros) + (tf.cast(due, tf.float32),)

    def true_metric_fn(self, pred, target):
        return self.surrogate.true_metric(pred, target)


class SurrogatePretrainer(_PreBuilt, _SurrogateFitting, keras.Model):
    """Fits phi on global pairs alone (the data passed to `fit` only counts steps).

    Args:
      surrogate: a built `tfls.surrogate.Surrogate`.
      global_batch_size: global pairs per step.
      grad_penalty_weight: lambda of the gradient-quality loss.
      robust_threshold: FEDS ramp threshold (<= 0: off).
      grad_penalty_every: k of the lazy gradient penalty (1: every step).
      grad_penalty_one_sided: penalise only gradient norms above 1.
      global_pairs: "py_function" (drawn in the step) or "dataset" (`fit` replaces its data, which only counts
        steps, by the surrogate's global pair stream; the step then holds no Python call).
    """

    def __init__(
        self,
        surrogate,
        global_batch_size=64,
        grad_penalty_weight=0.1,
        robust_threshold=0.0,
        grad_penalty_every=1,
        grad_penalty_one_sided=False,
        global_pairs="py_function",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.global_pairs = _check_global_pairs(global_pairs)
        self.grad_penalty_every = int(grad_penalty_every)
        self.one_sided = bool(grad_penalty_one_sided)
        self.surrogate = surrogate
        self.embedding = surrogate.embedding
        self.global_batch_size = int(global_batch_size)
        self.grad_penalty_weight = float(grad_penalty_weight)
        self.robust_threshold = float(robust_threshold)
        self.local_weight = 0.0
        self.loss_tracker = keras.metrics.Mean(name="phi_loss")
        self.approx_global_tracker = keras.metrics.Mean(name="approx_global")

    def compile(self, surrogate_optimizer, **kwargs):
        kwargs.setdefault("jit_compile", False)
        self._check_jit(kwargs, needs_metric_tf=False)
        super().compile(**kwargs)
        self.surrogate_optimizer = surrogate_optimizer
        _build_optimizer(surrogate_optimizer, self.surrogate.trainable_variables)

    @property
    def metrics(self):
        return [self.loss_tracker, self.approx_global_tracker]

    def call(self, inputs, training=False):
        return inputs

    def fit(self, x=None, *args, **kwargs):
        """`keras.Model.fit`; with global_pairs="dataset" the data is the surrogate's global pair stream."""
        if self.global_pairs == "dataset":
            x = self._global_pair_stream()
        return super().fit(x, *args, **kwargs)

    def train_step(self, data):
        global_pairs = data if self.global_pairs == "dataset" else None
        loss, approx_g, _ = self._surrogate_step(None, global_pairs)
        self.loss_tracker.update_state(loss)
        self.approx_global_tracker.update_state(approx_g)
        return _step_logs(self.metrics)


class OrdinaryTrainer(_PreBuilt, keras.Model):
    """Trains a task model with its ordinary loss (baseline training, and the control in comparisons).

    Args:
      model: the task's keras.Model.
      forward_fn: `(model, x, y, training) -> outputs`.
      loss_fn: `(outputs, y) -> scalar` ordinary loss.
    """

    def __init__(self, model, forward_fn, loss_fn, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.forward_fn = forward_fn
        self.loss_fn = loss_fn
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.grad_norm_tracker = keras.metrics.Mean(name="grad_norm")

    def compile(self, model_optimizer, **kwargs):
        kwargs.setdefault("jit_compile", False)
        _select_kernels(self.model, kwargs["jit_compile"])
        super().compile(**kwargs)
        self.model_optimizer = model_optimizer
        _build_optimizer(model_optimizer, self.model.trainable_variables)

    @property
    def metrics(self):
        return [self.loss_tracker, self.grad_norm_tracker]

    def call(self, inputs, training=False):
        return self.model(inputs, training=training)

    def train_step(self, data):
        x, y = data
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self.forward_fn(self.model, x, y, True)
            loss = _checked(self.loss_fn(outputs, y), "ordinary loss")
            scaled = loss / _num_replicas()
        grads = tape.gradient(scaled, variables)
        grads, grad_norm = _checked_gradients(grads, "model gradients", self.model_optimizer.iterations)
        self.model_optimizer.apply_gradients(zip(grads, variables))
        self.loss_tracker.update_state(loss)
        self.grad_norm_tracker.update_state(grad_norm)
        return _step_logs(self.metrics)
