"""What the synthetic words say: frequent words (wordfreq), numbers, random strings, in varied case.

A `WordSampler` gives the text as it is rendered (upper, lower or title case) and the label that the
recognizer must read: the same text normalised by the charset (lower case for the default
case-insensitive charset). Numbers use only characters of the charset: with 0-9a-z they are integers,
years, times, dates, ordinals and quantities with units ("9am", "15jan", "21st", "250ml"); with
punctuation in the charset also decimals, prices, percentages and separators ("3.50", "$12", "12:30").
"""

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


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_UNITS = ("kg", "g", "km", "m", "cm", "mm", "ml", "l", "h", "min", "s", "v", "w", "kw", "mb", "gb", "x", "pcs")
_ORDINALS = {1: "st", 2: "nd", 3: "rd"}


def _integer(rng, max_digits=6):
    digits = int(rng.integers(1, max_digits + 1))
    return str(int(rng.integers(10 ** (digits - 1) if digits > 1 else 0, 10**digits)))


def _ordinal(n):
    suffix = "th" if 10 <= n % 100 <= 20 else _ORDINALS.get(n % 10, "th")
    return f"{n}{suffix}"


# Each format draws one number-like string; a format is used only when the charset holds its characters.
NUMBER_FORMATS = {
    "integer": lambda rng: _integer(rng),
    "year": lambda rng: str(int(rng.integers(1900, 2040))),
    "ordinal": lambda rng: _ordinal(int(rng.integers(1, 200))),
    "time_of_day": lambda rng: f"{int(rng.integers(1, 13))}{('am', 'pm')[int(rng.integers(2))]}",
    "day_month": lambda rng: f"{int(rng.integers(1, 32))}{_MONTHS[int(rng.integers(12))]}",
    "month_year": lambda rng: f"{_MONTHS[int(rng.integers(12))]}{int(rng.integers(1950, 2040))}",
    "compact_date": lambda rng: (
        f"{int(rng.integers(1990, 2040))}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}"
    ),
    "quantity": lambda rng: f"{_integer(rng, 4)}{_UNITS[int(rng.integers(len(_UNITS)))]}",
    "decimal": lambda rng: f"{_integer(rng, 4)}.{int(rng.integers(0, 100)):0{int(rng.integers(1, 3))}d}",
    "price": lambda rng: f"${_integer(rng, 4)}" + (f".{int(rng.integers(0, 100)):02d}" if rng.random() < 0.6 else ""),
    "thousands": lambda rng: f"{int(rng.integers(1, 1000))},{int(rng.integers(0, 1000)):03d}",
    "percent": lambda rng: f"{_integer(rng, 3)}%",
    "clock": lambda rng: f"{int(rng.integers(0, 24))}:{int(rng.integers(0, 60)):02d}",
    "slash_date": lambda rng: (
        f"{int(rng.integers(1, 32)):02d}/{int(rng.integers(1, 13)):02d}/{int(rng.integers(0, 100)):02d}"
    ),
    "dash_date": lambda rng: (
        f"{int(rng.integers(1990, 2040))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
    ),
    "phone": lambda rng: f"{int(rng.integers(100, 1000))}-{int(rng.integers(0, 10000)):04d}",
}
_FORMAT_CHARACTERS = {
    "integer": "0123456789",
    "year": "0123456789",
    "ordinal": "0123456789sthndr",
    "time_of_day": "0123456789apm",
    "day_month": "0123456789" + "".join(_MONTHS),
    "month_year": "0123456789" + "".join(_MONTHS),
    "compact_date": "0123456789",
    "quantity": "0123456789" + "".join(_UNITS),
    "decimal": "0123456789.",
    "price": "0123456789.$",
    "thousands": "0123456789,",
    "percent": "0123456789%",
    "clock": "0123456789:",
    "slash_date": "0123456789/",
    "dash_date": "0123456789-",
    "phone": "0123456789-",
}


class WordSampler:
    """Samples texts: a corpus word, a number or a random string, in lower, upper or title case.

    Args:
      charset: the `Charset`.
      words: the corpus (normalised, valid words).
      random_fraction: probability of a random string (letters and digits at random, or a code such as
        "ab1234") instead of a word.
      random_max_length: longest random string (capped by charset.max_length).
      number_fraction: probability of a number-like string (see `NUMBER_FORMATS`) instead of a word.
      upper_fraction: probability that the text is rendered in upper case.
      title_fraction: probability that the text is rendered in title case (the rest is lower case).
    """

    def __init__(
        self,
        charset,
        words,
        random_fraction=0.1,
        random_max_length=None,
        number_fraction=0.0,
        upper_fraction=0.0,
        title_fraction=0.0,
    ):
        self.charset = charset
        self.words = list(words)
        if not self.words:
            raise ValueError("WordSampler needs a non-empty corpus")
        self.random_fraction = float(random_fraction)
        self.number_fraction = float(number_fraction)
        self.upper_fraction = float(upper_fraction)
        self.title_fraction = float(title_fraction)
        for name in ("random_fraction", "number_fraction", "upper_fraction", "title_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.random_fraction + self.number_fraction > 1.0:
            raise ValueError("random_fraction + number_fraction must not exceed 1")
        if self.upper_fraction + self.title_fraction > 1.0:
            raise ValueError("upper_fraction + title_fraction must not exceed 1")
        self.random_max_length = min(random_max_length or charset.max_length, charset.max_length)
        self.digits = [c for c in charset.characters if c.isdigit()]
        self.letters = [c for c in charset.characters if c.isalpha()]
        available = set(charset.characters) | {c.lower() for c in charset.characters}
        self.number_formats = [k for k, chars in _FORMAT_CHARACTERS.items() if set(chars) <= available]

    def _random_string(self, rng):
        length = int(rng.integers(1, self.random_max_length + 1))
        if self.digits and self.letters and length >= 3 and rng.random() < 0.3:
            split = int(rng.integers(1, length))
            head = "".join(rng.choice(self.letters, size=split))
            return head + "".join(rng.choice(self.digits, size=length - split))
        return "".join(rng.choice(list(self.charset.characters), size=length))

    def _number(self, rng):
        for _ in range(4):
            text = NUMBER_FORMATS[self.number_formats[int(rng.integers(len(self.number_formats)))]](rng)
            if self.charset.is_valid(text):
                return text
        return _integer(rng, min(self.charset.max_length, 6))

    def _vary_case(self, text, rng):
        u = rng.random()
        if u < self.upper_fraction:
            varied = text.upper()
        elif u < self.upper_fraction + self.title_fraction:
            varied = text[:1].upper() + text[1:]
        else:
            return text
        # Upper-casing can leave the charset (a case-sensitive lower-case alphabet) or change the length.
        return varied if self.charset.is_valid(varied) and len(varied) == len(text) else text

    def sample_text(self, rng):
        """One text as it should be rendered (case varied), drawn with the numpy Generator `rng`."""
        u = rng.random()
        if u < self.random_fraction:
            text = self._random_string(rng)
        elif u < self.random_fraction + self.number_fraction and self.number_formats:
            text = self._number(rng)
        else:
            text = self.words[int(rng.integers(len(self.words)))]
        return self._vary_case(text, rng)

    def sample(self, rng):
        """One label (the rendered text normalised by the charset), drawn with `rng`."""
        return self.charset.normalize(self.sample_text(rng))


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
