"""DetectionTask: rotated text detection (rotated Faster R-CNN) tuned with the LS-IoU surrogate."""

import io
import logging
import os

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from tfls import images as images_lib
from tfls.detection import boxes as box_lib
from tfls.detection import data as data_lib
from tfls.detection import detector, icdar, lsiou, scenes
from tfls.detection import iou as iou_lib
from tfls.surrogate import Surrogate
from tfls.task import Task

log = logging.getLogger(__name__)

# Evaluation sets: `val` selects checkpoints (never reported), `test` is reported, `test_ood` is reported with
# held-out fonts and the harder scene mix. Each is a render stream of its own that training never draws.
EVAL_SETS = ("val", "test", "test_ood")
_EVAL_STREAM = 1_000_001
# IoU thresholds of the reported hmeans: the challenge's 0.5, and stricter ones that reward tight boxes.
STRICT_IOUS = {"hmean_iou70": 0.7, "hmean_iou80": 0.8}


def build_detector(model_cfg, image_size):
    """A `RotatedFasterRCNN` from the config's `model` block, built on a zero image."""
    model = detector.RotatedFasterRCNN(
        image_size=image_size,
        backbone=model_cfg.backbone,
        widths=tuple(model_cfg.widths),
        channels=model_cfg.channels,
        anchor_sizes=tuple(model_cfg.anchor_sizes),
        anchor_ratios=tuple(model_cfg.anchor_ratios),
        anchor_angles=tuple(model_cfg.anchor_angles),
        rpn_pre_nms=model_cfg.rpn_pre_nms,
        rpn_post_nms=model_cfg.rpn_post_nms,
        rpn_nms_iou=model_cfg.rpn_nms_iou,
        roi_size=model_cfg.roi_size,
        head_units=model_cfg.head_units,
        max_detections=model_cfg.max_detections,
        det_nms_iou=model_cfg.det_nms_iou,
        det_score_threshold=model_cfg.det_score_threshold,
        name="rotated_faster_rcnn",
    )
    model(tf.zeros((1, image_size, image_size, 3)))
    return model


def serving_function(model, image_size, score_threshold, max_pixels=images_lib.MAX_PIXELS):
    """`serving_default(image_bytes: tf.string [None])` -> boxes `[None, K, 8]` (pixel quads of the original
    image, ICDAR order), scores `[None, K]`, num_detections `[None]`; padding rows are zero.

    Each image, of any size, is resized keeping its aspect ratio so that its long side is `image_size`,
    padded at the bottom and right to a square (`data.resize_and_pad`, as in training and evaluation), and
    the detections, fractions of that square, are mapped back by the original's long side. Bytes that are
    not a JPEG/PNG/GIF/BMP image and images over `max_pixels` (read from the header, before decoding) fail
    the request with `InvalidArgumentError`; an empty batch returns empty outputs without running the
    network (`images.unless_empty`)."""

    def detect(image_bytes):
        def prepare(encoded):
            image = images_lib.decode_checked(encoded, 3, max_pixels)
            return data_lib.resize_and_pad(image, image_size)

        images, sides = tf.map_fn(
            prepare,
            image_bytes,
            fn_output_signature=(tf.TensorSpec([image_size, image_size, 3], tf.float32), tf.TensorSpec([], tf.float32)),
        )
        out = model(images, training=False)
        keep = out["scores"] >= score_threshold
        quads = box_lib.tf_six_to_quad(out["boxes"]) * sides[:, None, None, None]
        k = tf.shape(quads)[1]
        quads = tf.where(keep[..., None], tf.reshape(quads, [-1, k, 8]), 0.0)
        scores = tf.where(keep, out["scores"], 0.0)
        return quads, scores, tf.reduce_sum(tf.cast(keep, tf.int32), 1)

    def nothing():
        k = model.max_detections
        return tf.zeros([0, k, 8], tf.float32), tf.zeros([0, k], tf.float32), tf.zeros([0], tf.int32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve(image_bytes):
        quads, scores, num = images_lib.unless_empty(image_bytes, lambda: detect(image_bytes), nothing)
        return {"boxes": quads, "scores": scores, "num_detections": num}

    return serve


DETECTION_LOSS_TERMS = ("rpn_cls", "rpn_reg", "roi_cls", "roi_reg")  # detector.detection_loss's parts


class DetectionTask(Task):
    """Rotated text detection on synthetic scenes (default) or ICDAR 2015 folders, metric ICDAR hmean."""

    name = "det"
    primary_metric = "hmean"
    primary_metric_mode = "max"
    report_metrics = {
        "precision": "max",
        "recall": "max",
        "hmean_iou70": "max",
        "hmean_iou80": "max",
        "mean_matched_iou": "max",
    }
    validation_set = "val"
    default_config = "configs/det.py"
    #: tuning variants of bench/quality.py --variants=...: `paper` keeps every ordinary loss but the RoI head's
    #: box regression, which LS-IoU replaces (`tuning_ordinary_loss`); `paper_exact` tunes the same way on the
    #: exact 1 - IoU (`differentiable_metric`), an oracle of the surrogate
    tuning_variants = {
        "paper": {"tune.ordinary_loss_weight": 1.0, "tune.ordinary_terms": ("rpn_cls", "rpn_reg", "roi_cls")},
    }
    # the oracle of `paper`: the exact 1 - IoU's own gradient instead of LS-IoU's
    tuning_variants["paper_exact"] = {**tuning_variants["paper"], "tune.objective": "exact"}

    @classmethod
    def validate_config(cls, config):
        from tfls.configuration import check_float, check_int, check_paths

        problems = [
            check_int(config, "data.image_size", 64),
            check_int(config, "data.train_pool", 1),
            check_int(config, "data.train_pool_start", 0),
            check_int(config, "data.eval_size", 0),
            check_int(config, "data.max_boxes", 1),
            check_int(config, "data.corpus_size", 1),
            check_float(config, "data.aug_rotate_deg", 0.0, 180.0),
            check_paths(config, "data.icdar_train_image_dir"),
            check_paths(config, "data.icdar_train_gt_dir"),
            check_paths(config, "data.icdar_image_dir"),
            check_paths(config, "data.icdar_gt_dir"),
            check_int(config, "model.max_detections", 1),
            check_float(config, "model.det_nms_iou", 0.0, 1.0),
            check_float(config, "eval.score_threshold", 0.0, 1.0),
            check_int(config, "eval.batch_size", 1),
            check_paths(config, "eval.recognizer"),
            check_float(config, "surrogate.box_angle_uniform_share", 0.0, 1.0),
        ]
        problems = [p for p in problems if p is not None]
        recognizer = config.get("eval", {}).get("recognizer", "")
        if recognizer and os.path.isdir(os.path.expanduser(recognizer)) and not _is_model_folder(recognizer):
            problems.append(
                (
                    "eval.recognizer",
                    recognizer,
                    "a recognizer weights folder (e.g. weights/str) or a --task=str workdir (it has neither a "
                    "weights checkpoint nor state.json)",
                )
            )
        d = config.get("data", {})
        if isinstance(d.get("image_size"), int) and d.image_size % 8:
            problems.append(("data.image_size", d.image_size, "a multiple of 8 (the backbone's stride)"))
        scale = tuple(d.get("scale_range", (1.0, 1.0)))
        if len(scale) != 2 or not 0.1 <= scale[0] <= scale[1] <= 4.0:
            problems.append(("data.scale_range", scale, "(low, high) with 0.1 <= low <= high <= 4"))
        for key in ("scene", "ood_scene"):
            if key not in d:
                continue
            try:
                scenes.validate_mix(d[key].to_dict() if hasattr(d[key], "to_dict") else d[key])
            except ValueError as e:
                problems.append((f"data.{key}", "...", f"a valid scene mix ({e})"))
            if isinstance(d.get("max_boxes"), int) and d[key].get("max_words", 0) > d.max_boxes:
                problems.append((f"data.{key}.max_words", d[key].max_words, f"at most data.max_boxes ({d.max_boxes})"))
        terms = config.get("tune", {}).get("ordinary_terms", DETECTION_LOSS_TERMS)
        if not terms or not all(t in DETECTION_LOSS_TERMS for t in terms) or len(set(terms)) != len(terms):
            problems.append(("tune.ordinary_terms", terms, f"distinct names among {', '.join(DETECTION_LOSS_TERMS)}"))
        s = config.get("surrogate", {})
        if "embedding_frequencies" in s:
            k, band = s.embedding_frequencies, tuple(s.get("embedding_frequency_range", (3.0, 1500.0)))
            if not isinstance(k, int) or isinstance(k, bool) or k < 0:
                problems.append(("surrogate.embedding_frequencies", k, "an int >= 0 (0: no box spectrum)"))
            if len(band) != 2 or not all(isinstance(v, int | float) for v in band) or not 0 < band[0] < band[1]:
                problems.append(("surrogate.embedding_frequency_range", band, "(low, high) with 0 < low < high"))
        sweep = s.get("grad_penalty_sweep", ())
        if not sweep or not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in sweep):
            problems.append(("surrogate.grad_penalty_sweep", sweep, "a non-empty list of weights >= 0"))
        return problems

    def __init__(self, config):
        super().__init__(config)
        self._pool = None
        self._eval_arrays = {}
        self._renderers = {}
        self._sampler = None
        self._predict = {}
        self._reader = None
        self.stats = {}

    # Data ---------------------------------------------------------------------------------------------

    @property
    def sampler(self):
        """What the words say: the recognition corpus (wordfreq words, numbers, random strings, varied case)."""
        if self._sampler is None:
            from tfls.recognition.charset import Charset
            from tfls.recognition.corpus import WordSampler, frequent_words

            d = self.config.data
            charset = Charset(max_length=25)
            self._sampler = WordSampler(
                charset,
                frequent_words(charset, d.corpus_size, d.get("corpus_min_length", 1)),
                d.get("random_fraction", 0.1),
                d.get("random_max_length", 10) or None,
                number_fraction=d.get("number_fraction", 0.1),
                upper_fraction=d.get("upper_fraction", 0.25),
                title_fraction=d.get("title_fraction", 0.25),
            )
        return self._sampler

    def scene_renderer(self, set_name):
        """The renderer of the training stream, `val` and `test` (training fonts, `data.scene`) or, for
        `test_ood`, held-out fonts (`data.ood_fonts`) and `data.ood_scene`."""
        ood = set_name == "test_ood"
        if ood not in self._renderers:
            from tfls.recognition import fonts as fonts_lib

            d = self.config.data
            train, held_out = fonts_lib.split_fonts(ood_families=fonts_lib.parse_families(d.get("ood_fonts", "")))
            if ood and not held_out:
                raise ValueError("test_ood needs held-out font families: data.ood_fonts is empty")
            mix = d.get("ood_scene") if ood else d.get("scene")
            mix = mix.to_dict() if hasattr(mix, "to_dict") else dict(mix or {})
            self._renderers[ood] = scenes.SceneRenderer(held_out if ood else train, self.sampler, mix)
        return self._renderers[ood]

    @staticmethod
    def eval_set_seed(seed, name):
        """The render stream of evaluation set `name` (never drawn by training, whose stream is `(seed, 0)`)."""
        return (int(seed), _EVAL_STREAM + EVAL_SETS.index(name))

    def reset_training_data(self):
        self._pool = None  # the scene pool fills as training asks

    def train_dataset(self, seed, input_context=None):
        d = self.config.data
        batch = self.config.train.batch_size
        if input_context is not None:
            batch = input_context.get_per_replica_batch_size(batch)
        scale = tuple(float(v) for v in d.scale_range)
        if d.icdar_train_image_dir:
            return data_lib.icdar_train_dataset(
                d.icdar_train_image_dir,
                d.icdar_train_gt_dir or None,
                d.image_size,
                d.max_boxes,
                batch,
                seed,
                d.aug_rotate_deg,
                self.stats,
                scale_range=scale,
            )
        if self._pool is None:
            long_side = int(np.ceil(d.image_size * scale[1]))
            self._pool = data_lib.ScenePool(
                self.scene_renderer("train"),
                (d.seed, 0),
                d.train_pool,
                long_side,
                d.max_boxes,
                start=d.get("train_pool_start", 0),
            )
        return data_lib.scene_train_dataset(self._pool, batch, seed, d.image_size, scale, d.aug_rotate_deg)

    def eval_arrays(self, name):
        """The prepared images and targets of synthetic evaluation set `name` (rendered once, then cached)."""
        if name not in self._eval_arrays:
            d = self.config.data
            self._eval_arrays[name] = data_lib.render_eval_arrays(
                self.scene_renderer(name), self.eval_set_seed(d.seed, name), d.eval_size, d.image_size, d.max_boxes
            )
        return self._eval_arrays[name]

    def eval_datasets(self):
        """`val` and `test` (training fonts and mix), `test_ood` (held-out fonts and backgrounds, the harder
        mix), `data.eval_size` scenes each, and `icdar2015` when `data.icdar_image_dir` is set."""
        d, e = self.config.data, self.config.eval
        sets = {}
        if d.eval_size > 0:
            for name in EVAL_SETS:
                sets[name] = data_lib.eval_dataset(*self.eval_arrays(name), e.batch_size)
        if d.icdar_image_dir:
            sets["icdar2015"] = data_lib.icdar_dataset(
                d.icdar_image_dir, d.icdar_gt_dir or None, d.image_size, d.icdar_max_boxes, e.batch_size, self.stats
            )
        return sets

    def build_model(self):
        return build_detector(self.config.model, self.config.data.image_size)

    def forward(self, model, x, y, training):
        return detector.training_outputs(model, x, y, self.config.model, training)

    def ordinary_loss(self, outputs, y):
        del y
        return detector.detection_loss(outputs)[0]

    def tuning_ordinary_loss(self, outputs, y):
        """The terms of `detector.detection_loss` named by `tune.ordinary_terms` (default all four: the
        `mixed` objective). `("rpn_cls", "rpn_reg", "roi_cls")` with `tune.ordinary_loss_weight=1` is the
        paper's tuning: LS-IoU replaces the RoI head's smooth L1 and every other loss stays, so the features
        the classifier shares with the box regressor are still held by its own loss."""
        del y
        terms = tuple(self.config.tune.get("ordinary_terms", DETECTION_LOSS_TERMS))
        parts = detector.detection_loss(outputs)[1]
        return tf.add_n([parts[name] for name in terms])

    def surrogate_pairs(self, outputs, y):
        """The RoI head's decoded boxes of the positive RoIs and their ground truth, both in canonical form
        (`boxes.canonical`, a signed permutation per box, so the model's gradient passes through it)."""
        del y
        pred = box_lib.canonical(tf.reshape(outputs["roi_pred_boxes"], [-1, 6]))
        target = box_lib.canonical(tf.reshape(outputs["roi_gt_boxes"], [-1, 6]))
        return pred, target, tf.reshape(outputs["roi_positive"], [-1])

    def differentiable_metric(self, pred, target):
        """1 - IoU of the canonical box pairs with its exact gradient (`tune.objective="exact"`, the oracle)."""
        return iou_lib.tf_one_minus_iou(pred, target, differentiable=True)

    def build_surrogate(self):
        s = self.config.surrogate
        embedding = lsiou.BoxEmbedding(
            tuple(s.embedding_units),
            s.embedding_dim,
            s.get("embedding_directions", 8),
            num_frequencies=s.get("embedding_frequencies", 0),
            frequency_range=tuple(s.get("embedding_frequency_range", (3.0, 1500.0))),
            name="box_embedding",
        )
        generator = lsiou.RandomBoxPairs(stats=_generator_stats(self.config), min_size=s.min_box_size)
        return Surrogate(
            embedding,
            lsiou.one_minus_iou,
            generator,
            (6,),
            seed=self.config.seed,
            metric_fn_tf=iou_lib.tf_one_minus_iou,
        ).build()

    def _predict_fn(self, model):
        key = id(model)
        if key not in self._predict:
            self._predict[key] = tf.function(lambda x: model(x, training=False), jit_compile=False)
        return self._predict[key]

    def predict_quads(self, model, x, side):
        """Detections of a batch as a list (per image) of `(pixel quads [d, 4, 2], scores [d])`."""
        out = self._predict_fn(model)(x)
        boxes, scores = out["boxes"].numpy(), out["scores"].numpy()
        num = out["num_detections"].numpy()
        side = np.asarray(side, np.float64)
        results = []
        for i in range(len(boxes)):
            keep = scores[i, : num[i]] >= self.config.eval.score_threshold
            results.append((box_lib.six_to_quad(boxes[i, : num[i]][keep]) * side[i], scores[i, : num[i]][keep]))
        return results

    def recognizer(self):
        """`(model, read)` of `eval.recognizer`, loaded on first use: `read(crops float32 [n, h, w, c] in
        [0, 255]) -> tf.string [n]`, the greedy text (`tfls.recognition.serving.predict_text`).

        Raises:
          ConfigError: naming the key and the path, when no recognizer can be loaded from it.
        """
        if self._reader is None:
            from tfls.configuration import ConfigError
            from tfls.ocr.export import ExportError, load_task_model
            from tfls.recognition.serving import predict_text
            from tfls.registry import TaskNotFound

            given = self.config.eval.recognizer
            path = os.path.expanduser(given)
            workdir = os.path.isfile(os.path.join(path, "state.json"))
            try:
                str_task, model, _ = load_task_model("str", **{"workdir" if workdir else "weights": path})
            except (ExportError, ConfigError, TaskNotFound, ValueError, OSError, tf.errors.OpError) as e:
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise ConfigError(
                    f"config.eval.recognizer={given!r}: cannot load a recognizer from it: {first}"
                ) from None
            table = str_task.charset.lookup_table()
            spec = tf.TensorSpec([None, *model.image_shape], tf.float32)
            read = tf.function(lambda crops: predict_text(model, crops, table)[0], input_signature=[spec])
            self._reader = (model, read)
        return self._reader

    def read_boxes(self, x, detections, side):
        """The `eval.recognizer`'s reading of each detected box: a list (per image) of lists of str.

        Each box is rectified from the detector's input `x` (the only pixels an evaluation set holds: the
        long side is `data.image_size`) exactly as the OCR export crops a photo (`tfls.ocr.export.word_crops`:
        its margin and supersampling), and all the boxes of the batch are read in one recognizer call.

        Args:
          x: `[B, S, S, 3]` detector inputs in [0, 1].
          detections: per image, pixel quads `[d, 4, 2]` of the original image (`predict_quads`).
          side: `[B]` the originals' long sides (pixels per normalised unit).
        """
        from tfls.ocr.export import word_crops

        model, read = self.recognizer()
        size = float(x.shape[1])
        counts = [len(quads) for quads in detections]
        crops = [
            word_crops(x[i] * 255.0, np.asarray(quads, np.float32) * (size / float(side[i])), model.image_shape)
            for i, quads in enumerate(detections)
            if len(quads)
        ]
        if not crops:
            return [[] for _ in detections]
        texts = [t.decode("utf-8") for t in read(tf.concat(crops, 0)).numpy()]
        bounds = np.cumsum([0] + counts)
        return [texts[bounds[i] : bounds[i + 1]] for i in range(len(detections))]

    def evaluate(self, model, dataset, tag=None):
        """ICDAR 2015 figures: precision, recall and `hmean` at IoU 0.5 (the challenge), `hmean_iou70` and
        `hmean_iou80` (the same protocol at stricter IoU), `mean_matched_iou` (mean IoU of the pairs matched
        at 0.5) and `num_images`.

        With `eval.recognizer` set, also `e2e_precision`, `e2e_recall`, `e2e_hmean`: the ICDAR 2015
        end-to-end rule (`tfls.ocr.endtoend`: the detection's pairs, a pair counts when `read_boxes` reads
        its transcription, case-insensitively), on sets whose every cared-for ground-truth word has a
        transcription (the synthetic sets; an ICDAR folder whose GT lines carry them); other sets skip them.
        """
        from tfls.ocr.endtoend import EndToEndAccumulator

        acc = icdar.ICDARAccumulator()
        strict = {name: icdar.ICDARAccumulator(iou) for name, iou in STRICT_IOUS.items()}
        e2e = EndToEndAccumulator() if self.config.eval.get("recognizer", "") else None
        # ICDAR result files only for the evaluate stage, one folder per model and set (<results_dir>/<tag>)
        results_dir = os.path.join(self.config.eval.results_dir, tag) if self.config.eval.results_dir and tag else ""
        for x, y in dataset:
            side = y["side"].numpy()
            detections = self.predict_quads(model, x, side)
            valid = y["valid"].numpy() > 0
            if e2e is not None:
                texts = _ground_truth_texts(y, valid)
                if texts is None:
                    log.info("%s: ground truth without transcriptions, no end-to-end figures", tag or "eval set")
                    e2e = None
                else:
                    read = self.read_boxes(x, [quads for quads, _ in detections], side)
            for i, (quads, _) in enumerate(detections):
                gt = y["quads"][i].numpy()[valid[i]] * side[i]
                dontcare = y["dontcare"][i].numpy()[valid[i]] > 0
                acc.add(quads, gt, dontcare)
                for other in strict.values():
                    other.add(quads, gt, dontcare)
                if e2e is not None:
                    e2e.add(quads, read[i], gt, texts[i], dontcare)
                if results_dir:
                    icdar.write_results(results_dir, int(y["image_id"][i]), quads)
        metrics = acc.result()
        metrics.update({name: other.result()["hmean"] for name, other in strict.items()})
        if e2e is not None and e2e.images:
            result = e2e.result()
            metrics.update({f"e2e_{name}": result[name] for name in ("precision", "recall", "hmean")})
        return metrics

    def export(self, model, path):
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serving_default", serving_function(model, self.config.data.image_size, self.config.eval.score_threshold)
        )
        archive.write_out(path, verbose=False)

    def serving_examples(self, n):
        """`n` JPEG-encoded held-out scenes at their own sizes (640x480 to 1280x720), as a client sends them."""
        seed = self.eval_set_seed(self.config.data.seed, "val")
        out = []
        for i in range(n):
            scene = scenes.render_indexed(self.scene_renderer("val"), seed, i)
            buf = io.BytesIO()
            Image.fromarray(scene.image).save(buf, format="JPEG", quality=90)
            out.append(buf.getvalue())
        return out

    def write_summaries(self, writer, model, surrogate, step):
        """Validation images with predicted (red) and true (green) boxes, and a scatter of e_hat vs 1 - IoU."""
        from PIL import ImageDraw

        from tfls import summaries

        x, y = next(iter(self.eval_datasets()[self.validation_set]))
        x, n = x[:4], min(4, int(x.shape[0]))
        drawn, size = [], float(x.shape[1])
        # Drawn on the detector's input: normalised coordinates times its side.
        for i, (quads, _) in enumerate(self.predict_quads(model, x, np.full(n, size))):
            im = Image.fromarray((x[i].numpy() * 255).astype(np.uint8))
            draw = ImageDraw.Draw(im)
            for q, v in zip(y["quads"][i].numpy(), y["valid"][i].numpy()):
                if v > 0:
                    draw.polygon([tuple(p * size) for p in q], outline=(0, 255, 0))
            for q in quads:
                draw.polygon([tuple(p) for p in q], outline=(255, 0, 0))
            drawn.append(np.asarray(im))
        pred, target = surrogate.held_out_pairs(256, seed=12345)
        e_hat = surrogate.distance(pred, target).numpy()
        e = lsiou.one_minus_iou(pred, target)
        with writer.as_default(step=step):
            tf.summary.image("val/detections", np.stack(drawn), max_outputs=4)
            tf.summary.image("surrogate/scatter", summaries.scatter_image(e, e_hat, "1 - IoU")[None])


def _is_model_folder(path):
    """Whether `path` holds weights (a weights folder) or `state.json` (a workdir)."""
    from tfls.job.weights import has_weights

    path = os.path.expanduser(path)
    return os.path.isfile(os.path.join(path, "state.json")) or has_weights(path)


def _ground_truth_texts(y, valid):
    """Per image, the transcriptions of its valid ground-truth words (str), or None when the batch has no
    `texts` or a cared-for word without one (an ICDAR folder whose GT lines stop at the corners)."""
    if "texts" not in y:
        return None
    texts = [[t.decode("utf-8") for t in row[keep]] for row, keep in zip(y["texts"].numpy(), valid)]
    dontcare = y["dontcare"].numpy() > 0
    cared = [[t for t, dc in zip(row, flags[keep]) if not dc] for row, flags, keep in zip(texts, dontcare, valid)]
    return None if any(t == "" for row in cared for t in row) else texts


def _generator_stats(config):
    s = config.surrogate
    return {
        "log_w": (np.log(s.box_width_median), s.box_width_log_std),
        "aspect": tuple(s.box_aspect_range),
        "angle_deg_std": s.box_angle_std_deg,
        "angle_uniform_share": s.get("box_angle_uniform_share", 0.0),
    }


__all__ = ["DetectionTask", "build_detector", "serving_function"]
