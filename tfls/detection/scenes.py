"""Synthetic text scenes with exact ground truth: photo-sized canvases (`SceneRenderer`) and small squares
(`render_scene`).

`SceneRenderer` draws what users send: a 640x480 to 1280x720 canvas (some portrait) with a photo-like
background (gradients, procedural textures at random scales, surfaces with their own texture), non-text
clutter (shapes, strokes, repeated patterns), single words and lines of words from the recognition corpus in
checked fonts, from about 8 px high to large, at angles up to +-90 degrees, some in perspective, some on
plates, some occluded, then lighting, blur, noise, low resolution and JPEG. Each word's ground truth is the
quadrilateral of its tight ink box carried through the line's transform, clockwise from the word's top-left
(the ICDAR 2015 order), with its transcription; words drawn faint and small, or mostly occluded, are `###`
(don't care). `SCENE_LIMITS` documents every key of a mix; `configs/det.py` holds the training mix and the
harder held-out one (`test_ood`).

Deterministic: scene `i` of stream `s` depends only on `(s, i)` (`render_indexed`).
"""

import dataclasses
import functools
import io
import os

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tfls.detection import boxes as box_lib
from tfls.recognition import fonts as fonts_lib
from tfls.recognition import renderer as renderer_lib

# Procedural backgrounds: the recognition renderer's kinds (drawn at a random scale) and three of the scene's.
SCENE_BACKGROUNDS = renderer_lib.BACKGROUND_KINDS + ("tiles", "foliage", "wood")

# Every key of a scene mix: (smallest allowed, largest allowed, meaning).
SCENE_LIMITS = {
    "canvas_sizes": ("", "", "comma-separated WxH canvas sizes drawn uniformly, e.g. '640x480,1280x720'"),
    "portrait_prob": (0.0, 1.0, "probability of a portrait canvas (the drawn size turned by 90 degrees)"),
    "max_lines": (1, 64, "text lines per scene drawn uniformly from 1..max_lines (fewer when they do not fit)"),
    "max_words": (1, 256, "most words (boxes) per scene"),
    "words_per_line": (1, 12, "most words on a line"),
    "line_prob": (0.0, 1.0, "probability that a line holds several words (else a single word)"),
    "min_height": (4, 400, "smallest text height (font size), canvas pixels; log-uniform up to max_height"),
    "max_height": (4, 400, "largest text height (font size), canvas pixels"),
    "angle_std_deg": (0.0, 90.0, "std of the normal angle of most lines, degrees"),
    "uniform_angle_prob": (0.0, 1.0, "probability of an angle uniform in +-max_angle_deg instead"),
    "max_angle_deg": (0.0, 90.0, "largest |angle| of a line, degrees (positive = clockwise on screen)"),
    "perspective_prob": (0.0, 1.0, "probability that a line is drawn in perspective"),
    "perspective": (0.0, 1.0, "max displacement of each corner of a line in perspective, fraction of its height"),
    "dontcare_prob": (0.0, 1.0, "probability that a line is drawn small and faint and labelled ###"),
    "min_contrast": (1, 255, "min luminance difference between text and its local background, grey levels"),
    "low_contrast_prob": (0.0, 1.0, "probability of a contrast in [low_contrast, min_contrast] instead"),
    "low_contrast": (1, 255, "smallest contrast of a low-contrast line, grey levels"),
    "sign_prob": (0.0, 1.0, "probability that a line is drawn on a plate (a sign) of its own colour"),
    "backgrounds": ("", "", "comma-separated procedural background kinds (SCENE_BACKGROUNDS)"),
    "texture_strength": (0.0, 1.0, "max amplitude of a background texture, fraction of 255"),
    "regions": (0, 20, "most background surfaces (polygons and ellipses with their own colour and texture)"),
    "clutter_shapes": (0, 100, "most non-text shapes (rectangles, ellipses, polygons, outlines)"),
    "clutter_strokes": (0, 100, "most non-text strokes (polylines as thick as text strokes)"),
    "patterns": (0, 20, "most repeated patterns (bars, grids, dots, hatching, checkers)"),
    "occlusion_prob": (0.0, 1.0, "probability that a line is partly covered by an occluder"),
    "occluded_dontcare": (0.0, 1.0, "a word with more than this share of its box occluded is labelled ###"),
    "gradient_prob": (0.0, 1.0, "probability of a lighting gradient across the scene"),
    "gradient": (0.0, 1.0, "max brightness change of a lighting gradient, fraction"),
    "shadow_prob": (0.0, 1.0, "probability of a cast shadow (a soft-edged darker part of the scene)"),
    "shadow": (0.0, 0.9, "max darkening of a cast shadow, fraction"),
    "blur_prob": (0.0, 1.0, "probability of a Gaussian blur of the whole scene"),
    "blur_radius": (0.0, 5.0, "max blur radius, pixels"),
    "low_resolution_prob": (0.0, 1.0, "probability of down-sampling the scene and scaling it back"),
    "low_resolution": (1.0, 4.0, "max down-sampling factor"),
    "noise": (0.0, 64.0, "max std of additive Gaussian noise, grey levels"),
    "jpeg_prob": (0.0, 1.0, "probability of JPEG re-encoding"),
    "jpeg_quality": (1, 95, "lowest JPEG quality (drawn up to 95)"),
}

# The training mix (configs/det.py puts it in `data.scene`; `data.ood_scene` makes it harder).
DEFAULT_MIX = {
    "canvas_sizes": "640x480,800x600,960x540,1024x768,1280x720",
    "portrait_prob": 0.15,
    "max_lines": 10,
    "max_words": 32,
    "words_per_line": 5,
    "line_prob": 0.4,
    "min_height": 8,
    "max_height": 96,
    "angle_std_deg": 8.0,
    "uniform_angle_prob": 0.2,
    "max_angle_deg": 90.0,
    "perspective_prob": 0.3,
    "perspective": 0.3,
    "dontcare_prob": 0.1,
    "min_contrast": 60,
    "low_contrast_prob": 0.1,
    "low_contrast": 30,
    "sign_prob": 0.3,
    "backgrounds": "noise,grain,stripes,blotches,photo,bricks,tiles,foliage",
    "texture_strength": 0.25,
    "regions": 6,
    "clutter_shapes": 12,
    "clutter_strokes": 8,
    "patterns": 2,
    "occlusion_prob": 0.1,
    "occluded_dontcare": 0.35,
    "gradient_prob": 0.4,
    "gradient": 0.4,
    "shadow_prob": 0.25,
    "shadow": 0.45,
    "blur_prob": 0.25,
    "blur_radius": 1.2,
    "low_resolution_prob": 0.1,
    "low_resolution": 1.8,
    "noise": 8.0,
    "jpeg_prob": 0.5,
    "jpeg_quality": 40,
}

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def parse_canvas_sizes(value):
    """`"640x480,1280x720"` -> `((640, 480), (1280, 720))` as (width, height).

    Raises:
      ValueError: an entry that is not `WxH` with positive integers.
    """
    sizes = []
    for item in str(value).split(","):
        item = item.strip().lower()
        if not item:
            continue
        try:
            w, h = (int(v) for v in item.split("x"))
        except ValueError:
            raise ValueError(f"canvas size {item!r} is not WxH (e.g. 1280x720)") from None
        if w < 32 or h < 32:
            raise ValueError(f"canvas size {item!r}: both sides must be at least 32 pixels")
        sizes.append((w, h))
    if not sizes:
        raise ValueError("canvas_sizes names no size")
    return tuple(sizes)


def validate_mix(mix):
    """`DEFAULT_MIX` updated with `mix` (a dict or ConfigDict), checked against `SCENE_LIMITS`.

    Raises:
      ValueError: an unknown key, a value out of range, an unknown background kind or canvas size.
    """
    mix = dict(mix or {})
    unknown = set(mix) - set(SCENE_LIMITS)
    if unknown:
        raise ValueError(f"unknown scene keys {sorted(unknown)}; known: {sorted(SCENE_LIMITS)}")
    m = dict(DEFAULT_MIX, **mix)
    for key, (low, high, _) in SCENE_LIMITS.items():
        if key == "canvas_sizes":
            parse_canvas_sizes(m[key])
        elif key == "backgrounds":
            kinds = [k for k in str(m[key]).split(",") if k]
            bad = sorted(set(kinds) - set(SCENE_BACKGROUNDS))
            if bad or not kinds:
                raise ValueError(f"scene 'backgrounds': unknown or no kinds {bad}; known: {SCENE_BACKGROUNDS}")
        elif not low <= m[key] <= high:
            raise ValueError(f"scene {key!r} = {m[key]} is outside [{low}, {high}]")
    if m["min_height"] > m["max_height"]:
        raise ValueError(f"scene min_height {m['min_height']} exceeds max_height {m['max_height']}")
    if m["low_contrast"] > m["min_contrast"]:
        raise ValueError(f"scene low_contrast {m['low_contrast']} exceeds min_contrast {m['min_contrast']}")
    return m


@dataclasses.dataclass
class Scene:
    """One rendered scene: `image` uint8 `[H, W, 3]`, `quads` float32 `[n, 4, 2]` (canvas pixels, clockwise
    from each word's top-left), `texts` (transcriptions as drawn, `###` for don't care)."""

    image: np.ndarray
    quads: np.ndarray
    texts: list

    @property
    def dontcare(self):
        """`[n]` bool: the `###` words."""
        return np.array([t == "###" for t in self.texts], bool).reshape(-1)


# Backgrounds ----------------------------------------------------------------------------------------------


def _resize_field(field, height, width):
    return np.asarray(Image.fromarray(field.astype(np.float32), "F").resize((width, height), Image.BICUBIC))


def _extra_texture(kind, rng, h, w):
    """The scene's own texture kinds, a field in about [-1, 1] of shape `[h, w]`."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "tiles":
        th, tw = rng.uniform(6, 20), rng.uniform(6, 30)
        row, col = np.floor(ys / th), np.floor(xs / tw)
        shade = np.mod(np.sin(row * 12.9898 + col * 78.233 + rng.uniform(0, 100)) * 43758.5453, 1.0) - 0.5
        grout = (ys % th < 1.2) | (xs % tw < 1.2)
        return np.where(grout, -1.0, shade).astype(np.float32)
    if kind == "foliage":
        img = Image.new("L", (w, h), 128)
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(40, 160))):
            x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(1.5, max(2.0, min(h, w) / 8))
            draw.ellipse([x - r, y - r * rng.uniform(0.4, 1.0), x + r, y + r], fill=int(rng.integers(0, 256)))
        return np.asarray(img.filter(ImageFilter.GaussianBlur(0.8)), np.float32) / 127.5 - 1.0
    if kind == "wood":
        cx, cy = rng.uniform(-w, 2 * w), rng.uniform(-h, 2 * h)
        warp = renderer_lib._smooth_field(rng, (h, w), (3, 5)) * rng.uniform(2, 8)
        radius = np.hypot((xs - cx) * rng.uniform(0.2, 1.0), ys - cy) + warp
        return (np.sin(radius * 2 * np.pi / rng.uniform(3, 12)) * 0.8).astype(np.float32)
    raise ValueError(f"unknown background kind {kind!r}")


def texture(kind, rng, height, width):
    """A procedural texture field in about [-1, 1], `[height, width]`, drawn at a random scale (1 to 6 times
    coarser than the pixel grid, then scaled up), so stripes, bricks and grain come at many sizes.

    The recognition renderer's kinds (`renderer.BACKGROUND_KINDS`) are drawn by its own code."""
    scale = float(np.exp(rng.uniform(0.0, np.log(6.0))))
    h, w = max(4, int(round(height / scale))), max(4, int(round(width / scale)))
    if kind in renderer_lib.BACKGROUND_KINDS:
        # WordRenderer._texture reads only the renderer's size: a renderer of the field's size draws it.
        source = renderer_lib.WordRenderer(h, w, fonts=[fonts_lib.PIL_DEFAULT_FONT], channels=3)
        field = source._texture(kind, rng)
    else:
        field = _extra_texture(kind, rng, h, w)
    return _resize_field(np.clip(field, -1.0, 1.0), height, width)


def _random_colour(rng, luminance=None):
    """An RGB colour (float32 [3]); with `luminance`, one of about that luminance and a random hue."""
    colour = rng.uniform(0, 255, 3).astype(np.float32)
    # Photographs are mostly greys and muted colours.
    colour = colour.mean() + (colour - colour.mean()) * rng.uniform(0.0, 1.0) ** 2
    if luminance is not None:
        colour = np.clip(colour + (luminance - colour @ _LUMA), 0, 255)
    return colour.astype(np.float32)


def _region_mask(rng, height, width):
    """A large soft-edged surface (polygon or ellipse) on the canvas.

    Returns:
      `(alpha float32 [y1 - y0, x1 - x0] in [0, 1], (x0, y0, x1, y1))`, the mask cropped to its bounding box
      (None for a surface outside the canvas).
    """
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    rx, ry = rng.uniform(0.1, 0.6) * width, rng.uniform(0.1, 0.6) * height
    soft = rng.uniform(0.0, 3.0)
    x0, y0 = max(int(cx - rx - 3 * soft) - 1, 0), max(int(cy - ry - 3 * soft) - 1, 0)
    x1, y1 = min(int(cx + rx + 3 * soft) + 2, width), min(int(cy + ry + 3 * soft) + 2, height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None, None
    img = Image.new("L", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(img)
    cx, cy = cx - x0, cy - y0
    if rng.random() < 0.3:
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    else:
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
        draw.polygon([(float(cx + rx * np.cos(a)), float(cy + ry * np.sin(a))) for a in angles], fill=255)
    if soft > 0.5:
        img = img.filter(ImageFilter.GaussianBlur(soft))
    return np.asarray(img, np.float32) / 255.0, (x0, y0, x1, y1)


class SceneRenderer:
    """Renders photo-sized text scenes with their words' quadrilaterals and transcriptions.

    Args:
      fonts: `FontFile`s or font paths; a line picks a family uniformly, then one of its styles. None: the
        training fonts of the recognition split (`fonts.split_fonts()[0]`).
      sampler: a `corpus.WordSampler` (its `sample_text` gives a word as drawn, case included).
      mix: dict of `SCENE_LIMITS` keys overriding `DEFAULT_MIX`.
    """

    def __init__(self, fonts, sampler, mix=None):
        self.mix = validate_mix(mix)
        if not fonts:
            fonts = fonts_lib.split_fonts()[0]
        families = {}
        for f in fonts:
            family = f.family if isinstance(f, fonts_lib.FontFile) else str(f)
            families.setdefault(family, []).append(f.path if isinstance(f, fonts_lib.FontFile) else str(f))
        self.families = [families[k] for k in sorted(families)]
        self.sampler = sampler
        self.canvas_sizes = parse_canvas_sizes(self.mix["canvas_sizes"])
        self.backgrounds = [k for k in self.mix["backgrounds"].split(",") if k]

    # The whole scene ----------------------------------------------------------------------------------

    def render(self, rng):
        """One scene drawn with the numpy Generator `rng` (its only source of randomness).

        Returns:
          A `Scene`.
        """
        m = self.mix
        width, height = self.canvas_sizes[int(rng.integers(len(self.canvas_sizes)))]
        if rng.random() < m["portrait_prob"]:
            width, height = height, width
        canvas = self._background(rng, height, width)
        canvas = self._clutter(canvas, rng)
        quads, texts, lines, placed = [], [], [], []
        for _ in range(int(rng.integers(1, m["max_lines"] + 1))):
            if len(quads) >= m["max_words"]:
                break
            line = self._line(canvas, rng, placed, m["max_words"] - len(quads))
            if line is None:
                continue
            lines.append((len(quads), line))
            quads.extend(line["quads"])
            texts.extend(line["texts"])
        for start, line in lines:
            if rng.random() < m["occlusion_prob"]:
                covered = self._occlude(canvas, rng, line)
                for k, share in enumerate(covered):
                    if share > m["occluded_dontcare"]:
                        texts[start + k] = "###"
        canvas = self._lighting(canvas, rng)
        image = self._degrade(canvas, rng)
        quads = np.asarray(quads, np.float32).reshape(-1, 4, 2)
        return Scene(image, quads, texts)

    # Background and clutter -----------------------------------------------------------------------------

    def _background(self, rng, height, width):
        m = self.mix
        ys = np.arange(height, dtype=np.float32)[:, None] / height - 0.5
        xs = np.arange(width, dtype=np.float32)[None, :] / width - 0.5
        a, b = _random_colour(rng), _random_colour(rng)
        if rng.random() < 0.7:
            theta = rng.uniform(0, 2 * np.pi)
            t = xs * np.cos(theta) + ys * np.sin(theta) + 0.5
        else:
            t = np.hypot(xs - rng.uniform(-0.5, 0.5), (ys - rng.uniform(-0.5, 0.5)) * height / width)
        canvas = a + (b - a) * np.clip(t, 0, 1)[..., None]
        strength = m["texture_strength"] * 255.0
        for _ in range(int(rng.integers(1, 3))):
            kind = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
            tint = rng.uniform(0.6, 1.4, 3).astype(np.float32)
            canvas += texture(kind, rng, height, width)[..., None] * (strength * rng.uniform(0.2, 1.0) * tint)
        for _ in range(int(rng.integers(0, m["regions"] + 1))):
            alpha, (x0, y0, x1, y1) = _region_mask(rng, height, width)
            if alpha is None:
                continue
            surface = _random_colour(rng)
            region = canvas[y0:y1, x0:x1]
            if rng.random() < 0.6:
                kind = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
                field = texture(kind, rng, y1 - y0, x1 - x0)[..., None]
                surface = surface + field * (strength * rng.uniform(0.1, 0.8))
            region += (surface - region) * alpha[..., None]
        return np.clip(canvas, 0, 255, out=canvas)

    def _clutter(self, canvas, rng):
        """Non-text shapes, strokes and repeated patterns, drawn (aliased, like the objects behind text)."""
        m = self.mix
        height, width = canvas.shape[:2]
        pil = Image.fromarray(canvas.astype(np.uint8))
        draw = ImageDraw.Draw(pil)

        def colour():
            return tuple(int(v) for v in _random_colour(rng))

        for _ in range(int(rng.integers(0, m["clutter_shapes"] + 1))):
            x0, y0 = rng.uniform(-0.1, 1.0) * width, rng.uniform(-0.1, 1.0) * height
            size = np.exp(rng.uniform(np.log(4), np.log(0.3 * min(width, height))))
            x1, y1 = x0 + size * rng.uniform(0.3, 3.0), y0 + size * rng.uniform(0.3, 3.0)
            fill, outline = (colour(), None) if rng.random() < 0.6 else (None, colour())
            line_width = int(rng.integers(1, 6))
            kind = int(rng.integers(3))
            if kind == 0:
                draw.rectangle([x0, y0, x1, y1], fill=fill, outline=outline, width=line_width)
            elif kind == 1:
                draw.ellipse([x0, y0, x1, y1], fill=fill, outline=outline, width=line_width)
            else:
                k = int(rng.integers(3, 7))
                points = [(float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))) for _ in range(k)]
                draw.polygon(points, fill=fill, outline=outline)
        for _ in range(int(rng.integers(0, m["clutter_strokes"] + 1))):
            x, y = rng.uniform(0, width), rng.uniform(0, height)
            step = np.exp(rng.uniform(np.log(4), np.log(0.15 * min(width, height))))
            points, heading = [(x, y)], rng.uniform(0, 2 * np.pi)
            for _ in range(int(rng.integers(2, 8))):
                heading += rng.normal(0, 0.8)
                x, y = x + step * np.cos(heading), y + step * np.sin(heading)
                points.append((float(x), float(y)))
            draw.line(points, fill=colour(), width=int(rng.integers(1, 7)), joint="curve")
        for _ in range(int(rng.integers(0, m["patterns"] + 1))):
            self._pattern(pil, rng, colour())
        return np.asarray(pil, np.float32).copy()

    @staticmethod
    def _pattern(pil, rng, colour):
        """A repeated pattern in a rotated rectangle: bars (barcode, fence), a grid, dots, hatching, checkers."""
        width, height = pil.size
        pw = int(np.exp(rng.uniform(np.log(24), np.log(0.5 * max(width, height)))))
        ph = int(np.clip(pw * np.exp(rng.uniform(-1.2, 0.5)), 12, height))
        mask = Image.new("L", (pw, ph), 0)
        draw = ImageDraw.Draw(mask)
        period = rng.uniform(3, 14)
        kind = int(rng.integers(5))
        if kind == 0:  # bars of varying width
            x = 0.0
            while x < pw:
                bar = rng.uniform(1, period / 1.5)
                draw.rectangle([x, 0, x + bar, ph], fill=255)
                x += bar + rng.uniform(1, period)
        elif kind == 1:  # grid (windows, tiles, shelves)
            for x in np.arange(0, pw, period * 2):
                draw.line([(x, 0), (x, ph)], fill=255, width=int(rng.integers(1, 4)))
            for y in np.arange(0, ph, period * 2):
                draw.line([(0, y), (pw, y)], fill=255, width=int(rng.integers(1, 4)))
        elif kind == 2:  # dots
            r = rng.uniform(1, period / 3)
            for y in np.arange(period / 2, ph, period):
                for x in np.arange(period / 2, pw, period):
                    draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
        elif kind == 3:  # hatching
            for x in np.arange(-ph, pw, period):
                draw.line([(x, 0), (x + ph, ph)], fill=255, width=int(rng.integers(1, 3)))
        else:  # checkers
            for y in np.arange(0, ph, period):
                for x in np.arange(0, pw, period):
                    if (int(x / period) + int(y / period)) % 2 == 0:
                        draw.rectangle([x, y, x + period, y + period], fill=255)
        mask = mask.rotate(rng.uniform(-90, 90), resample=Image.BILINEAR, expand=True)
        x0, y0 = int(rng.integers(-mask.width // 2, width)), int(rng.integers(-mask.height // 2, height))
        pil.paste(Image.new("RGB", mask.size, colour), (x0, y0), mask)

    # Text ------------------------------------------------------------------------------------------------

    def _local_luminance(self, canvas, quad):
        x0, y0 = np.floor(quad.min(0)).astype(int)
        x1, y1 = np.ceil(quad.max(0)).astype(int)
        patch = canvas[max(y0, 0) : max(y1, 1), max(x0, 0) : max(x1, 1)]
        return float(patch.reshape(-1, 3).mean(0) @ _LUMA) if patch.size else 128.0

    def _text_colour(self, rng, background, dontcare):
        m = self.mix
        if rng.random() < m["low_contrast_prob"]:
            contrast = rng.uniform(m["low_contrast"], m["min_contrast"])
        else:
            contrast = rng.uniform(m["min_contrast"], 255.0)
        if dontcare:
            contrast *= rng.uniform(0.25, 0.5)
        up, down = background + contrast, background - contrast
        if up > 255 and down < 0:
            target = 255.0 if background < 128 else 0.0
        elif up > 255:
            target = down
        elif down < 0:
            target = up
        else:
            target = up if rng.random() < 0.5 else down
        return _random_colour(rng, target)

    def _draw_words(self, words, font, rng):
        """Lays the words out on one baseline. Returns `(mask L image, ink boxes [k, 4] (x0, y0, x1, y1))`."""
        space = font.getlength(" ")
        pieces, x = [], 0.0
        for word in words:
            left, top, right, bottom = font.getbbox(word, anchor="ls")
            piece = Image.new("L", (int(np.ceil(right - left)) + 4, int(np.ceil(bottom - top)) + 4), 0)
            ImageDraw.Draw(piece).text((2 - left, 2 - top), word, font=font, fill=255, anchor="ls")
            ink = piece.getbbox()
            if ink is not None:
                pieces.append((piece, int(round(x + left)) - 2, int(round(top)) - 2, ink))
            x += font.getlength(word) + space * rng.uniform(0.8, 2.0)
        if not pieces:
            return None, None
        pad = 4
        x_min = min(px for _, px, _, _ in pieces)
        y_min = min(py for _, _, py, _ in pieces)
        x_max = max(px + p.width for p, px, _, _ in pieces)
        y_max = max(py + p.height for p, _, py, _ in pieces)
        mask = Image.new("L", (x_max - x_min + 2 * pad, y_max - y_min + 2 * pad), 0)
        boxes = []
        for piece, px, py, (ix0, iy0, ix1, iy1) in pieces:
            ox, oy = px - x_min + pad, py - y_min + pad
            mask.paste(255, (ox, oy), piece)
            boxes.append((ox + ix0, oy + iy0, ox + ix1, oy + iy1))
        return mask, np.asarray(boxes, np.float64)

    def _line(self, canvas, rng, placed, room):
        """Places one line of words; returns `{"quads", "texts", "polygon"}` or None when it did not fit."""
        from shapely.geometry import Polygon

        m = self.mix
        height, width = canvas.shape[:2]
        dontcare = rng.random() < m["dontcare_prob"]
        for _attempt in range(8):
            size = np.exp(rng.uniform(np.log(m["min_height"]), np.log(m["max_height"])))
            if dontcare:
                size = min(size, rng.uniform(m["min_height"], 2 * m["min_height"]))
            family = self.families[int(rng.integers(len(self.families)))]
            font = fonts_lib.load_font(family[int(rng.integers(len(family)))], max(4, int(round(size))))
            count = int(rng.integers(2, m["words_per_line"] + 1)) if rng.random() < m["line_prob"] else 1
            words = [self.sampler.sample_text(rng) for _ in range(min(count, room))]
            mask, boxes = self._draw_words(words, font, rng)
            if mask is None:
                continue
            if rng.random() < m["uniform_angle_prob"]:
                angle = rng.uniform(-m["max_angle_deg"], m["max_angle_deg"])
            else:
                angle = np.clip(rng.normal(0, m["angle_std_deg"]), -m["max_angle_deg"], m["max_angle_deg"])
            theta = np.deg2rad(angle)
            mw, mh = mask.size
            src = np.array([[0, 0], [mw, 0], [mw, mh], [0, mh]], np.float64)
            rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
            shape = (src - [mw / 2, mh / 2]) @ rot.T
            if rng.random() < m["perspective_prob"]:
                shape = shape + rng.uniform(-1, 1, (4, 2)) * m["perspective"] * mh
            lo, hi = shape.min(0), shape.max(0)
            if np.any(hi - lo >= [width - 2, height - 2]):
                continue
            centre = np.array([rng.uniform(-lo[0] + 1, width - hi[0] - 1), rng.uniform(-lo[1] + 1, height - hi[1] - 1)])
            dst = shape + centre
            polygon = Polygon(dst)
            if not polygon.is_valid or any(polygon.intersects(p) for p in placed):
                continue
            matrix = renderer_lib._homography(src, dst)
            plate = None
            if rng.random() < m["sign_prob"]:
                margin = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [mh * rng.uniform(0.1, 0.6), mh * 0.15]
                plate = _apply(matrix, src + margin)
                if Polygon(plate).is_valid and not any(Polygon(plate).intersects(p) for p in placed):
                    self._fill_polygon(canvas, plate, _random_colour(rng))
                else:
                    plate = None
            background = self._local_luminance(canvas, dst)
            colour = self._text_colour(rng, background, dontcare)
            self._composite(canvas, mask, matrix, dst, colour)
            corners = np.stack(
                [boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [2, 3]], boxes[:, [0, 3]]], axis=1
            )  # [k, 4, 2], clockwise on screen from the top-left
            quads = _apply(matrix, corners.reshape(-1, 2)).reshape(-1, 4, 2)
            outline = Polygon(plate if plate is not None else dst).buffer(0.3 * mh)
            placed.append(outline)
            texts = ["###" if dontcare else w for w in words[: len(quads)]]
            return {"quads": quads, "texts": texts, "polygon": outline, "height": mh}
        return None

    @staticmethod
    def _fill_polygon(canvas, polygon, colour):
        height, width = canvas.shape[:2]
        x0, y0 = np.maximum(np.floor(polygon.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(polygon.max(0)).astype(int), [width, height])
        if x1 <= x0 or y1 <= y0:
            return
        mask = Image.new("L", (int(x1 - x0), int(y1 - y0)), 0)
        ImageDraw.Draw(mask).polygon([(float(x - x0), float(y - y0)) for x, y in polygon], fill=255)
        alpha = np.asarray(mask, np.float32)[..., None] / 255.0
        region = canvas[y0:y1, x0:x1]
        region[:] = region * (1 - alpha) + colour * alpha

    @staticmethod
    def _composite(canvas, mask, matrix, dst, colour):
        """Warps the line mask by `matrix` (mask -> canvas) into the canvas region under `dst` and paints."""
        height, width = canvas.shape[:2]
        x0, y0 = np.maximum(np.floor(dst.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(dst.max(0)).astype(int) + 1, [width, height])
        to_region = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
        inverse = np.linalg.inv(matrix) @ to_region
        inverse = inverse / inverse[2, 2]
        warped = mask.transform(
            (int(x1 - x0), int(y1 - y0)), Image.PERSPECTIVE, tuple(inverse.reshape(-1)[:8]), Image.BILINEAR, fillcolor=0
        )
        alpha = np.asarray(warped, np.float32)[..., None] / 255.0
        region = canvas[y0:y1, x0:x1]
        region[:] = region * (1 - alpha) + colour * alpha

    def _occlude(self, canvas, rng, line):
        """Covers part of a line with a bar or a blob; returns the covered share of each word's box."""
        height, width = canvas.shape[:2]
        quads = line["quads"]
        target = quads[int(rng.integers(len(quads)))]
        centre = target.mean(0) + rng.normal(0, 0.3, 2) * line["height"]
        mask = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(mask)
        thickness = line["height"] * rng.uniform(0.3, 1.5)
        if rng.random() < 0.6:
            phi = rng.uniform(0, np.pi)
            length = rng.uniform(2, 8) * line["height"]
            d = np.array([np.cos(phi), np.sin(phi)]) * length / 2
            draw.line([tuple(centre - d), tuple(centre + d)], fill=255, width=max(1, int(thickness)))
        else:
            r = thickness * rng.uniform(0.8, 2.0)
            draw.ellipse([centre[0] - r, centre[1] - r * rng.uniform(0.5, 1.0), centre[0] + r, centre[1] + r], fill=255)
        covered = np.asarray(mask, np.float32) / 255.0
        self._fill_mask(canvas, covered, _random_colour(rng))
        # The share of each word's box under the occluder, from a grid of points inside the box.
        u = (np.arange(8) + 0.5) / 8
        v = (np.arange(4) + 0.5) / 4
        uu, vv = np.meshgrid(u, v)
        uu, vv = uu.reshape(-1, 1), vv.reshape(-1, 1)
        shares = []
        for q in quads:
            top = q[0] + uu * (q[1] - q[0])
            bottom = q[3] + uu * (q[2] - q[3])
            points = top + vv * (bottom - top)
            xs = np.clip(points[:, 0].astype(int), 0, width - 1)
            ys = np.clip(points[:, 1].astype(int), 0, height - 1)
            shares.append(float(covered[ys, xs].mean()))
        return shares

    @staticmethod
    def _fill_mask(canvas, mask, colour):
        ys, xs = np.nonzero(mask > 0)
        if len(ys) == 0:
            return
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        alpha = mask[y0:y1, x0:x1, None]
        region = canvas[y0:y1, x0:x1]
        region[:] = region * (1 - alpha) + colour * alpha

    # Lighting and degradation ---------------------------------------------------------------------------

    def _lighting(self, canvas, rng):
        m = self.mix
        height, width = canvas.shape[:2]
        gradient, shadow = rng.random() < m["gradient_prob"], rng.random() < m["shadow_prob"]
        if gradient or shadow:
            ys = np.arange(height, dtype=np.float32)[:, None]
            xs = np.arange(width, dtype=np.float32)[None, :]
            gain = np.ones((height, width), np.float32)
            if gradient:
                theta = rng.uniform(0, 2 * np.pi)
                ramp = (xs / width - 0.5) * np.cos(theta) + (ys / height - 0.5) * np.sin(theta)
                gain *= 1.0 + ramp * rng.uniform(0, m["gradient"])
            if shadow:
                phi = rng.uniform(0, 2 * np.pi)
                dist = (xs - rng.uniform(0, width)) * np.cos(phi) + (ys - rng.uniform(0, height)) * np.sin(phi)
                edge = 1.0 / (1.0 + np.exp(-np.clip(dist / rng.uniform(1.0, 20.0), -30, 30)))
                gain *= 1.0 - rng.uniform(0.4, 1.0) * m["shadow"] * edge
            canvas *= gain[..., None]
        return np.clip(canvas, 0, 255, out=canvas)

    def _degrade(self, canvas, rng):
        m = self.mix
        pil = Image.fromarray(canvas.astype(np.uint8))
        u = rng.random()
        if u < m["blur_prob"] and m["blur_radius"] > 0:
            pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, max(m["blur_radius"], 0.3))))
        elif u < m["blur_prob"] + m["low_resolution_prob"] and m["low_resolution"] > 1:
            f = rng.uniform(1.0, m["low_resolution"])
            small = (max(8, int(pil.width / f)), max(8, int(pil.height / f)))
            pil = pil.resize(small, Image.BILINEAR).resize((canvas.shape[1], canvas.shape[0]), Image.BILINEAR)
        image = np.array(pil, np.float32)
        if m["noise"] > 0:
            image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(rng.uniform(0, m["noise"]))
        image = np.clip(image, 0, 255).astype(np.uint8)
        if rng.random() < m["jpeg_prob"]:
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, format="JPEG", quality=int(rng.integers(m["jpeg_quality"], 96)))
            image = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), np.uint8)
        return image


def _apply(matrix, points):
    """Points `[n, 2]` through a 3x3 homography."""
    points = np.asarray(points, np.float64)
    h = np.concatenate([points, np.ones((len(points), 1))], 1) @ matrix.T
    return h[:, :2] / h[:, 2:3]


def render_indexed(renderer, seed, index):
    """Scene `index` of stream `seed` (an int or a tuple of ints): the same scene whatever else is drawn."""
    rng = np.random.default_rng([*np.atleast_1d(np.asarray(seed, np.int64)).tolist(), int(index)])
    return renderer.render(rng)


# The small square scenes of the first default (kept for callers that draw quick test images) -------------


_FONT_DIR = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")
FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
)
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@functools.lru_cache(maxsize=256)
def _font(name, size):
    return ImageFont.truetype(os.path.join(_FONT_DIR, name), size)


@functools.lru_cache(maxsize=1)
def _vocabulary():
    try:
        import wordfreq

        words = [w for w in wordfreq.top_n_list("en", 3000) if w.isalnum() and 2 <= len(w) <= 10]
        if len(words) > 100:
            return tuple(words)
    except Exception:  # noqa: BLE001 - any failure falls back to random strings
        pass
    return ()


def _word(rng):
    vocab = _vocabulary()
    if vocab and rng.random() < 0.8:
        word = vocab[rng.integers(len(vocab))]
        style = rng.integers(3)
        return word.upper() if style == 0 else word.capitalize() if style == 1 else word
    return "".join(rng.choice(list(_LETTERS), size=rng.integers(2, 9)))


def _background(rng, size):
    base = rng.uniform(0, 255, 3)
    other = rng.uniform(0, 255, 3)
    t = np.linspace(0, 1, size)[None, :, None]
    if rng.random() < 0.5:
        t = np.transpose(t, (1, 0, 2))
    img = base * (1 - t) + other * t + rng.normal(0, rng.uniform(2, 12), (size, size, 3))
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(rng.integers(0, 6)):
        colour = tuple(int(c) for c in np.clip(base + rng.normal(0, 50, 3), 0, 255))
        x0, y0 = rng.uniform(-size / 4, size, 2)
        x1, y1 = x0 + rng.uniform(5, size / 2), y0 + rng.uniform(5, size / 2)
        kind = rng.integers(3)
        if kind == 0:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        elif kind == 1:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        else:
            draw.line([x0, y0, x1, y1], fill=colour, width=int(rng.integers(1, 3)))
    if rng.random() < 0.5:
        pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    return pil


def _contrasting(rng, background_mean, min_contrast):
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        if abs(colour.mean() - background_mean) >= min_contrast:
            return colour
    return np.full(3, 255.0 if background_mean < 128 else 0.0)


def render_scene(
    rng, size=128, max_words=4, min_height=10, max_height=24, max_angle_deg=45.0, dontcare_prob=0.1, min_contrast=80.0
):
    """Render one scene.

    Args:
      rng: `np.random.Generator`.
      size: side of the square image in pixels.
      max_words: words per scene are drawn uniformly from 1..max_words (fewer when they do not fit).
      min_height, max_height: font size range in pixels.
      max_angle_deg: word angles are uniform in +-max_angle_deg (positive = clockwise on screen).
      dontcare_prob: share of words drawn faint and small and labelled `###`.
      min_contrast: minimum grey-level difference between a cared-for word and the local background.

    Returns:
      `(image uint8 [size, size, 3], quads float32 [n, 4, 2] pixel corners in ICDAR order,
      transcriptions list of str, '###' for don't care)`.
    """
    pil = _background(rng, size)
    canvas = np.asarray(pil, np.float32).copy()
    placed, quads, texts = [], [], []
    for _ in range(int(rng.integers(1, max_words + 1))):
        for _attempt in range(10):
            dontcare = rng.random() < dontcare_prob
            word = _word(rng)
            height = int(rng.integers(min_height, max_height + 1))
            if dontcare:
                height = max(6, height // 2)
            font = _font(FONTS[rng.integers(len(FONTS))], height)
            left, top, right, bottom = font.getbbox(word)
            tw, th = right - left + 4, bottom - top + 4
            if tw >= size * 0.95:
                continue
            mask = Image.new("L", (tw, th), 0)
            ImageDraw.Draw(mask).text((2 - left, 2 - top), word, fill=255, font=font)
            ink = mask.getbbox()
            if ink is None:
                continue
            angle = np.deg2rad(rng.uniform(-max_angle_deg, max_angle_deg))
            x0, y0, x1, y1 = ink
            bw, bh = x1 - x0 + 1.0, y1 - y0 + 1.0
            half = 0.5 * np.hypot(bw, bh)
            if 2 * half >= size:
                continue
            cx, cy = rng.uniform(half, size - half), rng.uniform(half, size - half)
            quad = box_lib.angle_box_to_quad([cx, cy, bw, bh, angle])
            if any(_overlaps(quad, other) for other in placed):
                continue
            # Map scene pixels back into the mask: the ink box centre goes to (cx, cy), rotated by `angle`.
            mcx, mcy = (x0 + x1 + 1) / 2.0, (y0 + y1 + 1) / 2.0
            c, s = np.cos(angle), np.sin(angle)
            inverse = (c, s, mcx - c * cx - s * cy, -s, c, mcy + s * cx - c * cy)
            warped = mask.transform((size, size), Image.AFFINE, inverse, resample=Image.BILINEAR)
            alpha = np.asarray(warped, np.float32)[..., None] / 255.0
            region = alpha[..., 0] > 0.5
            local_mean = canvas[region].mean() if region.any() else canvas.mean()
            colour = _contrasting(rng, local_mean, min_contrast)
            if dontcare:
                colour = local_mean + (colour - local_mean) * 0.5
            canvas = canvas * (1 - alpha) + colour * alpha
            placed.append(quad)
            quads.append(quad)
            texts.append("###" if dontcare else word)
            break
    image = np.clip(canvas + rng.normal(0, 3, canvas.shape), 0, 255).astype(np.uint8)
    quads = np.asarray(quads, np.float32).reshape(-1, 4, 2)
    return image, quads, texts


def _overlaps(quad, other, margin=2.0):
    from shapely.geometry import Polygon

    return Polygon(quad).buffer(margin).intersects(Polygon(other))
