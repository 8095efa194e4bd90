"""A job's workdir: which stages are done (state.json), what was measured (results.json), where files go."""

import hashlib
import json
import os


class JobError(RuntimeError):
    """A job cannot go on; the message says why and what to do."""


def atomic_write_json(path, payload):
    """Write `payload` as JSON to `path` through a temporary file, so a reader never sees half a file."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=False, default=float)
    os.replace(tmp, path)


def config_fingerprint(config):
    """Hash of the parts of a config that make weights incompatible (data and model)."""
    parts = {
        k: config[k].to_dict() if hasattr(config[k], "to_dict") else config[k] for k in ("model", "data") if k in config
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Workdir:
    """State and results of one task's job in one folder.

    Under multi-worker training every worker writes only below `_worker_scratch/<index>/`, except the chief,
    which owns the folder proper; a worker therefore never reads a file another one is still writing.

    Args:
      path: the folder (created).
      task_name: refuses a folder written by another task.
      config: refuses a folder written with another data/model config (its weights would not fit).
      chief: whether this process owns the folder proper.
      worker: this worker's index.
    """

    def __init__(self, path, task_name, config, chief=True, worker=0):
        self.path = os.path.abspath(path)
        self.task_name = task_name
        self.chief = chief
        self.worker = worker
        os.makedirs(self.path, exist_ok=True)
        self.state_path = os.path.join(self.path, "state.json")
        self.results_path = os.path.join(self.path, "results.json")
        self.state = self._load_state(config_fingerprint(config))
        self.results = self._load_results()

    def _load_state(self, fingerprint):
        if os.path.exists(self.state_path):
            with open(self.state_path) as f:
                state = json.load(f)
            if state.get("task") != self.task_name or state.get("fingerprint") != fingerprint:
                raise JobError(
                    f"workdir {self.path} was written by a different task or an incompatible config "
                    f"(task {state.get('task')!r}, fingerprint {state.get('fingerprint')} vs {fingerprint} "
                    "from the current data/model config); use a new --workdir or delete this one"
                )
            return state
        state = {"task": self.task_name, "fingerprint": fingerprint, "completed": []}
        self.save_state(state)
        return state

    def _load_results(self):
        if os.path.exists(self.results_path):
            with open(self.results_path) as f:
                return json.load(f)
        return {"task": self.task_name}

    def save_state(self, state=None):
        if self.chief:
            atomic_write_json(self.state_path, state or self.state)

    def save_results(self):
        if self.chief:
            atomic_write_json(self.results_path, self.results)

    def is_complete(self, stage):
        return stage in self.state["completed"]

    def complete(self, stage):
        if stage not in self.state["completed"]:
            self.state["completed"].append(stage)
        self.save_state()

    def write_dir(self, *parts):
        """A folder to write into: the real one on the chief, a private scratch one on other workers."""
        if self.chief:
            path = os.path.join(self.path, *parts)
        else:
            path = os.path.join(self.path, "_worker_scratch", str(self.worker), *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def weights_dir(self, name):
        """`models/<name>`: weights handed from stage to stage (each worker keeps its own copy)."""
        if self.chief:
            return os.path.join(self.path, "models", name)
        return os.path.join(self.path, "_worker_scratch", str(self.worker), "models", name)

    def checkpoint_dir(self, stage):
        return os.path.join(self.path, "checkpoints", stage)
