"""Runs the toy task's job in a subprocess: `python run_toy_job.py WORKDIR MODE [key=value ...]`."""

import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import toy_task  # noqa: E402

from tfls import job as job_lib  # noqa: E402


def main():
    workdir, mode, *overrides = sys.argv[1:]
    config = toy_task.toy_config()
    for item in overrides:
        key, value = item.split("=", 1)
        node = config
        *path, leaf = key.split(".")
        for p in path:
            node = node[p]
        node[leaf] = type(node[leaf])(value)
    job = job_lib.Job(toy_task.ZeroOneTask(config), config, workdir)
    results = job.run(job_lib.parse_mode(mode, config))
    print(job_lib.summary_table(results), flush=True)
    digest = hashlib.sha256(b"".join(v.numpy().tobytes() for v in job.model.weights)).hexdigest()
    print(f"WEIGHTS {job.workdir.chief} {digest}", flush=True)


if __name__ == "__main__":
    main()
