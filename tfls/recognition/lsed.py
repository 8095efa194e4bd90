"""LS-ED, the learned edit-distance surrogate: its metric, its global pair generator and its embedding.

A recognizer's output z is a matrix of per-step class probabilities, `[L, C + 1]` (attention: characters,
then EOS; CTC: frames with class 0 = blank). The metric is the Levenshtein distance between the argmax
decodings of two such matrices. Global pairs are a corpus label (one-hot) and a distorted copy of it; the
distortions imitate what recognizers get wrong, and the copy is made soft like a softmax, because the
surrogate is used on softmax outputs (the paper's one-hot / softmax domain gap).
"""

import keras
import Levenshtein
import numpy as np
import tensorflow as tf

from tfls.recognition.charset import EOS
from tfls.recognition.corpus import random_edit
from tfls.recognition.ctc_alignment import edit_path, one_hot_ctc, peaky_ctc_alignment
from tfls.surrogate.surrogate import PairGenerator

# Characters a recognizer confuses: shapes that look alike in many fonts (0-9a-z, case-insensitive).
LOOK_ALIKE = (
    "o0cqeaudg",
    "il1tfj",
    "s5z2",
    "b6h8",
    "g9qy",
    "nmhru",
    "vuyw",
    "kxz",
    "7t1",
    "4a",
    "3e8",
    "pq",
    "ce",
    "ij",
)


def confusion_table(characters):
    """`{character: [look-alike characters in the charset]}` from `LOOK_ALIKE`."""
    table = {c: set() for c in characters}
    for group in LOOK_ALIKE:
        for a in group:
            for b in group:
                if a != b and a in table and b in table:
                    table[a].add(b)
    return {c: sorted(v) for c, v in table.items()}


def one_hot_attention(labels, charset):
    """Strings -> float32 `[N, max_length + 1, C + 1]` one-hot, EOS-padded."""
    ids = charset.encode_batch(list(labels))
    return np.eye(charset.num_classes, dtype=np.float32)[ids]


def soften(z, rng, max_mix):
    """Mixes one-hot rows with random distributions while keeping every argmax (mix < 0.5)."""
    if max_mix <= 0:
        return z
    mix = rng.uniform(0.0, min(max_mix, 0.49), size=(z.shape[0], 1, 1)).astype(np.float32)
    noise = rng.dirichlet(np.ones(z.shape[-1]), size=z.shape[:-1]).astype(np.float32)
    return (1.0 - mix) * z + mix * noise


def recognizer_like_edit(label, rng, characters, max_length, num_edits, confusions):
    """`num_edits` edits of the kinds recognizers make: look-alike or random substitutions, doubled or
    dropped letters, random insertions and deletions, and changes at the ends (a lost or an extra first or
    last character). The result is at most `num_edits` edits from `label` (exact distances are always
    recomputed from the decodings)."""
    s = list(label)
    for _ in range(num_edits):
        kind = rng.choice(
            ["look_alike", "substitute", "double", "drop", "insert", "end_drop", "end_extra"],
            p=[0.3, 0.15, 0.1, 0.15, 0.1, 0.1, 0.1],
        )
        if kind in ("look_alike", "substitute", "double", "drop", "end_drop") and not s:
            kind = "insert"
        if kind == "look_alike":
            i = int(rng.integers(len(s)))
            options = confusions.get(s[i]) or list(characters)
            s[i] = options[int(rng.integers(len(options)))]
        elif kind == "substitute":
            s[int(rng.integers(len(s)))] = characters[int(rng.integers(len(characters)))]
        elif kind == "double" and len(s) < max_length:
            i = int(rng.integers(len(s)))
            s.insert(i, s[i])
        elif kind == "drop":
            doubled = [i for i in range(1, len(s)) if s[i] == s[i - 1]]
            i = (
                doubled[int(rng.integers(len(doubled)))]
                if doubled and rng.random() < 0.5
                else int(rng.integers(len(s)))
            )
            del s[i]
        elif kind == "insert" and len(s) < max_length:
            s.insert(int(rng.integers(len(s) + 1)), characters[int(rng.integers(len(characters)))])
        elif kind == "end_drop":
            del s[-1 if rng.random() < 0.7 else 0]
        elif kind == "end_extra" and len(s) < max_length:
            c = characters[int(rng.integers(len(characters)))]
            s.insert(len(s) if rng.random() < 0.7 else 0, c)
    return "".join(s)[:max_length]


def softmax_like(
    ids, num_classes, rng, alternatives=None, confidence=(0.35, 1.0), garbage_after_eos=0.5, confidence_skew=2.0
):
    """One-hot-like matrices shaped like a recognizer's softmax outputs, with the same argmax as `ids`.

    Each row puts `p` (drawn per row between `confidence`, skewed towards confident rows) on its class and
    spreads the rest over one to three other classes (the row's `alternatives` when given: the target's
    character at a substituted position, look-alikes) and a small uniform floor. After the first EOS, a
    free-running decoder keeps emitting; with probability `garbage_after_eos` a matrix's rows after the EOS
    carry random classes, which the metric ignores and the surrogate must learn to ignore too.

    Args:
      ids: int `[N, L]` class ids per step.
      num_classes: C + 1.
      rng: numpy Generator.
      alternatives: optional int `[N, L]` (-1 for none): a class each row leans towards.
      confidence: range of the winning probability.
      confidence_skew: `p = high - (high - low) * u ** confidence_skew` with u uniform in [0, 1): the larger, the
        more rows are confident (2: median p 0.84 for the default range; 6: median 0.99, about 3 % of rows
        below 0.5, like a converged recognizer's rows).
      garbage_after_eos: probability that a matrix has random classes after its first EOS.

    Returns:
      float32 `[N, L, num_classes]`, rows summing to 1, argmax = ids (argmax after the EOS may differ
      when garbage is drawn).
    """
    ids = np.array(ids, np.int64)
    n, length = ids.shape
    ended = np.cumsum(ids == EOS, axis=1) > 0
    after = ended & ~((ids == EOS) & (np.cumsum(ids == EOS, axis=1) == 1))
    garbage = rng.random(n) < garbage_after_eos
    random_ids = rng.integers(0, num_classes, size=ids.shape)
    ids = np.where(after & garbage[:, None], random_ids, ids)
    low, high = confidence
    p = high - (high - low) * rng.random((n, length)) ** float(confidence_skew)
    rest = 1.0 - p
    z = np.zeros((n, length, num_classes), np.float32)
    floor = rng.uniform(0.0, 0.3, size=(n, length, 1)) * rest[..., None]
    z += floor / num_classes
    spread = rest - floor[..., 0]
    num_alt = rng.integers(1, 4, size=(n, length))
    others = rng.integers(0, num_classes, size=(n, length, 3))
    if alternatives is not None:
        alternatives = np.asarray(alternatives, np.int64)
        use = (alternatives >= 0) & (rng.random((n, length)) < 0.7)
        others[..., 0] = np.where(use, alternatives, others[..., 0])
    shares = rng.dirichlet(np.ones(3), size=(n, length)) * (np.arange(3)[None, None, :] < num_alt[..., None])
    shares = shares / shares.sum(-1, keepdims=True)
    rows = np.arange(n)[:, None, None]
    cols = np.arange(length)[None, :, None]
    np.add.at(z, (rows, cols, others), (shares * spread[..., None]).astype(np.float32))
    np.add.at(z, (rows[..., 0], cols[..., 0], ids), p.astype(np.float32))
    # Mass that landed on the winning class from the spread keeps it the argmax; a row whose alternative
    # collected more than p (possible when p < 0.5) is fixed by swapping the two.
    best = np.argmax(z, axis=-1)
    wrong = best != ids
    if np.any(wrong):
        r, c = np.nonzero(wrong)
        a, b = z[r, c, ids[r, c]], z[r, c, best[r, c]]
        z[r, c, ids[r, c]], z[r, c, best[r, c]] = b, a
    return z / z.sum(-1, keepdims=True)


class RandomStringPairGenerator(PairGenerator):
    """Global pairs `(pred, target)` for LS-ED.

    Attention layout: the target is a corpus label, one-hot and EOS-padded; the prediction is a copy with
    a number of edits drawn from 0..max_edits (a share of them recognizer-like: look-alikes, doubled or
    dropped letters, ends), rendered as softmax-like rows (`softmax_like`) or, for a share
    `1 - realistic_fraction`, as the older one-hot rows mixed with Dirichlet noise (`soften`).
    CTC layouts: "aligned" (a peaky target path and a copy edited in place) or "random" (independent random
    alignments), softened with `soften`.

    Args:
      charset: the `Charset`.
      word_sampler: a `WordSampler` giving ground-truth-like labels.
      max_edits: the largest number of edit operations of a pair.
      ctc_frames: None for the attention layout, else the number of CTC frames T.
      soft_mix: `soften`'s largest mixing weight.
      ctc_layout: "aligned" or "random".
      realistic_fraction: share of attention pairs with recognizer-like edits and softmax-like rows.
      small_edit_bias: share of pairs whose edit count is drawn from a geometric law (mostly 0-2 edits,
        where a converged recognizer's errors are) instead of uniformly.
      garbage_after_eos: probability of random classes after the prediction's first EOS.
      confidence_skew: `softmax_like`'s skew of the rows' winning probabilities.
    """

    def __init__(
        self,
        charset,
        word_sampler,
        max_edits=4,
        ctc_frames=None,
        soft_mix=0.3,
        ctc_layout="aligned",
        realistic_fraction=0.0,
        small_edit_bias=0.0,
        garbage_after_eos=0.0,
        confidence_skew=2.0,
    ):
        if ctc_layout not in ("aligned", "random"):
            raise ValueError(f"ctc_layout must be 'aligned' or 'random', got {ctc_layout!r}")
        self.charset = charset
        self.word_sampler = word_sampler
        self.max_edits = int(max_edits)
        self.ctc_frames = ctc_frames
        self.soft_mix = float(soft_mix)
        self.ctc_layout = ctc_layout
        self.realistic_fraction = float(realistic_fraction)
        self.small_edit_bias = float(small_edit_bias)
        self.garbage_after_eos = float(garbage_after_eos)
        self.confidence_skew = float(confidence_skew)
        self.confusions = confusion_table(charset.characters)
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

    def _num_edits(self, rng):
        if rng.random() < self.small_edit_bias:
            return int(min(rng.geometric(0.55) - 1, self.max_edits))
        return int(rng.integers(self.max_edits + 1))

    def sample_strings(self, n, rng, realistic=None):
        """`n` (distorted, target) string pairs; `realistic[i]` picks recognizer-like edits for pair i."""
        alphabet = self.charset.characters
        targets, preds = [], []
        for i in range(n):
            target = self.word_sampler.sample(rng)[: self.max_label_length]
            edits = self._num_edits(rng)
            targets.append(target)
            if realistic is not None and realistic[i]:
                preds.append(recognizer_like_edit(target, rng, alphabet, self.max_label_length, edits, self.confusions))
            else:
                preds.append(random_edit(target, rng, alphabet, self.max_label_length, edits))
        return preds, targets

    def encode(self, labels, rng):
        """Strings -> one-hot z in this generator's layout."""
        if self.ctc_frames is None:
            return one_hot_attention(labels, self.charset)
        return one_hot_ctc(labels, self.charset, int(self.ctc_frames), rng)

    def aligned_ctc_pairs(self, n, rng):
        """`n` (pred, target) one-hot CTC paths: a peaky target path and a copy edited in place."""
        frames = int(self.ctc_frames)
        eye = np.eye(self.charset.num_classes, dtype=np.float32)
        pred = np.zeros([n, frames, self.charset.num_classes], np.float32)
        target = np.zeros_like(pred)
        for i in range(n):
            label = self.word_sampler.sample(rng)[: self.max_label_length]
            ids = self.charset.encode(label)[: len(self.charset.normalize(label))]
            path = peaky_ctc_alignment(ids, frames, rng)
            edits = self._num_edits(rng)
            target[i] = eye[path]
            pred[i] = eye[edit_path(path, rng, edits, self.charset.num_characters)]
        return pred, target

    def generate(self, n, rng):
        """`(pred, target)` float32 arrays `[n, *pred_shape]`."""
        if self.ctc_frames is not None:
            if self.ctc_layout == "aligned":
                pred, target = self.aligned_ctc_pairs(n, rng)
                return soften(pred, rng, self.soft_mix).astype(np.float32), target
            preds, targets = self.sample_strings(n, rng)
            pred = soften(self.encode(preds, rng), rng, self.soft_mix)
            return pred.astype(np.float32), self.encode(targets, rng).astype(np.float32)
        realistic = rng.random(n) < self.realistic_fraction if self.realistic_fraction > 0 else np.zeros(n, bool)
        preds, targets = self.sample_strings(n, rng, realistic)
        target_ids = self.charset.encode_batch(targets)
        pred_ids = self.charset.encode_batch(preds)
        target = np.eye(self.charset.num_classes, dtype=np.float32)[target_ids]
        pred = soften(np.eye(self.charset.num_classes, dtype=np.float32)[pred_ids], rng, self.soft_mix)
        if np.any(realistic):
            # where the prediction differs from the target, the target's class is the likeliest runner-up
            alternatives = np.where(pred_ids != target_ids, target_ids, -1)[realistic]
            pred[realistic] = softmax_like(
                pred_ids[realistic],
                self.charset.num_classes,
                rng,
                alternatives,
                garbage_after_eos=self.garbage_after_eos,
                confidence_skew=self.confidence_skew,
            )
        return pred.astype(np.float32), target


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


def sharpen_rows(z, power):
    """`z ** power`, each row renormalised to sum 1: the same argmax per row, rows pushed towards one-hot.

    The edit distance depends on each row's argmax only; a confident row (p = 0.9) and its one-hot are the
    same text. Raising the probabilities to a power > 1 before the embedding brings such rows close to
    one-hot, so a smooth network need not learn a flat region around every one-hot itself (the cause of a
    surrogate's offset on pairs at distance 0), while rows near a tie stay soft. Differentiable in z; power 1
    is the identity.
    """
    z = tf.convert_to_tensor(z, tf.float32)
    if power == 1.0:
        return z
    z = tf.pow(tf.maximum(z, 1e-8), power)
    return z / tf.reduce_sum(z, axis=-1, keepdims=True)


def eos_gate(z, sharpness=20.0):
    """`[N, L, C + 1]` attention outputs -> `[N, L, C + 2]`: each row times the probability that reading has
    not ended before it, plus that ended-probability as a last channel.

    Row s "is EOS" softly: `r_s = sigmoid(sharpness * (z[s, EOS] - max_other(z[s])))`, about 1 when EOS is the
    row's argmax; reading is alive at row t with `a_t = prod_{s < t} (1 - r_s)`. One-hot targets get exactly
    their rows up to and including the first EOS and zeros after it; a prediction's rows after its EOS fade
    out, whatever it emitted there. Differentiable in z (through the EOS and the best other class).
    """
    z = tf.convert_to_tensor(z, tf.float32)
    eos = z[..., EOS]
    best_other = tf.reduce_max(z[..., EOS + 1 :], axis=-1)
    is_eos = tf.sigmoid(sharpness * (eos - best_other))
    alive = tf.exp(tf.math.cumsum(tf.math.log(1.0 - is_eos + 1e-6), axis=1, exclusive=True))
    return tf.concat([z * alive[..., None], (1.0 - alive)[..., None]], axis=-1)


@keras.saving.register_keras_serializable(package="tfls")
class EditDistanceEmbedding(keras.Model):
    """h_phi: `[N, L, |A|]` -> `[N, embedding_dim]`.

    1D convolutions run along the sequence with the alphabet as channels, so local insertions and deletions
    shift features rather than scramble them; `dilations` widen the receptive field (with kernel 3 and
    dilations 1, 2, 4, 8 one feature sees 31 steps: a whole word), and a dense layer maps the flattened
    features to a fixed-size vector. No BatchNorm: the gradient penalty needs per-sample gradients
    (LayerNorm is per-sample).

    Args:
      filters: output channels of each Conv1D layer.
      kernel_size: width of every convolution along the sequence.
      embedding_dim: size of the output vector.
      layer_norm: LayerNorm after each convolution.
      dilations: dilation of each convolution (default 1 for all).
      eos_gate: attention layout only (class 0 = EOS ends the text): rows after the first EOS are faded out
        by a differentiable "still reading" gate and a channel that says where the text has ended is added
        (see `eos_gate`), since the metric ignores what a free-running decoder emits after its EOS.
      eos_sharpness: slope of the gate's soft "this row's argmax is EOS" test.
      recurrent: units of a bidirectional GRU over the convolutions' features (0: none). Edit distance is an
        alignment along the whole sequence; a recurrent layer carries what came before and after each step.
      sharpen: rows raised to this power and renormalised before anything else (`sharpen_rows`; 1: off).
    """

    def __init__(
        self,
        filters=(64, 64, 64),
        kernel_size=3,
        embedding_dim=64,
        layer_norm=True,
        dilations=None,
        eos_gate=False,
        eos_sharpness=20.0,
        recurrent=0,
        sharpen=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.recurrent = int(recurrent)
        self.sharpen = float(sharpen)
        if self.sharpen <= 0:
            raise ValueError(f"sharpen must be > 0, got {sharpen}")
        self.eos_gate = bool(eos_gate)
        self.eos_sharpness = float(eos_sharpness)
        self.filters = tuple(int(f) for f in filters)
        self.kernel_size = int(kernel_size)
        self.embedding_dim = int(embedding_dim)
        self.layer_norm = bool(layer_norm)
        self.dilations = tuple(int(d) for d in dilations) if dilations else (1,) * len(self.filters)
        if len(self.dilations) != len(self.filters):
            raise ValueError(f"{len(self.dilations)} dilations for {len(self.filters)} convolutions")
        # One Sequential rather than Python lists of layers: tf.train.Checkpoint (the job's weight files)
        # does not follow Keras 3's tracked lists, so layers held only in a list were never saved.
        self.body = keras.Sequential(name="body")
        for f, d in zip(self.filters, self.dilations):
            self.body.add(keras.layers.Conv1D(f, self.kernel_size, padding="same", dilation_rate=d))
            if self.layer_norm:
                self.body.add(keras.layers.LayerNormalization())
            self.body.add(keras.layers.Activation("elu"))
        if self.recurrent:
            self.sequence = keras.layers.Bidirectional(
                keras.layers.GRU(self.recurrent, return_sequences=True), name="sequence"
            )
        self.flatten = keras.layers.Flatten()
        self.project = keras.layers.Dense(self.embedding_dim)

    def call(self, z):
        if self.sharpen != 1.0:
            z = sharpen_rows(z, self.sharpen)
        if self.eos_gate:
            z = eos_gate(z, self.eos_sharpness)
        features = self.body(z)
        if self.recurrent:
            features = self.sequence(features)
        return self.project(self.flatten(features))

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            embedding_dim=self.embedding_dim,
            layer_norm=self.layer_norm,
            dilations=self.dilations,
            eos_gate=self.eos_gate,
            eos_sharpness=self.eos_sharpness,
            recurrent=self.recurrent,
            sharpen=self.sharpen,
        )
        return config
