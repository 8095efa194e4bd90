"""Synthetic photos for the OCR path: a given number of words at random angles on a `width x height`
background (the detection scenes' backgrounds, fonts and vocabulary), with exact quads and transcriptions.

The latency benchmark and the `tfls read` tests use them; the detector's own training scenes are
`tfls.detection.scenes.render_scene`.
"""

import numpy as np
from PIL import Image, ImageDraw

from tfls.detection import boxes as box_lib
from tfls.detection import scenes


def render_photo(rng, width=640, height=480, num_words=10, min_height=16, max_height=40, max_angle_deg=30.0):
    """Render one photo with up to `num_words` words (fewer only when 200 placements in a row fail).

    Args:
      rng: `np.random.Generator`.
      width, height: image size in pixels.
      num_words: words to place; they never overlap.
      min_height, max_height: font size range in pixels.
      max_angle_deg: word angles are uniform in +-max_angle_deg (positive = clockwise on screen).

    Returns:
      `(image uint8 [height, width, 3], quads float32 [n, 4, 2] pixel corners in ICDAR order, texts)`.
    """
    side = max(width, height)
    canvas = np.asarray(scenes._background(rng, side), np.float32)[:height, :width].copy()
    quads, texts = [], []
    failures = 0
    while len(quads) < num_words and failures < 200:
        word = scenes._word(rng)
        size = int(rng.integers(min_height, max_height + 1))
        font = scenes._font(scenes.FONTS[rng.integers(len(scenes.FONTS))], size)
        left, top, right, bottom = font.getbbox(word)
        mask = Image.new("L", (right - left + 4, bottom - top + 4), 0)
        ImageDraw.Draw(mask).text((2 - left, 2 - top), word, fill=255, font=font)
        ink = mask.getbbox()
        angle = np.deg2rad(rng.uniform(-max_angle_deg, max_angle_deg))
        x0, y0, x1, y1 = ink if ink else (0, 0, 0, 0)
        bw, bh = x1 - x0 + 1.0, y1 - y0 + 1.0
        half = 0.5 * np.hypot(bw, bh)
        if ink is None or 2 * half >= min(width, height):
            failures += 1
            continue
        cx, cy = rng.uniform(half, width - half), rng.uniform(half, height - half)
        quad = box_lib.angle_box_to_quad([cx, cy, bw, bh, angle])
        if any(scenes._overlaps(quad, other, margin=4.0) for other in quads):
            failures += 1
            continue
        # The ink box centre goes to (cx, cy), turned by `angle` (PIL's affine maps output to input pixels).
        mcx, mcy = (x0 + x1 + 1) / 2.0, (y0 + y1 + 1) / 2.0
        c, s = np.cos(angle), np.sin(angle)
        inverse = (c, s, mcx - c * cx - s * cy, -s, c, mcy + s * cx - c * cy)
        alpha = np.asarray(mask.transform((width, height), Image.AFFINE, inverse, resample=Image.BILINEAR))
        alpha = alpha.astype(np.float32)[..., None] / 255.0
        region = alpha[..., 0] > 0.5
        colour = scenes._contrasting(rng, canvas[region].mean() if region.any() else canvas.mean(), 90.0)
        canvas = canvas * (1 - alpha) + colour * alpha
        quads.append(quad)
        texts.append(word)
    image = np.clip(canvas + rng.normal(0, 3, canvas.shape), 0, 255).astype(np.uint8)
    return image, np.asarray(quads, np.float32).reshape(-1, 4, 2), texts
