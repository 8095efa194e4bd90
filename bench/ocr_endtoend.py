"""End-to-end OCR on the detection task's synthetic scenes: boxes and texts scored by the ICDAR 2015 rule.

    python bench/ocr_endtoend.py                                   # tfls: weights/det + weights/str
    python bench/ocr_endtoend.py --peers=rapidocr                  # and RapidOCR beside it
    python bench/ocr_endtoend.py --systems=rapidocr                # RapidOCR alone (no detector needed)
    python bench/ocr_endtoend.py --detector=workdir/det --recognizer=weights/str --limit=5

Scenes: the `test` and `test_ood` sets of the detection task (`--sets`), rendered exactly as the task renders
them (`DetectionTask.scene_renderer`, stream `eval_set_seed(data.seed, set)`, scenes 0 .. data.eval_size - 1;
`--limit=N` keeps the first N), at their own sizes (640x480 to 1280x720), with their word quadrilaterals,
transcriptions and don't-care (`###`) flags. The task config is the detector's (its `config.json`, else
configs/det.py), or configs/det.py when no tfls system runs. Each scene is encoded once as PNG (lossless: the
renderer has already applied its own JPEG degradations) and every system gets the same bytes.

Systems:
- `tfls`: one OCR SavedModel (`tfls.ocr.export.export_ocr`) built from `--detector` (a weights folder such as
  weights/det, or a finished `--task=det` workdir) and `--recognizer` (weights/str, or a workdir), loaded with
  the TF1 session loader as TF Serving loads it, called on one scene at a time (batch 1).
- `rapidocr` (bench only: `pip install rapidocr-onnxruntime`, never in requirements.txt; skipped with a note
  when missing): RapidOCR's whole pipeline (PP-OCRv4 detection, direction classifier, recognition) with its
  default settings, `RapidOCR()(png_bytes, return_word_box=True)`. Its detector finds text lines; a line's
  text is split into words at its spaces and each word's box is the part of the line's box its characters
  cover (from RapidOCR's own per-character boxes; by character count where those are missing). Texts are
  case-folded and filtered to the STR charset (0-9a-z), as bench/rapidocr_peer.py does; a word with nothing
  left is dropped (the scenes hold no such word).

Scoring: `tfls.ocr.endtoend.evaluate`, the ICDAR 2015 end-to-end rule (a word counts when its box matches a
cared-for ground-truth box at IoU > 0.5, paired as in detection, don't-care boxes and the detections inside
them excluded, and its text equals the transcription case-insensitively), pooled over the scenes of a set;
the same pairs give the detection-only precision, recall and hmean. ms per image: the median (and p90) wall
time of one call per scene at batch 1 (PNG decoding included, one warm-up call first), on a machine whose
1-minute load average is recorded.

Writes docs/results/ocr_endtoend.json (TFLS_RESULTS_DIR elsewhere); `python bench/report.py` renders it. A
missing or unreadable detector or recognizer stops the run with one line `tfls: error: ...` naming the path.
"""

import argparse
import io
import os
import shutil
import sys
import tempfile
import time

import common
import numpy as np

SETS = ("test", "test_ood")
SYSTEMS = ("tfls", "rapidocr")
OUTPUT = "ocr_endtoend.json"
DEFAULT_DETECTOR = "weights/det"
DEFAULT_RECOGNIZER = "weights/str"
IOU_THRESHOLD = 0.5
SHIP_HINT = (
    "ship a trained detector there with `python -m tfls.ship --workdir=<finished --task=det workdir> "
    "--output=weights/det` (docs/DETECTION.md, Long runs), or give --detector=WEIGHTS_OR_WORKDIR"
)


class BenchError(Exception):
    """A user error: the message is printed as one line `tfls: error: <message>`."""


def fail(message):
    print(f"tfls: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


# Scenes ---------------------------------------------------------------------------------------------------


def scene_task(config_path=None, overrides=()):
    """The detection task whose evaluation scenes are rendered: `config_path` (default configs/det.py)."""
    from tfls import configuration
    from tfls.detection.task import DetectionTask

    path = config_path or os.path.join(common.ROOT, "configs", "det.py")
    return DetectionTask(configuration.validate(configuration.load_config(path, list(overrides)), DetectionTask))


def encode_png(image):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def render_scenes(task, set_name, count):
    """Yields the `tfls.detection.scenes.Scene`s `0 .. count - 1` of the task's evaluation set `set_name`, as
    the task renders them."""
    from tfls.detection import scenes

    renderer = task.scene_renderer(set_name)
    seed = task.eval_set_seed(task.config.data.seed, set_name)
    for index in range(count):
        yield scenes.render_indexed(renderer, seed, index)


def render_set(task, set_name, count):
    """Scenes `0 .. count - 1` of the task's evaluation set `set_name`, as the task renders them.

    Returns:
      `(gt, images)`: `gt` `{id (str): tfls.detection.icdar.Annotation}` (pixel quads, transcriptions,
      don't-care flags) and `images` `{id: PNG bytes}`.
    """
    from tfls.detection import icdar

    gt, images = {}, {}
    for index, scene in enumerate(render_scenes(task, set_name, count)):
        key = str(index)
        quads = np.asarray(scene.quads, np.float32).reshape(-1, 4, 2)
        gt[key] = icdar.Annotation(quads, list(scene.texts), scene.dontcare)
        images[key] = encode_png(scene.image)
    return gt, images


# Scoring --------------------------------------------------------------------------------------------------


def score_system(predict, gt, images, warmup=1, examples=10):
    """Runs `predict(png bytes) -> (quads [d, 4, 2] pixels, texts)` on every scene and scores it end to end.

    Args:
      predict: the system, one encoded image per call.
      gt: `{id: Annotation}` (`render_set`).
      images: `{id: PNG bytes}`.
      warmup: calls on the first image before timing (their output is not scored).
      examples: how many cared-for ground-truth words (in scene order) to record with what the system read.

    Returns:
      `tfls.ocr.endtoend.evaluate`'s `method` figures (end-to-end `precision`, `recall`, `hmean`;
      `detection_*` of the same pairs; counts) with `num_scenes`, `ms_per_image_median`, `ms_per_image_p90`
      and `examples` (`{"gt", "read"}`: `read` is the text of the detection paired with it, None when no
      detection was paired).
    """
    from tfls.ocr import endtoend

    keys = list(gt)
    for _ in range(warmup if keys else 0):
        predict(images[keys[0]])
    results, seconds = {}, []
    for key in keys:
        start = time.perf_counter()
        quads, texts = predict(images[key])
        seconds.append(time.perf_counter() - start)
        results[key] = (np.asarray(quads, np.float64).reshape(-1, 4, 2), [str(t) for t in texts])
    scored = endtoend.evaluate(gt, results, IOU_THRESHOLD, per_sample=True)
    out = dict(scored["method"])
    out["num_scenes"] = out.pop("num_images")
    seconds = np.asarray(seconds, np.float64)
    out["ms_per_image_median"] = float(np.median(seconds) * 1000) if seconds.size else None
    out["ms_per_image_p90"] = float(np.percentile(seconds, 90) * 1000) if seconds.size else None
    out["examples"] = _examples(gt, results, scored["per_sample"], examples)
    return out


def _examples(gt, results, per_sample, count):
    found = []
    for key, ann in gt.items():
        paired = {p["gt"]: p["det"] for p in per_sample[key]["pairs"]}
        for i, text in enumerate(ann.texts):
            if ann.dontcare[i]:
                continue
            j = paired.get(i)
            found.append({"scene": int(key), "gt": text, "read": None if j is None else results[key][1][j]})
            if len(found) >= count:
                return found
    return found


def clean_text(text, characters=None):
    """A peer's word as tfls reads words: case-folded, only the STR charset's characters (0-9a-z) kept."""
    from tfls.recognition.charset import DEFAULT_CHARACTERS

    allowed = set(characters or DEFAULT_CHARACTERS)
    return "".join(c for c in text.lower() if c in allowed)


# RapidOCR -------------------------------------------------------------------------------------------------


def _line_axis(quad):
    """The reading axis of a line's quad `[4, 2]`: its two long edges `(a0 -> a1, b0 -> b1)` (top and bottom of
    the text), and the start and end of the mid-line. RapidOCR's line quads are clockwise from the image's
    top-left corner of the line: edges 0-1 and 3-2 are the long ones of a horizontal line; a vertical one
    RapidOCR reads top to bottom (its crop turned a quarter counter-clockwise), so 1-2 is its top edge and
    0-3 its bottom one. Cuts `[a(t0), a(t1), b(t1), b(t0)]` are then clockwise as well."""
    q = np.asarray(quad, np.float64).reshape(4, 2)
    along_01 = np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])
    along_03 = np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])
    if along_01 >= along_03:
        a0, a1, b0, b1 = q[0], q[1], q[3], q[2]
    else:
        a0, a1, b0, b1 = q[1], q[2], q[0], q[3]
    return a0, a1, b0, b1, (a0 + b0) / 2, (a1 + b1) / 2


def _cut(quad, t0, t1):
    """The part of a line's quad between fractions `t0 < t1` of its length: `[4, 2]`, same winding."""
    a0, a1, b0, b1, _, _ = _line_axis(quad)
    t0, t1 = float(np.clip(t0, 0.0, 1.0)), float(np.clip(t1, 0.0, 1.0))
    return np.stack([a0 + t0 * (a1 - a0), a0 + t1 * (a1 - a0), b0 + t1 * (b1 - b0), b0 + t0 * (b1 - b0)])


def _project(quad, points):
    """Fractions of the line's length at which `points [n, 2]` lie (projected on its mid-line)."""
    _, _, _, _, m0, m1 = _line_axis(quad)
    axis = m1 - m0
    length2 = float(axis @ axis) or 1.0
    return (np.asarray(points, np.float64).reshape(-1, 2) - m0) @ axis / length2


def split_line(quad, text, char_boxes=None, chars=None):
    """One detected line -> its words: `[(quad [4, 2], word)]`, split at whitespace.

    Args:
      quad: the line's quad `[4, 2]`.
      text: its text.
      char_boxes: optional quads `[n, 4, 2]`, one per character of `chars` (RapidOCR's `return_word_box`
        output, spaces included); a word's box is the part of the line between its characters' extreme
        projections on the line. Without them (or when they do not spell `text`) the line is cut in
        proportion to character counts.
      chars: the characters `char_boxes` belong to.
    """
    words = []
    if char_boxes is not None and chars is not None and len(char_boxes) == len(chars) and "".join(chars) == text:
        current, spans = "", []
        for c, box in zip(list(chars) + [" "], list(char_boxes) + [None]):
            if c.isspace():
                if current:
                    t = _project(quad, np.concatenate(spans))
                    words.append((_cut(quad, t.min(), t.max()), current))
                current, spans = "", []
            else:
                current += c
                spans.append(np.asarray(box, np.float64).reshape(-1, 2))
        return words
    n = max(len(text), 1)
    start = None
    for i, c in enumerate(text + " "):
        if c.isspace():
            if start is not None:
                words.append((_cut(quad, start / n, i / n), text[start:i]))
            start = None
        elif start is None:
            start = i
    return words


def rapidocr_words(result, characters=None):
    """RapidOCR's output (a list of `[line quad, text, score(, char boxes, chars, char scores)]`, or None)
    -> `(quads [d, 4, 2], words)`: words split from lines (`split_line`), cleaned (`clean_text`), words with
    nothing left dropped."""
    quads, texts = [], []
    for item in result or []:
        box, text = item[0], item[1]
        char_boxes = item[3] if len(item) > 4 and item[3] else None
        chars = item[4] if len(item) > 4 and item[4] else None
        for quad, word in split_line(box, text, char_boxes, chars):
            cleaned = clean_text(word, characters)
            if cleaned:
                quads.append(quad)
                texts.append(cleaned)
    return np.asarray(quads, np.float64).reshape(-1, 4, 2), texts


def mirror_along_line(quad, points):
    """`points [..., 2]` reflected across the perpendicular bisector of a line's quad (its length reversed)."""
    _, _, _, _, m0, m1 = _line_axis(quad)
    axis = m1 - m0
    unit = axis / (np.linalg.norm(axis) or 1.0)
    centre = (m0 + m1) / 2
    p = np.asarray(points, np.float64)
    return p - 2.0 * ((p - centre) @ unit)[..., None] * unit


def rapidocr_system(threads=-1):
    """`(predict, description)` for RapidOCR's default pipeline, or `(None, reason)` when it is missing.

    RapidOCR's per-character boxes (`return_word_box`) ignore its direction classifier: on a line the
    classifier turned half a turn they run backwards. The lines it turned are recorded and their character
    boxes reflected back along the line, so each word gets its own part of the line.
    """
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return None, "rapidocr-onnxruntime is not installed (pip install rapidocr-onnxruntime; bench only)"
    from importlib import metadata

    engine = RapidOCR(intra_op_num_threads=threads)
    turned = []
    classify = getattr(engine, "text_cls", None)
    char_boxes = getattr(engine, "cal_rec_boxes", None)
    if classify is not None and char_boxes is not None and hasattr(classify, "cls_thresh"):

        def text_cls(crops):
            crops, labels, elapse = classify(crops)
            turned[:] = ["180" in label and score > classify.cls_thresh for label, score in labels]
            return crops, labels, elapse

        def cal_rec_boxes(crops, line_boxes, recognized):
            out = char_boxes(crops, line_boxes, recognized)
            for i, item in enumerate(out):
                if i < len(turned) and turned[i] and item[2]:
                    item[2] = mirror_along_line(line_boxes[i], item[2]).tolist()
            return out

        engine.text_cls, engine.cal_rec_boxes = text_cls, cal_rec_boxes
        correction = "; character boxes of lines turned by the direction classifier reflected back"
    else:
        correction = ""

    def predict(data):
        turned.clear()
        result, _ = engine(data, return_word_box=True)
        return rapidocr_words(result)

    version = (
        f"rapidocr-onnxruntime {metadata.version('rapidocr-onnxruntime')} (PP-OCRv4 det + cls + rec, "
        f"onnxruntime {metadata.version('onnxruntime')}); default settings, intra_op_num_threads={threads}; "
        f"lines split into words at spaces (return_word_box){correction}"
    )
    return predict, version


# tfls -----------------------------------------------------------------------------------------------------


def _resolve(path):
    return path if os.path.isabs(path) or os.path.exists(path) else os.path.join(common.ROOT, path)


def load_model(task_name, path, config_path=None, overrides=()):
    """`(task, model, description)` from a weights folder or a finished workdir at `path`.

    Raises:
      BenchError: a missing folder, or weights that cannot be read; the message names the path.
    """
    import tensorflow as tf

    from tfls.configuration import ConfigError
    from tfls.ocr.export import ExportError, load_task_model
    from tfls.registry import TaskNotFound

    folder = _resolve(path)
    if not os.path.isdir(folder):
        raise BenchError(f"{path} does not exist or is not a folder")
    is_workdir = os.path.isfile(os.path.join(folder, "state.json"))
    try:
        return load_task_model(
            task_name,
            workdir=folder if is_workdir else None,
            weights=None if is_workdir else folder,
            config_path=config_path,
            overrides=list(overrides),
        )
    except (ExportError, ConfigError, TaskNotFound, ValueError, OSError) as e:
        raise BenchError(f"{path}: {e}") from None
    except (IndexError, tf.errors.OpError) as e:  # a truncated or corrupt checkpoint
        raise BenchError(f"{path}: cannot read the weights ({type(e).__name__}: {str(e)[:200]})") from None


class ExportSystem:
    """An OCR SavedModel loaded with the TF1 session loader (as TF Serving loads it); a call reads one image."""

    def __init__(self, path):
        import tensorflow as tf

        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            meta = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], path)
        sig = meta.signature_def["serving_default"]
        self.fetches = {k: v.name for k, v in sig.outputs.items()}
        self.input = sig.inputs["image_bytes"].name

    def __call__(self, data):
        out = self.session.run(self.fetches, {self.input: np.array([data], dtype=object)})
        n = int(out["num_words"][0])
        quads = np.asarray(out["boxes"][0, :n], np.float64).reshape(-1, 4, 2)
        texts = [t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in out["texts"][0, :n]]
        return quads, texts

    def close(self):
        self.session.close()


def build_tfls(
    det_task, detector, str_task, recognizer, folder, score_threshold=None, min_text_confidence=None, scales=None
):
    """Writes the OCR export of the two models under `folder` and returns it loaded (`ExportSystem`);
    `scales` None: the export's `SCALES`."""
    from tfls.ocr.export import SCALES, export_ocr

    path = export_ocr(
        detector,
        det_task.config,
        recognizer,
        str_task.charset,
        os.path.join(folder, "ocr"),
        score_threshold=score_threshold,
        **({} if min_text_confidence is None else {"min_text_confidence": min_text_confidence}),
        scales=SCALES if scales is None else scales,
    )
    return ExportSystem(path)


# Command line ---------------------------------------------------------------------------------------------


def _names(value, allowed, flag):
    names = [n.strip() for n in (value or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise BenchError(f"{flag}: unknown {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return names


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default="tfls", help="comma list of tfls, rapidocr (default tfls)")
    parser.add_argument("--peers", default="", help="systems to run beside --systems, e.g. rapidocr")
    parser.add_argument("--sets", default=",".join(SETS), help="comma list of test, test_ood")
    parser.add_argument("--limit", type=int, default=0, help="the first N scenes of each set (0 = all)")
    parser.add_argument("--eval-size", type=int, default=None, help="scenes per set (default: data.eval_size)")
    parser.add_argument("--detector", default=None, help=f"weights folder or workdir (default {DEFAULT_DETECTOR})")
    parser.add_argument("--recognizer", default=None, help=f"weights folder or workdir (default {DEFAULT_RECOGNIZER})")
    parser.add_argument("--detector-config", help="the config the detector was trained with (default: its own)")
    parser.add_argument("--detector-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--recognizer-config", help="the config the recognizer was trained with")
    parser.add_argument("--recognizer-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--score-threshold", type=float, default=None, help="default: the detector config's")
    parser.add_argument(
        "--min-text-confidence", type=float, default=None, help="default: the OCR export's (MIN_TEXT_CONFIDENCE)"
    )
    parser.add_argument("--scales", default=None, help="detector input scales, e.g. 1,2 (default: the export's)")
    parser.add_argument("--threads", type=int, default=-1, help="RapidOCR's ONNX Runtime intra-op threads")
    parser.add_argument("--output", default=OUTPUT, help=f"file name in the results folder (default {OUTPUT})")
    args = parser.parse_args(argv)
    if args.limit < 0:
        parser.error("--limit must be >= 0")
    if args.eval_size is not None and args.eval_size < 1:
        parser.error("--eval-size must be >= 1")
    return args


def run(args):
    start = time.time()
    systems = list(dict.fromkeys(_names(args.systems, SYSTEMS, "--systems") + _names(args.peers, SYSTEMS, "--peers")))
    sets = _names(args.sets, SETS, "--sets")
    if not systems or not sets:
        raise BenchError("nothing to run: give --systems (and --sets)")

    predictors, descriptions, skipped = {}, {}, {}
    tmp = None
    try:
        if "tfls" in systems:
            detector_path = args.detector or DEFAULT_DETECTOR
            if args.detector is None and not os.path.isdir(_resolve(DEFAULT_DETECTOR)):
                raise BenchError(f"{DEFAULT_DETECTOR} is missing: {SHIP_HINT}")
            recognizer_path = args.recognizer or DEFAULT_RECOGNIZER
            det_task, detector, det_what = load_model("det", detector_path, args.detector_config, args.detector_set)
            str_task, recognizer, str_what = load_model(
                "str", recognizer_path, args.recognizer_config, args.recognizer_set
            )
            tmp = tempfile.mkdtemp(prefix="tfls_ocr_endtoend_")
            from tfls.ocr.export import SCALES, input_multiple, parse_scales, scale_sides

            try:
                scales = list(SCALES) if args.scales is None else parse_scales(args.scales)
            except ValueError as e:
                raise BenchError(f"--scales={args.scales}: {e}") from None
            sides = scale_sides(int(det_task.config.data.image_size), scales, input_multiple(det_task.config))
            system = build_tfls(
                det_task, detector, str_task, recognizer, tmp, args.score_threshold, args.min_text_confidence, scales
            )
            predictors["tfls"] = system
            threshold = det_task.config.eval.score_threshold if args.score_threshold is None else args.score_threshold
            from tfls.ocr.export import MIN_TEXT_CONFIDENCE

            confidence = MIN_TEXT_CONFIDENCE if args.min_text_confidence is None else args.min_text_confidence
            descriptions["tfls"] = (
                f"OCR export (tfls.ocr.export) of detector {det_what} and recognizer {str_what}; "
                f"score threshold {threshold}; lowest text confidence {confidence}; "
                + (
                    "detector input scales " + "+".join(f"{v:g}x" for v in scales) + " of "
                    f"{det_task.config.data.image_size} px, merged by rotated NMS"
                    if len(sides) > 1
                    else f"one detector pass at {det_task.config.data.image_size} px"
                )
                + "; TF1 session loader"
            )
            task, scene_config = det_task, f"the detector's: {det_what}"
        else:
            task = scene_task(args.detector_config, args.detector_set)
            scene_config = " ".join([args.detector_config or "configs/det.py", *args.detector_set])
        if "rapidocr" in systems:
            predict, note = rapidocr_system(args.threads)
            if predict is None:
                print(f"[ocr_endtoend] rapidocr skipped: {note}", flush=True)
                skipped["rapidocr"] = note
            else:
                predictors["rapidocr"], descriptions["rapidocr"] = predict, note
        if not predictors:
            raise BenchError("no system to run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
        if args.eval_size is not None:
            task.config.data.eval_size = args.eval_size
        count = int(task.config.data.eval_size)
        if args.limit:
            count = min(count, args.limit)

        figures = {name: {} for name in predictors}
        scene_info = {}
        for set_name in sets:
            t0 = time.time()
            gt, images = render_set(task, set_name, count)
            scene_info[set_name] = {
                "num_scenes": len(gt),
                "num_care_words": int(sum((~a.dontcare).sum() for a in gt.values())),
                "num_dontcare_words": int(sum(a.dontcare.sum() for a in gt.values())),
                "render_s": time.time() - t0,
            }
            print(f"[ocr_endtoend] {set_name}: {len(gt)} scenes rendered in {time.time() - t0:.0f} s", flush=True)
            for name, predict in predictors.items():
                t0 = time.time()
                r = score_system(predict, gt, images)
                r["wall_s"] = time.time() - t0
                figures[name][set_name] = r
                print(
                    f"[ocr_endtoend] {name} {set_name}: e2e P {r['precision']:.3f} R {r['recall']:.3f} "
                    f"H {r['hmean']:.3f}; detection H {r['detection_hmean']:.3f}; "
                    f"{r['ms_per_image_median']:.0f} ms/image (median), {r['wall_s']:.0f} s",
                    flush=True,
                )
    finally:
        if "tfls" in predictors:
            predictors["tfls"].close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    d = task.config.data
    argv = sys.argv[1:] if args.argv is None else args.argv
    payload = {
        "command": "python bench/ocr_endtoend.py" + "".join(" " + a for a in argv),
        "machine": common.machine(),
        "rule": (
            "ICDAR 2015 end to end (tfls.ocr.endtoend): a word counts when its box matches a cared-for "
            f"ground-truth box at IoU > {IOU_THRESHOLD} (detection pairing, don't-care excluded) and its text "
            "equals the transcription case-insensitively; detection_* are the same pairs without the text"
        ),
        "scenes": {
            "task_config": scene_config,
            "seed": int(d.seed),
            "eval_size": int(d.eval_size),
            "limit": args.limit,
            "encoding": "PNG",
            "sets": scene_info,
        },
        "systems": {name: {"description": descriptions[name], **figures[name]} for name in figures},
        "skipped": skipped,
        "load_average_1min": os.getloadavg()[0],
        "wall_time_s": time.time() - start,
    }
    if "tfls" not in systems:
        payload["pending"] = {
            "tfls": f"the tfls rows wait for trained detector weights in {DEFAULT_DETECTOR}; {SHIP_HINT}"
        }
    common.write_json(args.output, payload)
    return payload


def main(argv=None):
    args = parse_args(argv)
    args.argv = argv
    try:
        run(args)
    except BenchError as e:
        fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
