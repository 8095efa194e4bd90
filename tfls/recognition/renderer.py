"""Synthetic word images: a word drawn as a cropped piece of a scene, with random fonts, colours and damage.

The word is drawn into an ink mask on a canvas around it, with optional neighbouring words, text lines
above and below, and lines or borders; the mask is bent (curved baseline), then one perspective transform
maps it into the crop window (rotation, slant, perspective and a tight or loose crop together). The crop is
composited at the output size over a flat or procedural background, then lit (gradients, cast shadows)
and degraded (blur, motion blur, low resolution, noise, JPEG). `configs/str.py` holds the training and
the held-out (`ood`) mixes; `DISTORTION_LIMITS` documents every key.

Deterministic: image `i` of seed `s` depends only on `(s, i)`, so a held-out set is reproducible and can be
rendered in parallel.
"""

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tfls.recognition import fonts as fonts_lib

# Procedural backgrounds: the training mix draws from some, `ood` adds kinds that training never sees.
BACKGROUND_KINDS = ("noise", "grain", "stripes", "blotches", "photo", "bricks", "scribbles")

# Every distortion key: (smallest allowed, largest allowed, strongest setting, meaning).
DISTORTION_LIMITS = {
    "rotation_deg": (0.0, 45.0, 30.0, "max |in-plane rotation|, degrees (triangular around 0)"),
    "shear": (0.0, 1.0, 0.8, "max |horizontal slant| dx/dy, an italic-like lean either way"),
    "perspective": (0.0, 0.5, 0.4, "max displacement of each corner of the word box, fraction of text height"),
    "curve_prob": (0.0, 1.0, 1.0, "probability of a curved baseline (an arc or a wave)"),
    "curve": (0.0, 1.0, 1.0, "max bend of a curved baseline, fraction of text height"),
    "tracking_prob": (0.0, 1.0, 1.0, "probability of extra letter spacing"),
    "tracking": (0.0, 1.0, 1.0, "max extra letter spacing, fraction of the font size"),
    "crop": (0.0, 1.0, 1.0, "probability of a tight crop (box edges at or just inside the ink)"),
    "crop_cut": (0.0, 0.2, 0.2, "max cut into the ink box by a tight crop, fraction of text height per side"),
    "margin": (0.0, 2.0, 2.0, "max margin of a loose crop, fraction of text height per side"),
    "neighbours_prob": (0.0, 1.0, 1.0, "probability of neighbouring words left and right (glyphs cut at the edges)"),
    "neighbour_lines_prob": (0.0, 1.0, 1.0, "probability of text lines above and below (cut at the top/bottom)"),
    "lines_prob": (0.0, 1.0, 1.0, "probability of an underline, overline, box border or side bar"),
    "colour": (False, True, True, "random colours; False draws black text on white"),
    "min_contrast": (1, 255, 1, "min luminance difference between text and background, grey levels"),
    "low_contrast_prob": (0.0, 1.0, 1.0, "probability of low contrast (difference in [low_contrast, min_contrast])"),
    "low_contrast": (1, 255, 1, "smallest luminance difference of a low-contrast image, grey levels"),
    "outline_prob": (0.0, 1.0, 1.0, "probability of outlined text (a stroke of a second colour)"),
    "text_shadow_prob": (0.0, 1.0, 1.0, "probability of a soft drop shadow behind the text"),
    "textured_background": (0.0, 1.0, 1.0, "probability of a procedural background instead of a flat colour"),
    "backgrounds": ("", "", ",".join(BACKGROUND_KINDS), "comma-separated kinds a textured background is drawn from"),
    "texture_strength": (0.0, 1.0, 1.0, "max texture amplitude, fraction of the text/background contrast"),
    "gradient_prob": (0.0, 1.0, 1.0, "probability of a lighting gradient across the crop"),
    "gradient": (0.0, 1.0, 1.0, "max brightness change of a lighting gradient, fraction"),
    "shadow_prob": (0.0, 1.0, 1.0, "probability of a cast shadow (a soft-edged darker part of the crop)"),
    "shadow": (0.0, 0.9, 0.9, "max darkening of a cast shadow, fraction of the brightness"),
    "blur": (0.0, 1.0, 1.0, "probability of a Gaussian blur (one of low resolution, blur, motion blur at most)"),
    "blur_radius": (0.0, 3.0, 3.0, "max Gaussian blur radius, output pixels"),
    "motion_blur_prob": (0.0, 1.0, 1.0, "probability of a motion blur"),
    "motion_blur": (0.0, 12.0, 12.0, "max motion blur length, output pixels, in a random direction"),
    "noise": (
        0.0,
        64.0,
        64.0,
        "max std of additive Gaussian noise, grey levels (capped at contrast / 5, / 8 once blurred)",
    ),
    "jpeg": (0.0, 1.0, 1.0, "probability of JPEG re-encoding"),
    "jpeg_quality": (1, 95, 5, "lowest JPEG quality (drawn up to 95)"),
    "low_resolution_prob": (0.0, 1.0, 1.0, "probability of a low-resolution crop (down-sampled, scaled back)"),
    "low_resolution": (1.0, 6.0, 6.0, "max down-sampling factor of a low-resolution crop"),
}

# A clean word: no geometric or photometric damage, random colours, a small loose margin.
CLEAN_DISTORTIONS = {
    "rotation_deg": 0.0,
    "shear": 0.0,
    "perspective": 0.0,
    "curve_prob": 0.0,
    "curve": 0.0,
    "tracking_prob": 0.0,
    "tracking": 0.0,
    "crop": 0.0,
    "crop_cut": 0.0,
    "margin": 0.2,
    "neighbours_prob": 0.0,
    "neighbour_lines_prob": 0.0,
    "lines_prob": 0.0,
    "colour": True,
    "min_contrast": 80,
    "low_contrast_prob": 0.0,
    "low_contrast": 40,
    "outline_prob": 0.0,
    "text_shadow_prob": 0.0,
    "textured_background": 0.0,
    "backgrounds": "noise,grain,stripes,blotches,photo",
    "texture_strength": 0.5,
    "gradient_prob": 0.0,
    "gradient": 0.0,
    "shadow_prob": 0.0,
    "shadow": 0.0,
    "blur": 0.0,
    "blur_radius": 1.0,
    "motion_blur_prob": 0.0,
    "motion_blur": 0.0,
    "noise": 0.0,
    "jpeg": 0.0,
    "jpeg_quality": 30,
    "low_resolution_prob": 0.0,
    "low_resolution": 1.0,
}

# Font sizes the word is drawn at before the crop is scaled to the output size.
FONT_SIZES = (24, 38)
_CURVE_STRIPS = 12
_NEIGHBOUR_LETTERS = "etaoinshrdlucmfwygpbvk"
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def validate_distortions(distortions):
    """`CLEAN_DISTORTIONS` updated with `distortions`, checked against `DISTORTION_LIMITS`.

    Raises:
      ValueError: an unknown key, a value out of range or an unknown background kind.
    """
    unknown = set(distortions or {}) - set(DISTORTION_LIMITS)
    if unknown:
        raise ValueError(f"unknown distortion keys {sorted(unknown)}; known: {sorted(DISTORTION_LIMITS)}")
    d = dict(CLEAN_DISTORTIONS, **(distortions or {}))
    for key, (low, high, _, _) in DISTORTION_LIMITS.items():
        if key == "backgrounds":
            kinds = [k for k in str(d[key]).split(",") if k]
            bad = sorted(set(kinds) - set(BACKGROUND_KINDS))
            if bad or not kinds:
                raise ValueError(f"distortion 'backgrounds': unknown or no kinds {bad}; known: {BACKGROUND_KINDS}")
        elif key == "colour":
            d[key] = bool(d[key])
        elif not low <= d[key] <= high:
            raise ValueError(f"distortion {key!r} = {d[key]} is outside [{low}, {high}]")
    if d["low_contrast"] > d["min_contrast"]:
        raise ValueError(f"low_contrast {d['low_contrast']} must not exceed min_contrast {d['min_contrast']}")
    return d


def _homography(src, dst):
    """3x3 matrix mapping the 4 points `src` onto `dst` (both `[4, 2]`)."""
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b.extend([u, v])
    h = np.linalg.solve(np.asarray(a, np.float64), np.asarray(b, np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def _smooth_field(rng, shape, cells):
    """A smooth random field in [-1, 1] of `shape` (H, W): `cells` (rows, cols) of noise, upsampled."""
    small = rng.uniform(-1.0, 1.0, size=cells).astype(np.float32)
    return np.asarray(Image.fromarray(small, "F").resize(shape[::-1], Image.BICUBIC), np.float32).clip(-1, 1)


class WordRenderer:
    """Renders words to fixed-size grey (or RGB) crops.

    Args:
      height: output height in pixels.
      width: output width in pixels.
      fonts: `FontFile`s or font paths (`fonts.PIL_DEFAULT_FONT` for Pillow's default); a word picks a
        family uniformly, then one of its styles. None: the training fonts of the default split.
      distortions: dict of `DISTORTION_LIMITS` keys overriding `CLEAN_DISTORTIONS`.
      channels: 1 (grey) or 3 (RGB).
    """

    def __init__(self, height=32, width=100, fonts=None, distortions=None, channels=1):
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.height, self.width, self.channels = int(height), int(width), int(channels)
        self.distortions = validate_distortions(distortions)
        if not fonts:
            fonts = fonts_lib.split_fonts()[0]
        self.fonts = [f.path if isinstance(f, fonts_lib.FontFile) else str(f) for f in fonts]
        families = {}
        for f in fonts:
            family = f.family if isinstance(f, fonts_lib.FontFile) else str(f)
            families.setdefault(family, []).append(f.path if isinstance(f, fonts_lib.FontFile) else str(f))
        self.families = [families[k] for k in sorted(families)]
        self.backgrounds = [k for k in self.distortions["backgrounds"].split(",") if k]

    # Colours ------------------------------------------------------------------------------------------

    def _colour(self, rng, luminance):
        """A colour (length `channels`) of about `luminance`: grey for one channel, a random hue for three."""
        if self.channels == 1 or not self.distortions["colour"]:
            return np.full(self.channels, luminance, np.float32)
        hue = rng.uniform(0, 255, size=3).astype(np.float32)
        hue = luminance + (hue - hue @ _LUMA) * rng.uniform(0.0, 1.0)
        return np.clip(hue + (luminance - np.clip(hue, 0, 255) @ _LUMA), 0, 255).astype(np.float32)

    def _colours(self, rng):
        """`(background, text, contrast)`: colours and the luminance difference between them."""
        d = self.distortions
        if not d["colour"]:
            return np.full(self.channels, 255.0, np.float32), np.zeros(self.channels, np.float32), 255.0
        if rng.random() < d["low_contrast_prob"]:
            contrast = rng.uniform(d["low_contrast"], d["min_contrast"])
        else:
            contrast = rng.uniform(d["min_contrast"], 255.0)
        if rng.random() < 0.5:  # light text on a darker background
            bg = rng.uniform(0.0, 255.0 - contrast)
            fg = bg + contrast
        else:
            bg = rng.uniform(contrast, 255.0)
            fg = bg - contrast
        return self._colour(rng, bg), self._colour(rng, fg), float(contrast)

    # Text layout --------------------------------------------------------------------------------------

    @staticmethod
    def _layout(text, font, tracking):
        """`(pieces, box)`: `(x, string)` pieces drawn at baseline 0, and their ink box (l, t, r, b)."""
        if not tracking:
            left, top, right, bottom = font.getbbox(text or "x", anchor="ls")
            return [(0.0, text)], (left, top, max(right, left + 1), max(bottom, top + 1))
        pieces, x, box = [], 0.0, [np.inf, np.inf, -np.inf, -np.inf]
        for c in text:
            left, top, right, bottom = font.getbbox(c, anchor="ls")
            box = [min(box[0], x + left), min(box[1], top), max(box[2], x + right), max(box[3], bottom)]
            pieces.append((x, c))
            x += font.getlength(c) + tracking
        if not pieces:
            return WordRenderer._layout(text, font, 0.0)
        return pieces, (box[0], box[1], max(box[2], box[0] + 1), max(box[3], box[1] + 1))

    def _neighbour_text(self, rng, n, upper):
        text = "".join(rng.choice(list(_NEIGHBOUR_LETTERS), size=n))
        return text.upper() if upper else text

    def _draw_mask(self, text, rng):
        """Draws the word and its surroundings on a canvas.

        Returns:
          `(masks, box, unit)`: list of L images (ink; plus the outline when outlined), the word's ink box
          `[x0, y0, x1, y1]` in canvas pixels, and the length unit (about the text height).
        """
        d = self.distortions
        family = self.families[int(rng.integers(len(self.families)))]
        size = int(rng.integers(FONT_SIZES[0], FONT_SIZES[1] + 1))
        font = fonts_lib.load_font(family[int(rng.integers(len(family)))], size)
        tracking = size * rng.uniform(0.05, d["tracking"]) if rng.random() < d["tracking_prob"] else 0.0
        pieces, (left, top, right, bottom) = self._layout(text, font, tracking)
        unit = max(bottom - top, 0.6 * size)
        reach = max(d["margin"], d["crop_cut"]) + d["perspective"] + 0.3
        mx, my = int(unit * (reach + 1.0)) + 4, int(unit * (reach + 0.3)) + 4
        if d["neighbour_lines_prob"] > 0:
            my = max(my, int(1.6 * unit + size))
        w, h = int(right - left) + 2 * mx, int(bottom - top) + 2 * my
        ox, oy = mx - left, my - top  # baseline origin of the word
        box = np.array([mx, my, mx + (right - left), my + (bottom - top)], np.float64)
        outline = rng.random() < d["outline_prob"]
        stroke = max(1, int(round(size * rng.uniform(0.04, 0.09)))) if outline else 0

        extra = []  # (x, y, text, anchor) of the surroundings
        upper = text.isupper()
        if rng.random() < d["neighbours_prob"]:
            space = font.getlength(" ")
            if rng.random() < 0.8:
                extra.append((mx - space * rng.uniform(0.7, 1.6), oy, self._neighbour_text(rng, 4, upper), "rs"))
            if rng.random() < 0.8:
                extra.append((box[2] + space * rng.uniform(0.7, 1.6), oy, self._neighbour_text(rng, 4, upper), "ls"))
        if rng.random() < d["neighbour_lines_prob"]:
            n = int(w / (0.45 * size)) + 2
            for sign in (-1, 1):
                if rng.random() < 0.7:
                    y = oy + sign * size * rng.uniform(1.05, 1.4)
                    extra.append((rng.uniform(-0.5, 0.0) * size, y, self._neighbour_text(rng, n, upper), "ls"))

        masks = []
        for layer in ("outline", "ink") if outline else ("ink",):
            img = Image.new("L", (w, h), 0)
            draw = ImageDraw.Draw(img)
            sw = stroke if layer == "outline" else 0
            for x, piece in pieces:
                draw.text((ox + x, oy), piece, font=font, fill=255, anchor="ls", stroke_width=sw, stroke_fill=255)
            for x, y, piece, anchor in extra:
                draw.text((x, y), piece, font=font, fill=255, anchor=anchor, stroke_width=sw, stroke_fill=255)
            masks.append(img)
        if rng.random() < d["lines_prob"]:
            self._draw_lines(ImageDraw.Draw(masks[-1]), box, unit, rng)
        return masks, box, unit

    @staticmethod
    def _draw_lines(draw, box, unit, rng):
        x0, y0, x1, y1 = box
        width = max(1, int(round(unit * rng.uniform(0.04, 0.12))))
        pad = unit * rng.uniform(0.15, 0.5)
        kind = ("underline", "overline", "box", "bar")[int(rng.integers(4))]
        if kind == "underline":
            y = y1 + unit * rng.uniform(0.08, 0.3)
            draw.line([(x0 - pad, y), (x1 + pad, y)], fill=255, width=width)
        elif kind == "overline":
            y = y0 - unit * rng.uniform(0.1, 0.3)
            draw.line([(x0 - pad, y), (x1 + pad, y)], fill=255, width=width)
        elif kind == "box":
            draw.rectangle([x0 - pad, y0 - pad * 0.7, x1 + pad, y1 + pad * 0.7], outline=255, width=width)
        else:
            x = x0 - pad if rng.random() < 0.5 else x1 + pad
            draw.line([(x, y0 - unit), (x, y1 + unit)], fill=255, width=width)

    # Geometry -----------------------------------------------------------------------------------------

    def _curve(self, masks, box, unit, rng):
        """Bends the canvas along an arc or a wave; returns the masks and the word box that contains it."""
        d = self.distortions
        w, h = masks[0].size
        x0, y0, x1, y1 = box
        amp = rng.uniform(-1.0, 1.0) * d["curve"] * unit
        half = max((x1 - x0) / 2.0, 1.0)
        if rng.random() < 0.6:
            bend = lambda x: amp * (1.0 - ((x - (x0 + x1) / 2.0) / half) ** 2)  # noqa: E731
        else:
            period, phase = half * rng.uniform(0.8, 2.0), rng.uniform(0, 2 * np.pi)
            bend = lambda x: amp * np.sin(np.pi * (x - x0) / period + phase)  # noqa: E731
        # Piecewise-linear strips: one mesh transform in C instead of a per-pixel gather.
        edges = np.linspace(0, w, _CURVE_STRIPS + 1)
        shift = bend(edges)
        mesh = [
            ((int(xa), 0, int(xb), h), (xa, -sa, xa, h - sa, xb, h - sb, xb, -sb))
            for xa, xb, sa, sb in zip(edges[:-1], edges[1:], shift[:-1], shift[1:])
        ]
        out = [m.transform((w, h), Image.MESH, mesh, Image.BILINEAR, fillcolor=0) for m in masks]
        inside = bend(np.linspace(x0, x1, 16))
        return out, np.array([x0, y0 + inside.min(), x1, y1 + inside.max()])

    def _window(self, box, unit, rng):
        """`(coefficients, size)` of the perspective transform from the crop window to the canvas."""
        d = self.distortions
        x0, y0, x1, y1 = box
        src = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
        centre = src.mean(axis=0)
        angle = np.deg2rad(rng.triangular(-1.0, 0.0, 1.0) * d["rotation_deg"]) if d["rotation_deg"] else 0.0
        shear = rng.triangular(-1.0, 0.0, 1.0) * d["shear"] if d["shear"] else 0.0
        cos, sin = np.cos(angle), np.sin(angle)
        linear = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]])
        dst = (src - centre) @ linear.T + centre
        if d["perspective"]:
            dst = dst + rng.uniform(-1.0, 1.0, size=(4, 2)) * d["perspective"] * unit
        if rng.random() < d["crop"]:
            margins = rng.uniform(-d["crop_cut"], 0.05, size=4) * unit
        else:
            margins = rng.uniform(0.0, d["margin"], size=4) * unit * np.array([1.0, 0.7, 1.0, 0.7])
        lo = dst.min(axis=0) - margins[:2]
        hi = dst.max(axis=0) + margins[2:]
        size = np.maximum(np.round(hi - lo), 2).astype(int)
        to_window = np.array([[1.0, 0.0, lo[0]], [0.0, 1.0, lo[1]], [0.0, 0.0, 1.0]])
        matrix = np.linalg.inv(_homography(src, dst)) @ to_window
        matrix = matrix / matrix[2, 2]
        return tuple(matrix.reshape(-1)[:8]), (int(size[0]), int(size[1]))

    # Background and lighting ----------------------------------------------------------------------------

    def _texture(self, kind, rng):
        """A texture field in about [-1, 1], `[H, W]`."""
        h, w = self.height, self.width
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        if kind == "noise":
            field = _smooth_field(rng, (h, w), (int(rng.integers(2, 6)), int(rng.integers(3, 14))))
            return 0.7 * field + 0.3 * _smooth_field(rng, (h, w), (int(rng.integers(6, 12)), int(rng.integers(14, 40))))
        if kind == "grain":
            return np.clip(rng.normal(0.0, 0.3, size=(h, w)), -1, 1).astype(np.float32)
        if kind == "stripes":
            theta = rng.uniform(0, np.pi)
            phase = (xs * np.cos(theta) + ys * np.sin(theta)) * 2 * np.pi / rng.uniform(3.0, 24.0)
            wave = np.sin(phase + rng.uniform(0, 2 * np.pi))
            return np.sign(wave) * np.abs(wave) ** rng.uniform(0.2, 1.0)
        if kind == "blotches":
            field = np.zeros((h, w), np.float32)
            for _ in range(int(rng.integers(2, 7))):
                cx, cy = rng.uniform(0, w), rng.uniform(0, h)
                rx, ry = rng.uniform(3, w / 3), rng.uniform(3, h)
                dist = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2
                field += rng.choice([-1.0, 1.0]) * np.exp(-(dist**2))
            return np.clip(field, -1, 1)
        if kind == "photo":
            # Soft shading, a few hard edges of objects behind the text, and sensor grain.
            field = 0.6 * _smooth_field(rng, (h, w), (int(rng.integers(2, 5)), int(rng.integers(3, 9))))
            for _ in range(int(rng.integers(1, 4))):
                theta = rng.uniform(0, np.pi)
                side = (xs - rng.uniform(0, w)) * np.cos(theta) + (ys - rng.uniform(0, h)) * np.sin(theta) > 0
                field = np.where(side, field + rng.uniform(-0.8, 0.8), field)
            return np.clip(field + rng.normal(0.0, 0.08, size=(h, w)), -1, 1).astype(np.float32)
        if kind == "bricks":
            bh, bw = rng.uniform(5, 16), rng.uniform(12, 40)
            row = np.floor(ys / bh)
            offset = (row % 2) * bw / 2
            mortar = (ys % bh < 1.5) | ((xs + offset) % bw < 1.5)
            shade = _smooth_field(rng, (h, w), (3, 8)) * 0.3
            return np.where(mortar, -1.0, 0.5 + shade).astype(np.float32)
        if kind == "scribbles":
            img = Image.new("L", (w, h), 0)
            draw = ImageDraw.Draw(img)
            for _ in range(int(rng.integers(2, 6))):
                points = [(float(rng.uniform(0, w)), float(rng.uniform(0, h))) for _ in range(int(rng.integers(3, 7)))]
                draw.line(points, fill=int(rng.integers(128, 256)), width=int(rng.integers(1, 3)))
            return np.asarray(img, np.float32) / 127.5 - 0.5
        raise ValueError(f"unknown background kind {kind!r}")

    def _background(self, rng, colour, contrast):
        d = self.distortions
        bg = np.broadcast_to(colour, (self.height, self.width, self.channels)).astype(np.float32)
        if not self.backgrounds or rng.random() >= d["textured_background"]:
            return bg
        kind = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        amplitude = d["texture_strength"] * contrast * rng.uniform(0.3, 1.0)
        field = self._texture(kind, rng)[..., None]
        if self.channels == 3 and d["colour"]:
            tint = rng.uniform(0.5, 1.5, size=3).astype(np.float32)
            return bg + amplitude * field * tint / tint.mean()
        return bg + amplitude * field

    def _lighting(self, image, rng):
        d = self.distortions
        h, w = self.height, self.width
        if rng.random() < d["gradient_prob"]:
            theta = rng.uniform(0, 2 * np.pi)
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            ramp = ((xs / w - 0.5) * np.cos(theta) + (ys / h - 0.5) * np.sin(theta)) * rng.uniform(0, d["gradient"])
            image = image * (1.0 + ramp)[..., None]
        if rng.random() < d["shadow_prob"]:
            theta = rng.uniform(0, 2 * np.pi)
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            dist = (xs - rng.uniform(0, w)) * np.cos(theta) + (ys - rng.uniform(0, h)) * np.sin(theta)
            edge = 1.0 / (1.0 + np.exp(-dist / rng.uniform(0.5, 6.0)))
            image = image * (1.0 - rng.uniform(0.4, 1.0) * d["shadow"] * edge)[..., None]
        return image

    # Degradations ---------------------------------------------------------------------------------------

    def _motion_blur(self, image, rng):
        length = rng.uniform(1.5, max(self.distortions["motion_blur"], 1.5))
        theta = rng.uniform(0, np.pi)
        steps = np.linspace(-length / 2, length / 2, int(np.ceil(length)) + 1)
        pad = int(np.ceil(length / 2)) + 1
        padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        h, w = image.shape[:2]
        out = np.zeros_like(image)
        for s in steps:
            dx, dy = int(round(s * np.cos(theta))), int(round(s * np.sin(theta)))
            out += padded[pad + dy : pad + dy + h, pad + dx : pad + dx + w]
        return out / len(steps)

    def _to_pil(self, image):
        arr = np.clip(image, 0, 255).astype(np.uint8)
        return Image.fromarray(arr[..., 0] if self.channels == 1 else arr)

    def _degrade(self, image, rng, contrast):
        d = self.distortions
        size = (self.width, self.height)
        # One loss of sharpness at most (low resolution, defocus or motion): stacked, they erase the word.
        u = rng.random()
        sharp = True
        if u < d["low_resolution_prob"] and d["low_resolution"] > 1:
            f = rng.uniform(1.0, d["low_resolution"])
            small = (max(2, int(self.width / f)), max(2, int(self.height / f)))
            image = np.asarray(
                self._to_pil(image).resize(small, Image.BILINEAR).resize(size, Image.BILINEAR), np.float32
            )
            image = image.reshape(self.height, self.width, self.channels)
            sharp = False
        elif u < d["low_resolution_prob"] + d["blur"] and d["blur_radius"] > 0:
            radius = rng.uniform(min(0.4, d["blur_radius"]), d["blur_radius"])
            image = np.asarray(self._to_pil(image).filter(ImageFilter.GaussianBlur(radius)), np.float32)
            image = image.reshape(self.height, self.width, self.channels)
            sharp = False
        elif u < d["low_resolution_prob"] + d["blur"] + d["motion_blur_prob"] and d["motion_blur"] > 0:
            image = self._motion_blur(image, rng)
        if d["noise"] > 0:
            # Noise stronger than a fifth of the text contrast (an eighth once blurred) drowns the word.
            std = min(rng.uniform(0.0, d["noise"]), contrast / (5.0 if sharp else 8.0))
            image = image + rng.normal(0.0, std, size=image.shape).astype(np.float32)
        image = np.clip(image, 0, 255).astype(np.uint8)
        if rng.random() < d["jpeg"]:
            # Compressed at twice the output size: a camera compresses the photo, not the 32-pixel crop, so
            # its 8x8 blocks are smaller than a glyph.
            big = self._to_pil(image).resize((2 * self.width, 2 * self.height), Image.BILINEAR)
            buf = io.BytesIO()
            big.save(buf, format="JPEG", quality=int(rng.integers(d["jpeg_quality"], 96)))
            image = np.asarray(Image.open(io.BytesIO(buf.getvalue())).resize(size, Image.BILINEAR), np.uint8)
        return image.reshape(self.height, self.width, self.channels)

    # The whole image --------------------------------------------------------------------------------------

    def render(self, text, rng):
        """Renders `text` (as it should look: case included) with randomness from the numpy Generator `rng`.

        Returns:
          uint8 array `[height, width, channels]`.
        """
        d = self.distortions
        masks, box, unit = self._draw_mask(text, rng)
        if rng.random() < d["curve_prob"] and d["curve"] > 0:
            masks, box = self._curve(masks, box, unit, rng)
        coefficients, window = self._window(box, unit, rng)
        size = (self.width, self.height)
        alphas = []
        for m in masks:
            warped = m.transform(window, Image.PERSPECTIVE, coefficients, Image.BILINEAR, fillcolor=0)
            alphas.append(np.asarray(warped.resize(size, Image.BILINEAR), np.float32)[..., None] / 255.0)
        return self._paint(alphas, rng)

    def _paint(self, alphas, rng):
        """Colours, background, text effects, lighting and degradation over the warped ink masks."""
        d = self.distortions
        size = (self.width, self.height)
        bg_colour, fg_colour, contrast = self._colours(rng)
        image = self._background(rng, bg_colour, contrast)
        if rng.random() < d["text_shadow_prob"]:
            union = Image.fromarray((alphas[0][..., 0] * 255).astype(np.uint8), "L")
            dx, dy = (int(v) for v in rng.integers(-3, 4, size=2))
            shadow = union.transform(size, Image.AFFINE, (1, 0, -dx, 0, 1, -dy), fillcolor=0)
            shadow = np.asarray(shadow.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0))), np.float32)
            image = image * (1.0 - 0.6 * shadow[..., None] / 255.0)
        if len(alphas) == 2:
            # The outline stands out from the fill, whatever the background.
            fill = float(fg_colour.mean())
            gap = min(d["min_contrast"], 255.0)
            if fill >= 127.5:
                outline = rng.uniform(0.0, max(fill - gap, 0.0))
            else:
                outline = rng.uniform(min(fill + gap, 255.0), 255.0)
            image = image * (1.0 - alphas[0]) + self._colour(rng, outline) * alphas[0]
        image = image * (1.0 - alphas[-1]) + fg_colour * alphas[-1]
        image = self._lighting(image, rng)
        return self._degrade(image, rng, contrast)


class MixedRenderer:
    """Draws each word from one of two renderers of the same size: `hard` with probability `hard_fraction`.

    The training stream uses it to add a share of harder images (wider distortion ranges) to the ordinary
    mix. The choice takes one uniform draw from the example's generator before the image's own draws.

    Args:
      base: the ordinary `WordRenderer`.
      hard: a `WordRenderer` with the harder distortions (same height, width and channels).
      hard_fraction: probability in [0, 1] that a word is rendered by `hard`.
    """

    def __init__(self, base, hard, hard_fraction):
        if (base.height, base.width, base.channels) != (hard.height, hard.width, hard.channels):
            raise ValueError("MixedRenderer: both renderers must have the same height, width and channels")
        if not 0.0 <= float(hard_fraction) <= 1.0:
            raise ValueError(f"hard_fraction must be in [0, 1], got {hard_fraction}")
        self.base, self.hard, self.hard_fraction = base, hard, float(hard_fraction)
        self.height, self.width, self.channels = base.height, base.width, base.channels

    def render(self, text, rng):
        renderer = self.hard if rng.random() < self.hard_fraction else self.base
        return renderer.render(text, rng)


def between_distortions(easy, hard, t):
    """A mix between two validated mixes: every number `easy + t (hard - easy)` (rounded for integer keys),
    `backgrounds` and `colour` from `easy` (so background kinds that only `hard` draws stay held out)."""
    if not 0.0 <= float(t) <= 1.0:
        raise ValueError(f"t must be in [0, 1], got {t}")
    easy, hard = validate_distortions(easy), validate_distortions(hard)
    out = {}
    for key, value in easy.items():
        if key in ("backgrounds", "colour"):
            out[key] = value
        elif isinstance(value, int) and isinstance(hard[key], int):
            out[key] = int(round(value + t * (hard[key] - value)))
        else:
            out[key] = float(value) + t * (float(hard[key]) - float(value))
    return validate_distortions(out)


def render_example(renderer, sampler, seed, index):
    """The deterministic example `index` of stream `seed`: `(image uint8 [H, W, C], label str)`.

    `seed` is an int or a tuple of ints (the held-out sets use tuples, so they never meet a training
    stream). The sampler gives the text as rendered (its case varied); the label is that text normalised
    by the sampler's charset (lower case for a case-insensitive charset).
    """
    rng = np.random.default_rng([*np.atleast_1d(np.asarray(seed, np.int64)).tolist(), int(index)])
    if hasattr(sampler, "sample_text"):
        text = sampler.sample_text(rng)
        return renderer.render(text, rng), sampler.charset.normalize(text)
    label = sampler.sample(rng)
    return renderer.render(label, rng), label
