"""Global pairs for LS-ED: a corpus word and a randomly edited copy, as one-hot character matrices z.

The target is the word, the prediction its copy after random insertions, deletions and substitutions, so
their Levenshtein distance is spread over 0..max_edits. Matrices follow the recognizer's output layout:
attention `[max_length + 1, C + 1]` (characters, then EOS in every remaining row) or CTC `[T, C + 1]` (a
random valid alignment with blanks and repeats).
"""

import Levenshtein
import numpy as np

from tfls.recognition.charset import BLANK, EOS
from tfls.recognition.corpus import random_edit
from tfls.surrogate.surrogate import PairGenerator


def one_hot_attention(labels, charset):
    """Strings -> float32 `[N, max_length + 1, C + 1]` one-hot, EOS-padded."""
    ids = charset.encode_batch(list(labels))
    return np.eye(charset.num_classes, dtype=np.float32)[ids]


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


def soften(z, rng, max_mix):
    """Mixes one-hot rows with random distributions while keeping every argmax (mix < 0.5).

    Model outputs are soft; fitting the surrogate on soft matrices too narrows the one-hot/softmax gap.
    """
    if max_mix <= 0:
        return z
    mix = rng.uniform(0.0, min(max_mix, 0.49), size=(z.shape[0], 1, 1)).astype(np.float32)
    noise = rng.dirichlet(np.ones(z.shape[-1]), size=z.shape[:-1]).astype(np.float32)
    return (1.0 - mix) * z + mix * noise


class RandomStringPairGenerator(PairGenerator):
    """Global pairs `(pred, target)` for the edit-distance surrogate.

    Args:
      charset: the `Charset`.
      word_sampler: a `WordSampler` giving ground-truth-like labels.
      max_edits: each pair gets a number of edit operations drawn uniformly from 0..max_edits.
      ctc_frames: None for the attention layout, else the number of CTC frames T.
      soft_mix: up to this much probability mass of a predicted row is spread at random (argmax kept).
    """

    def __init__(self, charset, word_sampler, max_edits=4, ctc_frames=None, soft_mix=0.3):
        self.charset = charset
        self.word_sampler = word_sampler
        self.max_edits = int(max_edits)
        self.ctc_frames = ctc_frames
        self.soft_mix = float(soft_mix)
        max_len = charset.max_length
        if ctc_frames is not None:
            # A path needs up to 2L - 1 frames; keep every generated string alignable.
            max_len = min(max_len, (int(ctc_frames) + 1) // 2)
        self.max_label_length = max_len

    @property
    def pred_shape(self):
        """Shape of one z matrix."""
        rows = self.charset.sequence_length if self.ctc_frames is None else int(self.ctc_frames)
        return (rows, self.charset.num_classes)

    def sample_strings(self, n, rng):
        """`n` (target, distorted) string pairs."""
        alphabet = self.charset.characters
        targets, preds = [], []
        for _ in range(n):
            target = self.word_sampler.sample(rng)[: self.max_label_length]
            edits = int(rng.integers(self.max_edits + 1))
            targets.append(target)
            preds.append(random_edit(target, rng, alphabet, self.max_label_length, edits))
        return preds, targets

    def encode(self, labels, rng):
        """Strings -> one-hot z in this generator's layout."""
        if self.ctc_frames is None:
            return one_hot_attention(labels, self.charset)
        return one_hot_ctc(labels, self.charset, int(self.ctc_frames), rng)

    def generate(self, n, rng):
        """`(pred, target)` float32 arrays `[n, *pred_shape]`; pred is softened by up to `soft_mix`."""
        preds, targets = self.sample_strings(n, rng)
        pred = soften(self.encode(preds, rng), rng, self.soft_mix)
        return pred.astype(np.float32), self.encode(targets, rng).astype(np.float32)


def decode_matrices(z, charset, ctc):
    """Argmax-decodes `[N, T, C + 1]` matrices into strings with the head's convention."""
    ids = np.argmax(np.asarray(z), axis=-1)
    if ctc:
        return [charset.decode_ctc(row) for row in ids]
    return [charset.decode(row) for row in ids]


def edit_distance_metric(charset, ctc):
    """The true metric of LS-ED on z matrices: Levenshtein distance of the argmax decodings.

    Returns:
      `metric_fn(pred, target) -> float32 [N]` on numpy arrays.
    """

    def metric_fn(pred, target):
        a = decode_matrices(pred, charset, ctc)
        b = decode_matrices(target, charset, ctc)
        return np.asarray([Levenshtein.distance(x, y) for x, y in zip(a, b)], np.float32)

    return metric_fn


__all__ = ["EOS", "RandomStringPairGenerator", "edit_distance_metric", "one_hot_attention", "one_hot_ctc"]
