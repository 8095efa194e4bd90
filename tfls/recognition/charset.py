"""Character set and label codec shared by the attention and CTC heads, the data and the surrogate.

One integer convention serves both heads: class 0 is the attention decoder's end-of-sequence token (and
the padding after it) and, for CTC, the blank; characters are classes 1..C. The attention decoder's GO
token is only ever an input, so it is the extra index C + 1 of its input embedding.
"""

import string

import numpy as np
import tensorflow as tf

EOS = 0
BLANK = 0

# The STR community's default: 0-9a-z, case-insensitive.
DEFAULT_CHARACTERS = string.digits + string.ascii_lowercase
# Case-sensitive printable ASCII without the space (94 characters).
PRINTABLE_CHARACTERS = "".join(chr(c) for c in range(33, 127))


class Charset:
    """An ordered alphabet plus the codec between strings and class ids.

    Args:
      characters: the alphabet, each character once, in class order (class i + 1 is characters[i]).
      max_length: longest label kept; longer labels are rejected by `is_valid`.
      case_sensitive: when False, labels are lower-cased before encoding and the alphabet must not
        contain upper-case letters.
    """

    def __init__(self, characters=DEFAULT_CHARACTERS, max_length=25, case_sensitive=False):
        if len(set(characters)) != len(characters):
            raise ValueError(f"charset has repeated characters: {characters!r}")
        if not characters:
            raise ValueError("charset is empty")
        if not case_sensitive and characters != characters.lower():
            raise ValueError("a case-insensitive charset must not contain upper-case letters")
        self.characters = characters
        self.max_length = int(max_length)
        self.case_sensitive = bool(case_sensitive)
        self._index = {c: i + 1 for i, c in enumerate(characters)}

    @classmethod
    def from_config(cls, data_config):
        """Builds the charset from a config block with `characters`, `max_length`, `case_sensitive`."""
        return cls(data_config.characters, data_config.max_length, data_config.case_sensitive)

    @property
    def num_characters(self):
        """C, the number of characters."""
        return len(self.characters)

    @property
    def num_classes(self):
        """C + 1: the characters plus EOS (attention) / blank (CTC)."""
        return len(self.characters) + 1

    @property
    def go_token(self):
        """Input-only start token of the attention decoder."""
        return len(self.characters) + 1

    @property
    def sequence_length(self):
        """Decoder steps and label width: max_length characters plus one EOS."""
        return self.max_length + 1

    def normalize(self, label):
        """Case-folds `label` when the charset is case-insensitive."""
        return label if self.case_sensitive else label.lower()

    def invalid_reason(self, label):
        """Why `label` cannot be used (None if it can): too long, empty or characters outside the charset."""
        label = self.normalize(label)
        if not label:
            return "empty label"
        if len(label) > self.max_length:
            return f"label longer than {self.max_length} characters"
        unknown = sorted({c for c in label if c not in self._index})
        if unknown:
            return f"characters outside the charset: {''.join(unknown)!r}"
        return None

    def is_valid(self, label):
        """True when `label` (after normalisation) can be encoded."""
        return self.invalid_reason(label) is None

    def encode(self, label):
        """String -> int32 `[max_length + 1]` class ids, EOS-padded.

        Raises:
          ValueError: naming the label, when it is too long or holds characters outside the charset.
        """
        reason = self.invalid_reason(label)
        if reason is not None and reason != "empty label":
            raise ValueError(f"cannot encode label {label!r}: {reason}")
        ids = np.zeros([self.sequence_length], np.int32)
        label = self.normalize(label)
        ids[: len(label)] = [self._index[c] for c in label]
        return ids

    def encode_batch(self, labels):
        """List of strings -> int32 `[N, max_length + 1]`."""
        if not labels:
            return np.zeros([0, self.sequence_length], np.int32)
        return np.stack([self.encode(s) for s in labels])

    def decode(self, ids):
        """Attention convention: characters up to the first EOS."""
        out = []
        for i in np.asarray(ids).reshape(-1):
            i = int(i)
            if i == EOS:
                break
            if 1 <= i <= self.num_characters:
                out.append(self.characters[i - 1])
        return "".join(out)

    def decode_ctc(self, ids):
        """CTC convention: merge repeated ids, then drop blanks."""
        out, prev = [], None
        for i in np.asarray(ids).reshape(-1):
            i = int(i)
            if i != prev and i != BLANK and i <= self.num_characters:
                out.append(self.characters[i - 1])
            prev = i
        return "".join(out)

    def lookup_table(self):
        """tf.constant `[C + 1]` of strings mapping class ids to characters ("" for EOS/blank)."""
        return tf.constant([""] + list(self.characters))


def decode_ids_tf(ids, table, ctc):
    """Class ids -> strings in TF ops (no py_function), for evaluation and serving graphs.

    Args:
      ids: int `[B, T]` argmax ids.
      table: `[C + 1]` tf.string, from `Charset.lookup_table()`.
      ctc: True for the CTC convention (merge repeats, drop blanks), False for attention (cut at first EOS).

    Returns:
      `(text, keep)`: tf.string `[B]` and the bool `[B, T]` mask of the positions that produced characters.
    """
    ids = tf.cast(ids, tf.int32)
    if ctc:
        prev = tf.pad(ids[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
        keep = tf.logical_and(tf.not_equal(ids, prev), tf.not_equal(ids, BLANK))
    else:
        keep = tf.equal(tf.math.cumsum(tf.cast(tf.equal(ids, EOS), tf.int32), axis=1), 0)
    chars = tf.gather(table, tf.where(keep, ids, tf.zeros_like(ids)))
    chars = tf.where(keep, chars, tf.fill(tf.shape(chars), ""))
    return tf.strings.reduce_join(chars, axis=1), keep
