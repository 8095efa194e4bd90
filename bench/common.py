"""Shared plumbing for the benchmark scripts: configs with overrides, jobs in workdirs, JSON output."""

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
RESULTS_DIR = os.path.join(ROOT, "docs", "results")


def load_config(task, name=None, overrides=None):
    """`configs/<name or task>.py:get_config()` with dotted-key overrides applied (type-checked)."""
    path = os.path.join(ROOT, "configs", f"{name or task}.py")
    spec = importlib.util.spec_from_file_location(f"config_{name or task}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    for key, value in (overrides or {}).items():
        node = config
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        if leaf not in node:  # a typo would otherwise add a new key that nothing reads
            raise KeyError(f"config override {key!r}: configs/{name or task}.py has no such key")
        node[leaf] = value
    return config


def parse_overrides(items):
    """`["a.b=1", "c=x"]` -> `{"a.b": 1, "c": "x"}` (values as Python literals where they parse, else strings)."""
    import ast

    overrides = {}
    for item in items or []:
        key, value = item.split("=", 1)
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    return overrides


def make_job(task_name, config, workdir):
    from tfls import job as job_lib
    from tfls.main import load_task

    return job_lib.Job(load_task(task_name, config), config, workdir)


def run_stages(task_name, config, workdir, stages):
    from tfls import job as job_lib

    job = make_job(task_name, config, workdir)
    start = time.time()
    results = job.run(stages)
    results["bench_wall_s"] = time.time() - start
    del job
    job_lib.keras.backend.clear_session()
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
