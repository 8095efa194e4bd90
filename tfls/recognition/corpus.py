"""Word lists for rendering and for the random string generator: frequent words plus random strings."""

import numpy as np


def frequent_words(charset, size, min_length=1, language="en"):
    """The `size` most frequent words of `language` (wordfreq, offline) that the charset can encode.

    Args:
      charset: a `Charset`; words are normalised (case-folded) and filtered through it.
      size: how many distinct words to return (fewer if the list runs out).
      min_length: shortest word kept.
      language: wordfreq language code.

    Returns:
      List of distinct normalised words, most frequent first.
    """
    import wordfreq

    words, seen = [], set()
    for word in wordfreq.iter_wordlist(language):
        word = charset.normalize(word)
        if len(word) < min_length or word in seen or not charset.is_valid(word):
            continue
        seen.add(word)
        words.append(word)
        if len(words) >= size:
            break
    if not words:
        raise ValueError(f"no wordfreq word of language {language!r} fits the charset {charset.characters!r}")
    return words


class WordSampler:
    """Samples labels: a corpus word, or with probability `random_fraction` a random string.

    Random strings are digit strings (when the charset has digits) or strings over the whole alphabet,
    so that a recognizer does not learn a pure dictionary.

    Args:
      charset: the `Charset`.
      words: the corpus (normalised, valid words).
      random_fraction: probability of a random string instead of a word.
      random_max_length: longest random string (capped by charset.max_length).
    """

    def __init__(self, charset, words, random_fraction=0.1, random_max_length=None):
        self.charset = charset
        self.words = list(words)
        if not self.words:
            raise ValueError("WordSampler needs a non-empty corpus")
        self.random_fraction = float(random_fraction)
        self.random_max_length = min(random_max_length or charset.max_length, charset.max_length)
        self.digits = [c for c in charset.characters if c.isdigit()]

    def sample(self, rng):
        """One label, drawn with the numpy Generator `rng`."""
        if rng.random() < self.random_fraction:
            length = int(rng.integers(1, self.random_max_length + 1))
            alphabet = self.digits if (self.digits and rng.random() < 0.5) else list(self.charset.characters)
            return "".join(rng.choice(alphabet, size=length))
        return self.words[int(rng.integers(len(self.words)))]


def random_edit(label, rng, alphabet, max_length, num_edits):
    """Applies `num_edits` random insertions, deletions or substitutions to `label`.

    Args:
      label: the string to distort.
      rng: numpy Generator.
      alphabet: characters that insertions and substitutions draw from.
      max_length: the result never grows past this length.
      num_edits: number of operations (the resulting edit distance is at most this).

    Returns:
      The distorted string.
    """
    chars = list(label)
    for _ in range(num_edits):
        ops = ["substitute", "delete", "insert"] if chars else ["insert"]
        if len(chars) >= max_length:
            ops = [op for op in ops if op != "insert"]
        op = ops[int(rng.integers(len(ops)))]
        if op == "insert":
            chars.insert(int(rng.integers(len(chars) + 1)), alphabet[int(rng.integers(len(alphabet)))])
        elif op == "delete":
            del chars[int(rng.integers(len(chars)))]
        else:
            chars[int(rng.integers(len(chars)))] = alphabet[int(rng.integers(len(alphabet)))]
    return "".join(chars)


def sample_words_array(sampler, n, rng):
    """`n` labels from `sampler` as a numpy object array."""
    return np.array([sampler.sample(rng) for _ in range(n)], dtype=object)
