"""STR metrics: word accuracy, total edit distance and normalised edit distance, and where the edits are.

Normalised ED follows the ICDAR 2019 convention: per sample `1 - ED / max(len(gt), len(pred))` (1 when both
are empty), averaged. Strings are compared exactly; normalise case before calling when case-insensitive.
The edits are split by kind along one minimal edit script from the ground truth to the prediction
(`insertions`: characters the prediction has in excess, `deletions`: characters it lost, `substitutions`) and
by ground-truth length (`edit_distance_len_<range>`), to show where a change of model helps or hurts.
"""

import Levenshtein
import numpy as np
import tensorflow as tf


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def edit_distances(preds, gts):
    """Levenshtein distance of each (prediction, ground truth) pair; numpy int32 `[N]`."""
    return np.asarray([Levenshtein.distance(_text(p), _text(g)) for p, g in zip(preds, gts)], np.int32)


def normalized_similarity(preds, gts):
    """Per-sample `1 - ED / max(len(gt), len(pred))`, 1 when both strings are empty; float64 `[N]`."""
    out = []
    for p, g in zip(preds, gts):
        p, g = _text(p), _text(g)
        longest = max(len(p), len(g))
        out.append(1.0 if longest == 0 else 1.0 - Levenshtein.distance(p, g) / longest)
    return np.asarray(out, np.float64)


def edit_distances_tf(preds, gts):
    """`edit_distances` as a graph op (`tf.py_function`): tf.string `[N]` x2 -> int32 `[N]`."""
    out = tf.py_function(lambda p, g: edit_distances(p.numpy(), g.numpy()), [preds, gts], tf.int32)
    out.set_shape(preds.shape)
    return out


LENGTH_BUCKETS = ((1, 3), (4, 6), (7, 9), (10, None))


def length_bucket(length):
    """Name of the ground-truth length bucket of `LENGTH_BUCKETS` (`"1-3"`, ..., `"10+"`)."""
    for low, high in LENGTH_BUCKETS:
        if length >= low and (high is None or length <= high):
            return f"{low}-{high}" if high is not None else f"{low}+"
    return "0"


def edit_kinds(pred, gt):
    """`(insertions, deletions, substitutions)` of one minimal edit script turning `gt` into `pred`."""
    counts = {"insert": 0, "delete": 0, "replace": 0}
    for op, _, _ in Levenshtein.editops(_text(gt), _text(pred)):
        counts[op] += 1
    return counts["insert"], counts["delete"], counts["replace"]


class WordMetrics:
    """Accumulates the STR metrics over batches of decoded strings."""

    def __init__(self):
        self.reset()

    def reset(self):
        """Clears the running sums."""
        self.num_samples = 0
        self.correct = 0
        self.total_edit_distance = 0
        self.similarity_sum = 0.0
        self.kinds = np.zeros(3, np.int64)
        self.by_length = {}

    def update(self, preds, gts, distances=None):
        """Adds a batch. `distances` may be given (e.g. from `edit_distances_tf`) to avoid recomputing."""
        preds = [_text(p) for p in preds]
        gts = [_text(g) for g in gts]
        if len(preds) != len(gts):
            raise ValueError(f"{len(preds)} predictions for {len(gts)} ground truths")
        d = edit_distances(preds, gts) if distances is None else np.asarray(distances)
        self.num_samples += len(preds)
        self.correct += sum(p == g for p, g in zip(preds, gts))
        self.total_edit_distance += int(d.sum())
        self.similarity_sum += float(normalized_similarity(preds, gts).sum())
        for p, g, dist in zip(preds, gts, d):
            if dist:
                self.kinds += edit_kinds(p, g)
            bucket = length_bucket(len(g))
            self.by_length[bucket] = self.by_length.get(bucket, 0) + int(dist)

    def result(self):
        """`{accuracy (%), total_edit_distance, normalized_edit_distance, num_samples, insertions, deletions,
        substitutions, edit_distance_len_<bucket>...}`."""
        n = max(self.num_samples, 1)
        return {
            "accuracy": 100.0 * self.correct / n,
            "total_edit_distance": int(self.total_edit_distance),
            "normalized_edit_distance": self.similarity_sum / n,
            "num_samples": int(self.num_samples),
            "insertions": int(self.kinds[0]),
            "deletions": int(self.kinds[1]),
            "substitutions": int(self.kinds[2]),
            **{f"edit_distance_len_{k}": v for k, v in sorted(self.by_length.items())},
        }
