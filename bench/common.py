"""Shared plumbing for the benchmark scripts: tasks and their configs, jobs in workdirs, JSON output.

A task is named as on the command line: `str`, `det`, or an import path `package.module:Class`; its config
is its `default_config` unless a file is given. Set TFLS_RESULTS_DIR to write (and read) the JSON elsewhere
than docs/results, e.g. for a trial run.
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
RESULTS_DIR = os.environ.get("TFLS_RESULTS_DIR") or os.path.join(ROOT, "docs", "results")

from tfls import configuration, registry  # noqa: E402


def task_class(spec):
    """The Task class of `spec` (`str`, `det` or `package.module:Class`)."""
    return registry.task_class(spec)


def config_path(spec, config=None):
    """`config` (a file, relative to the working folder or the repository, or a name in configs/: `str_paper`),
    else the task's own default config."""
    if config:
        for path in (config, os.path.join(ROOT, config)):
            if os.path.isfile(path):
                return path
        return os.path.join(ROOT, "configs", config if config.endswith(".py") else f"{config}.py")
    path = registry.default_config_path(task_class(spec))
    if path is None:
        raise SystemExit(f"task {spec!r} has no default config: give --config=FILE")
    return path


def load_config(spec, config=None, overrides=None):
    """The config of task `spec` (see `config_path`) with overrides (dict or `["a.b=v"]`), validated."""
    loaded = configuration.load_config(config_path(spec, config), overrides)
    return configuration.validate(loaded, task_class(spec))


def parse_overrides(items):
    """`["a.b=1", "c=x"]` -> `{"a.b": 1, "c": "x"}` (values as Python literals where they parse, else strings)."""
    return configuration.parse_overrides(items)


def results_name(spec):
    """The stem of a task's JSON files: its `name` (`str`, `det`, `multilabel_f1`)."""
    return task_class(spec).name


def task_metadata(spec):
    """What a results JSON records about its task, so `bench/report.py` can render it: the spec, the class,
    the metrics compared with their directions (primary first) and the set that selected the model."""
    cls = task_class(spec)
    return {
        "task": spec,
        "task_name": cls.name,
        "task_class": f"{cls.__module__}:{cls.__qualname__}",
        "primary_metric": cls.primary_metric,
        "metrics": cls.reported_metrics(),
        "validation_set": cls.validation_set,
        "selection_only_sets": list(cls.selection_only_sets),
    }


def make_job(spec, config, workdir):
    from tfls import job as job_lib

    return job_lib.Job(task_class(spec)(config), config, workdir)


def run_stages(spec, config, workdir, stages):
    import keras

    job = make_job(spec, config, workdir)
    start = time.time()
    results = job.run(stages)
    results["bench_wall_s"] = time.time() - start
    del job
    keras.backend.clear_session()
    return results


def fork_workdir(source, dest, keep=("baseline", "surrogate_pretrained"), completed=("train", "pretrain")):
    """A new workdir that starts from `source`'s trained baseline and pretrained surrogate."""
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(os.path.join(dest, "models"))
    for name in keep:
        src = os.path.join(source, "models", name)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dest, "models", name))
    with open(os.path.join(source, "state.json")) as f:
        state = json.load(f)
    state["completed"] = [s for s in completed if s in state["completed"]]
    with open(os.path.join(dest, "state.json"), "w") as f:
        json.dump(state, f)


def machine():
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["gpus"] = len(tf.config.list_physical_devices("GPU"))
    except ImportError:
        pass
    try:
        info["cpu_model"] = next(
            line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        # tracked files changed since that commit (the run's code is then not exactly the commit's)
        changed = subprocess.run(
            ["git", "diff", "--name-only", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.split()
        if changed:
            info["git_uncommitted_changes"] = changed
    except OSError:
        pass
    info["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return info


def write_json(name, payload):
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, name)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, default=float)
    os.replace(tmp, path)
    print(f"wrote {path}", flush=True)
    return path


def mean_std(values):
    import numpy as np

    values = np.asarray([v for v in values if v is not None], np.float64)
    if values.size == 0:
        return None, None
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def surrogate_values_and_gradients(surrogate, pred, target):
    """`(e_hat, d e_hat / d pred)` of a surrogate on pairs, as NumPy arrays (per pair: pairs are independent)."""
    import tensorflow as tf

    pred = tf.constant(pred)
    with tf.GradientTape() as tape:
        tape.watch(pred)
        e_hat = surrogate.distance(pred, tf.constant(target))
        total = tf.reduce_sum(e_hat)
    return e_hat.numpy(), tape.gradient(total, pred).numpy()
