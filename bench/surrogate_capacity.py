"""Approximation quality against surrogate capacity and pretraining length, from one trained baseline.

    python bench/surrogate_capacity.py --task=str --base=/tmp/tfls_bench/str/seed0/base \
        --set surrogate.pretrain_steps=3000 --try "surrogate.pretrain_steps=6000" \
        --try "surrogate.pretrain_steps=6000 surrogate.embedding_filters=(128,128,128,128)"

`--base` is a finished baseline workdir (e.g. one `bench/quality.py` left in its scratch folder, or a
`python -m tfls.main` workdir). Each `--try` (space-separated key=value config overrides; the first row is
always the default config) forks that baseline, pretrains a fresh surrogate on global pairs, and measures
mean |e_hat - e| on held-out global pairs and on the baseline's outputs over the test sets (local pairs,
which pretraining never sees). `--task` is a name or an import path (`package.module:Class`). Writes
docs/results/<task name>_surrogate_capacity.json (or `--output`, e.g. <task name>_surrogate_capacity_<study>.json
for a second study); `bench/report.py` renders each. Besides the mean errors, each row gives the mean e_hat
for each true value (global and local pairs), which shows whether the error is an offset, noise, or a
compression of large values. Use it when the approximation error misses its aim, to see whether steps,
width, the distance or the gradient penalty close the gap. `--reuse` keeps a row whose folder already holds a
finished run of the same config (after an interrupted study).
"""

import argparse
import json
import os
import time

import common
import numpy as np


def mean_by_value(e, e_hat, max_value=6):
    """`{str(k): [count, mean e_hat]}` for each true value k (integers up to `max_value`, larger ones pooled
    under `">max_value"`)."""
    e = np.asarray(e)
    e_hat = np.asarray(e_hat)
    out = {}
    for k in range(max_value + 1):
        m = e == k
        if m.any():
            out[str(k)] = [int(m.sum()), round(float(e_hat[m].mean()), 4)]
    m = e > max_value
    if m.any():
        out[f">{max_value}"] = [int(m.sum()), round(float(e_hat[m].mean()), 4)]
    return out


def _finished(d, config):
    """Results of a finished pretrain + evaluate in `d` with the same config, or None."""
    try:
        with open(os.path.join(d, "results.json")) as f:
            results = json.load(f)
        with open(os.path.join(d, "config.json")) as f:
            same = json.load(f) == json.loads(json.dumps(config.to_dict(), default=str))
    except (OSError, ValueError):
        return None
    return results if same and results.get("surrogate") else None


def _embedding_parameters(task, config):
    surrogate = common.task_class(task)(config).build_surrogate()
    surrogate.build()
    return int(sum(v.shape.num_elements() for v in surrogate.embedding.trainable_variables))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, help="str, det, or a Task class as package.module:Class")
    parser.add_argument("--config", default=None, help="config file or configs/ name (default: the task's own)")
    parser.add_argument("--base", required=True, help="a workdir whose train stage finished")
    parser.add_argument("--try", dest="tries", action="append", default=[], help="overrides for one row")
    parser.add_argument("--workdir", default=None, help="scratch folder (default /tmp/tfls_bench/<name>_capacity)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="JSON name in docs/results")
    parser.add_argument("--reuse", action="store_true", help="keep rows whose folder holds the same finished run")
    parser.add_argument("--skip-default", action="store_true", help="no default-config row (e.g. known already)")
    parser.add_argument(
        "--set", action="append", help="override for every row, e.g. the base's own data/model overrides (repeatable)"
    )
    args = parser.parse_args()
    if not os.path.exists(os.path.join(args.base, "models", "baseline")):
        parser.error(f"{args.base} holds no trained baseline (models/baseline is missing)")
    try:
        task_name = common.results_name(args.task)
    except ValueError as e:
        parser.error(str(e))
    root = args.workdir or os.path.join("/tmp", "tfls_bench", f"{task_name}_capacity")
    payload = {
        **common.task_metadata(args.task),
        "base": args.base,
        "machine": common.machine(),
        "command": "python bench/surrogate_capacity.py " + " ".join(os.sys.argv[1:]),
        "overrides": common.parse_overrides(args.set),
        "rows": [],
    }
    for i, text in enumerate(([] if args.skip_default else [""]) + args.tries):
        overrides = common.parse_overrides(text.split())
        overrides_all = {**common.parse_overrides(args.set), **overrides, "seed": args.seed, "export.enabled": False}
        config = common.load_config(args.task, args.config, overrides=overrides_all)
        if int(config.surrogate.pretrain_steps) <= 0:
            # STR's default tunes without pretraining (surrogate.pretrain_steps=0): a row must say how long
            parser.error(
                f"row {i} ({text or 'default'!r}): surrogate.pretrain_steps=0 pretrains nothing; give the steps, "
                "e.g. --set surrogate.pretrain_steps=3000"
            )
        d = os.path.join(root, f"row{i}")
        res = _finished(d, config) if args.reuse else None
        start = time.time()
        if res is None:
            common.fork_workdir(args.base, d, keep=("baseline",), completed=("train",))
            res = common.run_stages(args.task, config, d, ["pretrain", "evaluate"])
        else:
            print(f"[capacity] reused {d}", flush=True)
        sur = res.get("surrogate") or {}
        pairs_path = os.path.join(d, "surrogate_pairs.npz")
        by_value = {}
        if os.path.exists(pairs_path):
            pairs = np.load(pairs_path)
            for kind in ("global", "local"):
                if f"{kind}_e" in pairs:
                    by_value[kind] = mean_by_value(pairs[f"{kind}_e"], pairs[f"{kind}_e_hat"])
        row = {
            "overrides": overrides,
            "pretrain_steps": int(config.surrogate.pretrain_steps),
            "embedding_parameters": _embedding_parameters(args.task, config),
            "approx_l1_global": sur.get("approx_l1_global"),
            "approx_l1_local": sur.get("approx_l1_local"),
            "approx_l1_local_by_set": sur.get("approx_l1_local_by_set"),
            "mean_e_hat_by_true_value": by_value,
            "wall_s": res.get("wall_time_s", time.time() - start),
        }
        payload["rows"].append(row)
        print(f"[capacity] {overrides or 'default'}: {row}", flush=True)
        common.write_json(args.output or f"{task_name}_surrogate_capacity.json", payload)


if __name__ == "__main__":
    main()
