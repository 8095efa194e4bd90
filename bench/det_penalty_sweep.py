"""LS-IoU's gradient-penalty weight: pretrain the surrogate at each lambda and measure its approximation.

    python bench/det_penalty_sweep.py                    # lambdas of surrogate.grad_penalty_sweep, global pairs
    python bench/det_penalty_sweep.py --lambdas=0,1e-3,1e-2 --set surrogate.pretrain_steps=500
    python bench/det_penalty_sweep.py --workdir=/tmp/tfls_bench/det/seed0/base   # also the baseline's boxes on val
    python bench/det_penalty_sweep.py --spectrum=128,0   # each lambda with and without lsiou.box_spectrum

For each lambda a fresh surrogate (same seed) is pretrained on global pairs for `surrogate.pretrain_steps`
with `surrogate.grad_penalty_weight = lambda`; then, on held-out global pairs (the fixed stream of
`tfls.surrogate.evaluation`, `surrogate.eval_pairs` of them), the mean |e_hat - e| (1 - IoU), the same within
IoU bands, and the median norm of d e_hat / d pred (what the penalty pulls towards 1). With `--workdir` (a
finished detection job: its `models/baseline` and `config.json`), the same error on local pairs: the
baseline's RoI boxes against their ground truth on the validation set, the set that may choose lambda (never
a test set). The chosen lambda is the one with the lowest local error (global without `--workdir`); with
`--spectrum`, every lambda is run at each number of spectrum frequencies (`surrogate.embedding_frequencies`)
and the choice is over both. Pretraining follows the config's schedule (`surrogate.pretrain_schedule`), as
the job's does. Writes docs/results/det_penalty_sweep.json (TFLS_RESULTS_DIR elsewhere); bench/report.py
renders it.
"""

import argparse
import json
import os
import time

import common
import numpy as np

IOU_BANDS = ((0.0, 0.0), (0.0, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.0))


def _config(args):
    import ml_collections

    overrides = {"export.enabled": False, **common.parse_overrides(args.set)}
    config = common.load_config("det", args.config, overrides)
    recorded = os.path.join(args.workdir, "config.json") if args.workdir else ""
    if recorded and os.path.isfile(recorded):
        # The baseline's own data and model: its boxes and its validation set, whatever the local defaults.
        with open(recorded) as f:
            trained = json.load(f)
        config.data = ml_collections.ConfigDict(trained["data"])
        config.model = ml_collections.ConfigDict(trained["model"])
    return config, overrides


def _global_figures(surrogate, pairs):
    from tfls.detection import lsiou

    pred, target = pairs
    e = lsiou.one_minus_iou(pred, target)
    e_hat, grads = common.surrogate_values_and_gradients(surrogate, pred, target)
    err = np.abs(e_hat - e)
    iou = 1.0 - e
    bands = {}
    for lo, hi in IOU_BANDS:
        inside = (iou == 0) if hi == 0 else (iou > lo) & (iou <= hi)
        bands[f"iou_{lo:g}" if hi == 0 else f"iou_{lo:g}-{hi:g}"] = float(err[inside].mean()) if inside.any() else None
    return {
        "approx_l1_global": float(err.mean()),
        "approx_l1_global_by_iou": bands,
        "grad_norm_median": float(np.median(np.linalg.norm(grads, axis=1))),
        "num_global_pairs": int(len(e)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="config file or configs/ name (default: configs/det.py)")
    parser.add_argument("--lambdas", default="", help="comma-separated weights (default: surrogate.grad_penalty_sweep)")
    parser.add_argument("--set", action="append", help="config override key=value (repeatable)")
    parser.add_argument("--workdir", default=None, help="a finished detection job: local pairs from its baseline")
    parser.add_argument(
        "--spectrum", default="", help="comma-separated surrogate.embedding_frequencies (default: the config's)"
    )
    parser.add_argument("--max-batches", type=int, default=20, help="validation batches for local pairs")
    parser.add_argument("--output", default="det_penalty_sweep.json", help="JSON name in docs/results")
    args = parser.parse_args()
    if args.workdir and not os.path.isdir(os.path.join(args.workdir, "models", "baseline")):
        parser.error(f"{args.workdir} holds no trained baseline (models/baseline is missing)")

    import keras
    import tensorflow as tf

    from tfls.detection.task import DetectionTask
    from tfls.job import weights as weights_lib
    from tfls.job.fit import make_optimizer
    from tfls.job.runner import WarmupCosine
    from tfls.surrogate import SurrogatePretrainer
    from tfls.surrogate.evaluation import HELD_OUT_SEED, approximation_errors

    config, overrides = _config(args)
    s = config.surrogate
    lambdas = (
        [float(v) for v in args.lambdas.split(",") if v] if args.lambdas else [float(v) for v in s.grad_penalty_sweep]
    )
    spectra = [int(v) for v in args.spectrum.split(",") if v] or [int(s.get("embedding_frequencies", 0))]
    task = DetectionTask(config)
    model, local_sets = None, None
    if args.workdir:
        model = task.build_model()
        weights_lib.load_weights(os.path.join(args.workdir, "models", "baseline"), model, "baseline weights")
        local_sets = {task.validation_set: task.eval_datasets()[task.validation_set]}
    held_out = None
    payload = {
        "config": os.path.relpath(common.config_path("det", args.config), common.ROOT),
        "overrides": overrides,
        "workdir": args.workdir,
        "pretrain_steps": int(s.pretrain_steps),
        "batch_size": int(s.batch_size),
        "machine": common.machine(),
        "command": "python bench/det_penalty_sweep.py " + " ".join(os.sys.argv[1:]),
        "rows": [],
    }
    start = time.time()
    for frequencies, lam in [(k, lam) for k in spectra for lam in lambdas]:
        keras.utils.set_random_seed(config.seed)
        s.embedding_frequencies = frequencies
        surrogate = task.build_surrogate().set_distance(config.surrogate.get("distance", "l2"))
        surrogate.reseed(config.seed * 1000 + 1)
        trainer = SurrogatePretrainer(
            surrogate,
            global_batch_size=s.batch_size,
            grad_penalty_weight=lam,
            robust_threshold=s.robust_threshold,
            grad_penalty_every=s.grad_penalty_every,
        )
        rate = s.learning_rate
        if s.get("pretrain_schedule", "constant") == "cosine":
            rate = WarmupCosine(s.learning_rate, s.pretrain_steps, 0, s.pretrain_final_ratio)
        trainer.compile(make_optimizer(s.optimizer, rate))
        t0 = time.time()
        steps = tf.data.Dataset.from_tensors(tf.zeros([1])).repeat()
        history = trainer.fit(steps, steps_per_epoch=max(int(s.pretrain_steps), 1), epochs=1, verbose=0)
        if held_out is None:
            held_out = surrogate.held_out_pairs(s.eval_pairs, HELD_OUT_SEED)
        row = {"grad_penalty_weight": lam, "embedding_frequencies": frequencies}
        row.update(_global_figures(surrogate, held_out))
        row["final_phi_loss"] = float(history.history["phi_loss"][-1])
        if model is not None:
            local, _ = approximation_errors(surrogate, task, model, local_sets, 1, max_batches=args.max_batches)
            row["approx_l1_local_val"] = local.get("approx_l1_local")
            row["num_local_pairs"] = local.get("num_local_pairs", 0)
        row["pretrain_s"] = time.time() - t0
        payload["rows"].append(row)
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items() if not isinstance(v, dict)}
        print(f"[det_penalty_sweep] {shown}", flush=True)
    key = "approx_l1_local_val" if model is not None else "approx_l1_global"
    scored = [r for r in payload["rows"] if r.get(key) is not None]
    payload["selected_by"] = key
    best = min(scored, key=lambda r: r[key]) if scored else {}
    payload["selected"] = best.get("grad_penalty_weight")
    payload["selected_frequencies"] = best.get("embedding_frequencies")
    payload["pretrain_schedule"] = s.get("pretrain_schedule", "constant")
    payload["wall_time_s"] = time.time() - start
    print(
        f"[det_penalty_sweep] lowest {key}: lambda = {payload['selected']}, "
        f"{payload['selected_frequencies']} spectrum frequencies",
        flush=True,
    )
    common.write_json(args.output, payload)


if __name__ == "__main__":
    main()
