"""Training curves of one quality-bench seed, read back from its TensorBoard logs.

    python bench/curves.py --task=str          # after bench/quality.py; writes docs/results/str_curves.png

`--task` is a name or an import path (`package.module:Class`), as for bench/quality.py. Panels: the
baseline's training loss and its primary metric on the validation set (as the task declares them), the
surrogate's pretraining error on global pairs, and the tuning stage (surrogate distance, true metric of the
batch, approximation errors) beside the control's ordinary loss. Points are what the job logged (every
`train.log_every` steps).
"""

import argparse
import collections
import glob
import os

import common


def read_scalars(folder):
    """{tag: [(step, value)]} from every event file under `folder`."""
    import tensorflow as tf

    out = collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                if v.HasField("tensor"):
                    value = tf.make_ndarray(v.tensor)
                    if value.shape == ():
                        out[v.tag].append((event.step, float(value)))
                elif v.HasField("simple_value"):
                    out[v.tag].append((event.step, float(v.simple_value)))
    return {k: sorted(vals) for k, vals in out.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, help="str, det, or a Task class as package.module:Class")
    parser.add_argument("--workdir", default=None, help="the quality bench's scratch folder (default /tmp/...)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        cls = common.task_class(args.task)
    except ValueError as e:
        parser.error(str(e))
    root = os.path.join(args.workdir or os.path.join("/tmp", "tfls_bench", cls.name), f"seed{args.seed}")
    tb = {
        "train": read_scalars(os.path.join(root, "base", "tensorboard", "train")),
        "pretrain": read_scalars(os.path.join(root, "base", "tensorboard", "pretrain")),
        "tune": read_scalars(os.path.join(root, "tuned", "tensorboard", "tune")),
        "control": read_scalars(os.path.join(root, "control", "tensorboard", "control")),
    }
    if not tb["train"]:
        parser.error(f"no TensorBoard logs under {root}/base: run bench/quality.py --task={args.task} first")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # the train stage logs `val/<validation set>/<metric>`; logs from before the set was renamed name another set
    wanted = f"val/{cls.validation_set}/{cls.primary_metric}"
    candidates = [t for t in tb["train"] if t.startswith("val/") and t.endswith("/" + cls.primary_metric)]
    val_tag = wanted if wanted in tb["train"] else next(iter(candidates), None)
    panels = [
        ("baseline training", [("train", "loss", "loss")], [("train", val_tag, val_tag)] if val_tag else []),
        ("surrogate pretraining", [("pretrain", "approx_global", "mean |e_hat - e| (global, batch)")], []),
        (
            "post-tuning",
            [("tune", "surrogate_loss", "surrogate distance (tuned)"), ("tune", "true_metric", "true metric (tuned)")],
            [("control", "loss", "ordinary loss (control)")],
        ),
        (
            "surrogate during tuning",
            [("tune", "approx_global", "global pairs"), ("tune", "approx_local", "local pairs")],
            [],
        ),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (title, left, right) in zip(axes, panels):
        for stage, tag, label in left:
            pts = tb[stage].get(tag, [])
            if pts:
                ax.plot(*zip(*pts), marker=".", label=label)
        ax.set_title(title)
        ax.set_xlabel("step")
        if right:
            ax2 = ax.twinx()
            for stage, tag, label in right:
                pts = tb[stage].get(tag, [])
                if pts:
                    ax2.plot(*zip(*pts), marker="x", color="tab:red", label=label)
            ax2.legend(loc="upper right", fontsize=7)
        ax.legend(loc="upper left", fontsize=7)
    fig.suptitle(f"{cls.name} seed {args.seed} (bench/quality.py scratch logs)")
    fig.tight_layout()
    path = os.path.join(common.RESULTS_DIR, f"{cls.name}_curves.png")
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
