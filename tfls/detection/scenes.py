"""Synthetic text scenes: words at random positions, sizes and angles on textured backgrounds, with exact
ground-truth quadrilaterals (the tight box of the drawn ink, rotated with it) and some `###` don't-cares."""

import functools
import os

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tfls.detection import boxes as box_lib

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
