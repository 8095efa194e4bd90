"""How well a surrogate approximates its metric: mean |e_hat - e| on held-out global pairs and on a model's
own outputs (local pairs)."""

import numpy as np

HELD_OUT_SEED = 987_654_321


def approximation_errors(surrogate, task, model, eval_sets, num_global_pairs, max_batches=20, seed=HELD_OUT_SEED):
    """Approximation error of `surrogate` on global and local pairs.

    Args:
      surrogate: a built `Surrogate`.
      task: the `Task` whose `forward` / `surrogate_pairs` give the local pairs.
      model: the task model whose outputs make the local pairs.
      eval_sets: dict of finite datasets of `(x, y)` batches.
      num_global_pairs: held-out global pairs, drawn from a fixed stream (`seed`) training never uses.
      max_batches: at most this many batches per evaluation set.
      seed: the held-out global stream's seed.

    Returns:
      `(summary, pairs)`: summary has `approx_l1_global`, `num_global_pairs` and, when any local pair was
      seen, `approx_l1_local`, `num_local_pairs` (all sets together) and `approx_l1_local_by_set` (each
      set's own: a set where the model errs more weighs more in the pooled figure); pairs holds the
      surrogate's and the true values of every pair (`global_e_hat`, `global_e`, `local_e_hat`,
      `local_e`) for scatter plots.
    """
    g_pred, g_target = surrogate.held_out_pairs(num_global_pairs, seed)
    e_hat = surrogate.distance(g_pred, g_target).numpy()
    e = surrogate.true_metric(g_pred, g_target).numpy()
    summary = {"approx_l1_global": float(np.mean(np.abs(e_hat - e))), "num_global_pairs": int(len(e))}
    pairs = {"global_e_hat": e_hat, "global_e": e}
    errs, weights, local_hat, local_e = [], [], [], []
    by_set = {}
    for name, ds in eval_sets.items():
        first = len(errs)
        for i, (x, y) in enumerate(ds):
            if i >= max_batches:
                break
            outputs = task.forward(model, x, y, False)
            pred, target, weight = task.surrogate_pairs(outputs, y)
            d = surrogate.distance(pred, target).numpy()
            t = surrogate.true_metric(pred, target).numpy()
            w = np.asarray(weight, np.float64)
            errs.append(np.abs(d - t))
            weights.append(w)
            local_hat.append(d[w > 0])
            local_e.append(t[w > 0])
        if len(errs) > first:
            err, w = np.concatenate(errs[first:]), np.concatenate(weights[first:])
            by_set[name] = float(np.sum(err * w) / max(np.sum(w), 1e-12))
    if errs:
        err, w = np.concatenate(errs), np.concatenate(weights)
        summary["approx_l1_local"] = float(np.sum(err * w) / max(np.sum(w), 1e-12))
        summary["num_local_pairs"] = int(np.sum(w > 0))
        summary["approx_l1_local_by_set"] = by_set
        pairs.update(local_e_hat=np.concatenate(local_hat), local_e=np.concatenate(local_e))
    return summary, pairs
