"""Approximation and gradient quality, with the paper's ablations, over several seeds.

    python bench/quality.py --task=str --seeds=3            # writes docs/results/str_quality.json
    python bench/quality.py --task=det --seeds=3 --variants=tuned,global_only
    python bench/quality.py --task=str --set train.steps=500  # any config override (repeatable)
    python bench/quality.py --task=examples.multilabel_f1.task:MultiLabelF1Task --seeds=3  # any Task class

`--task` is a name or an import path, as on the command line; the config is the task's own unless
`--config` names another. The JSON records the task's metric names and directions and its validation set,
so `bench/report.py` renders any task's tables with no edit.

Per seed: one baseline trained with the ordinary loss and one surrogate pretrained on global pairs; from
them, a control (the ordinary loss for `tune.steps` more steps) and each tuning variant for the same steps.
Every model is evaluated on every evaluation set of the task (the report shows the test sets, never the
validation set that selected the baseline); the surrogate's approximation error is measured on held-out
global pairs and on the tuned model's outputs on the test sets (local pairs). Run `python bench/report.py` after it
to regenerate docs/RESULTS.md.

Every sub-run leaves `bench_run.json` (a hash of its whole config and stages, and its results) in its scratch
folder; `--reuse` takes an identical finished sub-run from there instead of running it again (to add variants
or seeds to an earlier run), and `--trust-existing` also adopts finished sub-runs from before that stamp.
Without `--reuse` every sub-run starts afresh.
"""

import argparse
import hashlib
import json
import os
import shutil
import time

import common

# Each variant's overrides apply on top of the task config's defaults (configs/str.py tunes with phi on every
# 4th step and 32 global pairs since session 9, every 2nd in session 8), so "tuned" is the config's own method;
# the issue-17 variants pin the phi schedule and global batch they compare.
VARIANTS = {
    "tuned": ({}, True),  # global + local pairs, gradient-quality loss on
    "global_only": ({"surrogate.local_weight": 0.0}, True),
    "local_only": ({"surrogate.local_weight": 1.0}, False),  # no pretraining on global pairs either
    "no_grad_penalty": ({"surrogate.grad_penalty_weight": 0.0}, True),
    # lazy gradient penalty during tuning: on every 4th phi update, weighted 4 times (issue 17's cost lever)
    "lazy_penalty": ({"surrogate.grad_penalty_every": 4}, True),
    # issue 17's cheap step: lazy penalty, global pairs from a tf.data stream, the metric in the graph (no host
    # call in the step); with and without XLA
    "stream_lazy": (
        {
            "surrogate.grad_penalty_every": 4,
            "surrogate.global_pairs": "dataset",
            "tune.surrogate_every": 1,
            "tune.global_batch_size": 0,
        },
        True,
    ),
    "stream_lazy_xla": (
        {
            "surrogate.grad_penalty_every": 4,
            "surrogate.global_pairs": "dataset",
            "tune.jit_compile": True,
            "tune.surrogate_every": 1,
            "tune.global_batch_size": 0,
        },
        True,
    ),
    # issue 17's next lever: phi updated on every 2nd tuning step (tune.surrogate_every), and with 32 global
    # pairs per phi update instead of 64 (tune.global_batch_size)
    "stream_lazy_every2": (
        {
            "surrogate.grad_penalty_every": 4,
            "surrogate.global_pairs": "dataset",
            "tune.surrogate_every": 2,
            "tune.global_batch_size": 0,
        },
        True,
    ),
    "stream_lazy_every2_g32": (
        {
            "surrogate.grad_penalty_every": 4,
            "surrogate.global_pairs": "dataset",
            "tune.surrogate_every": 2,
            "tune.global_batch_size": 32,
        },
        True,
    ),
    # phi on every 3rd / 4th tuning step (32 global pairs): the cost bench's next rows (session 9)
    "stream_lazy_every3_g32": (
        {
            "surrogate.grad_penalty_every": 4,
            "surrogate.global_pairs": "dataset",
            "tune.surrogate_every": 3,
            "tune.global_batch_size": 32,
        },
        True,
    ),
    "stream_lazy_every4_g32": (
        {
            "surrogate.grad_penalty_every": 4,
            "surrogate.global_pairs": "dataset",
            "tune.surrogate_every": 4,
            "tune.global_batch_size": 32,
        },
        True,
    ),
    # phi's schedule while tuning (session 17, for local pairs from scratch): 300 warm-up steps on the
    # baseline's outputs before the model moves (STR's default 100), or phi updated on every tuning step
    "warmup300": ({"tune.surrogate_warmup_steps": 300}, True),
    "phi_every_step": ({"tune.surrogate_every": 1}, True),
    "mixed": ({"tune.ordinary_loss_weight": 1.0}, True),  # ordinary loss + 1.0 x surrogate distance
    # FEDS: examples whose surrogate error |e_hat - e| passes 1 give the model less gradient (ramp to 0 at 2)
    "feds": ({"tune.filter_threshold": 1.0}, True),
    # the model minimises e_hat ** 2: each word pushed in proportion to its own estimated distance, so words the
    # surrogate judges right take little of the update (bench/lsed_gradient_check.py: 64 % with p = 1)
    "power2": ({"tune.distance_power": 2.0}, True),
    # the same ramp on phi's fitting loss instead (pairs the surrogate misjudges fade from its own loss)
    "robust_phi": ({"surrogate.robust_threshold": 1.0}, True),
}


def task_variants(task):
    """The generic variants plus the task's own (`Task.tuning_variants`: `{name: overrides}`, e.g. STR's
    teacher-forced tuning), all from the pretrained surrogate."""
    from tfls import registry

    cls = registry.task_class(task)
    return {**VARIANTS, **{k: (v, True) for k, v in getattr(cls, "tuning_variants", {}).items()}}


BASE_STAGES = ["train", "pretrain", "evaluate"]


# Settings added after runs were stamped, at values that change nothing: left out of a run's identity, so
# `--reuse` still finds the runs made before they existed.
NEUTRAL_DEFAULTS = {
    ("tune", "objective"): "surrogate",
    ("surrogate", "init_from"): "",
    ("surrogate", "embedding_sharpen"): 1.0,
}


def _identity(config, stages):
    """What a sub-run's results depend on: the config and the stages run (for --reuse). The base (train,
    pretrain, evaluate) does not read `tune.*`, so tuning experiments from one base share it."""
    config = {k: v for k, v in config.to_dict().items() if not (k == "tune" and stages == BASE_STAGES)}
    for (block, key), neutral in NEUTRAL_DEFAULTS.items():
        if isinstance(config.get(block), dict) and config[block].get(key, neutral) == neutral:
            config[block] = {k: v for k, v in config[block].items() if k != key}
    payload = json.dumps({"config": config, "stages": stages}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _stamp(workdir, config, stages, results):
    with open(os.path.join(workdir, "bench_run.json"), "w") as f:
        json.dump({"identity": _identity(config, stages), "stages": stages, "results": results}, f, default=float)


def _reusable(workdir, config, stages, keys, trust_existing):
    """Results of an earlier identical sub-run in `workdir`, or None (then it is run again).

    A sub-run is reused when its `bench_run.json` was written by the same config and stages. With
    `trust_existing`, a finished base (train, pretrain, evaluate: they read no `tune.*` setting) without that
    stamp (written before the stamp existed) is adopted too, provided its state lists train and pretrain as
    completed and its results.json holds the baseline's metrics. Unstamped tuning runs are never adopted: their
    tuning settings are unknown.
    """
    stamp = os.path.join(workdir, "bench_run.json")
    if os.path.exists(stamp):
        with open(stamp) as f:
            data = json.load(f)
        if data.get("identity") == _identity(config, stages) and all(k in data["results"] for k in keys):
            return data["results"]
        return None
    if not trust_existing or stages != BASE_STAGES:
        return None
    try:
        with open(os.path.join(workdir, "state.json")) as f:
            state = json.load(f)
        with open(os.path.join(workdir, "results.json")) as f:
            results = json.load(f)
    except (OSError, ValueError):
        return None
    done = [s for s in stages if s not in ("evaluate", "export")]
    if all(s in state["completed"] for s in done) and all(k in results for k in keys):
        print(f"[bench] adopting the finished, unstamped run in {workdir} (--trust-existing)", flush=True)
        return results
    return None


def _keep_base(base_dir, config, reuse, trust_existing):
    """Whether an existing base workdir may be kept: stamped by this config, or (trusted) unstamped, whose
    completed stages the job then skips and whose interrupted stage it resumes from its checkpoints."""
    if not reuse:
        return False
    stamp = os.path.join(base_dir, "bench_run.json")
    if os.path.exists(stamp):
        with open(stamp) as f:
            return json.load(f).get("identity") == _identity(config, BASE_STAGES)
    return trust_existing


def _run_dir(root, seed, name, tag):
    return os.path.join(root, f"seed{seed}", f"{name}_{tag}" if tag and name != "base" else name)


def _sub_run(task, config, workdir, stages, keys, reuse, trust_existing, fork=None):
    """Run `stages` in `workdir` (forked from a base first, if `fork` is given) or reuse an identical run."""
    if reuse:
        res = _reusable(workdir, config, stages, keys, trust_existing)
        if res is not None:
            print(f"[bench] reused {workdir}", flush=True)
            if not os.path.exists(os.path.join(workdir, "bench_run.json")):
                _stamp(workdir, config, stages, res)  # adopted (--trust-existing): vouched for from now on
            return res, True
    if fork:
        common.fork_workdir(*fork[:2], **fork[2])
    res = common.run_stages(task, config, workdir, stages)
    _stamp(workdir, config, stages, res)
    return res, False


def run_seed(
    task,
    seed,
    variants,
    overrides,
    root,
    control=True,
    reuse=False,
    trust_existing=False,
    tag="",
    tune_overrides=None,
    config_file=None,
    scatter=True,
):
    def load(*extra):
        merged = {k: v for d in (overrides, *extra) for k, v in d.items()}
        return common.load_config(task, config_file, overrides={**merged, "seed": seed, "export.enabled": False})

    base_dir = _run_dir(root, seed, "base", tag)
    config = load()
    if os.path.isdir(base_dir) and not _keep_base(base_dir, config, reuse, trust_existing):
        # Never let the job skip train/pretrain on a base written by another config (its fingerprint covers
        # only model and data, not train steps or surrogate settings).
        print(f"[bench] {base_dir}: not reusable for this config (or no --reuse): starting it afresh", flush=True)
        shutil.rmtree(base_dir)
    t0 = time.time()
    base, reused = _sub_run(task, config, base_dir, BASE_STAGES, ("baseline",), reuse, trust_existing)
    out = {
        "seed": seed,
        "baseline": base["baseline"],
        "pretrained_surrogate": base.get("surrogate"),
        "train_and_pretrain_s": base.get("bench_wall_s") if reused else time.time() - t0,
        "variants": {},
    }
    reused_runs = ["base"] if reused else []
    if control:
        d = _run_dir(root, seed, "control", tag)
        fork = (base_dir, d, {"keep": ("baseline",), "completed": ("train",)})
        t0 = time.time()
        cconfig = load(tune_overrides or {}, {"evaluate_models": ("control",)})  # the base measured the baseline
        res, reused = _sub_run(task, cconfig, d, ["control", "evaluate"], ("control",), reuse, trust_existing, fork)
        out["control"] = res["control"]
        out["control_s"] = res.get("bench_wall_s") if reused else time.time() - t0
        reused_runs += ["control"] if reused else []
    for name in variants:
        extra, pretrained = task_variants(task)[name]
        d = _run_dir(root, seed, name, tag)
        vconfig = load(tune_overrides or {}, extra, {"evaluate_models": ("tuned",)})
        # a variant that pretrains otherwise than the base (e.g. STR's `paper_pairs` beside a default without
        # pretraining) pretrains its own surrogate first
        own = pretrained and int(vconfig.surrogate.pretrain_steps) != int(config.surrogate.pretrain_steps)
        from_base = pretrained and not own  # starts from the base's pretrained surrogate
        keep = ("baseline", "surrogate_pretrained") if from_base else ("baseline",)
        fork = (base_dir, d, {"keep": keep, "completed": ("train", "pretrain") if from_base else ("train",)})
        stages = ["pretrain", "tune", "evaluate"] if own else ["tune", "evaluate"]
        t0 = time.time()
        res, reused = _sub_run(task, vconfig, d, stages, ("tuned",), reuse, trust_existing, fork)
        out["variants"][name] = {
            "metrics": res["tuned"],
            "surrogate": res.get("surrogate"),
            "overrides": extra,
            "pretrained": pretrained,
            "own_pretraining": own,
            "tune_s": res.get("bench_wall_s") if reused else time.time() - t0,
        }
        reused_runs += [name] if reused else []
        print(f"[bench] seed {seed} {name}: {res['tuned']}", flush=True)
        if scatter and seed == 0 and name == "tuned" and not tag:
            scatter_plot(task, os.path.join(d, "surrogate_pairs.npz"))
    if reused_runs:
        out["reused_from_earlier_run"] = reused_runs
    return out


def scatter_plot(task, npz_path):
    """Surrogate distance against the true metric on held-out global and local pairs (seed 0, tuned)."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfls import summaries

    if not os.path.exists(npz_path):
        return
    pairs = np.load(npz_path)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
    for ax, kind in zip(axes, ("global", "local")):
        if f"{kind}_e" not in pairs:
            continue
        e, e_hat = pairs[f"{kind}_e"], pairs[f"{kind}_e_hat"]
        title = f"{kind} pairs: mean |e_hat - e| = {np.mean(np.abs(e_hat - e)):.3f}"
        summaries.draw_scatter(ax, e, e_hat, f"true metric ({common.results_name(task)})", title)
    fig.tight_layout()
    fig.savefig(os.path.join(common.RESULTS_DIR, f"{common.results_name(task)}_scatter.png"), dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, help="str, det, or a Task class as package.module:Class")
    parser.add_argument("--config", default=None, help="config file or configs/ name (default: the task's own)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed-list", default="", help="explicit seeds, e.g. 1,2 (overrides --seeds)")
    parser.add_argument("--append", action="store_true", help="add these seeds to the existing JSON output")
    parser.add_argument("--variants", default="tuned", help="comma-separated; see VARIANTS and Task.tuning_variants")
    parser.add_argument("--set", action="append", help="config override key=value (repeatable)")
    parser.add_argument(
        "--tune-set",
        action="append",
        help="override for the control and the variants only, not the base (e.g. surrogate.inner_steps=2)",
    )
    parser.add_argument("--workdir", default=None, help="scratch folder (default: /tmp/tfls_bench/<task name>)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse sub-runs (baseline, control, variants) that an earlier run with the same config finished "
        "in --workdir, instead of running them again",
    )
    parser.add_argument(
        "--trust-existing",
        action="store_true",
        help="with --reuse, also adopt finished sub-runs written before runs were stamped with their config",
    )
    parser.add_argument(
        "--tag",
        default="",
        help="suffix of the control/variant scratch folders (the base is shared): an investigation with other "
        "tune.* settings next to the main run, e.g. --tag=lr3e4 --output=str_quality_lr3e4.json --reuse",
    )
    parser.add_argument("--output", default=None, help="JSON name in docs/results (default <task name>_quality.json)")
    args = parser.parse_args()
    try:
        task_name = common.results_name(args.task)
    except ValueError as e:
        parser.error(str(e))
    variants = [v for v in args.variants.split(",") if v]
    known = task_variants(args.task)
    unknown = [v for v in variants if v not in known]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(known)}")
    overrides = common.parse_overrides(args.set)
    tune_overrides = common.parse_overrides(args.tune_set)
    root = args.workdir or os.path.join("/tmp", "tfls_bench", task_name)
    start = time.time()
    payload = {
        **common.task_metadata(args.task),
        "config": os.path.relpath(common.config_path(args.task, args.config), common.ROOT),
        "machine": common.machine(),
        "overrides": overrides,
        "tune_overrides": tune_overrides,
        "seeds": [],
        "command": "python bench/quality.py " + " ".join(os.sys.argv[1:]),
    }
    name = args.output or f"{task_name}_quality.json"
    seeds = [int(x) for x in args.seed_list.split(",") if x] if args.seed_list else list(range(args.seeds))
    previous = os.path.join(common.RESULTS_DIR, name)
    if args.append and os.path.exists(previous):
        with open(previous) as f:
            old = json.load(f)
        if "validation_set" not in old:
            parser.error(f"{previous} is from the old protocol (baseline selected on the reported set): not appending")
        payload["seeds"] = [s for s in old["seeds"] if s["seed"] not in seeds]
        payload["command"] = old["command"] + " ; " + payload["command"]
        start -= old.get("wall_time_s", 0.0)
    for seed in seeds:
        payload["seeds"].append(
            run_seed(
                args.task,
                seed,
                variants,
                overrides,
                root,
                reuse=args.reuse,
                trust_existing=args.trust_existing,
                tag=args.tag,
                tune_overrides=tune_overrides,
                config_file=args.config,
                # the scatter figure belongs to the main table (<task>_quality.json); an investigation written
                # under another --output leaves it as it is
                scatter=name == f"{task_name}_quality.json",
            )
        )
        payload["wall_time_s"] = time.time() - start
        common.write_json(name, payload)  # after every seed, so a long run leaves partial results


if __name__ == "__main__":
    main()
