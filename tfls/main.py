"""Command line: `python -m tfls.main --task=str|det|package.module:Class [--config=FILE] [--config.a.b=value]
[--workdir=DIR] [--mode=STAGES] [--verbose]`.

A failure a user can fix is one line `tfls: error: ...` and exit status 2 (`--verbose` adds the traceback).
"""

import os
import sys
import traceback

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "task", None, "str, det, or a Task class as package.module:Class (default: the config's `task` key, else str)."
)
flags.DEFINE_string(
    "workdir", None, "Checkpoints, TensorBoard logs, weights, exports and results.json (default: workdir/<task>)."
)
flags.DEFINE_string(
    "mode", "all", "Stages: all, or a comma-separated list of train, pretrain, tune, control, evaluate, export."
)
flags.DEFINE_bool("verbose", False, "Print the traceback of an error.")
config_flags.DEFINE_config_file(
    "config",
    None,
    "ml_collections config file (default: the task's own); override fields with --config.a.b=value.",
    lock_config=True,
)


def _flag_value(argv, name):
    for i, a in enumerate(argv):
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
        if a == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _default_config_argv(argv):
    """Insert `--config=<the task's default config>` when no config was given, so overrides still apply."""
    from tfls import registry

    if any(a == "--config" or a.startswith("--config=") for a in argv):
        return argv
    cls = registry.task_class(_flag_value(argv, "task") or "str")
    path = registry.default_config_path(cls)
    if path is None:
        raise registry.TaskNotFound(f"task {cls.__name__} has no default config: give --config=FILE")
    return [argv[0], f"--config={path}"] + argv[1:]


def _one_line(error):
    """An exception as one line: its type when it is not one of ours, and the first meaningful line of text
    (TensorFlow's graph errors start with "Graph execution error:" and a stack)."""
    from tfls.configuration import ConfigError
    from tfls.job import JobError
    from tfls.registry import TaskNotFound

    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [
        line for line in lines if not line.startswith(("Graph execution error", "Detected at node", "File ", "[["))
    ]
    text = (useful or lines or [""])[-1 if useful and "Graph execution" in str(error) else 0]
    if not isinstance(error, ConfigError | JobError | TaskNotFound | FileNotFoundError | ValueError):
        text = f"{type(error).__name__}: {text}"
    return text[:600]


def _task_spec(config):
    return FLAGS.task or (config.get("task") if hasattr(config, "get") else None) or "str"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from tfls import configuration, registry
    from tfls import job as job_lib

    config = FLAGS.config
    try:
        spec = _task_spec(config)
        cls = registry.task_class(spec)
        configuration.validate(config, cls)
        stages = job_lib.parse_mode(FLAGS.mode, config)
        workdir = FLAGS.workdir or os.path.join("workdir", cls.name)
        task = cls(config)
        job = job_lib.Job(task, config, workdir)
        print(
            f"tfls: task={spec} stages={','.join(stages)} workdir={job.workdir.path} "
            f"replicas={job.strategy.num_replicas_in_sync}",
            flush=True,
        )
        results = job.run(stages)
    except KeyboardInterrupt:
        print("tfls: interrupted; rerun the same command to resume from the last checkpoint", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every failure a user sees is one line unless --verbose
        if FLAGS.verbose:
            traceback.print_exc()
        print(f"tfls: error: {_one_line(e)}", file=sys.stderr, flush=True)
        return 2
    print("\n" + job_lib.summary_table(results, list(cls.reported_metrics())))
    if "surrogate" in results:
        s = results["surrogate"]
        print(
            "surrogate approximation |e_hat - e|: global "
            + f"{s.get('approx_l1_global', float('nan')):.4f}, local {s.get('approx_l1_local', float('nan')):.4f}"
        )
    print(f"wall time {results['wall_time_s']:.1f} s; results in {job.workdir.results_path}")
    return 0


def _parse_flags(argv):
    """absl's flag parsing with its errors (an unknown config key, a value of the wrong type) as one line."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        print(f"tfls: error: {str(e).splitlines()[0] if str(e) else e}", file=sys.stderr, flush=True)
        sys.exit(2)


def run():
    """Console-script entry point (`tfls`)."""
    if len(sys.argv) > 1 and sys.argv[1] == "read":
        from tfls import read

        sys.exit(read.main(sys.argv[2:]))
    try:
        sys.argv = _default_config_argv(sys.argv)
    except Exception as e:  # noqa: BLE001
        if "--verbose" in sys.argv:
            traceback.print_exc()
        print(f"tfls: error: {_one_line(e)}", file=sys.stderr, flush=True)
        sys.exit(2)
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
