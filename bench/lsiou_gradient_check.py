"""Where LS-IoU's gradient points: the surrogate's d e_hat / d pred against the true 1 - IoU's, per pair.

    python bench/lsiou_gradient_check.py --surrogate=/tmp/tfls_bench/det/seed0/base/models/surrogate_pretrained \
        --surrogate=/tmp/tfls_bench/det/seed0/tuned/models/tuned_surrogate

For each surrogate folder (an `h_phi` saved by a detection job: `models/surrogate_pretrained` or
`models/tuned_surrogate`, built from the config's `surrogate.*`), on held-out global pairs (the fixed stream of
`tfls.surrogate.evaluation`) whose 1 - IoU lies in (0.02, 0.7) (the range tuning moves boxes in): the mean
|e_hat - e|, and the cosine between the surrogate's gradient and the true metric's, both in the box's five free
parameters (cx, cy, w, h, angle; the surrogate's gradient in (cos, sin) taken along the angle). The true
gradient is a central difference of the exact metric (shapely, `lsiou.one_minus_iou`): steps 1e-4 for the
centre and size, 1e-3 rad for the angle. Also the median ratio of the two gradients' norms. A surrogate
whose values are right can still point the model the wrong way; this measures the direction. Writes
docs/results/det_gradient_check.json (TFLS_RESULTS_DIR elsewhere); bench/report.py renders it.
"""

import argparse
import os
import time

import common
import numpy as np

BANDS = ((0.02, 0.1), (0.1, 0.3), (0.3, 0.7))


def _six(x):
    return np.stack([x[:, 0], x[:, 1], x[:, 2], x[:, 3], np.cos(x[:, 4]), np.sin(x[:, 4])], 1)


def check(surrogate, pairs):
    """Figures of one surrogate on `pairs` (pred, target)."""
    from tfls.detection import lsiou

    pred, target = pairs
    e = lsiou.one_minus_iou(pred, target)
    e_hat, g6 = common.surrogate_values_and_gradients(surrogate, pred, target)
    g6 = g6.astype(np.float64)
    x = np.stack([pred[:, 0], pred[:, 1], pred[:, 2], pred[:, 3], np.arctan2(pred[:, 5], pred[:, 4])], 1)
    x = x.astype(np.float64)
    true = np.zeros_like(x)
    for j in range(5):
        h = 1e-3 if j == 4 else 1e-4
        up, down = x.copy(), x.copy()
        up[:, j] += h
        down[:, j] -= h
        true[:, j] = (lsiou.one_minus_iou(_six(up), target) - lsiou.one_minus_iou(_six(down), target)) / (2 * h)
    angle = x[:, 4]
    ours = np.concatenate([g6[:, :4], (-np.sin(angle) * g6[:, 4] + np.cos(angle) * g6[:, 5])[:, None]], 1)
    norms = np.linalg.norm(ours, axis=1) * np.linalg.norm(true, axis=1)
    cos = np.sum(ours * true, 1) / np.maximum(norms, 1e-12)
    row = {
        "pairs": int(len(e)),
        "approx_l1": float(np.mean(np.abs(e_hat - e))),
        "cos_median": float(np.median(cos)),
        "cos_mean": float(np.mean(cos)),
        "share_cos_below_0.5": float(np.mean(cos < 0.5)),
        "share_cos_negative": float(np.mean(cos < 0)),
        "norm_ratio_median": float(
            np.median(np.linalg.norm(ours, axis=1) / np.maximum(np.linalg.norm(true, axis=1), 1e-12))
        ),
        "by_band": {},
    }
    for lo, hi in BANDS:
        inside = (e >= lo) & (e < hi)
        row["by_band"][f"{lo:g}-{hi:g}"] = {
            "pairs": int(inside.sum()),
            "cos_median": float(np.median(cos[inside])) if inside.any() else None,
        }
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--surrogate", action="append", required=True, help="a saved h_phi folder (repeatable)")
    parser.add_argument("--config", default=None, help="config file or configs/ name (default: configs/det.py)")
    parser.add_argument("--set", action="append", help="config override key=value (repeatable)")
    parser.add_argument("--pairs", type=int, default=600, help="held-out pairs with 1 - IoU in (0.02, 0.7)")
    parser.add_argument("--output", default="det_gradient_check.json", help="JSON name in docs/results")
    args = parser.parse_args()
    for folder in args.surrogate:
        if not os.path.isdir(folder):
            parser.error(f"{folder} is not a folder")

    from tfls.detection import lsiou
    from tfls.detection.task import DetectionTask
    from tfls.job import weights as weights_lib
    from tfls.surrogate.evaluation import HELD_OUT_SEED

    overrides = {"train.init_from": "", **common.parse_overrides(args.set)}
    config = common.load_config("det", args.config, overrides)
    task = DetectionTask(config)
    start = time.time()
    rows = []
    pairs = None
    for folder in args.surrogate:
        surrogate = task.build_surrogate()
        weights_lib.load_weights(folder, surrogate.embedding, f"surrogate weights {folder}")
        if pairs is None:
            pred, target = surrogate.held_out_pairs(max(10 * args.pairs, 1000), HELD_OUT_SEED)
            e = lsiou.one_minus_iou(pred, target)
            keep = np.flatnonzero((e > 0.02) & (e < 0.7))[: args.pairs]
            pairs = (pred[keep], target[keep])
        row = {"surrogate": folder, **check(surrogate, pairs)}
        rows.append(row)
        print(f"[lsiou_gradient_check] {folder}: approx {row['approx_l1']:.4f}, cos median {row['cos_median']:.3f}")
    payload = {
        "command": "python bench/lsiou_gradient_check.py " + " ".join(os.sys.argv[1:]),
        "config": os.path.relpath(common.config_path("det", args.config), common.ROOT),
        "overrides": overrides,
        "machine": common.machine(),
        "rows": rows,
        "wall_time_s": time.time() - start,
    }
    common.write_json(args.output, payload)


if __name__ == "__main__":
    main()
