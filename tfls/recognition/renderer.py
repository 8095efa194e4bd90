"""Synthetic word images: a label rendered with a random font, colours, background and distortions.

Deterministic: image `i` of seed `s` depends only on `(s, i)`, so a held-out set is reproducible and can be
rendered in parallel. Fonts are matplotlib's bundled TTFs (DejaVu, STIX) and Pillow's scalable default.
"""

import functools
import io
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

PIL_DEFAULT_FONT = "pil-default"
_TEXT_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
)


def available_fonts():
    """Paths of the bundled TTFs that hold Latin letters and digits, plus `PIL_DEFAULT_FONT`."""
    import matplotlib

    folder = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")
    fonts = [os.path.join(folder, f) for f in _TEXT_FONTS if os.path.exists(os.path.join(folder, f))]
    return fonts + [PIL_DEFAULT_FONT]


@functools.lru_cache(maxsize=512)
def _load_font(path, size):
    if path == PIL_DEFAULT_FONT:
        return ImageFont.load_default(size=size)
    try:
        return ImageFont.truetype(path, size)
    except OSError as e:
        raise ValueError(f"cannot load font {path!r}: {e}") from e


DEFAULT_DISTORTIONS = {
    "rotation_deg": 3.0,  # max absolute rotation
    "perspective": 0.0,  # max corner displacement, fraction of height
    "curve": 0.0,  # max baseline curvature amplitude, fraction of height
    "blur": 0.0,  # probability of a Gaussian blur (radius 0.3..1.2)
    "noise": 0.0,  # max Gaussian noise std, in grey levels
    "jpeg": 0.0,  # probability of JPEG re-encoding (quality 20..80)
    "crop": 0.0,  # max fraction of the margins cropped away (can cut into glyphs at 1.0)
    "min_contrast": 80,  # min grey-level difference between text and background
    "colour": True,  # random colours; False gives black text on white
    "textured_background": 0.3,  # probability of a gradient + speckle background
}


class WordRenderer:
    """Renders words to fixed-size grey (or RGB) images.

    Args:
      height: output height in pixels.
      width: output width in pixels.
      fonts: list of TTF paths (and/or `PIL_DEFAULT_FONT`); None means `available_fonts()`.
      distortions: dict overriding `DEFAULT_DISTORTIONS`.
      channels: 1 (grey) or 3 (RGB).
    """

    def __init__(self, height=32, width=100, fonts=None, distortions=None, channels=1):
        unknown = set(distortions or {}) - set(DEFAULT_DISTORTIONS)
        if unknown:
            raise ValueError(f"unknown distortion keys {sorted(unknown)}; known: {sorted(DEFAULT_DISTORTIONS)}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.height, self.width, self.channels = int(height), int(width), int(channels)
        self.fonts = list(fonts) if fonts else available_fonts()
        self.distortions = dict(DEFAULT_DISTORTIONS, **(distortions or {}))

    def _colours(self, rng):
        d = self.distortions
        if not d["colour"]:
            return (255, 255, 255), (0, 0, 0)
        while True:
            bg = rng.integers(0, 256, size=3)
            fg = rng.integers(0, 256, size=3)
            if abs(int(bg.mean()) - int(fg.mean())) >= d["min_contrast"]:
                return tuple(int(v) for v in bg), tuple(int(v) for v in fg)

    def _background(self, size, bg, rng):
        w, h = size
        if rng.random() >= self.distortions["textured_background"]:
            return Image.new("RGB", size, bg)
        ramp = np.linspace(-1.0, 1.0, w)[None, :, None] * rng.uniform(-25, 25)
        speckle = rng.normal(0.0, 8.0, size=(h, w, 1))
        arr = np.clip(np.asarray(bg, np.float32)[None, None, :] + ramp + speckle, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "RGB")

    def render(self, label, rng):
        """Renders `label` with randomness from the numpy Generator `rng`.

        Returns:
          uint8 array `[height, width, channels]`.
        """
        d = self.distortions
        font = _load_font(self.fonts[int(rng.integers(len(self.fonts)))], int(rng.integers(26, 40)))
        left, top, right, bottom = font.getbbox(label or " ")
        tw, th = max(right - left, 1), max(bottom - top, 1)
        pad_x, pad_y = int(rng.integers(2, 10)), int(rng.integers(2, 8))
        size = (tw + 2 * pad_x, th + 2 * pad_y)
        bg, fg = self._colours(rng)
        img = self._background(size, bg, rng)
        ImageDraw.Draw(img).text((pad_x - left, pad_y - top), label, font=font, fill=fg)
        arr = np.asarray(img)
        if d["curve"] > 0:
            arr = self._curve(arr, rng, bg)
        img = Image.fromarray(arr)
        if d["rotation_deg"] > 0:
            angle = rng.uniform(-d["rotation_deg"], d["rotation_deg"])
            img = img.rotate(angle, resample=Image.BILINEAR, expand=True, fillcolor=bg)
        if d["perspective"] > 0:
            img = self._perspective(img, rng, bg)
        if d["crop"] > 0:
            img = self._crop(img, rng, pad_x, pad_y)
        img = img.resize((self.width, self.height), Image.BILINEAR)
        if d["blur"] > 0 and rng.random() < d["blur"]:
            img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
        if self.channels == 1:
            img = img.convert("L")
        arr = np.asarray(img, np.float32)
        if d["noise"] > 0:
            arr = arr + rng.normal(0.0, rng.uniform(0.0, d["noise"]), size=arr.shape)
        arr = np.clip(arr, 0, 255).astype(np.uint8)
        if d["jpeg"] > 0 and rng.random() < d["jpeg"]:
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="JPEG", quality=int(rng.integers(20, 81)))
            arr = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
        return arr.reshape(self.height, self.width, self.channels)

    def _curve(self, arr, rng, bg):
        h, w = arr.shape[:2]
        amp = rng.uniform(-1, 1) * self.distortions["curve"] * h
        shifts = np.round(amp * np.sin(np.linspace(0, np.pi, w))).astype(int)
        extra = int(np.abs(shifts).max())
        out = np.empty((h + 2 * extra, w, 3), np.uint8)
        out[...] = np.asarray(bg, np.uint8)
        for x in range(w):
            y0 = extra + shifts[x]
            out[y0 : y0 + h, x] = arr[:, x]
        return out

    def _perspective(self, img, rng, bg):
        w, h = img.size
        m = self.distortions["perspective"] * h
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
        dst = src + rng.uniform(-m, m, size=(4, 2))
        # Solve for the 8 coefficients mapping output (dst) corners to input (src) corners.
        a, b = [], []
        for (x, y), (u, v) in zip(dst, src):
            a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
            a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
            b.extend([u, v])
        coeffs = np.linalg.solve(np.array(a), np.array(b))
        return img.transform((w, h), Image.PERSPECTIVE, tuple(coeffs), Image.BILINEAR, fillcolor=bg)

    def _crop(self, img, rng, pad_x, pad_y):
        w, h = img.size
        f = self.distortions["crop"]
        left, right = (int(rng.uniform(0, f) * pad_x) for _ in range(2))
        top, bottom = (int(rng.uniform(0, f) * pad_y) for _ in range(2))
        return img.crop((left, top, max(w - right, left + 1), max(h - bottom, top + 1)))


def render_example(renderer, sampler, seed, index):
    """The deterministic example `index` of stream `seed`: `(image uint8 [H, W, C], label str)`."""
    rng = np.random.default_rng([int(seed), int(index)])
    label = sampler.sample(rng)
    return renderer.render(label, rng), label
