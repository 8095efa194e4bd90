"""What the LS-ED surrogate charges for each kind of edit: substitutions, deletions, insertions, at the end or
inside the word.

    python bench/lsed_edit_kinds.py --surrogate="default=<workdir>/models/surrogate_pretrained" \
        --surrogate="sharpen 6=<workdir2>/models/surrogate_pretrained:surrogate.embedding_sharpen=6.0"

A tuned recognizer trades one kind of error for another when the surrogate prices them unequally (a
deletion that e_hat calls 0.6 of an edit is cheaper to the model than a substitution it calls 1.1). For
words of the task's vocabulary (the training word sampler), this script makes predictions with exactly k
edits of one kind (k = 1, 2, 3), renders them as recognizer-like softmax rows (`lsed.softmax_like`, the
rows' confidence as in pretraining) against the one-hot target, keeps the pairs whose true distance is k,
and reports the mean e_hat per kind and k. Each `--surrogate` is `label=weights folder[:key=value,...]`
(config overrides the surrogate was pretrained with). Writes docs/results/str_edit_kinds.json.
"""

import argparse
import os
import time

import common
import numpy as np

KINDS = ("substitute", "delete_end", "delete_inside", "insert_end", "insert_inside", "double")


def edit(word, kind, k, rng, characters):
    """`word` with `k` edits of `kind` (may return None when the word is too short or too long for it)."""
    s = list(word)
    for _ in range(k):
        if kind == "substitute":
            i = int(rng.integers(len(s)))
            s[i] = rng.choice([c for c in characters if c != s[i]])
        elif kind == "delete_end":
            if len(s) < 2:
                return None
            del s[-1]
        elif kind == "delete_inside":
            if len(s) < 3:
                return None
            del s[int(rng.integers(1, len(s) - 1))]
        elif kind == "insert_end":
            s.append(rng.choice(list(characters)))
        elif kind == "insert_inside":
            if len(s) < 2:
                return None
            s.insert(int(rng.integers(1, len(s))), rng.choice(list(characters)))
        elif kind == "double":
            i = int(rng.integers(len(s)))
            s.insert(i, s[i])
    return "".join(s)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--surrogate", action="append", required=True, help="label=folder[:key=value,...]")
    parser.add_argument("--pairs", type=int, default=400, help="pairs per kind and k")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="str_edit_kinds.json")
    args = parser.parse_args()

    import Levenshtein

    from tfls.job.weights import load_weights
    from tfls.recognition.lsed import softmax_like
    from tfls.recognition.task import RecognitionTask

    start = time.time()
    rows = []
    for spec in args.surrogate:
        label, rest = spec.split("=", 1)
        folder, _, overrides = rest.partition(":")
        overrides_list = overrides.split(",") if overrides else []
        config = common.load_config("str", None, overrides=common.parse_overrides(overrides_list))
        task = RecognitionTask(config)
        surrogate = task.build_surrogate().set_distance(config.surrogate.get("distance", "l2"))
        surrogate.build()
        load_weights(folder, surrogate.embedding, f"surrogate weights in {folder}")
        charset = task.charset
        rng = np.random.default_rng(args.seed)
        result = {"label": label, "weights": folder, "overrides": overrides, "by_kind": {}}
        for kind in KINDS:
            result["by_kind"][kind] = {}
            for k in (1, 2, 3):
                preds, targets = [], []
                while len(preds) < args.pairs:
                    word = task.sampler.sample(rng)[: charset.max_length]
                    pred = edit(word, kind, k, rng, charset.characters) if word else None
                    if pred is None or len(pred) > charset.max_length or Levenshtein.distance(pred, word) != k:
                        continue
                    preds.append(pred)
                    targets.append(word)
                pred_ids = charset.encode_batch(preds)
                target_ids = charset.encode_batch(targets)
                alternatives = np.where(pred_ids != target_ids, target_ids, -1)
                z = softmax_like(
                    pred_ids,
                    charset.num_classes,
                    rng,
                    alternatives,
                    garbage_after_eos=float(config.surrogate.garbage_after_eos),
                    confidence_skew=float(config.surrogate.confidence_skew),
                )
                y = np.eye(charset.num_classes, dtype=np.float32)[target_ids]
                e_true = surrogate.metric_fn(z, y)
                e_hat = surrogate.distance(z, y).numpy()
                keep = e_true == k
                result["by_kind"][kind][str(k)] = round(float(e_hat[keep].mean()), 3)
        rows.append(result)
        print(label, result["by_kind"], flush=True)
    common.write_json(
        args.output,
        {
            "command": "python bench/lsed_edit_kinds.py " + " ".join(os.sys.argv[1:]),
            "machine": common.machine(),
            "wall_time_min": round((time.time() - start) / 60, 2),
            "pairs_per_cell": args.pairs,
            "kinds": list(KINDS),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
