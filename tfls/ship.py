"""Package a trained baseline as shipped weights: `weights/<name>/` with the weights and their provenance.

    python -m tfls.ship --workdir=workdir/str_base_s0 --output=weights/str
    python -m tfls.ship --workdir=workdir/str_surrogate --model=surrogate_pretrained --output=weights/str_surrogate

The folder holds the baseline's variables (the format `train.init_from` reads), `config.json` (the whole
config that trained them), and `PROVENANCE.json` / `PROVENANCE.md`: the command, the commit, the seed, the
wall time, the machine, and the baseline's metrics on every evaluation set of the workdir's results.json
(measured by the job's evaluate stage, never typed by hand). With `--model=surrogate_pretrained` it ships the
workdir's pretrained surrogate instead (the format `surrogate.init_from` reads), with the approximation errors
the evaluate stage measured for it.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys

from tfls.job.weights import has_weights


def _commit(root):
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _fingerprint(workdir):
    try:
        with open(os.path.join(workdir, "state.json")) as f:
            return json.load(f).get("fingerprint")
    except OSError:
        return None


MODELS = ("baseline", "surrogate_pretrained")


def ship(workdir, output, command, commit=None, notes="", train_wall_time_s=None, model="baseline"):
    """Copy `<workdir>/models/<model>` to `output` with its provenance.

    Args:
      workdir: a job's workdir whose train and evaluate stages ran (results.json holds the baseline).
      output: destination folder (replaced).
      command: the command that trained the baseline (recorded as given).
      commit: the commit it ran at (default: the repository's HEAD).
      notes: free text recorded beside the figures (e.g. an interruption and its resume).
      train_wall_time_s: the training's wall time when results.json does not hold it.
      model: "baseline" (the recognizer or detector) or "surrogate_pretrained" (the pretrained surrogate).

    Returns:
      The provenance dict.
    """
    if model not in MODELS:
        raise SystemExit(f"tfls: error: --model must be one of {', '.join(MODELS)}, got {model!r}")
    surrogate = model == "surrogate_pretrained"
    stage = "pretrain" if surrogate else "train"
    source = os.path.join(workdir, "models", model)
    if not has_weights(source):
        raise SystemExit(f"tfls: error: {source} holds no {model} weights: run the {stage} stage first")
    results_path = os.path.join(workdir, "results.json")
    with open(results_path) as f:
        results = json.load(f)
    metrics_key = "surrogate" if surrogate else "baseline"
    if metrics_key not in results:
        raise SystemExit(f"tfls: error: {results_path} has no {metrics_key} metrics: run the evaluate stage first")
    if surrogate:
        # the pretrained surrogate's own figures (after a tuning, results["surrogate"] is the tuned one's)
        figures = results["surrogate"].get("pretrained_on_baseline") or results["surrogate"]
        metrics = {
            "global pairs": {"approx_l1": figures["approx_l1_global"]},
            **{
                f"local: {name}": {"approx_l1": value}
                for name, value in figures.get("approx_l1_local_by_set", {}).items()
            },
        }
    else:
        metrics = results["baseline"]
    config_path = os.path.join(workdir, "config.json")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tmp = output.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    if os.path.exists(config_path):
        with open(config_path) as f:
            recorded = json.load(f)
        # Where the training started from is provenance (the command says it), not part of the model: a path
        # of the machine that trained it would fail validation wherever the weights are loaded.
        train = recorded.get("train", {})
        dropped = {k: train[k] for k in ("init_from", "warm_start") if train.get(k)}
        for key in dropped:
            train[key] = ""
        if recorded.get("surrogate", {}).get("init_from"):
            recorded["surrogate"]["init_from"] = ""
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(recorded, f, indent=2)
    provenance = {
        "task": results.get("task"),
        "command": command,
        "commit": commit or _commit(root),
        "seed": results.get("seed"),
        "fingerprint": _fingerprint(workdir),
        "model": model,
        "train_wall_time_s": (results.get("stage_wall_s") or {}).get(stage, train_wall_time_s),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "validation_set": results.get("validation_set"),
        "selection_sets": results.get("selection_sets") or [results.get("validation_set")],
        ("surrogate_metrics" if surrogate else "baseline_metrics"): metrics,
        "notes": notes,
    }
    with open(os.path.join(tmp, "PROVENANCE.json"), "w") as f:
        json.dump(provenance, f, indent=2, default=float)
    lines = [
        f"# Shipped {'pretrained surrogate' if surrogate else 'baseline'}: {provenance['task']}",
        "",
        "Written by `python -m tfls.ship`; every figure below comes from the workdir's results.json.",
        "",
        f"- command: `{command}`",
        f"- commit: `{provenance['commit']}`",
        f"- seed: {provenance['seed']}",
        f"- training wall time: {provenance['train_wall_time_s']} s on {provenance['machine']['cpus']} CPUs",
    ]
    if surrogate:
        lines.append("- figures: mean |e_hat - e| on held-out global pairs and on the baseline's outputs (local)")
    else:
        names = provenance["selection_sets"]
        pooled = " (pooled)" if len(names) > 1 else ""
        lines.append("- checkpoint selected on: " + " + ".join(f"`{n}`" for n in names) + pooled)
    if notes:
        lines.append(f"- notes: {notes}")
    lines += ["", "| set | " + " | ".join(next(iter(metrics.values())).keys()) + " |"]
    lines.append("|" + "---|" * (1 + len(next(iter(metrics.values())))))
    for set_name, row in metrics.items():
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append(f"| {set_name} | " + " | ".join(cells) + " |")
    with open(os.path.join(tmp, "PROVENANCE.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    shutil.rmtree(output, ignore_errors=True)
    os.replace(tmp, output)
    return provenance


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--command", required=True, help="the exact command that trained the baseline")
    parser.add_argument("--commit", default=None)
    parser.add_argument("--notes", default="")
    parser.add_argument("--train-wall-time-s", type=float, default=None)
    parser.add_argument("--model", default="baseline", choices=MODELS, help="which of the workdir's models")
    args = parser.parse_args(argv)
    provenance = ship(
        args.workdir, args.output, args.command, args.commit, args.notes, args.train_wall_time_s, args.model
    )
    print(json.dumps(provenance, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
