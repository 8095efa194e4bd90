"""Rotated Faster R-CNN: backbone, RPN over rotated anchors, rotated-RoIAlign head, targets and losses."""

import keras
import tensorflow as tf

from tfls.detection import anchors as anchor_lib
from tfls.detection import boxes as box_lib
from tfls.detection import nms as nms_lib
from tfls.detection import roi_align

RPN_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
ROI_WEIGHTS = (10.0, 10.0, 5.0, 5.0, 2.0, 2.0)


def _conv_bn(x, filters, kernel, stride, name, relu=True):
    x = keras.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(synchronized=True, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _residual(x, filters, stride, name):
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, stride, f"{name}_proj", relu=False)
    y = _conv_bn(x, filters, 3, stride, f"{name}_a")
    y = _conv_bn(y, filters, 3, 1, f"{name}_b", relu=False)
    return keras.layers.ReLU(name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([shortcut, y]))


def small_resnet(image_size, widths, channels):
    """A small ResNet-style backbone of stride 8: a stride-2 stem and two stride-2 residual stages.

    Returns:
      A functional `keras.Model` `[B, S, S, 3] -> [B, S / 8, S / 8, channels]`.
    """
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = _conv_bn(inputs, widths[0], 3, 2, "stem")
    for i, width in enumerate(widths[1:]):
        x = _residual(x, width, 2, f"stage{i + 1}_block0")
        x = _residual(x, width, 1, f"stage{i + 1}_block1")
    x = _conv_bn(x, channels, 3, 1, "neck")
    return keras.Model(inputs, x, name="small_resnet")


def resnet50_fpn(image_size, channels):
    """ResNet-50 (random init) with an FPN top-down path merged into one stride-8 level (P3)."""
    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(image_size, image_size, 3))
    c3, c4, c5 = (base.get_layer(n).output for n in ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out"))
    p5 = keras.layers.Conv2D(channels, 1, name="fpn_lateral5")(c5)
    p4 = keras.layers.Add()(
        [keras.layers.Conv2D(channels, 1, name="fpn_lateral4")(c4), keras.layers.UpSampling2D()(p5)]
    )
    p3 = keras.layers.Add()(
        [keras.layers.Conv2D(channels, 1, name="fpn_lateral3")(c3), keras.layers.UpSampling2D()(p4)]
    )
    p3 = keras.layers.Conv2D(channels, 3, padding="same", name="fpn_output3")(p3)
    return keras.Model(base.input, p3, name="resnet50_fpn")


class RotatedFasterRCNN(keras.Model):
    """Two-stage rotated text detector on square images, one feature level of stride 8.

    Args:
      image_size: side S of the square input (pixels, values in [0, 1]).
      backbone: "small" or "resnet50_fpn".
      widths: stage widths of the small backbone.
      channels: feature channels.
      anchor_sizes, anchor_ratios, anchor_angles: rotated anchor shapes (pixels, w/h, degrees).
      rpn_pre_nms, rpn_post_nms, rpn_nms_iou: proposal selection.
      roi_size: RotatedRoIAlign output side; head_units: hidden width of the RoI head.
      max_detections, det_nms_iou, det_score_threshold: final post-processing.
    """

    def __init__(
        self,
        image_size=128,
        backbone="small",
        widths=(16, 32, 64),
        channels=64,
        anchor_sizes=(16, 32),
        anchor_ratios=(2.0, 5.0),
        anchor_angles=(-60, -30, 0, 30, 60, 90),
        rpn_pre_nms=300,
        rpn_post_nms=64,
        rpn_nms_iou=0.7,
        roi_size=7,
        head_units=256,
        max_detections=32,
        det_nms_iou=0.3,
        det_score_threshold=0.05,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size = int(image_size)
        self.backbone_name = backbone
        self.widths = tuple(widths)
        self.channels = int(channels)
        self.anchor_sizes, self.anchor_ratios = tuple(anchor_sizes), tuple(anchor_ratios)
        self.anchor_angles = tuple(anchor_angles)
        self.rpn_pre_nms, self.rpn_post_nms, self.rpn_nms_iou = int(rpn_pre_nms), int(rpn_post_nms), float(rpn_nms_iou)
        self.roi_size, self.head_units = int(roi_size), int(head_units)
        self.max_detections, self.det_nms_iou = int(max_detections), float(det_nms_iou)
        self.det_score_threshold = float(det_score_threshold)
        # rotated RoIAlign's kernel: "sparse" (fastest on CPU) | "gather" (XLA has no sparse product)
        self.roi_align_method = "sparse"
        if backbone == "small":
            self.backbone = small_resnet(self.image_size, self.widths, self.channels)
        elif backbone == "resnet50_fpn":
            self.backbone = resnet50_fpn(self.image_size, self.channels)
        else:
            raise ValueError(f"model.backbone={backbone!r}: expected 'small' or 'resnet50_fpn'")
        self.feature_size = self.image_size // 8
        # Built once per model (they depend only on the sizes and the config); the grid also matches them.
        self.anchor_grid = anchor_lib.AnchorGrid(
            self.feature_size, self.image_size, self.anchor_sizes, self.anchor_ratios, self.anchor_angles
        )
        self.anchors = self.anchor_grid.anchors
        self.num_anchor_shapes = len(self.anchor_sizes) * len(self.anchor_ratios) * len(self.anchor_angles)
        a = self.num_anchor_shapes
        self.rpn_conv = keras.layers.Conv2D(self.channels, 3, padding="same", activation="relu", name="rpn_conv")
        self.rpn_objectness = keras.layers.Conv2D(a, 1, name="rpn_objectness")
        self.rpn_deltas = keras.layers.Conv2D(
            6 * a, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01), name="rpn_deltas"
        )
        self.head_fc1 = keras.layers.Dense(self.head_units, activation="relu", name="head_fc1")
        self.head_fc2 = keras.layers.Dense(self.head_units, activation="relu", name="head_fc2")
        self.head_cls = keras.layers.Dense(1, name="head_cls")
        self.head_reg = keras.layers.Dense(
            6, kernel_initializer=keras.initializers.RandomNormal(stddev=0.001), name="head_reg"
        )

    def get_config(self):
        return {
            "image_size": self.image_size,
            "backbone": self.backbone_name,
            "widths": self.widths,
            "channels": self.channels,
            "anchor_sizes": self.anchor_sizes,
            "anchor_ratios": self.anchor_ratios,
            "anchor_angles": self.anchor_angles,
            "rpn_pre_nms": self.rpn_pre_nms,
            "rpn_post_nms": self.rpn_post_nms,
            "rpn_nms_iou": self.rpn_nms_iou,
            "roi_size": self.roi_size,
            "head_units": self.head_units,
            "max_detections": self.max_detections,
            "det_nms_iou": self.det_nms_iou,
            "det_score_threshold": self.det_score_threshold,
            "name": self.name,
        }

    def rpn(self, images, training=False):
        """Returns `(features [B, F, F, C], objectness logits [B, N], deltas [B, N, 6])`, N anchors."""
        features = self.backbone(images, training=training)
        x = self.rpn_conv(features)
        b = tf.shape(images)[0]
        logits = tf.reshape(self.rpn_objectness(x), [b, -1])
        deltas = tf.reshape(self.rpn_deltas(x), [b, -1, 6])
        return features, logits, deltas

    def propose(self, logits, deltas):
        """Decoded, canonical, NMS-filtered proposals `[B, P, 6]` and their validity `[B, P]` (no gradient).

        Only the `rpn_pre_nms` best-scoring anchors, the candidates NMS considers, are decoded (elementwise,
        so each box is what decoding all anchors gives); they arrive at NMS in its own order (by score, ties
        by index), so the proposals are the same.
        """
        logits, deltas = tf.stop_gradient(logits), tf.stop_gradient(deltas)
        scores, top = tf.math.top_k(logits, k=min(self.rpn_pre_nms, self.anchor_grid.num_anchors), sorted=True)
        anchors = tf.gather(self.anchors, top)
        boxes = box_lib.canonical(box_lib.decode(tf.gather(deltas, top, batch_dims=1), anchors, RPN_WEIGHTS))
        boxes = _clip_sizes(boxes)
        rois, _, _, valid, _ = nms_lib.rotated_nms(boxes, scores, self.rpn_post_nms, self.rpn_nms_iou)
        return rois, valid

    def use_xla_kernels(self, on):
        """Trainers call this from `compile(jit_compile=...)`: with XLA the RoI pooling gathers its taps (the
        same sums) instead of one sparse-dense product, which XLA cannot compile."""
        self.roi_align_method = "gather" if on else "sparse"

    def head(self, features, rois, training=False):
        """RoI head: `(logits [B, R], deltas [B, R, 6])` for `rois [B, R, 6]`."""
        pooled = roi_align.rotated_roi_align(features, rois, self.roi_size, method=self.roi_align_method)
        b, r = tf.shape(rois)[0], tf.shape(rois)[1]
        flat = tf.reshape(pooled, [b * r, self.roi_size * self.roi_size * self.channels])
        hidden = self.head_fc2(self.head_fc1(flat))
        logits = tf.reshape(self.head_cls(hidden), [b, r])
        deltas = tf.reshape(self.head_reg(hidden), [b, r, 6])
        return logits, deltas

    def call(self, images, training=False):
        """Inference: `{"boxes": [B, K, 6], "scores": [B, K], "num_detections": [B] int32}`, K = max_detections."""
        features, logits, deltas = self.rpn(images, training=training)
        rois, valid = self.propose(logits, deltas)
        cls, reg = self.head(features, rois, training=training)
        scores = tf.where(valid, tf.sigmoid(cls), 0.0)
        boxes = _clip_sizes(box_lib.canonical(box_lib.decode(reg, rois, ROI_WEIGHTS)))
        out_boxes, out_scores, _, _, num = nms_lib.rotated_nms(
            boxes, scores, self.max_detections, self.det_nms_iou, score_threshold=self.det_score_threshold
        )
        return {"boxes": out_boxes, "scores": out_scores, "num_detections": num}


def _clip_sizes(boxes):
    return tf.concat([boxes[..., :2], tf.clip_by_value(boxes[..., 2:4], 1e-3, 2.0), boxes[..., 4:]], -1)


def training_outputs(model, images, gt, cfg, training):
    """One forward pass with Faster R-CNN targets for both stages.

    Args:
      model: a `RotatedFasterRCNN`.
      images: `[B, S, S, 3]`.
      gt: dict with `boxes [B, M, 6]`, `valid [B, M]`, `dontcare [B, M]`.
      cfg: the `model` config block (matching thresholds and sample sizes).
      training: passed to the layers (BatchNorm).

    Returns:
      A dict of tensors: RPN logits/labels/weights/deltas/targets on sampled anchors, RoI logits/labels/
      weights/deltas/targets on sampled RoIs, `roi_pred_boxes [B, R, 6]` (decoded, differentiable) and
      `roi_gt_boxes [B, R, 6]` with `roi_positive [B, R]`.
    """
    gt_boxes = tf.cast(gt["boxes"], tf.float32)
    gt_valid, gt_dontcare = tf.cast(gt["valid"], tf.float32), tf.cast(gt["dontcare"], tf.float32)
    features, logits, deltas = model.rpn(images, training=training)
    labels, matched, _ = anchor_lib.match(
        model.anchor_grid, gt_boxes, gt_valid, gt_dontcare, cfg.rpn_pos_iou, cfg.rpn_neg_iou, allow_best=True
    )
    idx, rpn_labels, rpn_weights = anchor_lib.sample(labels, cfg.rpn_samples, cfg.rpn_pos_fraction)
    anchors = tf.gather(model.anchors, idx)
    rpn_gt = tf.gather(gt_boxes, tf.gather(matched, idx, batch_dims=1), batch_dims=1)
    out = {
        "rpn_logits": tf.gather(logits, idx, batch_dims=1),
        "rpn_labels": rpn_labels,
        "rpn_weights": rpn_weights,
        "rpn_deltas": tf.gather(deltas, idx, batch_dims=1),
        "rpn_targets": box_lib.encode(rpn_gt, anchors, RPN_WEIGHTS),
    }
    rois, valid = model.propose(logits, deltas)
    care = gt_valid * (1.0 - gt_dontcare)
    if training:
        # Ground-truth boxes join the proposals, as in Faster R-CNN, so the head sees positives from step one.
        rois = tf.concat([rois, gt_boxes], axis=1)
        valid = tf.concat([valid, care > 0], axis=1)
    roi_labels, roi_matched, _ = anchor_lib.match(
        rois, gt_boxes, gt_valid, gt_dontcare, cfg.roi_pos_iou, cfg.roi_pos_iou, allow_best=False
    )
    roi_labels = tf.where(valid, roi_labels, -1)
    ridx, roi_labels, roi_weights = anchor_lib.sample(roi_labels, cfg.roi_samples, cfg.roi_pos_fraction)
    sampled = tf.gather(rois, ridx, batch_dims=1)
    roi_gt = tf.gather(gt_boxes, tf.gather(roi_matched, ridx, batch_dims=1), batch_dims=1)
    cls, reg = model.head(features, sampled, training=training)
    positive = tf.cast(roi_labels == 1, tf.float32) * roi_weights
    out.update(
        {
            "roi_logits": cls,
            "roi_labels": roi_labels,
            "roi_weights": roi_weights,
            "roi_deltas": reg,
            "roi_targets": box_lib.encode(roi_gt, sampled, ROI_WEIGHTS),
            "roi_pred_boxes": box_lib.decode(reg, sampled, ROI_WEIGHTS),
            "roi_gt_boxes": roi_gt,
            "roi_positive": positive,
        }
    )
    return out


def smooth_l1(x, beta):
    """Elementwise smooth L1 (Huber with transition at `beta`, scaled as in Fast R-CNN)."""
    ax = tf.abs(x)
    return tf.where(ax < beta, 0.5 * tf.square(ax) / beta, ax - 0.5 * beta)


def detection_loss(out, beta=1.0 / 9.0):
    """Faster R-CNN loss: sigmoid CE + smooth L1 for the RPN and for the RoI head (per-replica mean).

    Returns:
      `(total, parts)` with `parts` a dict of the four terms.
    """

    def ce(logits, labels, weights):
        losses = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(labels, tf.float32), logits)
        return tf.math.divide_no_nan(tf.reduce_sum(losses * weights), tf.reduce_sum(weights))

    def reg(deltas, targets, labels, weights):
        pos = tf.cast(labels == 1, tf.float32) * weights
        # Padding slots may hold degenerate boxes whose targets are not finite: select, never multiply by 0.
        diff = tf.where(pos[..., None] > 0, deltas - tf.stop_gradient(targets), 0.0)
        per = tf.reduce_sum(smooth_l1(diff, beta), -1)
        return tf.math.divide_no_nan(tf.reduce_sum(per * pos), tf.reduce_sum(weights))

    parts = {
        "rpn_cls": ce(out["rpn_logits"], out["rpn_labels"], out["rpn_weights"]),
        "rpn_reg": reg(out["rpn_deltas"], out["rpn_targets"], out["rpn_labels"], out["rpn_weights"]),
        "roi_cls": ce(out["roi_logits"], out["roi_labels"], out["roi_weights"]),
        "roi_reg": reg(out["roi_deltas"], out["roi_targets"], out["roi_labels"], out["roi_weights"]),
    }
    return tf.add_n(list(parts.values())), parts
