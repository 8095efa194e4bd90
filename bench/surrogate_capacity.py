"""Approximation quality against surrogate capacity and pretraining length, from one trained baseline.

    python bench/surrogate_capacity.py --task=str --base=/tmp/tfls_bench/str/seed0/base \
        --try "surrogate.pretrain_steps=6000" \
        --try "surrogate.pretrain_steps=6000 surrogate.embedding_filters=(128,128,128,128)"

`--base` is a finished baseline workdir (e.g. one `bench/quality.py` left in its scratch folder, or a
`python -m tfls.main` workdir). Each `--try` (space-separated key=value config overrides; the first row is
always the default config) forks that baseline, pretrains a fresh surrogate on global pairs, and measures
mean |e_hat - e| on held-out global pairs and on the baseline's outputs over the held-out set (local pairs,
which pretraining never sees). Writes docs/results/<task>_surrogate_capacity.json; `bench/report.py` renders
it. Use it when the approximation error misses its aim, to see whether steps or width close the gap.
"""

import argparse
import os
import time

import common


def _embedding_parameters(task_name, config):
    from tfls.main import load_task

    surrogate = load_task(task_name, config).build_surrogate()
    surrogate.build()
    return int(sum(v.shape.num_elements() for v in surrogate.embedding.trainable_variables))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["str", "det"], required=True)
    parser.add_argument("--base", required=True, help="a workdir whose train stage finished")
    parser.add_argument("--try", dest="tries", action="append", default=[], help="overrides for one row")
    parser.add_argument("--workdir", default=None, help="scratch folder (default /tmp/tfls_bench/<task>_capacity)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-default", action="store_true", help="no default-config row (e.g. known already)")
    args = parser.parse_args()
    if not os.path.exists(os.path.join(args.base, "models", "baseline")):
        parser.error(f"{args.base} holds no trained baseline (models/baseline is missing)")
    root = args.workdir or os.path.join("/tmp", "tfls_bench", f"{args.task}_capacity")
    payload = {
        "task": args.task,
        "base": args.base,
        "machine": common.machine(),
        "command": "python bench/surrogate_capacity.py " + " ".join(os.sys.argv[1:]),
        "rows": [],
    }
    for i, text in enumerate(([] if args.skip_default else [""]) + args.tries):
        overrides = common.parse_overrides(text.split())
        config = common.load_config(args.task, overrides={**overrides, "seed": args.seed, "export.enabled": False})
        d = os.path.join(root, f"row{i}")
        common.fork_workdir(args.base, d, keep=("baseline",), completed=("train",))
        start = time.time()
        res = common.run_stages(args.task, config, d, ["pretrain", "evaluate"])
        sur = res.get("surrogate") or {}
        row = {
            "overrides": overrides,
            "pretrain_steps": int(config.surrogate.pretrain_steps),
            "embedding_parameters": _embedding_parameters(args.task, config),
            "approx_l1_global": sur.get("approx_l1_global"),
            "approx_l1_local": sur.get("approx_l1_local"),
            "wall_s": time.time() - start,
        }
        payload["rows"].append(row)
        print(f"[capacity] {overrides or 'default'}: {row}", flush=True)
        common.write_json(f"{args.task}_surrogate_capacity.json", payload)


if __name__ == "__main__":
    main()
