"""Cost figures: tuning vs ordinary step time, input pipeline, metric share, serving latency, scaling.

    python bench/cost.py                    # both tasks, writes docs/results/cost.json
    python bench/cost.py --tasks=str --steps=30 --repeats=5
    python bench/cost.py --tasks=examples.multilabel_f1.task:MultiLabelF1Task --no-scaling   # any Task class

All timings on one machine in one process, after warm-up steps (graph tracing and XLA compilation excluded);
a step time comes from per-step wall times (a Keras callback), so each fit call's fixed start-up cost is
left out: the median over the step's schedule cycles (lazy penalty on every k-th phi update, phi on every m-th
step) of each cycle's mean step (`window_step_time`; the median step for an ordinary step). Every tuning
variant (`tuning_rows`: lazy gradient penalty k, phi every m steps, metric and global pairs through
`tf.py_function` or in the graph with a prefetched pair stream, XLA on or off) is timed `--repeats` times,
each time right after the ordinary step is timed over as many steps (the rows in a shuffled order per
repeat), so a slow drift or a stall of a shared machine hits a pair, not every row timed late in a repeat; a
row's ratio is the median over repeats of (its step / the ordinary step timed just before it), with the
smallest and largest beside it. The headline `tune_over_ordinary` is the row of the task's default config,
copied from the table. Serving is measured on the exported SavedModel loaded with the TF1 session loader,
the way TF Serving's C++ loader loads it.
"""

import argparse
import copy
import json
import math
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


def window_step_time(durations, period=1):
    """One step's wall time from per-step `durations` of a step whose work cycles with `period` (lazy
    penalty, phi on every m-th step): the median over consecutive windows of `period` steps of each window's
    mean. Every window holds each phase of the cycle once, so the figure is a cycle's mean step, where a
    plain median of per-step times would pick the common cheap step and leave the periodic heavy one out;
    the median over windows still drops a window hit by a stall. With period 1 it is the median step."""
    period = max(int(period), 1)
    windows = len(durations) // period
    if windows < 1:
        raise ValueError(f"{len(durations)} timed steps hold no whole cycle of {period}")
    means = np.asarray(durations[: windows * period], np.float64).reshape(windows, period).mean(axis=1)
    return float(np.median(means))


def timed_steps(steps, period=1):
    """Steps one timing of a step with schedule `period` runs: `steps` rounded up to whole cycles, at least
    3 cycles when the step cycles (period > 1)."""
    period = max(int(period), 1)
    return period * max(3 if period > 1 else 1, -(-int(steps) // period))


def paired_ratios(row_times, ordinary_times):
    """Each timing of a row over the ordinary step timed just before it (the pair of the paired protocol)."""
    if len(row_times) != len(ordinary_times):
        raise ValueError(f"{len(row_times)} row timings against {len(ordinary_times)} ordinary ones: not paired")
    return [t / o for t, o in zip(row_times, ordinary_times)]


def _timed_fit(trainer, dataset, steps, warmup, period=1):
    """Wall time of one step (`window_step_time`) over at least `steps` steps after `warmup` (tracing)
    steps (none when 0): rounded up to whole cycles of `period`, at least 3 of them.

    Per-step times, not the fit call's total / steps: each `fit` call also pays a fixed start-up and
    shut-down cost (iterator, callbacks, final logs: ~1-4 s here), which would otherwise be spread over the
    steps and dominate short measurements."""
    if warmup:
        trainer.fit(dataset, steps_per_epoch=warmup, epochs=1, verbose=0)
    period = max(int(period), 1)
    steps = timed_steps(steps, period)
    clock, durations = _step_clock()
    trainer.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
    return window_step_time(durations, period)


def _in_graph_metric(task, surrogate):
    """The task's in-graph metric: its surrogate's `metric_fn_tf`, else (built-in tasks that have not opted in
    yet) the twin the core offers for its metric; None when there is none."""
    if surrogate.metric_fn_tf is not None:
        return surrogate.metric_fn_tf, "task"
    if task.name == "str":
        from tfls.recognition.metrics import edit_distance_metric_tf

        return edit_distance_metric_tf(task.is_ctc), "bench (tfls.recognition.metrics.edit_distance_metric_tf)"
    if task.name == "det":
        from tfls.detection.iou import tf_one_minus_iou

        return tf_one_minus_iou, "bench (tfls.detection.iou.tf_one_minus_iou)"
    return None, None


def tuning_variants(config, in_graph_available, rows="all"):
    """`(label, in_graph, tuner overrides, jit)` of each timed tuning row; the first is the default config.

    The rows: the metric and the global pairs through `tf.py_function` (the paper's path, every step) and the
    in-graph metric with the pair stream, each with the gradient penalty on every step (k=1) and on every 4th
    (k=4), the in-graph ones without and with XLA, and the in-graph k=4 step with phi updated on every 2nd step
    (m=2, `tune.surrogate_every`), and on every 2nd, 3rd and 4th with 32 global pairs per phi update. The
    row that matches the task's config (its `surrogate.global_pairs`, `surrogate.grad_penalty_every`,
    `tune.surrogate_every`, `tune.global_batch_size`, `tune.jit_compile`) comes first, labelled the default.
    `rows="reduced"` drops the py_function k=4 and XLA k=1 rows, for machines where every XLA compilation of a
    big model costs minutes."""

    def label(in_graph, k, jit, m=1, g=0):
        extra = (f", phi every {m} steps" if m > 1 else "") + (f", {g} global pairs" if g else "")
        if not in_graph:
            return f"py_function metric, k={k}{extra}"
        return f"in-graph metric + pair stream, k={k}{extra}, jit {'on' if jit else 'off'}"

    def row(in_graph, k, jit, m=1, g=0):
        overrides = {"grad_penalty_every": k, "global_pairs": "dataset" if in_graph else "py_function"}
        # every row pins its own phi schedule and global batch (0: surrogate.batch_size), so no row inherits the
        # config's tuning settings but the default row
        overrides["surrogate_every"] = m
        overrides["global_batch_size"] = g
        return [label(in_graph, k, jit, m, g), in_graph, overrides, jit]

    out = [row(False, 1, False)] + ([row(False, 4, False)] if rows == "all" else [])
    if in_graph_available:
        out += [row(True, 1, False), row(True, 4, False), row(True, 4, False, m=2)]
        out += [row(True, 4, False, m=m, g=32) for m in (2, 3, 4)]
        out += [row(True, 1, True)] if rows == "all" else []
        out += [row(True, 4, True)]
    k = int(config.surrogate.get("grad_penalty_every", 1))
    m = int(config.tune.get("surrogate_every", 1))
    g = int(config.tune.get("global_batch_size", 0))
    in_graph = config.surrogate.get("global_pairs", "py_function") == "dataset" and in_graph_available
    jit = bool(config.tune.get("jit_compile", False)) and in_graph
    default = label(in_graph, k, jit, m, g)
    match = [r for r in out if r[0] == default]
    if match:
        out.remove(match[0])
    else:
        match = [row(in_graph, k, jit, m, g)]
    match[0][0] += " (default config)"
    return [tuple(r) for r in match + out]


def schedule_period(tuner):
    """Model steps after which a tuning step's work repeats: phi is updated (J times) on every m-th step and
    the gradient penalty applies on every k-th phi update, so the step times cycle with period
    m * k / gcd(J, k) (1 for an ordinary step)."""
    m = int(getattr(tuner, "surrogate_every", 1))
    if not getattr(tuner, "update_surrogate", False):
        return 1
    k = int(getattr(tuner, "grad_penalty_every", 1)) if getattr(tuner, "grad_penalty_weight", 0) > 0 else 1
    inner = int(getattr(tuner, "inner_steps", 1))
    return m * k // math.gcd(inner, k)


def _make_variant(job, metric_tf, in_graph, overrides, jit):
    """A compiled `SurrogateTuner` for one row, sharing the job's model and embedding."""
    from tfls import job as job_lib
    from tfls.job import stages as stages_lib
    from tfls.surrogate import SurrogateTuner

    s, t = job.config.surrogate, job.config.tune
    surrogate = copy.copy(job.surrogate)  # the same embedding and pair stream, its own metric path
    surrogate.metric_fn_tf = metric_tf if in_graph else None
    kwargs = dict(
        inner_steps=s.inner_steps,
        local_weight=s.local_weight,
        ordinary_loss_weight=t.ordinary_loss_weight,
        update_surrogate=t.update_surrogate,
        global_batch_size=stages_lib.tuning_global_batch_size(job.config),
        grad_penalty_weight=s.grad_penalty_weight,
        robust_threshold=s.robust_threshold,
        grad_penalty_every=s.grad_penalty_every,
        surrogate_every=int(t.get("surrogate_every", 1)),
    )
    kwargs.update(overrides)
    kwargs["global_batch_size"] = kwargs["global_batch_size"] or s.batch_size  # a row's 0: the pretraining batch
    task = job.task
    tuner = SurrogateTuner(
        job.model, surrogate, task.tuning_forward, task.surrogate_pairs, task.ordinary_loss, **kwargs
    )
    tuner.compile(job_lib.make_optimizer("adam", 1e-5), job_lib.make_optimizer("adam", 1e-4), jit_compile=jit)
    return tuner


def _spread(values):
    values = np.asarray(values, np.float64)
    return float(np.median(values)), float(values.min()), float(values.max())


def step_times(task_name, config, steps, warmup, repeats=3, variants=True, rows="all"):
    from tfls import job as job_lib
    from tfls.job import stages as stages_lib
    from tfls.surrogate import OrdinaryTrainer

    with tempfile.TemporaryDirectory() as workdir:
        job = common.make_job(task_name, config, workdir)
        task, s = job.task, config.surrogate
        live = task.train_dataset(1)
        cached = live.take(4).cache().repeat()
        ordinary = OrdinaryTrainer(job.model, task.forward, task.ordinary_loss)
        ordinary.compile(job_lib.make_optimizer("adam", 1e-4))
        _timed_fit(ordinary, cached, 1, warmup)
        out = {}

        metric_tf, metric_source = _in_graph_metric(task, job.surrogate)
        rows = tuning_variants(config, metric_tf is not None, rows)[: None if variants else 1]
        tuners, table = [], []
        for label, in_graph, overrides, jit in rows:
            row = {"setting": label, "note": ""}
            start = time.perf_counter()
            try:
                tuner = _make_variant(job, metric_tf, in_graph, overrides, jit)
                _timed_fit(tuner, cached, 1, warmup)
            except Exception as e:  # a variant that does not run here (XLA on an op without a kernel) is shown
                tuner, row["note"] = None, f"does not run: {type(e).__name__}: {str(e).splitlines()[0][:150]}"
            row["build_and_warmup_s"] = time.perf_counter() - start
            print(f"[cost] {task_name}: {label}: built and warmed up in {row['build_and_warmup_s']:.0f} s", flush=True)
            tuners.append(tuner)
            table.append(row)

        # Paired timing: every measurement of a row comes right after an ordinary measurement of as many steps,
        # and its ratio is to that one; the rows' order is shuffled per repeat (fixed seed), so a slow drift or
        # a stall of a shared machine lands on a pair, not on every row measured late in the repeat.
        times, paired = [[] for _ in rows], [[] for _ in rows]
        order_rng = np.random.default_rng(0)
        for _ in range(repeats):
            for i in order_rng.permutation(len(tuners)):
                tuner = tuners[i]
                if tuner is None:
                    continue
                period = schedule_period(tuner)
                n = timed_steps(steps, period)
                paired[i].append(_timed_fit(ordinary, cached, n, 0))
                times[i].append(_timed_fit(tuner, cached, n, 0, period))
        ordinary_times = [o for pairs in paired for o in pairs]
        for i, values in enumerate(times):
            ratios = paired_ratios(values, paired[i]) if values else [float("nan")]
            median, low, high = _spread(ratios)
            row = table[i]
            table[i] = {
                "setting": row["setting"],
                "ratio_median": median,
                "ratio_min": low,
                "ratio_max": high,
                "tune_step_s": _spread(values)[0] if values else float("nan"),
                "build_and_warmup_s": row["build_and_warmup_s"],
                "note": row["note"],
            }
            print(f"[cost] {task_name}: {table[i]}", flush=True)
        out["repeats"] = repeats
        out["steps_per_repeat"] = steps
        out["ordinary_step_s"], out["ordinary_step_min_s"], out["ordinary_step_max_s"] = _spread(ordinary_times)
        headline = table[0]
        out["tune_step_s"] = headline["tune_step_s"]
        out["tune_over_ordinary"] = headline["ratio_median"]
        out["tune_over_ordinary_row"] = headline["setting"]
        out["in_graph_metric_from"] = metric_source or "none (the task has no in-graph metric)"
        out["tuning_rows"] = table

        out["ordinary_step_live_pipeline_s"] = _timed_fit(ordinary, live, steps, 1)
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
        # the config's tuning step: its global batch, phi (and so the metric) on every m-th step
        t = config.tune
        g_batch = stages_lib.tuning_global_batch_size(config)
        for _ in range(10):
            g_pred, g_target = job.surrogate.pair_generator.generate(g_batch, rng)
            job.surrogate.metric_fn(g_pred, g_target)
            job.surrogate.metric_fn(pred, target)
        per_step = (time.perf_counter() - start) / 10 * s.inner_steps / int(t.get("surrogate_every", 1))
        out["metric_and_pairs_s_per_step"] = per_step
        out["metric_share_of_tune_step"] = per_step / out["tune_step_s"]
        out["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        del job, tuners
    return out


def lazy_penalty_approximation(task_name, config, steps, every=(1, 4)):
    """Approximation error on held-out global pairs after `steps` phi updates on global pairs from the same
    initial weights and pair stream, for each k of the lazy gradient penalty (and the phi step's time)."""
    import tensorflow as tf

    from tfls import job as job_lib
    from tfls.surrogate import SurrogatePretrainer, evaluation

    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        job = common.make_job(task_name, config, workdir)
        s = config.surrogate
        initial = [v.numpy() for v in job.surrogate.variables]
        pairs = job.surrogate.held_out_pairs(s.eval_pairs, evaluation.HELD_OUT_SEED)
        for k in every:
            for v, value in zip(job.surrogate.variables, initial):
                v.assign(value)
            job.surrogate.reseed(config.seed)
            trainer = SurrogatePretrainer(
                job.surrogate,
                global_batch_size=s.batch_size,
                grad_penalty_weight=s.grad_penalty_weight,
                robust_threshold=s.robust_threshold,
                grad_penalty_every=k,
            )
            trainer.compile(job_lib.make_optimizer(s.optimizer, s.learning_rate))
            clock, durations = _step_clock()
            counter = tf.data.Dataset.from_tensors(0.0).repeat()
            trainer.fit(counter, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
            e_hat = job.surrogate.distance(*pairs).numpy()
            e = job.surrogate.metric_fn(*pairs)
            rows.append(
                {
                    "setting": f"k={k}",
                    "phi_steps": steps,
                    "approx_l1_global": float(np.mean(np.abs(e_hat - e))),
                    # the first steps trace; windows of k steps hold one penalty step each
                    "phi_step_s": window_step_time(durations[2:], k),
                }
            )
            print(f"[cost] {task_name}: lazy penalty {rows[-1]}", flush=True)
    return rows


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


def _previous():
    path = os.path.join(common.RESULTS_DIR, "cost.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _keep_other_tasks(payload, run, old):
    """Tasks of the existing cost.json that this run does not measure, kept and marked as such."""
    for task, result in old.get("tasks", {}).items():
        if task not in run:
            note = result.get("measured_by") or (
                f"an earlier run ({old.get('machine', {}).get('date')}, commit "
                f"{old.get('machine', {}).get('git_commit')}, command `{old.get('command')}`)"
                + ("" if "tuning_rows" in result else ": one draw per ratio, no repeats")
            )
            payload["tasks"][task] = {"measured_by": note, **result}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="str,det")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per tuning row (>= 3)")
    parser.add_argument("--approx-steps", type=int, default=300, help="phi steps of the lazy-penalty check (0: off)")
    parser.add_argument("--rows", choices=("all", "reduced"), default="all", help="tuning variants timed")
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--no-serving", action="store_true", help="keep the serving figures of cost.json")
    parser.add_argument("--child", nargs=3, metavar=("TASK", "JSON_OVERRIDES", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task, overrides, steps = args.child
        config = common.load_config(task, overrides=json.loads(overrides))
        t = step_times(task, config, int(steps), 2, repeats=1, variants=False)
        print(json.dumps({k: t[k] for k in ("ordinary_step_s", "tune_step_s", "max_rss_mib")}))
        return
    tasks = [t for t in args.tasks.split(",") if t]
    payload = {"machine": common.machine(), "command": "python bench/cost.py " + " ".join(os.sys.argv[1:]), "tasks": {}}
    previous = _previous()
    _keep_other_tasks(payload, tasks, previous)
    for task in tasks:
        config = common.load_config(task)
        result = step_times(task, config, args.steps, args.warmup, args.repeats, rows=args.rows)
        if args.approx_steps:
            result["lazy_penalty_approximation"] = lazy_penalty_approximation(task, config, args.approx_steps)
        old_serving = {k: v for k, v in previous.get("tasks", {}).get(task, {}).items() if k.startswith("serving_")}
        if args.no_serving and old_serving:  # the export does not change with the tuning step: kept, marked
            result.update(old_serving)
            result.setdefault("serving_measured_by", f"an earlier run ({previous['machine'].get('date')})")
        if not args.no_serving:
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
        print(task, {k: v for k, v in result.items() if not isinstance(v, list)}, flush=True)
        common.write_json("cost.json", payload)


if __name__ == "__main__":
    main()
