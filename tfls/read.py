"""`tfls read`: the words of photos, with their boxes and confidences, from tfls exports.

    tfls read IMAGE... (--ocr=EXPORT | --detector=EXPORT --recognizer=EXPORT) [--json] [--draw=OUT.png]

`--ocr` takes one OCR SavedModel (`python -m tfls.ocr.export`); `--detector` and `--recognizer` take the two
exports of the `det` and `str` jobs, and the words are then cropped here, with the same rectification and
reading order as the OCR export. An EXPORT is a SavedModel folder or a folder of numbered versions (the
highest is used). Each image is read on its own: a file that cannot be read gets one line
`tfls: error: <file>: <reason>` on stderr and the others still run; the exit status is 1 when any failed,
2 for a usage error.

Output: per image a line `<file>: <n> words`, then one line per word in reading order,
`<text> TAB <box score> TAB <text confidence> TAB x1,y1,...,x4,y4` (pixels of the image as stored), or with
`--json` one document `{"images": [{"image", "width", "height", "words": [{"text", "box_score",
"text_confidence", "box"}]}], "errors": [{"image", "error"}]}`. `--draw` writes each image with its boxes and
texts (to that file for one image; for several, to `<name>_<image name>.<ext>`, or into a folder).
"""

import argparse
import json
import os
import re
import sys

import numpy as np

FORMATS = ("JPEG", "PNG", "GIF", "BMP")
DRAW_EXTENSIONS = (".png", ".jpg", ".jpeg")


class ReadError(Exception):
    """One image cannot be read; the message is the reason, for `tfls: error: <file>: <reason>`."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        _usage_error(message)


def _usage_error(message):
    print(f"tfls: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def parse_args(argv=None):
    parser = _ArgumentParser(
        prog="tfls read", description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, GIF or BMP files of any size")
    parser.add_argument("--ocr", help="an OCR export (python -m tfls.ocr.export)")
    parser.add_argument("--detector", help="a detection export (with --recognizer)")
    parser.add_argument("--recognizer", help="a recognition export (with --detector)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    parser.add_argument("--draw", metavar="OUT.png", help="write the images with their boxes and texts")
    parser.add_argument("--margin", type=float, default=None, help="crop margin with --detector/--recognizer")
    parser.add_argument(
        "--min-text-confidence",
        type=float,
        default=None,
        help="with --detector/--recognizer: drop words read with a lower confidence (default: the OCR export's)",
    )
    args = parser.parse_args(argv)
    if bool(args.ocr) == bool(args.detector or args.recognizer):
        _usage_error("give either --ocr=EXPORT or both --detector=EXPORT and --recognizer=EXPORT")
    if not args.ocr and not (args.detector and args.recognizer):
        _usage_error("--detector and --recognizer go together")
    if args.draw and not os.path.isdir(args.draw) and not args.draw.lower().endswith(DRAW_EXTENSIONS):
        _usage_error(f"--draw={args.draw}: give a .png or .jpg file, or an existing folder")
    return args


def savedmodel_dir(path, flag):
    """`path` itself when it holds a SavedModel, else its highest numbered version folder."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if os.path.isdir(path):
        versions = [
            d for d in os.listdir(path) if d.isdigit() and os.path.isfile(os.path.join(path, d, "saved_model.pb"))
        ]
        if versions:
            return os.path.join(path, max(versions, key=int))
    raise ReadError(f"{flag}={path}: no SavedModel there (saved_model.pb, or numbered version folders holding one)")


def _load_signature(path, flag, outputs):
    folder = savedmodel_dir(path, flag)
    import tensorflow as tf

    try:
        fn = tf.saved_model.load(folder).signatures["serving_default"]
    except (OSError, ValueError, KeyError, tf.errors.OpError) as e:
        raise ReadError(f"{flag}={path}: cannot load serving_default: {str(e).splitlines()[0][:200]}") from None
    have = set(fn.structured_outputs)
    if not set(outputs) <= have:
        raise ReadError(f"{flag}={path}: not the right kind of export (outputs {sorted(have)}, need {list(outputs)})")
    return fn


def _graph_error(error):
    """The reason in a TensorFlow runtime error: the failed check's message, else its first plain line."""
    text = getattr(error, "message", str(error))
    found = re.search(r"\[(image_bytes:[^\]]*)\]", text)
    if found:
        return found.group(1)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Graph execution error", "Detected at node", "File "))]
    return (useful or lines or [type(error).__name__])[0][:300]


class OcrReader:
    """Words of one encoded image from an OCR export."""

    def __init__(self, path):
        self.fn = _load_signature(path, "--ocr", ("boxes", "texts", "box_scores", "text_confidences", "num_words"))

    def __call__(self, data, image):
        import tensorflow as tf

        del image
        out = self.fn(image_bytes=tf.constant([data]))
        n = int(out["num_words"][0])
        return [
            {
                "text": out["texts"][0, j].numpy().decode("utf-8", errors="replace"),
                "box_score": float(out["box_scores"][0, j]),
                "text_confidence": float(out["text_confidences"][0, j]),
                "box": [float(v) for v in out["boxes"][0, j].numpy()],
            }
            for j in range(n)
        ]


class PairReader:
    """Words of one image from a detection export and a recognition export: the boxes come from the first,
    the words are rectified here (at their own size in pixels, with a margin) and read by the second, all
    the words of the image in one request."""

    def __init__(self, detector, recognizer, margin=None, min_text_confidence=None):
        from tfls.ocr.export import MARGIN, MIN_TEXT_CONFIDENCE

        self.detect = _load_signature(detector, "--detector", ("boxes", "scores", "num_detections"))
        self.recognize = _load_signature(recognizer, "--recognizer", ("text", "confidence"))
        self.margin = MARGIN if margin is None else margin
        self.min_text_confidence = MIN_TEXT_CONFIDENCE if min_text_confidence is None else min_text_confidence

    def __call__(self, data, image):
        import tensorflow as tf

        from tfls.ocr.crop import rectify
        from tfls.ocr.reading_order import reading_order

        det = self.detect(image_bytes=tf.constant([data]))
        n = int(det["num_detections"][0])
        scores = det["scores"][0, :n].numpy()
        # Padding rows have score 0 (and count in num_detections when the export's threshold is 0).
        quads = det["boxes"][0, :n].numpy().reshape(-1, 4, 2)[scores > 0]
        scores = scores[scores > 0]
        n = len(scores)
        if n == 0:
            return []
        order = reading_order(quads[None], np.ones((1, n), bool))[0].numpy()
        quads, scores = quads[order], scores[order]
        from tfls import images as images_lib

        pixels = images_lib.pil_to_array(image, 3)
        crops = []
        for quad in quads:
            height = 0.5 * (np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1]))
            width = 0.5 * (np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3]))
            crop_h = int(np.clip(round(height * (1 + 2 * self.margin)), 1, 1024))
            crop_w = int(np.clip(round(width + 2 * self.margin * height), 1, 4096))
            crop = rectify(pixels, quad[None], crop_h, crop_w, margin=self.margin)[0]
            crops.append(tf.io.encode_png(tf.cast(tf.round(tf.clip_by_value(crop, 0, 255)), tf.uint8)).numpy())
        rec = self.recognize(image_bytes=tf.constant(crops))
        return [
            {
                "text": rec["text"][j].numpy().decode("utf-8", errors="replace"),
                "box_score": float(scores[j]),
                "text_confidence": float(rec["confidence"][j]),
                "box": [float(v) for v in quads[j].reshape(-1)],
            }
            for j in range(n)
            if float(rec["confidence"][j]) >= self.min_text_confidence
        ]


def load_image(path):
    """`(bytes, PIL image)` of an image file the exports accept.

    Raises:
      ReadError: the file cannot be read, is not a JPEG/PNG/GIF/BMP image, or is too large.
    """
    from tfls import images as images_lib

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ReadError(e.strerror or str(e)) from None
    try:
        image = images_lib.open_checked(data, name="image")
    except images_lib.ImageTooLarge as e:
        raise ReadError(str(e).removeprefix("image: ")) from None
    except ValueError:
        raise ReadError(f"not a decodable image (the models read {images_lib.FORMATS})") from None
    if image.format not in FORMATS:
        raise ReadError(f"{image.format} image; the models read {images_lib.FORMATS}")
    return data, image


def draw_words(image, words):
    """A copy of the PIL `image` (as RGB) with each word's box and text drawn on it."""
    from PIL import ImageDraw

    from tfls.detection import scenes

    canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    line = max(1, round(max(canvas.size) / 400))
    for word in words:
        quad = np.asarray(word["box"], np.float64).reshape(4, 2)
        draw.polygon([tuple(p) for p in quad], outline=(255, 40, 40), width=line)
        height = 0.5 * (np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1]))
        font = scenes._font("DejaVuSans.ttf", int(np.clip(0.6 * height, 10, max(14, 0.03 * max(canvas.size)))))
        label = word["text"] or "?"
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        x = float(quad[:, 0].min())
        y = float(quad[:, 1].min()) - (bottom - top) - 2 * line - 2
        if y < 0:
            y = float(quad[:, 1].max()) + line + 1
        draw.rectangle([x, y, x + right - left + 4, y + bottom - top + 4], fill=(255, 40, 40))
        draw.text((x + 2 - left, y + 2 - top), label, fill=(255, 255, 255), font=font)
    return canvas


def draw_paths(draw, images):
    """Where `--draw` puts each image's drawing."""
    if os.path.isdir(draw):
        names = [os.path.splitext(os.path.basename(p))[0] + ".png" for p in images]
        paths = [os.path.join(draw, n) for n in names]
    elif len(images) == 1:
        return [draw]
    else:
        stem, ext = os.path.splitext(draw)
        paths = [f"{stem}_{os.path.splitext(os.path.basename(p))[0]}{ext}" for p in images]
    seen = {}
    unique = []
    for p in paths:
        seen[p] = seen.get(p, 0) + 1
        if seen[p] > 1:
            stem, ext = os.path.splitext(p)
            p = f"{stem}_{seen[p]}{ext}"
        unique.append(p)
    return unique


def format_words(path, words):
    """The plain-text lines of one image."""
    lines = [f"{path}: {len(words)} word{'s' if len(words) != 1 else ''}"]
    for w in words:
        coords = ",".join(f"{v:.1f}" for v in w["box"])
        lines.append(f"{w['text']}\t{w['box_score']:.3f}\t{w['text_confidence']:.3f}\t{coords}")
    return lines


def main(argv=None):
    args = parse_args(argv)
    try:
        for flag in ("ocr", "detector", "recognizer"):
            if getattr(args, flag):
                savedmodel_dir(getattr(args, flag), f"--{flag}")
        reader = (
            OcrReader(args.ocr)
            if args.ocr
            else PairReader(args.detector, args.recognizer, args.margin, args.min_text_confidence)
        )
    except ReadError as e:
        _usage_error(str(e))
    import tensorflow as tf

    outputs = draw_paths(args.draw, args.images) if args.draw else [None] * len(args.images)
    results, errors = [], []
    for path, out_path in zip(args.images, outputs):
        try:
            data, image = load_image(path)
            try:
                words = reader(data, image)
            except tf.errors.OpError as e:
                raise ReadError(_graph_error(e)) from None
            if out_path:
                try:
                    draw_words(image, words).save(out_path)
                except (OSError, ValueError) as e:
                    raise ReadError(f"cannot write --draw {out_path}: {e}") from None
        except ReadError as e:
            errors.append({"image": path, "error": str(e)})
            print(f"tfls: error: {path}: {e}", file=sys.stderr, flush=True)
            continue
        results.append({"image": path, "width": image.width, "height": image.height, "words": words})
        if not args.json:
            print("\n".join(format_words(path, words)), flush=True)
    if args.json:
        print(json.dumps({"images": results, "errors": errors}, indent=1))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
