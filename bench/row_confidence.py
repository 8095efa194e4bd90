"""How confident a recognizer's output rows are, beside the LS-ED global-pair generator's rows.

    python bench/row_confidence.py                     # the shipped baseline (weights/str) on `val`
    python bench/row_confidence.py --weights=workdir/x/models/baseline --skews=2,4,6,8

The surrogate is pretrained on generated softmax-like rows (`tfls/recognition/lsed.py: softmax_like`) and
then meets the recognizer's own free-running rows; the closer the two confidence distributions, the smaller
that domain gap. This measures the quantiles of the winning probability of every row the metric reads (up
to and including the first EOS) on the validation set (never a test set), and the same quantiles of the
generator's rows for each `surrogate.confidence_skew` in `--skews`, so the config's skew can be chosen to
match. Writes docs/results/str_row_confidence.json.
"""

import argparse
import os

import common
import numpy as np

QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5)


def read_rows(z):
    """Winning probability of each row up to and including the first EOS (class 0) of `[N, L, C]` outputs."""
    ids = np.argmax(z, axis=-1)
    ended = np.cumsum(ids == 0, axis=1) > 0
    first_eos = ended & (np.cumsum(ended, axis=1) == 1)
    return z.max(-1)[~ended | first_eos]


def summary(values):
    values = np.asarray(values, np.float64)
    return {
        "rows": int(len(values)),
        "quantiles": {str(q): round(float(np.quantile(values, q)), 4) for q in QUANTILES},
        "share_below_0.5": round(float(np.mean(values < 0.5)), 4),
        "share_below_0.9": round(float(np.mean(values < 0.9)), 4),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=os.path.join(common.ROOT, "weights", "str"), help="a weights folder")
    parser.add_argument("--skews", default="2,4,6,8", help="generator skews to compare")
    parser.add_argument("--pairs", type=int, default=2000, help="generated pairs per skew")
    parser.add_argument("--set", action="append", help="config override (repeatable)")
    args = parser.parse_args()

    from tfls.job.weights import load_weights
    from tfls.recognition.task import RecognitionTask

    config = common.load_config("str", None, overrides=common.parse_overrides(args.set))
    task = RecognitionTask(config)
    model = task.build_model()
    load_weights(args.weights, model, f"weights in {args.weights}")
    rows = []
    for x, y in task.eval_datasets()[task.validation_set]:
        pred, _, _ = task.surrogate_pairs(task.forward(model, x, y, False), y)
        rows.append(read_rows(pred.numpy()))
    payload = {
        "command": "python bench/row_confidence.py " + " ".join(os.sys.argv[1:]),
        "weights": args.weights,
        "machine": common.machine(),
        "model_on_val": summary(np.concatenate(rows)),
        "generator": {},
    }
    for skew in (float(s) for s in args.skews.split(",")):
        config.surrogate.confidence_skew = skew
        generator = RecognitionTask(config).build_surrogate().pair_generator
        pred, _ = generator.generate(args.pairs, np.random.default_rng(0))
        payload["generator"][f"skew={skew:g}"] = summary(read_rows(pred))
    for name, s in [("model (val)", payload["model_on_val"]), *payload["generator"].items()]:
        print(f"{name:>14}: quantiles {s['quantiles']}, below 0.5: {s['share_below_0.5']}", flush=True)
    common.write_json("str_row_confidence.json", payload)


if __name__ == "__main__":
    main()
