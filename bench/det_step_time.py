"""Detection step times: ordinary training, LS-IoU tuning and serving, at the default (or any) config.

    python bench/det_step_time.py                         # writes docs/results/det_step_time.json
    python bench/det_step_time.py --set data.image_size=384 --set model.widths=(16,24,48) --output=x.json

The training and tuning steps run on one batch of real training scenes (rendered, multi-scale, augmented),
cached so that rendering is not timed; each figure is the median over `--steps` steps after `--warmup` steps
of wall time and of this process's CPU time (user + system, all threads). On a machine shared with other
jobs the wall time grows with the load (`load_average` is recorded) while the CPU time barely moves: divide
the CPU time by the idle cores a run will have to estimate its wall time. Serving is the exported graph's
function called eagerly on one JPEG of each canvas size of the scene mix (batch 1). The expected length of a
training run is `steps * wall ms/step`, printed for the config's `train.steps`.
"""

import argparse
import io
import os
import tempfile
import time

import common
import numpy as np


def _timed(fn, steps, warmup):
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(steps):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return {"wall_ms": 1000 * float(np.median(wall)), "cpu_ms": 1000 * float(np.median(cpu))}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="config file or configs/ name (default: configs/det.py)")
    parser.add_argument("--set", action="append", help="config override key=value (repeatable)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-tune", action="store_true", help="skip the tuning step")
    parser.add_argument("--output", default="det_step_time.json", help="JSON name in docs/results")
    args = parser.parse_args()

    import tensorflow as tf
    from PIL import Image

    from tfls.detection import scenes
    from tfls.job.fit import make_optimizer
    from tfls.surrogate import OrdinaryTrainer

    overrides = {"export.enabled": False, "data.train_pool": 8, "data.eval_size": 0, **common.parse_overrides(args.set)}
    config = common.load_config("det", args.config, overrides)
    with tempfile.TemporaryDirectory() as workdir:
        job = common.make_job("det", config, workdir)
        task = job.task
        x, y = next(iter(task.train_dataset(seed=1)))
        batch = tf.data.Dataset.from_tensors((x, y)).repeat()
        trainer = OrdinaryTrainer(job.model, task.forward, task.ordinary_loss)
        trainer.compile(make_optimizer(config.train.optimizer, config.train.learning_rate, config.train.clipnorm))
        iterator = iter(batch)
        trainer.make_train_function()
        step = trainer.train_function
        results = {"train": _timed(lambda: step(iterator), args.steps, args.warmup)}
        if not args.no_tune:
            tuner = job.make_tuner(make_optimizer("adam", 1e-4), make_optimizer("adam", 1e-3))
            tuner.make_train_function()
            tune_step = tuner.train_function
            results["tune"] = _timed(lambda: tune_step(iterator), args.steps, args.warmup)
        from tfls.detection.task import serving_function

        serve = serving_function(job.model, config.data.image_size, config.eval.score_threshold)
        results["serve_batch1"] = {}
        rng = np.random.default_rng(0)
        for width, height in scenes.parse_canvas_sizes(config.data.scene.canvas_sizes):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, format="JPEG")
            data = tf.constant([buf.getvalue()])
            results["serve_batch1"][f"{width}x{height}"] = _timed(lambda d=data: serve(d), args.steps, args.warmup)
    train = results["train"]
    payload = {
        "config": os.path.relpath(common.config_path("det", args.config), common.ROOT),
        "overrides": {k: v for k, v in overrides.items() if k not in ("export.enabled", "data.eval_size")},
        "machine": common.machine(),
        "load_average": list(os.getloadavg()),
        "niceness": os.nice(0),
        "image_size": int(config.data.image_size),
        "batch_size": int(config.train.batch_size),
        "train_steps": int(config.train.steps),
        "expected_train_minutes": train["wall_ms"] * config.train.steps / 60000.0,
        "steps": args.steps,
        "command": "python bench/det_step_time.py " + " ".join(os.sys.argv[1:]),
        **results,
    }
    for name, value in results.items():
        print(f"[det_step_time] {name}: {value}", flush=True)
    print(
        f"[det_step_time] {config.train.steps} training steps: about "
        f"{payload['expected_train_minutes']:.0f} min at this wall time (load {payload['load_average'][0]:.1f})",
        flush=True,
    )
    common.write_json(args.output, payload)


if __name__ == "__main__":
    main()
