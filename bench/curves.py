"""Training curves of one quality-bench seed, read back from its TensorBoard logs.

    python bench/curves.py --task=str          # after bench/quality.py; writes docs/results/str_curves.png

Panels: the baseline's training loss and held-out metric, the surrogate's pretraining error on global pairs,
and the tuning stage (surrogate distance, true metric of the batch, approximation errors) beside the
control's ordinary loss. Points are what the job logged (every `train.log_every` steps).
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
    parser.add_argument("--task", choices=["str", "det"], required=True)
    parser.add_argument("--workdir", default=None, help="the quality bench's scratch folder (default /tmp/...)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = os.path.join(args.workdir or os.path.join("/tmp", "tfls_bench", args.task), f"seed{args.seed}")
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

    ends = ("/total_edit_distance", "/hmean")
    val_tag = next((t for t in tb["train"] if t.startswith("val/") and t.endswith(ends)), None)
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
    fig.suptitle(f"{args.task.upper()} seed {args.seed} (bench/quality.py scratch logs)")
    fig.tight_layout()
    path = os.path.join(common.RESULTS_DIR, f"{args.task}_curves.png")
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
