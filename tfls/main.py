"""Command line: `python -m tfls.main --task=str|det [--config=configs/x.py] [--workdir=...] [--mode=...]`."""

import importlib
import os
import sys

from absl import app, flags
from ml_collections import config_flags

TASKS = {
    "str": ("tfls.recognition.task", "RecognitionTask", "configs/str.py"),
    "det": ("tfls.detection.task", "DetectionTask", "configs/det.py"),
}
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_string("task", "str", "Task to run: one of " + ", ".join(TASKS))
flags.DEFINE_string(
    "workdir", None, "Checkpoints, TensorBoard logs, weights, exports and results.json (default: workdir/<task>)."
)
flags.DEFINE_string(
    "mode", "all", "Stages: all, or a comma-separated list of train, pretrain, tune, control, evaluate, export."
)
config_flags.DEFINE_config_file(
    "config",
    None,
    "ml_collections config file (default: configs/<task>.py); override fields with --config.a.b=value.",
    lock_config=True,
)


def _default_config_argv(argv):
    """Insert `--config=configs/<task>.py` when no config was given, so overrides still apply."""
    if any(a == "--config" or a.startswith("--config=") for a in argv):
        return argv
    task = "str"
    for i, a in enumerate(argv):
        if a.startswith("--task="):
            task = a.split("=", 1)[1]
        elif a == "--task" and i + 1 < len(argv):
            task = argv[i + 1]
    if task not in TASKS:
        return argv
    return [argv[0], f"--config={os.path.join(_ROOT, TASKS[task][2])}"] + argv[1:]


def load_task(name, config):
    """Instantiate the task registered under `name`."""
    if name not in TASKS:
        raise app.UsageError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    module, cls, _ = TASKS[name]
    return getattr(importlib.import_module(module), cls)(config)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from tfls import job as job_lib

    if FLAGS.task not in TASKS:
        raise app.UsageError(f"unknown task {FLAGS.task!r}; known tasks: {', '.join(sorted(TASKS))}")
    config = FLAGS.config
    workdir = FLAGS.workdir or os.path.join("workdir", FLAGS.task)
    try:
        stages = job_lib.parse_mode(FLAGS.mode, config)
        task = load_task(FLAGS.task, config)
        job = job_lib.Job(task, config, workdir)
        print(
            f"tfls: task={FLAGS.task} stages={','.join(stages)} workdir={job.workdir} "
            f"replicas={job.strategy.num_replicas_in_sync}",
            flush=True,
        )
        results = job.run(stages)
    except job_lib.JobError as e:
        print(f"tfls: error: {e}", file=sys.stderr, flush=True)
        return 2
    print("\n" + job_lib.summary_table(results))
    if "surrogate" in results:
        s = results["surrogate"]
        print(
            "surrogate approximation |e_hat - e|: global "
            + f"{s.get('approx_l1_global', float('nan')):.4f}, local {s.get('approx_l1_local', float('nan')):.4f}"
        )
    print(f"wall time {results['wall_time_s']:.1f} s; results in {os.path.join(job.workdir, 'results.json')}")
    return 0


def run():
    """Console-script entry point (`tfls`)."""
    sys.argv = _default_config_argv(sys.argv)
    app.run(main)


if __name__ == "__main__":
    run()
