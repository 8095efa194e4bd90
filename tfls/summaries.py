"""Pictures every task shows the same way: the surrogate against the true metric, and captioned samples.

The scatter draws on a matplotlib axis (`draw_scatter`), so the TensorBoard image (`scatter_image`) and the
benchmark's PNG (`bench/quality.py`) are one drawing.
"""

import io

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_scatter(ax, e, e_hat, metric_label="true metric", title=None, jitter=None):
    """Surrogate distance `e_hat` against the true metric `e`, with the identity line.

    Args:
      ax: a matplotlib axis.
      e: true metric of each pair, `[N]`.
      e_hat: surrogate distance of each pair, `[N]`.
      metric_label: the x axis label (e.g. "edit distance", "1 - IoU").
      title: axis title; None for none.
      jitter: horizontal jitter half-width, so discrete metrics (edit distance) do not stack on a few
        columns; None = 0.15 when every `e` is a whole number, else 0.
    """
    e = np.asarray(e, np.float64).reshape(-1)
    e_hat = np.asarray(e_hat, np.float64).reshape(-1)
    if jitter is None:
        jitter = 0.15 if e.size and np.all(e == np.round(e)) and np.max(e) > 1 else 0.0
    x = e + (np.random.default_rng(0).uniform(-jitter, jitter, e.shape) if jitter else 0.0)
    ax.scatter(x, e_hat, s=3, alpha=0.5)
    top = max(float(np.max(e)) if e.size else 1.0, float(np.max(e_hat)) if e_hat.size else 1.0, 1.0)
    ax.plot([0, top], [0, top], "k--", lw=0.7)
    ax.set_xlabel(metric_label)
    ax.set_ylabel("surrogate distance")
    if title:
        ax.set_title(title, fontsize=9)


def figure_to_array(fig):
    """A matplotlib figure as an RGB uint8 array `[H, W, 3]` (the figure is closed)."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    _pyplot().close(fig)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def scatter_image(e, e_hat, metric_label="true metric"):
    """The scatter of `draw_scatter` as an RGB uint8 array `[H, W, 3]` for `tf.summary.image`."""
    fig, ax = _pyplot().subplots(figsize=(3, 3), dpi=80)
    draw_scatter(ax, e, e_hat, metric_label)
    fig.tight_layout()
    return figure_to_array(fig)


def caption_grid(images, preds, truths, caption_width=160):
    """Images stacked vertically, each with its prediction and truth written beside it (green when equal).

    Args:
      images: uint8 arrays `[H, W, C]` (C = 1 or 3), all of the same height and width.
      preds: predicted labels as text, one per image.
      truths: true labels as text, one per image.
      caption_width: pixels of caption to the right of each image.

    Returns:
      An RGB uint8 array `[len(images) * H, W + caption_width, 3]`.
    """
    from PIL import Image, ImageDraw

    rows = []
    for image, pred, truth in zip(images, preds, truths):
        image = np.asarray(image)
        h, w = image.shape[:2]
        canvas = Image.new("RGB", (w + caption_width, h), (255, 255, 255))
        canvas.paste(Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).convert("RGB"), (0, 0))
        colour = (0, 128, 0) if pred == truth else (200, 0, 0)
        ImageDraw.Draw(canvas).text((w + 4, 2), f"pred: {pred}\ntrue: {truth}", fill=colour)
        rows.append(np.asarray(canvas))
    return np.concatenate(rows, axis=0)
