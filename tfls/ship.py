"""Package a trained baseline as shipped weights: `weights/<name>/` with the weights and their provenance.

    python -m tfls.ship --workdir=workdir/str_base_s0 --output=weights/str

The folder holds the baseline's variables (the format `train.init_from` reads), `config.json` (the whole
config that trained them), and `PROVENANCE.json` / `PROVENANCE.md`: the command, the commit, the seed, the
wall time, the machine, and the baseline's metrics on every evaluation set of the workdir's results.json
(measured by the job's evaluate stage, never typed by hand).
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


def ship(workdir, output, command, commit=None, notes="", train_wall_time_s=None):
    """Copy `<workdir>/models/baseline` to `output` with its provenance.

    Args:
      workdir: a job's workdir whose train and evaluate stages ran (results.json holds the baseline).
      output: destination folder (replaced).
      command: the command that trained the baseline (recorded as given).
      commit: the commit it ran at (default: the repository's HEAD).
      notes: free text recorded beside the figures (e.g. an interruption and its resume).
      train_wall_time_s: the training's wall time when results.json does not hold it.

    Returns:
      The provenance dict.
    """
    source = os.path.join(workdir, "models", "baseline")
    if not has_weights(source):
        raise SystemExit(f"tfls: error: {source} holds no baseline weights: run the train stage first")
    results_path = os.path.join(workdir, "results.json")
    with open(results_path) as f:
        results = json.load(f)
    if "baseline" not in results:
        raise SystemExit(f"tfls: error: {results_path} has no baseline metrics: run the evaluate stage first")
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
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(recorded, f, indent=2)
    provenance = {
        "task": results.get("task"),
        "command": command,
        "commit": commit or _commit(root),
        "seed": results.get("seed"),
        "fingerprint": _fingerprint(workdir),
        "train_wall_time_s": (results.get("stage_wall_s") or {}).get("train", train_wall_time_s),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "validation_set": results.get("validation_set"),
        "baseline_metrics": results["baseline"],
        "notes": notes,
    }
    with open(os.path.join(tmp, "PROVENANCE.json"), "w") as f:
        json.dump(provenance, f, indent=2, default=float)
    lines = [
        f"# Shipped baseline: {provenance['task']}",
        "",
        "Written by `python -m tfls.ship`; every figure below comes from the workdir's results.json.",
        "",
        f"- command: `{command}`",
        f"- commit: `{provenance['commit']}`",
        f"- seed: {provenance['seed']}",
        f"- training wall time: {provenance['train_wall_time_s']} s on {provenance['machine']['cpus']} CPUs",
        f"- checkpoint selected on: `{provenance['validation_set']}`",
    ]
    if notes:
        lines.append(f"- notes: {notes}")
    lines += ["", "| set | " + " | ".join(next(iter(results["baseline"].values())).keys()) + " |"]
    lines.append("|" + "---|" * (1 + len(next(iter(results["baseline"].values())))))
    for set_name, metrics in results["baseline"].items():
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in metrics.values()]
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
    args = parser.parse_args(argv)
    provenance = ship(args.workdir, args.output, args.command, args.commit, args.notes, args.train_wall_time_s)
    print(json.dumps(provenance, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
