"""DetectionTask: rotated text detection (rotated Faster R-CNN) tuned with the LS-IoU surrogate."""

import io
import os

import keras
import numpy as np
import tensorflow as tf

from tfls import images as images_lib
from tfls.detection import boxes as box_lib
from tfls.detection import data as data_lib
from tfls.detection import detector, icdar, lsiou
from tfls.surrogate import Surrogate
from tfls.task import Task


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

    Bytes that are not a JPEG/PNG/GIF/BMP image and images over `max_pixels` (read from the header, before
    decoding) fail the request with `InvalidArgumentError`; an empty batch returns empty outputs."""

    def detect(image_bytes):
        def prepare(encoded):
            image = images_lib.decode_checked(encoded, 3, max_pixels)
            return data_lib.pad_to_square_and_resize(image, image_size)

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


class DetectionTask(Task):
    """Rotated text detection on synthetic scenes (default) or ICDAR 2015 folders, metric ICDAR hmean."""

    name = "det"
    primary_metric = "hmean"
    primary_metric_mode = "max"
    report_metrics = {"precision": "max", "recall": "max"}
    validation_set = "val"
    default_config = "configs/det.py"

    @classmethod
    def validate_config(cls, config):
        from tfls.configuration import check_float, check_int, check_paths

        problems = [
            check_int(config, "data.image_size", 32),
            check_int(config, "data.train_pool", 1),
            check_int(config, "data.eval_size", 1),
            check_int(config, "data.max_boxes", 1),
            check_float(config, "data.dontcare_prob", 0.0, 1.0),
            check_paths(config, "data.icdar_train_image_dir"),
            check_paths(config, "data.icdar_train_gt_dir"),
            check_paths(config, "data.icdar_image_dir"),
            check_paths(config, "data.icdar_gt_dir"),
            check_int(config, "model.max_detections", 1),
            check_float(config, "model.det_nms_iou", 0.0, 1.0),
            check_float(config, "eval.score_threshold", 0.0, 1.0),
            check_int(config, "eval.batch_size", 1),
        ]
        return [p for p in problems if p is not None]

    def __init__(self, config):
        super().__init__(config)
        self._pools = {}
        self._predict = {}
        self.stats = {}

    def _pool(self, name, num, seed):
        if name not in self._pools:
            self._pools[name] = data_lib.scene_pool(num, seed, self.config.data)
        return self._pools[name]

    def train_dataset(self, seed, input_context=None):
        d = self.config.data
        batch = self.config.train.batch_size
        if input_context is not None:
            batch = input_context.get_per_replica_batch_size(batch)
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
            )
        images, targets = self._pool("train", d.train_pool, d.seed)
        return data_lib.train_dataset(images, targets, batch, seed, d.aug_rotate_deg)

    def eval_datasets(self):
        d, e = self.config.data, self.config.eval
        sets = {}
        for offset, name in ((100_003, "val"), (200_003, "test")):
            images, targets = self._pool(name, d.eval_size, d.seed + offset)
            sets[name] = data_lib.eval_dataset(images, targets, e.batch_size)
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

    def surrogate_pairs(self, outputs, y):
        del y
        pred = tf.reshape(outputs["roi_pred_boxes"], [-1, 6])
        target = tf.reshape(outputs["roi_gt_boxes"], [-1, 6])
        return pred, target, tf.reshape(outputs["roi_positive"], [-1])

    def build_surrogate(self):
        s = self.config.surrogate
        embedding = lsiou.BoxEmbedding(tuple(s.embedding_units), s.embedding_dim, name="box_embedding")
        generator = lsiou.RandomBoxPairs(stats=_generator_stats(self.config), min_size=s.min_box_size)
        return Surrogate(embedding, lsiou.one_minus_iou, generator, (6,), seed=self.config.seed).build()

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

    def evaluate(self, model, dataset, tag=None):
        acc = icdar.ICDARAccumulator()
        # ICDAR result files only for the evaluate stage, one folder per model and set (<results_dir>/<tag>)
        results_dir = os.path.join(self.config.eval.results_dir, tag) if self.config.eval.results_dir and tag else ""
        for x, y in dataset:
            side = y["side"].numpy()
            for i, (quads, _) in enumerate(self.predict_quads(model, x, side)):
                valid = y["valid"][i].numpy() > 0
                gt = y["quads"][i].numpy()[valid] * side[i]
                acc.add(quads, gt, y["dontcare"][i].numpy()[valid] > 0)
                if results_dir:
                    icdar.write_results(results_dir, int(y["image_id"][i]), quads)
        return acc.result()

    def export(self, model, path):
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serving_default", serving_function(model, self.config.data.image_size, self.config.eval.score_threshold)
        )
        archive.write_out(path, verbose=False)

    def serving_examples(self, n):
        """`n` PNG-encoded held-out synthetic scenes, as a client would send them to the export."""
        from PIL import Image

        d = self.config.data
        images, _ = self._pool("val", d.eval_size, d.seed + 100_003)
        out = []
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(images[i % len(images)]).save(buf, format="PNG")
            out.append(buf.getvalue())
        return out

    def write_summaries(self, writer, model, surrogate, step):
        """Validation images with predicted (red) and true (green) boxes, and a scatter of e_hat vs 1 - IoU."""
        from PIL import Image, ImageDraw

        from tfls import summaries

        x, y = next(iter(self.eval_datasets()[self.validation_set]))
        x, n = x[:4], min(4, int(x.shape[0]))
        drawn = []
        for i, (quads, _) in enumerate(self.predict_quads(model, x, y["side"][:n].numpy())):
            im = Image.fromarray((x[i].numpy() * 255).astype(np.uint8))
            draw = ImageDraw.Draw(im)
            side = float(y["side"][i])
            for q, v in zip(y["quads"][i].numpy(), y["valid"][i].numpy()):
                if v > 0:
                    draw.polygon([tuple(p * side) for p in q], outline=(0, 255, 0))
            for q in quads:
                draw.polygon([tuple(p) for p in q], outline=(255, 0, 0))
            drawn.append(np.asarray(im))
        pred, target = surrogate.held_out_pairs(256, seed=12345)
        e_hat = surrogate.distance(pred, target).numpy()
        e = lsiou.one_minus_iou(pred, target)
        with writer.as_default(step=step):
            tf.summary.image("val/detections", np.stack(drawn), max_outputs=4)
            tf.summary.image("surrogate/scatter", summaries.scatter_image(e, e_hat, "1 - IoU")[None])


def _generator_stats(config):
    s = config.surrogate
    return {
        "log_w": (np.log(s.box_width_median), s.box_width_log_std),
        "aspect": tuple(s.box_aspect_range),
        "angle_deg_std": s.box_angle_std_deg,
    }


__all__ = ["DetectionTask", "build_detector", "serving_function"]
