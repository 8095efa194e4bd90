"""One SavedModel that reads whole photos: `serving_default(image_bytes)` -> words with their boxes.

The graph decodes each image, detects rotated words (at each of `SCALES`, multiples of the detector's input
side, the boxes merged by rotated NMS), puts them in reading order, rectifies every word to the recognizer's
input (`tfls.ocr.crop`), reads all the words of the batch in one recognizer call and returns

  boxes            float32 [B, K, 8]  pixel quads of the original image (x1, y1, ..., x4, y4, ICDAR order)
  texts            string  [B, K]
  box_scores       float32 [B, K]
  text_confidences float32 [B, K]
  num_words        int32   [B]        words of each image; the first num_words rows are them, in reading
                                      order; later rows are zeros and empty strings

with K the detector's `max_detections`. It holds no `tf.py_function`, so TF Serving's C++ runtime runs it.
Bad bytes and images over `tfls.images.MAX_PIXELS` fail the request with `InvalidArgumentError`; an empty
batch returns empty outputs without running either network, and so does an image without words for the
recognizer.

Build it from two finished jobs (the tuned weights of each, else the baseline):

  python -m tfls.ocr.export --detector-workdir=workdir/det --recognizer-workdir=workdir/str \\
      --output=workdir/ocr/export/1
"""

import argparse
import json
import math
import os
import shutil
import sys

import keras
import tensorflow as tf

from tfls import images as images_lib
from tfls.detection import boxes as box_lib
from tfls.detection import data as detection_data
from tfls.ocr.crop import rectify
from tfls.ocr.reading_order import reading_order
from tfls.recognition.serving import predict_text

#: default crop margin, a fraction of the word's height on each side: detected boxes are tight around the ink,
#: the recognizer learnt from loose crops (up to half the height on each side) and tight ones. Swept on the `val`
#: scenes with the shipped models by `bench/ocr_threshold.py --margins` (docs/RESULTS.md, "OCR: the score
#: threshold and the lowest text confidence"): end-to-end hmean is flat between 0.15 and 0.2 and falls on
#: either side.
MARGIN = 0.15
#: bilinear samples per crop pixel side: a photo's large words shrink to the recognizer's height.
SUPERSAMPLE = 2
#: default lowest text confidence of a returned word (0 returns every detected word): a word the recognizer
#: is unsure of is more often misread than not, and a misread word counts against end-to-end precision. Chosen
#: for the shipped models on the `val` scenes by bench/ocr_threshold.py (docs/RESULTS.md, "OCR: the score
#: threshold and the lowest text confidence"; 0.3 with the models of session 19 and one scale, 0.5 with the
#: models of session 20 and `SCALES`); `--min-text-confidence=0` turns it off.
MIN_TEXT_CONFIDENCE = 0.5

#: the detector's input sides, as multiples of its own `data.image_size`: each image is detected at every
#: scale and the boxes of all scales are merged by rotated NMS (the detector's `det_nms_iou`), so small words
#: that the 1x input shrinks below what the detector finds are found at the larger side and large ones stay
#: found at 1x. Chosen on the `val` scenes by `bench/ocr_threshold.py --scale-sets` among 1, 1+1.5, 1+2 and
#: 1+2.5 (docs/RESULTS.md, "OCR: the score threshold and the lowest text confidence") for the shipped 512 px
#: small-ResNet detector; a detector with a larger input (configs/det_paper.py, 1024 px) should choose its own
#: with `--scales`. `(1.0,)` detects once, as the detection export does.
SCALES = (1.0, 2.5)

OUTPUTS = ("boxes", "texts", "box_scores", "text_confidences", "num_words")


def parse_scales(text):
    """`"1,2.5"` -> `[1.0, 2.5]`, checked as `scale_sides` checks them (the sides themselves depend on the
    detector's config). Raises ValueError with the reason."""
    scales = [float(v) for v in str(text).split(",") if v.strip()]
    scale_sides(8, scales)
    return scales


def scale_sides(image_size, scales, multiple=8):
    """The detector input sides of `scales` (multiples of `image_size`, rounded to `multiple`, the
    backbone's input stride: 8 for the small ResNet, 32 for ResNet-50 + FPN), in order and without repeats;
    `scales` must hold 1 (the detector as trained).

    Raises:
      ValueError: no scale of 1, or a scale that is not a finite positive number.
    """
    scales = [float(v) for v in scales]
    if not scales or any(not (math.isfinite(v) and v > 0) for v in scales):
        raise ValueError(f"detector scales {scales}: give finite positive multiples of the input side, e.g. 1,2")
    if not any(abs(v - 1.0) < 1e-9 for v in scales):
        raise ValueError(f"detector scales {scales}: 1 (the detector's own input side) must be one of them")
    sides = []
    for v in scales:
        side = image_size if abs(v - 1.0) < 1e-9 else max(multiple, int(round(image_size * v / multiple)) * multiple)
        if side not in sides:
            sides.append(side)
    return sides


def input_multiple(detector_cfg):
    """The side multiple the detector's backbone needs: 32 for ResNet-50 + FPN (its C5 level is 1/32 and the
    FPN adds upsampled levels to the finer ones), 8 for the small ResNet."""
    return 32 if detector_cfg.model.backbone == "resnet50_fpn" else 8


def scaled_detectors(detector_model, detector_cfg, scales):
    """`[(model, side), ...]` for the sides of `scales` other than the detector's own: copies of
    `detector_model` built for each input side, holding its weights (the backbone is convolutional and the
    head reads RoIs, so the same weights run at any side; only the anchor grid follows the side)."""
    from tfls.detection.task import build_detector

    base = int(detector_cfg.data.image_size)
    out = []
    for side in scale_sides(base, scales, input_multiple(detector_cfg)):
        if side == base:
            continue
        clone = build_detector(detector_cfg.model, side)
        clone.set_weights(detector_model.get_weights())
        out.append((clone, side))
    return out


def merge_scales(boxes, scores, valid, max_output, iou_threshold):
    """The detections of several input scales as one set: rotated NMS over their union.

    Args:
      boxes: `[B, N, 6]` boxes of every scale, in units of each image's long side (so all scales agree).
      scores: `[B, N]`.
      valid: `[B, N]` bool, the detections each scale kept (score threshold, `num_detections`).
      max_output: K, boxes returned per image.
      iou_threshold: a box overlapping a higher-scoring kept box by more (rotated IoU) is dropped.

    Returns:
      `(boxes [B, K, 6], scores [B, K], keep [B, K] bool)` sorted by score; rows past the kept ones are zeros.
    """
    from tfls.detection.nms import rotated_nms

    marked = tf.where(valid, scores, -1.0)
    out_boxes, out_scores, _, keep, _ = rotated_nms(boxes, marked, max_output, iou_threshold, score_threshold=-0.5)
    return out_boxes, tf.where(keep, out_scores, 0.0), keep


def word_crops(image, quads, image_shape, margin=MARGIN, supersample=SUPERSAMPLE):
    """The recognizer's inputs for the words of one image, as the OCR graph makes them (TF ops).

    Args:
      image: `[H, W, 3]` RGB pixels in [0, 255] (any real dtype).
      quads: `[K, 4, 2]` word corners in pixels of `image`, ICDAR order.
      image_shape: the recognizer's `(height, width, channels)`; one channel means grey crops.
      margin, supersample: see `tfls.ocr.crop.rectify` (margin: a fraction of each word's height).

    Returns:
      float32 `[K, height, width, channels]` in [0, 255].
    """
    height, width, channels = image_shape
    crops = rectify(image, quads, height, width, margin=margin, supersample=supersample)
    return tf.image.rgb_to_grayscale(crops) if channels == 1 else crops


def ocr_function(
    detector_model,
    image_size,
    score_threshold,
    recognizer_model,
    table,
    margin=MARGIN,
    supersample=SUPERSAMPLE,
    max_pixels=images_lib.MAX_PIXELS,
    min_text_confidence=MIN_TEXT_CONFIDENCE,
    scale_detectors=(),
):
    """The OCR graph as a function of `image_bytes: tf.string [B]` (the module docstring lists its outputs).

    Args:
      detector_model: a built `RotatedFasterRCNN`.
      image_size: its square input side (the detection config's `data.image_size`).
      score_threshold: detections below this score are dropped (the detection config's
        `eval.score_threshold`).
      recognizer_model: a built `Recognizer`.
      table: the recognizer charset's `lookup_table()`.
      margin: crop margin around each word, a fraction of its height.
      supersample: see `tfls.ocr.crop.rectify`.
      max_pixels: larger images are refused.
      min_text_confidence: words read with a lower confidence are dropped (the rest keep their order).
      scale_detectors: `[(model, side), ...]` (`scaled_detectors`): the same detector at other input sides;
        the boxes of every side are merged (`merge_scales`, the detector's `det_nms_iou`). Empty: one scale.
    """
    k = int(detector_model.max_detections)
    height, width, channels = recognizer_model.image_shape

    def detect_at(model, side, image_bytes):
        def prepare(encoded):
            image = images_lib.decode_checked(encoded, 3, max_pixels)
            return detection_data.pad_to_square_and_resize(image, side)

        images, sides = tf.map_fn(
            prepare,
            image_bytes,
            fn_output_signature=(tf.TensorSpec([side, side, 3], tf.float32), tf.TensorSpec([], tf.float32)),
        )
        out = model(images, training=False)
        keep = (out["scores"] >= score_threshold) & (tf.range(k)[None, :] < out["num_detections"][:, None])
        return out["boxes"], out["scores"], keep, sides

    def detect(image_bytes):
        boxes, scores, keep, sides = detect_at(detector_model, image_size, image_bytes)
        if scale_detectors:
            found = [(boxes, scores, keep)] + [detect_at(m, side, image_bytes)[:3] for m, side in scale_detectors]
            boxes, scores, keep = merge_scales(
                tf.concat([f[0] for f in found], 1),
                tf.concat([f[1] for f in found], 1),
                tf.concat([f[2] for f in found], 1),
                k,
                float(detector_model.det_nms_iou),
            )
        quads = box_lib.tf_six_to_quad(boxes) * sides[:, None, None, None]
        order = reading_order(quads, keep)
        return (
            tf.gather(quads, order, batch_dims=1),
            tf.gather(scores, order, batch_dims=1),
            tf.gather(keep, order, batch_dims=1),
        )

    def crops_of(encoded, quads):
        image = images_lib.decode_checked(encoded, 3, max_pixels)
        return word_crops(image, quads, recognizer_model.image_shape, margin=margin, supersample=supersample)

    def read(image_bytes):
        quads, scores, keep = detect(image_bytes)
        num_words = tf.reduce_sum(tf.cast(keep, tf.int32), axis=1)
        # Kept words come first in reading order: crop only the first max(num_words) slots of each image.
        most = tf.reduce_max(num_words)
        crops = tf.map_fn(
            lambda args: crops_of(args[0], args[1]),
            (image_bytes, quads[:, :most]),
            fn_output_signature=tf.TensorSpec([None, height, width, channels], tf.float32),
        )
        kept = keep[:, :most]
        words = tf.boolean_mask(crops, kept)
        count = tf.shape(words)[0]
        texts, confidences = tf.cond(
            count > 0,
            lambda: predict_text(recognizer_model, words, table),
            lambda: (tf.zeros([0], tf.string), tf.zeros([0], tf.float32)),
        )
        # Back to [B, K]: slot (b, j) reads result number (kept words before it); others read the padding.
        flat_keep = tf.reshape(keep, [-1])
        index = tf.where(flat_keep, tf.math.cumsum(tf.cast(flat_keep, tf.int32)) - 1, count)
        texts = tf.reshape(tf.gather(tf.concat([texts, [""]], 0), index), [-1, k])
        confidences = tf.reshape(tf.gather(tf.concat([confidences, [0.0]], 0), index), [-1, k])
        if min_text_confidence > 0:
            # Drop the unsure words, then move the remaining ones back to the front, order kept.
            keep = keep & (confidences >= min_text_confidence)
            order = tf.argsort(tf.cast(~keep, tf.int32), axis=1, stable=True)
            keep = tf.gather(keep, order, batch_dims=1)
            quads = tf.gather(quads, order, batch_dims=1)
            scores = tf.gather(scores, order, batch_dims=1)
            texts = tf.where(keep, tf.gather(texts, order, batch_dims=1), "")
            confidences = tf.where(keep, tf.gather(confidences, order, batch_dims=1), 0.0)
            num_words = tf.reduce_sum(tf.cast(keep, tf.int32), axis=1)
        boxes = tf.where(keep[..., None], tf.reshape(quads, [-1, k, 8]), 0.0)
        return boxes, texts, tf.reshape(tf.where(keep, scores, 0.0), [-1, k]), confidences, num_words

    def nothing():
        return (
            tf.zeros([0, k, 8], tf.float32),
            tf.zeros([0, k], tf.string),
            tf.zeros([0, k], tf.float32),
            tf.zeros([0, k], tf.float32),
            tf.zeros([0], tf.int32),
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve(image_bytes):
        outputs = images_lib.unless_empty(image_bytes, lambda: read(image_bytes), nothing)
        return {name: tf.identity(value, name=name) for name, value in zip(OUTPUTS, outputs)}

    return serve


def export_ocr(
    detector_model,
    detector_cfg,
    recognizer_model,
    charset,
    path,
    margin=MARGIN,
    supersample=SUPERSAMPLE,
    score_threshold=None,
    min_text_confidence=MIN_TEXT_CONFIDENCE,
    scales=SCALES,
):
    """Writes the OCR SavedModel (signature `serving_default`) to `path`.

    Args:
      detector_model: a built `RotatedFasterRCNN`.
      detector_cfg: its task config (reads `data.image_size` and `eval.score_threshold`).
      recognizer_model: a built `Recognizer`.
      charset: its `Charset`.
      path: output folder.
      margin, supersample: see `ocr_function`.
      score_threshold: overrides the config's `eval.score_threshold`.
      min_text_confidence: see `ocr_function`.
      scales: the detector's input sides as multiples of its `data.image_size` (`SCALES`; `scale_sides`).

    Returns:
      `path`.
    """
    threshold = detector_cfg.eval.score_threshold if score_threshold is None else score_threshold
    extra = scaled_detectors(detector_model, detector_cfg, scales)
    serve = ocr_function(
        detector_model,
        int(detector_cfg.data.image_size),
        float(threshold),
        recognizer_model,
        charset.lookup_table(),
        margin=margin,
        supersample=supersample,
        min_text_confidence=float(min_text_confidence),
        scale_detectors=extra,
    )
    archive = keras.export.ExportArchive()
    archive.track(detector_model)
    for model, _ in extra:
        archive.track(model)
    archive.track(recognizer_model)
    archive.add_endpoint("serving_default", serve)
    archive.write_out(path, verbose=False)
    return path


# ----------------------------------------------------------------------------------------------------------
# Command line: the models of two finished jobs (or two weights folders) -> one OCR export.


class ExportError(RuntimeError):
    """The models cannot be built or loaded as asked; the message says why."""


def _config_for(cls, config_path, folder, overrides):
    """The config of a task's trained weights: `config_path` if given, else the `config.json` the job (or
    `tfls.ship`) wrote beside them, else the task's default config file; `overrides` applied, validated."""
    import ml_collections

    from tfls import configuration, registry

    recorded = os.path.join(folder, "config.json") if folder else ""
    if config_path is None and recorded and os.path.isfile(recorded):
        with open(recorded) as f:
            config = ml_collections.ConfigDict(json.load(f))
        for key, value in configuration.parse_overrides(list(overrides or [])).items():
            node = config
            *parents, leaf = key.split(".")
            for part in parents:
                node = node[part] if part in node else None
                if node is None:
                    break
            if node is None or leaf not in node:
                raise configuration.ConfigError(f"config override {key!r}: {recorded} has no such key")
            node[leaf] = value
        config_path = recorded
    else:
        config_path = config_path or registry.default_config_path(cls)
        config = configuration.load_config(config_path, list(overrides or []))
    configuration.validate(config, cls)
    return config, config_path


def load_task_model(task_name, workdir=None, weights=None, config_path=None, overrides=(), which="auto"):
    """A task and its model with trained weights, from a job's workdir or from a weights folder.

    Args:
      task_name: "det", "str" or `package.module:Class`.
      workdir: a job's `--workdir`; its `models/<which>` weights are read.
      weights: a weights folder (`tfls.job.weights.save_weights` format), instead of `workdir`.
      config_path: the config the weights were trained with (default: the `config.json` in the workdir or
        weights folder, else the task's default config file).
      overrides: `["a.b=value", ...]` applied to that config, as the job got them.
      which: for a workdir: "auto" (tuned, else baseline), "tuned", "baseline" or "control".

    Returns:
      `(task, model, description)`.

    Raises:
      ExportError: no such weights, or a config other than the one the workdir was trained with.
    """
    from tfls import registry
    from tfls.job.weights import has_weights, load_weights
    from tfls.job.workdir import JobError, config_fingerprint

    cls = registry.task_class(task_name)
    config, config_path = _config_for(cls, config_path, workdir or weights, overrides)
    if workdir:
        state_path = os.path.join(workdir, "state.json")
        if not os.path.isfile(state_path):
            raise ExportError(f"{workdir}: not a tfls workdir (no state.json)")
        with open(state_path) as f:
            state = json.load(f)
        if state.get("fingerprint") != config_fingerprint(config):
            raise ExportError(
                f"{workdir} was trained with another data/model config than {config_path}"
                + (f" with {' '.join(overrides)}" if overrides else "")
                + ": give the config file and overrides the job ran with"
            )
        names = ("tuned", "baseline") if which == "auto" else (which,)
        found = [n for n in names if has_weights(os.path.join(workdir, "models", n))]
        if not found:
            raise ExportError(f"{workdir}: no {' or '.join(names)} weights in models/")
        folder, what = os.path.join(workdir, "models", found[0]), f"{found[0]} weights"
    else:
        folder, what = weights, "weights"
    task = cls(config)
    model = task.build_model()
    try:
        load_weights(folder, model, what)
    except JobError as e:
        raise ExportError(str(e)) from None
    return task, model, f"{what} of {folder} (config {config_path})"


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        _fail(message)


def _fail(message):
    print(f"tfls: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def parse_args(argv=None):
    parser = _ArgumentParser(prog="python -m tfls.ocr.export", description=__doc__.splitlines()[0])
    for role, task in (("detector", "det"), ("recognizer", "str")):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(f"--{role}-workdir", help=f"workdir of a finished --task={task} job")
        source.add_argument(f"--{role}-weights", help="a weights folder (e.g. weights/<name>) instead")
        parser.add_argument(
            f"--{role}-config",
            help=f"the config file it was trained with (default: its config.json, else configs/{task}.py)",
        )
        parser.add_argument(
            f"--{role}-set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a config override the job ran with, as key=value (repeat as needed)",
        )
    parser.add_argument("--model", choices=("auto", "tuned", "baseline", "control"), default="auto")
    parser.add_argument("--output", required=True, help="SavedModel folder to create, e.g. /models/ocr/1")
    parser.add_argument("--margin", type=float, default=MARGIN, help="crop margin, fraction of the word height")
    parser.add_argument("--score-threshold", type=float, default=None, help="default: the detector config's")
    parser.add_argument(
        "--scales",
        default=",".join(f"{v:g}" for v in SCALES),
        help="detector input sides as multiples of its own, merged by NMS (default %(default)s; 1 = one pass)",
    )
    parser.add_argument(
        "--min-text-confidence",
        type=float,
        default=MIN_TEXT_CONFIDENCE,
        help=f"drop words read with a lower confidence (default {MIN_TEXT_CONFIDENCE})",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        scales = parse_scales(args.scales)
    except ValueError as e:
        _fail(f"--scales={args.scales}: {e}")
    if os.path.exists(args.output) and os.listdir(args.output):
        _fail(f"--output {args.output} exists and is not empty; choose a new folder (e.g. the next version)")
    from tfls.configuration import ConfigError
    from tfls.registry import TaskNotFound

    try:
        det_task, detector, det_what = load_task_model(
            "det", args.detector_workdir, args.detector_weights, args.detector_config, args.detector_set, args.model
        )
        str_task, recognizer, str_what = load_task_model(
            "str",
            args.recognizer_workdir,
            args.recognizer_weights,
            args.recognizer_config,
            args.recognizer_set,
            args.model,
        )
    except (ExportError, ConfigError, TaskNotFound, ValueError) as e:
        _fail(str(e))
    parent = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(os.path.abspath(args.output))}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    export_ocr(
        detector,
        det_task.config,
        recognizer,
        str_task.charset,
        tmp,
        margin=args.margin,
        score_threshold=args.score_threshold,
        min_text_confidence=args.min_text_confidence,
        scales=scales,
    )
    if os.path.isdir(args.output):
        os.rmdir(args.output)  # empty, checked above
    os.replace(tmp, args.output)
    print(f"tfls: OCR export -> {args.output}\n  detector: {det_what}\n  recognizer: {str_what}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
