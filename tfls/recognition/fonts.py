"""Fonts for synthetic words: discovery, glyph checks and the split into training and held-out families.

Candidates are matplotlib's bundled TTFs, Pillow's scalable default font and the TTF/OTF files that the
pinned `font-*` packages of requirements.txt ship (docs/FONTS.md lists them with their licences). Every
candidate is checked before use: its cmap must map every character a label can show (both cases of the
letters, since the renderer varies the case), each of those glyphs must leave ink, and no two may render
alike (a fallback font draws one box for everything). Families listed in `data.ood_fonts` are held out:
only `test_ood` is rendered with them.
"""

import dataclasses
import functools
import glob
import importlib.metadata
import logging
import os
import string

import numpy as np
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

PIL_DEFAULT_FONT = "pil-default"

# The PyPI packages whose fonts are used (pinned in requirements.txt); each ships TTF/OTF files.
FONT_PACKAGES = (
    "font-amatic-sc",
    "font-caladea",
    "font-fjallaone",
    "font-fredoka-one",
    "font-hanken-grotesk",
    "font-intuitive",
    "font-lato",
    "font-manrope",
    "font-rhd",
    "font-roboto",
    "font-source-sans-pro",
    "font-source-serif-pro",
)

# Held out by default (about a quarter of the families): a serif, a sans, a rounded display face, a
# handwritten face and a typewriter face.
DEFAULT_OOD_FAMILIES = ("Caladea", "Lato", "Fredoka One", "Intuitive", "Computer Modern Typewriter")

# matplotlib's math fonts and its last-resort fallback: their cmaps cover ASCII, with symbols or boxes.
NON_TEXT_FAMILIES = frozenset({"cmex10", "cmmi10", "cmsy10", "Last Resort High-Efficiency"})

# Computer Modern files name one family per file; group them as a typesetter would: (family, style).
FAMILY_ALIASES = {
    "cmr10": ("Computer Modern Roman", "Regular"),
    "cmb10": ("Computer Modern Roman", "Bold"),
    "cmti10": ("Computer Modern Roman", "Italic"),
    "cmss10": ("Computer Modern Sans", "Regular"),
    "cmtt10": ("Computer Modern Typewriter", "Regular"),
}

# What each known family looks like, for docs/FONTS.md (unknown families are listed as "other").
FAMILY_KINDS = {
    "Aileron": "sans",
    "Amatic SC": "display (hand-drawn, small caps)",
    "Caladea": "serif",
    "Computer Modern Roman": "serif",
    "Computer Modern Sans": "sans",
    "Computer Modern Typewriter": "monospace",
    "DejaVu Sans": "sans",
    "DejaVu Sans Mono": "monospace",
    "DejaVu Serif": "serif",
    "Fjalla One": "display (condensed)",
    "Fredoka One": "display (rounded)",
    "Hanken Grotesk": "sans",
    "Intuitive": "display (handwritten)",
    "Lato": "sans",
    "Manrope": "sans",
    "Red Hat Display": "sans (display)",
    "Roboto": "sans",
    "Source Sans Pro": "sans",
    "Source Serif Pro": "serif",
    "STIXGeneral": "serif",
}

# Hairline weights: at a 32-pixel crop their strokes are thinner than a pixel and vanish under any blur.
HAIRLINE_STYLES = ("Thin", "Hairline")

# Families whose lower case is drawn as capitals: only usable when the charset is case-insensitive.
CAPS_ONLY_FAMILIES = frozenset({"Amatic SC"})

LATIN_CHARACTERS = string.digits + string.ascii_lowercase + string.ascii_uppercase

_LICENCES = {
    "DejaVu": "Bitstream Vera licence (DejaVu changes public domain)",
    "STIX": "SIL OFL 1.1",
    "Computer Modern": "BaKoMa Fonts Licence (free use and redistribution)",
    "Aileron": "CC0 1.0 (Aileron by dot-colon, embedded in Pillow)",
}


@dataclasses.dataclass(frozen=True)
class FontFile:
    """One font file and where it comes from.

    Attributes:
      path: file path, or `PIL_DEFAULT_FONT` for Pillow's embedded Aileron.
      family: family name (typographic family from the name table, Computer Modern grouped).
      style: style name (Regular, Bold Italic, ...).
      package: the distribution that ships it (`matplotlib`, `pillow`, `font-roboto`, ...).
      version: that distribution's version.
      licence: the font's licence, as the distribution declares it.
    """

    path: str
    family: str
    style: str
    package: str
    version: str
    licence: str


@dataclasses.dataclass
class FontCatalogue:
    """Checked fonts plus the candidates that were skipped, with the reason for each."""

    fonts: list
    skipped: dict

    @property
    def families(self):
        """Sorted family names of the usable fonts."""
        return sorted({f.family for f in self.fonts})

    def split(self, ood_families, case_sensitive=False):
        """`(train fonts, ood fonts)`: fonts of `ood_families` are held out, the rest train.

        Raises:
          ValueError: a held-out family is unknown, or either side would be empty.
        """
        ood_families = {f.strip() for f in ood_families if f.strip()}
        unknown = sorted(ood_families - set(self.families))
        if unknown:
            raise ValueError(f"unknown held-out font families {unknown}; usable families: {self.families}")
        usable = [f for f in self.fonts if not (case_sensitive and f.family in CAPS_ONLY_FAMILIES)]
        train = [f for f in usable if f.family not in ood_families]
        ood = [f for f in usable if f.family in ood_families]
        if not train:
            raise ValueError("every font family is held out: no training fonts left")
        if ood_families and not ood:
            raise ValueError(f"no usable font in the held-out families {sorted(ood_families)}")
        return train, ood


def _licence_from_metadata(meta):
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if "License" in c]
    return meta.get("License") or (classifiers[0] if classifiers else "see the package's licence file")


def _name_table(path):
    """`(family, style, licence)` from the font's name table (licence: "" when it names none we know)."""
    from fontTools.ttLib import TTFont

    with TTFont(path, lazy=True) as font:
        names = font["name"]
        family = names.getDebugName(16) or names.getDebugName(1) or os.path.basename(path)
        style = names.getDebugName(17) or names.getDebugName(2) or "Regular"
        description = names.getDebugName(13) or ""
    licence = "SIL OFL 1.1" if "Open Font License" in description else "Apache 2.0" if "Apache" in description else ""
    return (*FAMILY_ALIASES.get(family, (family, style)), licence)


def _matplotlib_fonts():
    import matplotlib

    folder = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")
    version = importlib.metadata.version("matplotlib")
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "*.ttf"))):
        family, style, _ = _name_table(path)
        licence = next((v for k, v in _LICENCES.items() if family.startswith(k)), "see matplotlib's LICENSE")
        out.append(FontFile(path, family, style, "matplotlib", version, licence))
    return out


def _package_fonts(name):
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        log.warning("font package %s is not installed: its fonts are not used (see requirements.txt)", name)
        return []
    declared = _licence_from_metadata(dist.metadata)
    out = []
    for file in sorted(dist.files or [], key=str):
        if str(file).lower().endswith((".ttf", ".otf")):
            path = str(dist.locate_file(file))
            # The font's own licence (name table) first: a package may declare only its code's licence.
            family, style, licence = _name_table(path)
            out.append(FontFile(path, family, style, dist.metadata["Name"], dist.version, licence or declared))
    return out


def candidate_fonts(packages=FONT_PACKAGES):
    """Every font file the renderer could use, before checks: matplotlib's, Pillow's default, `packages`'."""
    fonts = _matplotlib_fonts()
    fonts.append(
        FontFile(
            PIL_DEFAULT_FONT, "Aileron", "Regular", "pillow", importlib.metadata.version("pillow"), _LICENCES["Aileron"]
        )
    )
    for name in packages:
        fonts.extend(_package_fonts(name))
    return fonts


@functools.lru_cache(maxsize=1024)
def load_font(path, size):
    """A cached `FreeTypeFont` of `path` (or Pillow's default) at pixel `size`."""
    if path == PIL_DEFAULT_FONT:
        return ImageFont.load_default(size=size)
    try:
        # Basic layout: Latin words need no shaping, and Raqm's costs several times more per call.
        return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)
    except OSError as e:
        raise ValueError(f"cannot load font {path!r}: {e}") from e


def _cmap_missing(path, characters):
    if path == PIL_DEFAULT_FONT:
        return ""
    from fontTools.ttLib import TTFont

    with TTFont(path, lazy=True) as font:
        cmap = font.getBestCmap() or {}
    return "".join(c for c in characters if ord(c) not in cmap)


def glyph_bitmaps(path, characters, size=24):
    """Each character of `characters` drawn alone in the font: uint8 `[len, 2 * size, 2 * size]`."""
    font = load_font(path, size)
    out = np.zeros((len(characters), 2 * size, 2 * size), np.uint8)
    for i, c in enumerate(characters):
        img = Image.new("L", (2 * size, 2 * size), 0)
        ImageDraw.Draw(img).text((size // 2, size // 4), c, font=font, fill=255)
        out[i] = np.asarray(img)
    return out


def check_font(path, characters):
    """Why the font cannot render `characters` (None when it can): missing, blank or mostly identical glyphs."""
    try:
        missing = _cmap_missing(path, characters)
        if missing:
            return f"no glyph for {missing!r}"
        bitmaps = glyph_bitmaps(path, characters)
    except Exception as e:  # fontTools and FreeType raise many types for broken files
        return f"unreadable: {e}"
    blank = "".join(c for c, b in zip(characters, bitmaps) if b.max() < 32)
    if blank:
        return f"blank glyph for {blank!r}"
    # A fallback font draws one box for everything; real typefaces share a glyph at most for a few
    # homoglyphs (Manrope's I and l).
    distinct = len({b.tobytes() for b in bitmaps})
    if distinct < 0.9 * len(characters):
        return f"only {distinct} distinct glyphs for {len(characters)} characters"
    return None


def required_characters(characters, case_sensitive=False):
    """The characters a label of this charset can show once the renderer varies the case."""
    extra = "" if case_sensitive else "".join(c.upper() for c in characters if c.upper() != c and len(c.upper()) == 1)
    return "".join(dict.fromkeys(characters + extra))


@functools.lru_cache(maxsize=8)
def discover_fonts(characters=LATIN_CHARACTERS, packages=FONT_PACKAGES):
    """The usable fonts: every candidate that renders all of `characters`, others skipped and counted.

    Args:
      characters: what every font must draw (see `required_characters`).
      packages: the font distributions to look in, besides matplotlib and Pillow.

    Returns:
      A `FontCatalogue`; one file per (family, style), `.ttf` preferred over an identical `.otf`.
    """
    fonts, skipped, seen = [], {}, set()
    candidates = sorted(candidate_fonts(packages), key=lambda f: (f.family, f.style, f.path.endswith(".otf"), f.path))
    for font in candidates:
        if font.family in NON_TEXT_FAMILIES:
            skipped[font.path] = "math symbol or fallback font"
            continue
        if any(word in font.style.split() for word in HAIRLINE_STYLES):
            skipped[font.path] = "hairline weight"
            continue
        if (font.family, font.style) in seen:
            skipped[font.path] = f"duplicate of another {font.family} {font.style} file"
            continue
        reason = check_font(font.path, characters)
        if reason:
            skipped[font.path] = reason
            continue
        seen.add((font.family, font.style))
        fonts.append(font)
    lacking = sum(1 for r in skipped.values() if not r.startswith("duplicate"))
    log.info(
        "fonts: %d usable in %d families; %d candidates skipped (%d lack glyphs or are not text fonts)",
        len(fonts),
        len({f.family for f in fonts}),
        len(skipped),
        lacking,
    )
    return FontCatalogue(fonts, skipped)


def split_fonts(characters=LATIN_CHARACTERS, ood_families=DEFAULT_OOD_FAMILIES, case_sensitive=False):
    """`(train fonts, ood fonts)` of the discovered fonts (lists of `FontFile`)."""
    return discover_fonts(required_characters(characters, case_sensitive)).split(ood_families, case_sensitive)


def parse_families(value):
    """Comma-separated family names (a config string) -> tuple of names; a sequence passes through."""
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)
