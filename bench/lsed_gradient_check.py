"""Where the LS-ED surrogate's gradient points, against the direction that would fix the word.

    python bench/lsed_gradient_check.py --surrogate=/tmp/tfls_bench/str/seed0/base/models/surrogate_pretrained
    python bench/lsed_gradient_check.py --surrogate=... --weights=workdir/x/models/baseline --set=data.eval_size=2000

Tuning moves the recognizer along the gradient of the surrogate distance e_hat = ||h(z) - h(y)|| with respect
to its free-running outputs z = softmax(logits). This script asks, on `val` (the selection set, never a test
set), whether that direction is one that lowers the true edit distance e: for every word it takes the
gradient of e_hat with respect to the logits, steps the logits against it by a few sizes (the step
normalised per word, so the sizes are comparable across words and directions), decodes greedily and counts
the edits again. The same is done with a reference direction that knows the answer: the per-row cross
entropy with the ground truth at the same position (softmax - one_hot(y)), exact for substitution errors and
the direction the teacher-forced ordinary loss takes when no insertion or deletion shifts the rows.

Reported per step size and per direction: the share of wrong words with fewer edits after the step, the
share of correct words broken, the mean change of the total, the cosine between the two directions (wrong
and correct words apart), e_hat against e, and examples. The logits are moved as free variables: a
real update changes the model's weights, and a changed row also changes what the decoder feeds back to the
next ones, so this measures the surrogate's direction in z, the part tuning cannot do better than.
Writes docs/results/str_gradient_check.json.
"""

import argparse
import os

import common
import numpy as np

STEPS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def step_outcomes(logits, grad, decode, gts, sizes):
    """Edit distances after `logits - size * grad / ||grad||` (per word) for every size: `{size: [N]}`."""
    from tfls.recognition.metrics import edit_distances

    norm = np.sqrt(np.sum(grad**2, axis=(1, 2), keepdims=True)) + 1e-12
    unit = grad / norm
    out = {}
    for size in sizes:
        texts = decode(logits - size * unit)
        out[size] = edit_distances(texts, gts)
    return out


def cosine(a, b):
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=os.path.join(common.ROOT, "weights", "str"), help="recognizer weights")
    parser.add_argument("--surrogate", required=True, help="surrogate weights (<workdir>/models/surrogate_pretrained)")
    parser.add_argument("--set", action="append", help="config override (repeatable)")
    parser.add_argument("--examples", type=int, default=12, help="wrong words listed in the JSON")
    parser.add_argument("--output", default="str_gradient_check.json")
    args = parser.parse_args()

    import time

    import tensorflow as tf

    from tfls.job.weights import load_weights
    from tfls.recognition.lsed import decode_matrices
    from tfls.recognition.metrics import edit_distances
    from tfls.recognition.task import RecognitionTask

    start = time.time()
    config = common.load_config("str", None, overrides=common.parse_overrides(args.set))
    task = RecognitionTask(config)
    if task.is_ctc:
        raise SystemExit("lsed_gradient_check: the attention recognizer only (free-running rows)")
    model = task.build_model()
    load_weights(args.weights, model, f"weights in {args.weights}")
    surrogate = task.build_surrogate().set_distance(config.surrogate.get("distance", "l2"))
    load_weights(args.surrogate, surrogate.embedding, f"surrogate weights in {args.surrogate}")
    charset = task.charset

    def decode(logits):
        return decode_matrices(logits, charset, False)

    rows = {k: [] for k in ("e", "e_hat", "cos", "len_gt", "len_pred", "norm_sur", "norm_ref")}
    after = {"surrogate": {s: [] for s in STEPS}, "reference": {s: [] for s in STEPS}}
    examples = []
    for x, y in task.eval_datasets()[task.validation_set]:
        logits = tf.cast(model(x, training=False, feedback="argmax"), tf.float32)
        target = tf.one_hot(tf.cast(y, tf.int32), charset.num_classes)
        with tf.GradientTape() as tape:
            tape.watch(logits)
            e_hat = surrogate.distance(tf.nn.softmax(logits, axis=-1), target)
            total = tf.reduce_sum(e_hat)
        g_sur = tape.gradient(total, logits).numpy()
        lg = logits.numpy()
        g_ref = tf.nn.softmax(logits, axis=-1).numpy() - target.numpy()
        preds = decode(lg)
        gts = decode(target.numpy())
        e = edit_distances(preds, gts)
        cos = cosine(g_sur, g_ref)
        rows["e"].append(e)
        rows["e_hat"].append(e_hat.numpy())
        rows["cos"].append(cos)
        rows["norm_sur"].append(np.sqrt(np.sum(g_sur**2, axis=(1, 2))))
        rows["norm_ref"].append(np.sqrt(np.sum(g_ref**2, axis=(1, 2))))
        rows["len_gt"].append(np.asarray([len(g) for g in gts]))
        rows["len_pred"].append(np.asarray([len(p) for p in preds]))
        sur = step_outcomes(lg, g_sur, decode, gts, STEPS)
        ref = step_outcomes(lg, g_ref, decode, gts, STEPS)
        for s in STEPS:
            after["surrogate"][s].append(sur[s])
            after["reference"][s].append(ref[s])
        for i in np.flatnonzero(e > 0):
            if len(examples) < args.examples:
                best = min(STEPS, key=lambda s: sur[s][i])
                examples.append(
                    {
                        "truth": gts[i],
                        "read": preds[i],
                        "e": int(e[i]),
                        "e_hat": round(float(e_hat[i]), 3),
                        "cosine_with_reference": round(float(cos[i]), 3),
                        "surrogate_step_best": {
                            "size": best,
                            "reads": decode(
                                lg[i : i + 1] - best * g_sur[i : i + 1] / (np.linalg.norm(g_sur[i]) + 1e-12)
                            )[0],
                            "e": int(sur[best][i]),
                        },
                        "reference_step_1": {
                            "reads": decode(lg[i : i + 1] - g_ref[i : i + 1] / (np.linalg.norm(g_ref[i]) + 1e-12))[0],
                            "e": int(ref[1.0][i]),
                        },
                    }
                )
    r = {k: np.concatenate(v) for k, v in rows.items()}
    wrong, right = r["e"] > 0, r["e"] == 0
    same_len = wrong & (r["len_gt"] == r["len_pred"])
    payload = {
        "command": "python bench/lsed_gradient_check.py " + " ".join(os.sys.argv[1:]),
        "weights": args.weights,
        "surrogate": args.surrogate,
        "set": task.validation_set,
        "machine": common.machine(),
        "words": int(len(r["e"])),
        "wrong_words": int(wrong.sum()),
        "wrong_same_length": int(same_len.sum()),
        "total_edits": int(r["e"].sum()),
        "e_hat_by_e": {
            str(int(k)): {
                "n": int((r["e"] == k).sum()),
                "mean_e_hat": round(float(r["e_hat"][r["e"] == k].mean()), 3),
                # how hard each direction pushes a word: what share of a batch's update goes to correct words
                "mean_grad_norm_surrogate": round(float(r["norm_sur"][r["e"] == k].mean()), 4),
                "mean_grad_norm_reference": round(float(r["norm_ref"][r["e"] == k].mean()), 4),
            }
            for k in np.unique(r["e"])
        },
        "share_of_gradient_on_correct_words": {
            "surrogate": round(float(r["norm_sur"][right].sum() / r["norm_sur"].sum()), 4),
            "reference": round(float(r["norm_ref"][right].sum() / r["norm_ref"].sum()), 4),
        },
        "cosine_wrong_mean": round(float(r["cos"][wrong].mean()), 3) if wrong.any() else None,
        "cosine_wrong_same_length_mean": round(float(r["cos"][same_len].mean()), 3) if same_len.any() else None,
        "cosine_correct_mean": round(float(r["cos"][right].mean()), 3),
        "steps": {},
        "examples": examples,
    }
    for name, per in after.items():
        payload["steps"][name] = {}
        for s in STEPS:
            e2 = np.concatenate(per[s])
            payload["steps"][name][str(s)] = {
                "wrong_fixed_or_better": round(float(np.mean(e2[wrong] < r["e"][wrong])), 4) if wrong.any() else None,
                "wrong_worse": round(float(np.mean(e2[wrong] > r["e"][wrong])), 4) if wrong.any() else None,
                "correct_broken": round(float(np.mean(e2[right] > 0)), 4),
                "total_edits_after": int(e2.sum()),
            }
    print(
        f"{payload['words']} words, {payload['wrong_words']} wrong ({payload['total_edits']} edits); cosine(surrogate, "
        f"reference): wrong {payload['cosine_wrong_mean']}, correct {payload['cosine_correct_mean']}",
        flush=True,
    )
    for name in after:
        for s in STEPS:
            v = payload["steps"][name][str(s)]
            print(
                f"{name:>9} step {s:>4}: wrong better {v['wrong_fixed_or_better']}, wrong worse {v['wrong_worse']}, "
                f"correct broken {v['correct_broken']}, total edits {v['total_edits_after']}",
                flush=True,
            )
    payload["wall_time_s"] = time.time() - start
    common.write_json(args.output, payload)


if __name__ == "__main__":
    main()
