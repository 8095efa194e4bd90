"""CTC paths for LS-ED: random and peaky alignments of a label, forced (Viterbi) alignment of a label under a
model's posteriors, evenly spread target paths, and in-place edits of a path.

The surrogate compares z matrices `[T, C + 1]` frame by frame, so a CTC target needs a path: either the
forced alignment of the ground truth under the model's own posteriors (the pair then differs only where the
text is wrong) or an even spread of the characters.
"""

import numpy as np
import tensorflow as tf

from tfls.recognition.charset import BLANK, EOS


def ctc_alignment(label_ids, num_frames, rng):
    """A random CTC path of `num_frames` ids that collapses to `label_ids`.

    Repeated neighbouring characters get a blank between them; the remaining frames are spent on
    repeating a random frame or inserting blanks between runs, which never changes the collapse.

    Raises:
      ValueError: when the label needs more frames than `num_frames`.
    """
    path = []
    for i, c in enumerate(label_ids):
        if i > 0 and label_ids[i - 1] == c:
            path.append(BLANK)
        path.append(int(c))
    if len(path) > num_frames:
        raise ValueError(f"label of {len(label_ids)} characters needs {len(path)} CTC frames > {num_frames}")
    while len(path) < num_frames:
        pos = int(rng.integers(len(path) + 1))
        # A blank inside a run of one character would split it into two characters.
        inside_run = 0 < pos < len(path) and path[pos - 1] == path[pos] != BLANK
        if pos > 0 and (inside_run or rng.random() < 0.5):
            path.insert(pos, path[pos - 1])
        else:
            path.insert(pos, BLANK)
    return np.asarray(path, np.int32)


def one_hot_ctc(labels, charset, num_frames, rng):
    """Strings -> float32 `[N, num_frames, C + 1]` one-hot random CTC alignments."""
    eye = np.eye(charset.num_classes, dtype=np.float32)
    out = np.zeros([len(labels), num_frames, charset.num_classes], np.float32)
    for i, label in enumerate(labels):
        ids = charset.encode(label)[: len(charset.normalize(label))]
        out[i] = eye[ctc_alignment(ids, num_frames, rng)]
    return out


def ctc_forced_alignment(log_probs, label_ids):
    """The most probable CTC path (Viterbi) of `[T, C + 1]` per-frame log-probabilities that collapses to
    `label_ids`.

    Args:
      log_probs: float `[T, C + 1]` per-frame log-probabilities (blank = class 0).
      label_ids: int sequence of class ids (no blanks, no padding).

    Returns:
      int32 `[T]` path; all blanks for an empty label.

    Raises:
      ValueError: when the label needs more frames than T.
    """
    label_ids = np.asarray(label_ids, np.int64).reshape(1, -1)
    labels = np.concatenate([label_ids, np.zeros([1, 1], np.int64)], axis=1)  # EOS-terminated
    return ctc_forced_alignments(np.asarray(log_probs)[None], labels)[0]


def ctc_forced_alignments(log_probs, labels):
    """Batched CTC forced alignment (see `ctc_forced_alignment`), vectorised over the batch.

    Args:
      log_probs: float `[B, T, C + 1]` per-frame log-probabilities.
      labels: int `[B, L + 1]` EOS-padded ids (the first EOS = 0 ends a label).

    Returns:
      int32 `[B, T]` paths.

    Raises:
      ValueError: when a label needs more frames than T.
    """
    log_probs = np.asarray(log_probs, np.float64)
    labels = np.asarray(labels, np.int64)
    batch, num_frames = log_probs.shape[:2]
    ended = np.concatenate([labels == EOS, np.ones([batch, 1], bool)], axis=1)
    length = np.argmax(ended, axis=1)
    cols = np.arange(labels.shape[1])[None, :]
    labels = np.where(cols < length[:, None], labels, BLANK)
    needed = length + np.sum((labels[:, 1:] == labels[:, :-1]) & (cols[:, 1:] < length[:, None]), axis=1)
    if np.any(needed > num_frames):
        raise ValueError(f"a label needs {int(needed.max())} CTC frames > {num_frames}")
    # Extended labels: blank, l1, blank, l2, ..., blank. State s may come from s, s - 1, or s - 2 when s is
    # a character that differs from the character two states back.
    num_states = 2 * labels.shape[1] + 1
    ext = np.zeros([batch, num_states], np.int64)
    ext[:, 1::2] = labels
    valid = np.arange(num_states)[None, :] < 2 * length[:, None] + 1
    skip = np.zeros([batch, num_states], bool)
    skip[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
    emissions = np.take_along_axis(log_probs, np.broadcast_to(ext[:, None, :], (batch, num_frames, num_states)), 2)
    emissions = np.where(valid[:, None, :], emissions, -np.inf)
    score = np.full([batch, num_states], -np.inf)
    score[:, :2] = emissions[:, 0, :2]
    back = np.zeros([batch, num_frames, num_states], np.int64)
    states = np.arange(num_states)
    pad1 = np.full([batch, 1], -np.inf)
    for t in range(1, num_frames):
        step = np.concatenate([pad1, score[:, :-1]], axis=1)
        jump = np.where(skip, np.concatenate([pad1, pad1, score[:, :-2]], axis=1), -np.inf)
        candidates = np.stack([score, step, jump])
        best = np.argmax(candidates, axis=0)  # ties keep the earliest option: stay, then step
        back[:, t] = states[None, :] - best
        score = np.take_along_axis(candidates, best[None], 0)[0] + emissions[:, t]
    rows = np.arange(batch)
    last = 2 * length
    before = np.maximum(last - 1, 0)
    state = np.where((length == 0) | (score[rows, last] >= score[rows, before]), last, before)
    path = np.zeros([batch, num_frames], np.int32)
    for t in range(num_frames - 1, -1, -1):
        path[:, t] = ext[rows, state]
        state = back[rows, t, state]
    return path


def peaky_ctc_alignment(label_ids, num_frames, rng, widen=0.3):
    """A CTC path shaped like a trained model's: one- or two-frame spikes spread over the frames in order,
    blanks elsewhere; the first and last characters may sit on the edge frames.

    Falls back to `ctc_alignment` when the jittered spikes do not fit.
    """
    n = len(label_ids)
    path = np.zeros([num_frames], np.int32)
    if n == 0:
        return path
    slots = (np.arange(n) + rng.uniform(0.0, 1.0, size=n)) * num_frames / n
    end = -1  # last frame used so far
    starts = []
    for i, c in enumerate(label_ids):
        gap = 2 if i > 0 and label_ids[i - 1] == c else 1
        start = max(int(slots[i]), end + gap)
        if start >= num_frames:
            return ctc_alignment(label_ids, num_frames, rng)
        starts.append(start)
        end = start
    for i, (c, start) in enumerate(zip(label_ids, starts)):
        path[start] = c
        limit = starts[i + 1] - (2 if label_ids[i + 1] == c else 1) if i + 1 < n else num_frames - 1
        if start + 1 <= limit and rng.random() < widen:
            path[start + 1] = c
    return path


def _runs(path):
    """`[(start, stop)]` of the non-blank runs of a path."""
    runs, start = [], None
    for t, c in enumerate(path):
        if start is not None and (c != path[start]):
            runs.append((start, t))
            start = None
        if start is None and c != BLANK:
            start = t
    if start is not None:
        runs.append((start, len(path)))
    return runs


def edit_path(path, rng, num_edits, num_characters, jitter=0.2):
    """Applies `num_edits` random edits to a CTC path in place of its characters: substitute a run's
    character, blank a run (delete), or put a character on a blank frame (insert); then moves runs by one
    frame with probability `jitter` (alignment noise that does not change the string).

    The resulting string is at most `num_edits` edits from the original one (an insertion next to an equal
    character merges with it; exact distances are always computed from the decodings).
    """
    path = np.array(path, np.int32)
    for _ in range(num_edits):
        runs = _runs(path)
        blanks = np.flatnonzero(path == BLANK)
        ops = (["substitute", "delete"] if runs else []) + (["insert"] if len(blanks) else [])
        if not ops:
            break
        op = ops[int(rng.integers(len(ops)))]
        if op == "insert":
            path[blanks[int(rng.integers(len(blanks)))]] = 1 + int(rng.integers(num_characters))
        else:
            start, stop = runs[int(rng.integers(len(runs)))]
            path[start:stop] = BLANK if op == "delete" else 1 + int(rng.integers(num_characters))
    if jitter > 0:
        for start, stop in _runs(path):
            if rng.random() >= jitter:
                continue
            c = path[start]
            # Move only into a blank frame whose far side does not hold the same character (no merge).
            if rng.random() < 0.5:
                if start > 0 and path[start - 1] == BLANK and (start < 2 or path[start - 2] != c):
                    path[start - 1], path[stop - 1] = c, BLANK
            elif stop < len(path) and path[stop] == BLANK and (stop + 1 >= len(path) or path[stop + 1] != c):
                path[stop], path[start] = c, BLANK
    return path


def ctc_target_paths(labels, num_frames):
    """Ground-truth label ids -> one CTC path per label, characters spread evenly over the frames.

    Character i of an n-character label sits at frame `floor((i + 0.5) * T / n)`, every other frame is
    blank; with `n <= T / 2` neighbours are at least two frames apart, so repeats survive the collapse.

    Args:
      labels: int `[B, L + 1]` EOS-padded ids.
      num_frames: T.

    Returns:
      int32 `[B, T]` paths.
    """
    labels = tf.cast(labels, tf.int32)
    length = tf.reduce_sum(tf.cast(labels > 0, tf.int32), axis=1, keepdims=True)
    pos = tf.range(tf.shape(labels)[1])[None, :]
    frame = tf.cast(
        tf.floor((tf.cast(pos, tf.float32) + 0.5) * num_frames / tf.cast(tf.maximum(length, 1), tf.float32)),
        tf.int32,
    )
    valid = pos < length
    frame = tf.where(valid, tf.minimum(frame, num_frames - 1), num_frames)  # invalid -> dropped column
    hits = tf.one_hot(frame, num_frames + 1, dtype=tf.int32)[..., :num_frames]  # [B, L + 1, T]
    return tf.reduce_sum(hits * labels[:, :, None], axis=1)
