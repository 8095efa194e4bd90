"""Cost figures: tuning vs ordinary step time, input pipeline, metric share, serving latency, scaling.

    python bench/cost.py                    # both tasks, writes docs/results/cost.json
    python bench/cost.py --tasks=str --steps=30
    python bench/cost.py --tasks=examples.multilabel_f1.task:MultiLabelF1Task --no-scaling   # any Task class

All timings on one machine in one process, after warm-up steps (graph tracing excluded); a step time is
the median of per-step wall times (a Keras callback), so each fit call's fixed start-up cost is left out. Serving is
measured on the exported SavedModel loaded with the TF1 session loader, the way TF Serving's C++ loader
loads it.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import common
import numpy as np

_PRINTABLE_94 = "".join(chr(c) for c in range(33, 127))

SCALING = {
    # (row label, config overrides) whose effect on step time and memory we report, per task; every row also
    # gets a small pre-rendered pool (the timing uses a cached batch, so the pool only costs start-up time)
    "str": [(f"train.batch_size={b}", {"train.batch_size": b}) for b in (16, 32, 64)]
    + [(f"data.max_length={n}", {"data.max_length": n}) for n in (5, 10, 20)]
    + [
        ("|A|=36 (0-9a-z, default)", {}),
        ("|A|=94 (printable ASCII, case-sensitive)", {"data.characters": _PRINTABLE_94, "data.case_sensitive": True}),
        # a bigger recognizer beside the same surrogate: the tuning step's relative overhead shrinks
        ("model.feature_extractor=resnet", {"model.feature_extractor": "resnet"}),
    ],
    "det": [(f"train.batch_size={b}", {"train.batch_size": b}) for b in (2, 4, 8)]
    + [(f"boxes per image <= {n}", {"data.max_words": n, "data.max_boxes": max(8, n)}) for n in (4, 8, 16)],
}
_POOL = {"str": {"data.train_pool": 256}, "det": {"data.train_pool": 64}}


def _step_clock():
    """A Keras callback that appends the wall time of every training step to the returned list."""
    import keras

    durations = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            durations.append(time.perf_counter() - self.start)

    return Clock(), durations


def _timed_fit(trainer, dataset, steps, warmup):
    """Median wall time of one step, over `steps` steps after `warmup` (tracing) steps.

    The median of per-step times, not the fit call's total / steps: each `fit` call also pays a fixed
    start-up and shut-down cost (iterator, callbacks, final logs: ~1-4 s here), which would otherwise be
    spread over the steps and dominate short measurements."""
    trainer.fit(dataset, steps_per_epoch=warmup, epochs=1, verbose=0)
    clock, durations = _step_clock()
    trainer.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
    return float(np.median(durations))


def step_times(task_name, config, steps, warmup):

    from tfls import job as job_lib
    from tfls.surrogate import OrdinaryTrainer

    with tempfile.TemporaryDirectory() as workdir:
        job = common.make_job(task_name, config, workdir)
        task, s = job.task, config.surrogate
        live = task.train_dataset(1)
        cached = live.take(4).cache().repeat()
        ordinary = OrdinaryTrainer(job.model, task.forward, task.ordinary_loss)
        ordinary.compile(job_lib.make_optimizer("adam", 1e-4))
        tuner = job.make_tuner(job_lib.make_optimizer("adam", 1e-5), job_lib.make_optimizer("adam", 1e-4))
        out = {}
        out["ordinary_step_s"] = _timed_fit(ordinary, cached, steps, warmup)
        out["tune_step_s"] = _timed_fit(tuner, cached, steps, warmup)
        out["tune_over_ordinary"] = out["tune_step_s"] / out["ordinary_step_s"]
        out["ordinary_step_live_pipeline_s"] = _timed_fit(ordinary, live, steps, warmup)
        out["live_over_cached"] = out["ordinary_step_live_pipeline_s"] / out["ordinary_step_s"]

        it = iter(task.train_dataset(2))
        next(it)
        start = time.perf_counter()
        n = max(steps, 20)
        for _ in range(n):
            next(it)
        out["pipeline_batches_per_s"] = n / (time.perf_counter() - start)
        out["training_consumes_batches_per_s"] = 1.0 / out["ordinary_step_s"]

        # the py_function metrics: true metric of local and global pairs, and drawing the global pairs
        x, y = next(iter(cached))
        pred, target, _ = task.surrogate_pairs(task.forward(job.model, x, y, True), y)
        pred, target = pred.numpy(), target.numpy()
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for _ in range(10):
            g_pred, g_target = job.surrogate.pair_generator.generate(s.batch_size, rng)
            job.surrogate.metric_fn(g_pred, g_target)
            job.surrogate.metric_fn(pred, target)
        per_step = (time.perf_counter() - start) / 10 * s.inner_steps
        out["metric_and_pairs_s_per_step"] = per_step
        out["metric_share_of_tune_step"] = per_step / out["tune_step_s"]
        out["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        del job
    return out


def serving(task_name, config, runs=50):
    """Latency at batch 1 and throughput at batch 64 of the exported SavedModel (session loader)."""
    import tensorflow as tf

    images = common.task_class(task_name)(config).serving_examples(64)  # NotImplementedError before any work
    workdir = tempfile.mkdtemp(prefix="tfls_cost_")
    job = common.make_job(task_name, config, workdir)
    path = os.path.join(workdir, "export")
    job.task.export(job.model, path)
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        sig = meta.signature_def["serving_default"]
        feed_name = sig.inputs["image_bytes"].name
        fetches = {k: v.name for k, v in sig.outputs.items()}
        one = np.array(images[:1], dtype=object)
        batch = np.array(images, dtype=object)
        for _ in range(3):
            sess.run(fetches, {feed_name: one})
        lat = []
        for _ in range(runs):
            t = time.perf_counter()
            sess.run(fetches, {feed_name: one})
            lat.append(time.perf_counter() - t)
        sess.run(fetches, {feed_name: batch})
        t = time.perf_counter()
        reps = 5
        for _ in range(reps):
            sess.run(fetches, {feed_name: batch})
        throughput = reps * len(images) / (time.perf_counter() - t)
    shutil.rmtree(workdir, ignore_errors=True)
    return {
        "serving_latency_b1_median_ms": float(np.median(lat) * 1000),
        "serving_latency_b1_p95_ms": float(np.percentile(lat, 95) * 1000),
        "serving_throughput_b64_images_per_s": throughput,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="str,det")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("TASK", "JSON_OVERRIDES", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task, overrides, steps = args.child
        t = step_times(task, common.load_config(task, overrides=json.loads(overrides)), int(steps), 2)
        print(json.dumps({k: t[k] for k in ("ordinary_step_s", "tune_step_s", "max_rss_mib")}))
        return
    payload = {"machine": common.machine(), "command": "python bench/cost.py " + " ".join(os.sys.argv[1:]), "tasks": {}}
    for task in [t for t in args.tasks.split(",") if t]:
        config = common.load_config(task)
        result = step_times(task, config, args.steps, args.warmup)
        try:
            result.update(serving(task, config))
        except NotImplementedError as e:  # a task without serving_examples: no serving figures
            print(f"[cost] {task}: no serving figures ({e})", flush=True)
        if not args.no_scaling:
            rows = []
            for label, overrides in SCALING.get(task, []):
                # each setting in a child process, so max RSS is that setting's own peak
                child = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--child", task]
                    + [json.dumps({**_POOL.get(task, {}), **overrides})]
                    + [str(max(10, args.steps // 2))],
                    capture_output=True,
                    text=True,
                )
                row = {"setting": label}
                try:
                    row.update(json.loads(child.stdout.strip().splitlines()[-1]))
                except (ValueError, IndexError):  # a setting the task does not support is reported, not hidden
                    err = (child.stderr.strip().splitlines() or ["no output"])[-1]
                    nan = float("nan")
                    row.update(ordinary_step_s=nan, tune_step_s=nan, max_rss_mib=nan, error=err[:120])
                rows.append(row)
                print(rows[-1], flush=True)
            result["scaling"] = rows
        payload["tasks"][task] = result
        print(task, {k: v for k, v in result.items() if k != "scaling"}, flush=True)
        common.write_json("cost.json", payload)


if __name__ == "__main__":
    main()
