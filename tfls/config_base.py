"""Config keys shared by every task; task configs in `configs/` start from `base_config()`."""

import ml_collections


def base_config():
    """The common blocks: seed, distribution, training, surrogate fitting, tuning.

    Returns:
      A `ml_collections.ConfigDict` (locked by the task config after it adds `data`, `model`, `eval`).
    """
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.distribute = "none"  # none | mirrored | multi_worker | tpu
    config.tpu_address = ""

    config.train = ml_collections.ConfigDict()
    config.train.steps = 1000
    config.train.batch_size = 32  # global batch, divided across replicas
    config.train.optimizer = "adam"  # adam | adadelta | sgd
    config.train.learning_rate = 1e-3
    config.train.clipnorm = 5.0
    config.train.schedule = "constant"  # constant | cosine (linear warm-up, then cosine decay)
    config.train.warmup_steps = 0
    config.train.final_learning_rate_ratio = 0.02  # cosine: the last step's rate, as a share of learning_rate
    config.train.init_from = ""  # a weights folder (e.g. weights/<name> or <workdir>/models/baseline): no training
    # a weights folder training starts from (its own schedule and optimizer; a checkpoint of this run wins)
    config.train.warm_start = ""
    config.train.eval_every = 500  # validation (and best-checkpoint selection) every N steps; 0 = only at end
    # evaluation sets whose pooled primary metric (weighted by their num_samples) selects the checkpoint,
    # comma-separated; "" = the task's validation_set. Selection sets are never reported as test sets.
    config.train.select_on = ""
    config.train.checkpoint_every = 200
    config.train.log_every = 50

    config.surrogate = ml_collections.ConfigDict()
    config.surrogate.pretrain_steps = 500
    # a pretrained surrogate's weights folder (e.g. weights/<name>_surrogate, written by `python -m tfls.ship
    # --model=surrogate_pretrained`): the pretrain stage loads it instead of pretraining
    config.surrogate.init_from = ""
    config.surrogate.batch_size = 64  # global pairs per phi update
    config.surrogate.optimizer = "adam"
    config.surrogate.learning_rate = 1e-3
    # pretraining's rate: constant | cosine (from learning_rate down to learning_rate x pretrain_final_ratio)
    config.surrogate.pretrain_schedule = "constant"
    config.surrogate.pretrain_final_ratio = 0.02
    config.surrogate.inner_steps = 1  # J
    config.surrogate.local_weight = 0.5  # share of phi's loss on local pairs
    # lambda. The penalty pushes ||d e_hat / d pred|| towards 1; for a metric that is steep in the prediction's
    # units (1 - IoU moves 3-30 per unit of a normalised coordinate) a large lambda flattens the surrogate:
    # configs/det.py uses 0 (chosen on val by bench/det_penalty_sweep.py).
    config.surrogate.grad_penalty_weight = 0.1
    config.surrogate.robust_threshold = 0.0  # FEDS ramp; <= 0 is off
    # where global pairs come from: py_function (drawn in the step) | dataset (a tf.data stream beside the
    # batches: no host call in the step, with an in-graph metric)
    config.surrogate.global_pairs = "py_function"
    config.surrogate.grad_penalty_one_sided = False  # True: max(0, ||g|| - 1)^2, a bound, not a target
    config.surrogate.grad_penalty_every = 1  # k: lazy gradient penalty on every k-th phi update, weight x k
    # how h(pred) and h(target) are compared: l2 (the paper) | l1 | squared_l2 (Surrogate.set_distance; for STR
    # neither alternative fitted better: docs/RESULTS.md, "str surrogate: distance_penalty")
    config.surrogate.distance = "l2"
    config.surrogate.eval_pairs = 512  # held-out global pairs for the approximation error

    config.tune = ml_collections.ConfigDict()
    config.tune.steps = 300
    config.tune.optimizer = "adam"
    config.tune.learning_rate = 1e-4
    config.tune.clipnorm = 5.0
    config.tune.ordinary_loss_weight = 0.0
    config.tune.update_surrogate = True
    # FEDS on the model's objective: examples whose surrogate error |e_hat - e| exceeds this weigh less (ramp
    # to 0 at twice it), so the model is not pushed by a misjudged distance; <= 0 is off
    config.tune.filter_threshold = 0.0
    # p: the model minimises e_hat ** p. 1 is the paper; 2 weighs each example's push by its own e_hat, so words
    # the surrogate judges right (e_hat near 0) take little of the update (bench/lsed_gradient_check.py)
    config.tune.distance_power = 1.0
    # "surrogate" (the method) or "exact": the model minimises the task's differentiable metric (an oracle ablation)
    config.tune.objective = "surrogate"
    # m: phi updated on every m-th tuning step only (1: every step, the paper's alternation); a cost lever
    config.tune.surrogate_every = 1
    # global pairs per phi update while tuning (0: surrogate.batch_size, as in pretraining and the tuning's phi
    # warm-up, which keep it); a cost lever
    config.tune.global_batch_size = 0
    config.tune.jit_compile = False  # XLA for the surrogate's steps (needs surrogate.global_pairs="dataset")
    config.tune.surrogate_warmup_steps = 0  # phi alone on the baseline's outputs (and global pairs) first
    config.tune.run_control = True  # also tune with the ordinary loss for the same steps (the control)

    # the models the evaluate stage measures, of those the workdir holds (a bench sub-run forked from a base
    # that already measured its baseline measures only its own model)
    config.evaluate_models = ("baseline", "control", "tuned")

    config.export = ml_collections.ConfigDict()
    config.export.enabled = True
    return config
