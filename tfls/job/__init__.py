"""Runs the stages of a task's job (train, pretrain, tune, control, evaluate, export) in a workdir.

Every stage checkpoints every `checkpoint_every` steps and at its end; a restarted job with the same
workdir skips finished stages and resumes the current one at its saved step. Weights handed from stage to
stage live in `<workdir>/models/<name>/` (baseline, surrogate_pretrained, tuned, tuned_surrogate,
control); TensorBoard logs in `<workdir>/tensorboard/<stage>/`; the SavedModel in
`<workdir>/export/<task>/<version>/`; the summary in `<workdir>/results.json`.

  workdir.py  folder state (state.json, results.json), fingerprint, where files go
  weights.py  weights between stages (atomic write, strict read)
  fit.py      the resumable fit loop, its progress/TensorBoard callback, optimizers
  stages.py   the six stages
  runner.py   `Job`, `parse_mode`, the learning-rate schedule, the comparison table
"""

from tfls.job.fit import make_optimizer
from tfls.job.runner import MODES, STAGES, Job, WarmupCosine, parse_mode, summary_table
from tfls.job.weights import Weights
from tfls.job.workdir import JobError, atomic_write_json, config_fingerprint

__all__ = [
    "MODES",
    "STAGES",
    "Job",
    "JobError",
    "Weights",
    "WarmupCosine",
    "atomic_write_json",
    "config_fingerprint",
    "make_optimizer",
    "parse_mode",
    "summary_table",
]
