"""Approximation and gradient quality, with the paper's ablations, over several seeds.

    python bench/quality.py --task=str --seeds=3            # writes docs/results/str_quality.json
    python bench/quality.py --task=det --seeds=3 --variants=tuned,global_only
    python bench/quality.py --task=str --set train.steps=500  # any config override (repeatable)

Per seed: one baseline trained with the ordinary loss and one surrogate pretrained on global pairs; from
them, a control (the ordinary loss for `tune.steps` more steps) and each tuning variant for the same steps.
Every model is evaluated on the task's held-out sets; the surrogate's approximation error is measured on
held-out global pairs and on the tuned model's outputs (local pairs). Run `python bench/report.py` after it
to regenerate docs/RESULTS.md.
"""

import argparse
import ast
import os
import time

import common

VARIANTS = {
    "tuned": ({}, True),  # global + local pairs, gradient-quality loss on
    "global_only": ({"surrogate.local_weight": 0.0}, True),
    "local_only": ({"surrogate.local_weight": 1.0}, False),  # no pretraining on global pairs either
    "no_grad_penalty": ({"surrogate.grad_penalty_weight": 0.0}, True),
}


def _parse_sets(items):
    overrides = {}
    for item in items or []:
        key, value = item.split("=", 1)
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    return overrides


def run_seed(task, seed, variants, overrides, root, control=True):
    base_dir = os.path.join(root, f"seed{seed}", "base")
    config = common.load_config(task, overrides={**overrides, "seed": seed, "export.enabled": False})
    t0 = time.time()
    base = common.run_stages(task, config, base_dir, ["train", "pretrain", "evaluate"])
    out = {
        "seed": seed,
        "baseline": base["baseline"],
        "pretrained_surrogate": base.get("surrogate"),
        "train_and_pretrain_s": time.time() - t0,
        "variants": {},
    }
    if control:
        d = os.path.join(root, f"seed{seed}", "control")
        common.fork_workdir(base_dir, d, keep=("baseline",), completed=("train",))
        t0 = time.time()
        res = common.run_stages(task, config, d, ["control", "evaluate"])
        out["control"] = res["control"]
        out["control_s"] = time.time() - t0
    for name in variants:
        extra, pretrained = VARIANTS[name]
        d = os.path.join(root, f"seed{seed}", name)
        keep = ("baseline", "surrogate_pretrained") if pretrained else ("baseline",)
        common.fork_workdir(base_dir, d, keep=keep, completed=("train", "pretrain") if pretrained else ("train",))
        vconfig = common.load_config(task, overrides={**overrides, **extra, "seed": seed, "export.enabled": False})
        t0 = time.time()
        res = common.run_stages(task, vconfig, d, ["tune", "evaluate"])
        out["variants"][name] = {
            "metrics": res["tuned"],
            "surrogate": res.get("surrogate"),
            "overrides": extra,
            "pretrained": pretrained,
            "tune_s": time.time() - t0,
        }
        print(f"[bench] seed {seed} {name}: {res['tuned']}", flush=True)
        if seed == 0 and name == "tuned":
            scatter_plot(task, os.path.join(d, "surrogate_pairs.npz"))
    return out


def scatter_plot(task, npz_path):
    """Surrogate distance against the true metric on held-out global and local pairs (seed 0, tuned)."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not os.path.exists(npz_path):
        return
    pairs = np.load(npz_path)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
    for ax, kind in zip(axes, ("global", "local")):
        if f"{kind}_e" not in pairs:
            continue
        e, e_hat = pairs[f"{kind}_e"], pairs[f"{kind}_e_hat"]
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, e.shape) if task == "str" else 0.0
        ax.scatter(e + jitter, e_hat, s=4, alpha=0.4)
        top = max(float(np.max(e)) if e.size else 1.0, float(np.max(e_hat)) if e_hat.size else 1.0)
        ax.plot([0, top], [0, top], "k--", lw=1)
        ax.set_xlabel("true " + ("edit distance" if task == "str" else "1 - IoU"))
        ax.set_ylabel("surrogate distance")
        ax.set_title(f"{kind} pairs: mean |e_hat - e| = {np.mean(np.abs(e_hat - e)):.3f}")
    fig.tight_layout()
    fig.savefig(os.path.join(common.RESULTS_DIR, f"{task}_scatter.png"), dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["str", "det"], required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed-list", default="", help="explicit seeds, e.g. 1,2 (overrides --seeds)")
    parser.add_argument("--append", action="store_true", help="add these seeds to the existing JSON output")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--set", action="append", help="config override key=value (repeatable)")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: /tmp/tfls_bench/<task>)")
    parser.add_argument("--output", default=None, help="JSON name in docs/results (default <task>_quality.json)")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    overrides = _parse_sets(args.set)
    root = args.workdir or os.path.join("/tmp", "tfls_bench", args.task)
    start = time.time()
    payload = {
        "task": args.task,
        "machine": common.machine(),
        "overrides": overrides,
        "seeds": [],
        "command": "python bench/quality.py " + " ".join(os.sys.argv[1:]),
    }
    name = args.output or f"{args.task}_quality.json"
    seeds = [int(x) for x in args.seed_list.split(",") if x] if args.seed_list else list(range(args.seeds))
    previous = os.path.join(common.RESULTS_DIR, name)
    if args.append and os.path.exists(previous):
        import json

        with open(previous) as f:
            old = json.load(f)
        payload["seeds"] = [s for s in old["seeds"] if s["seed"] not in seeds]
        payload["command"] = old["command"] + " ; " + payload["command"]
        start -= old.get("wall_time_s", 0.0)
    for seed in seeds:
        payload["seeds"].append(run_seed(args.task, seed, variants, overrides, root))
        payload["wall_time_s"] = time.time() - start
        common.write_json(name, payload)  # after every seed, so a long run leaves partial results


if __name__ == "__main__":
    main()
