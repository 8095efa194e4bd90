"""STR metrics: word accuracy, total edit distance and normalised edit distance, and where the edits are.

The edit distance of z matrices (argmax decodings, the LS-ED truth) also exists in TensorFlow ops
(`edit_distance_metric_tf`): dense, with static shapes, so a training step that uses it can be compiled by
XLA (`tf.edit_distance` cannot: its sparse op has no XLA kernel).

Normalised ED follows the ICDAR 2019 convention: per sample `1 - ED / max(len(gt), len(pred))` (1 when both
are empty), averaged. Strings are compared exactly; normalise case before calling when case-insensitive.
The edits are split by kind along one minimal edit script from the ground truth to the prediction
(`insertions`: characters the prediction has in excess, `deletions`: characters it lost, `substitutions`) and
by ground-truth length (`edit_distance_len_<range>`), to show where a change of model helps or hurts.
"""

import Levenshtein
import numpy as np
import tensorflow as tf

from tfls.recognition.charset import BLANK, EOS


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


def decode_argmax_tf(z, ctc):
    """Argmax decoding of `[N, T, C + 1]` z matrices to class ids, in TF ops (XLA-compilable).

    Args:
      z: `[N, T, C + 1]` scores or probabilities (class 0 = EOS for attention, blank for CTC).
      ctc: True for the CTC convention (merge repeats, then drop blanks), False for attention (characters
        up to the first EOS).

    Returns:
      `(ids, lengths)`: int32 `[N, T]` character ids packed to the left (0 after `lengths`), int32 `[N]`.
    """
    ids = tf.argmax(z, axis=-1, output_type=tf.int32)
    if ctc:
        prev = tf.pad(ids[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
        keep = tf.logical_and(tf.not_equal(ids, prev), tf.not_equal(ids, BLANK))
    else:
        keep = tf.equal(tf.math.cumsum(tf.cast(tf.equal(ids, EOS), tf.int32), axis=1), 0)
    keep = tf.cast(keep, tf.int32)
    frames = tf.shape(ids)[1]
    # Each kept id moves to slot (number of kept ids before it); dropped ids go to slot T, outside the one-hot.
    slot = tf.where(keep > 0, tf.math.cumsum(keep, axis=1, exclusive=True), frames)
    packed = tf.reduce_sum(ids[:, :, None] * tf.one_hot(slot, frames, dtype=tf.int32), axis=1)
    return packed, tf.reduce_sum(keep, axis=1)


def levenshtein_tf(a, a_lengths, b, b_lengths):
    """Levenshtein distance of id sequences in dense TF ops (a while loop over `a`'s positions; XLA-compilable).

    Row i of the dynamic programme is `D[i, j] = min_k<=j (base[k] + j - k)` with
    `base = [i, min(D[i-1, j-1] + cost, D[i-1, j] + 1)]`: the insertions' left-to-right recurrence becomes a
    masked minimum over a `[Lb + 1, Lb + 1]` offset table, so no step runs per column.

    Args:
      a: int `[N, La]` ids; only the first `a_lengths[n]` of row n count.
      a_lengths: int `[N]`.
      b: int `[N, Lb]` ids.
      b_lengths: int `[N]`.

    Returns:
      int32 `[N]` distances.
    """
    a, b = tf.cast(a, tf.int32), tf.cast(b, tf.int32)
    a_lengths, b_lengths = tf.cast(a_lengths, tf.int32), tf.cast(b_lengths, tf.int32)
    n, width = tf.shape(b)[0], tf.shape(b)[1]
    columns = tf.range(width + 1)
    offsets = tf.where(columns[:, None] <= columns[None, :], columns[None, :] - columns[:, None], 1 << 20)
    row0 = tf.broadcast_to(columns, [n, width + 1])
    at_length = lambda row: tf.gather(row, b_lengths, batch_dims=1)  # noqa: E731

    def body(i, prev, result):
        # tf.gather, not a[:, i - 1 : i]: under XLA (TF 2.21 CPU) that dynamic slice in the loop read wrong ids.
        cost = tf.cast(tf.not_equal(tf.gather(a, [i - 1], axis=1), b), tf.int32)
        best = tf.minimum(prev[:, :-1] + cost, prev[:, 1:] + 1)
        base = tf.concat([tf.fill([n, 1], i), best], axis=1)
        row = tf.reduce_min(base[:, :, None] + offsets[None], axis=1)
        return i + 1, row, tf.where(tf.equal(a_lengths, i), at_length(row), result)

    _, _, result = tf.while_loop(
        lambda i, prev, result: i <= tf.shape(a)[1], body, (tf.constant(1), row0, at_length(row0))
    )
    return result


def edit_distance_metric_tf(ctc):
    """The LS-ED truth in TF ops: the in-graph twin of `tfls.recognition.lsed.edit_distance_metric`.

    Args:
      ctc: the head's decoding convention (see `decode_argmax_tf`).

    Returns:
      `metric_fn_tf(pred, target) -> float32 [N]` on `[N, T, C + 1]` tensors (both with the same T).
    """

    def metric_fn_tf(pred, target):
        a, a_lengths = decode_argmax_tf(pred, ctc)
        b, b_lengths = decode_argmax_tf(target, ctc)
        return tf.cast(levenshtein_tf(a, a_lengths, b, b_lengths), tf.float32)

    return metric_fn_tf
