"""Rotated text detection at paper scale: ResNet-50 + FPN, 1024 px inputs, ICDAR 2015 data, LS-IoU tuning.

Needs the ICDAR 2015 images (not redistributable; not run here) and an accelerator:
  python -m tfls.main --task=det --config=configs/det_paper.py --workdir=workdir/det_paper \
    --config.data.icdar_train_image_dir=/data/icdar2015/ch4_training_images \
    --config.data.icdar_train_gt_dir=/data/icdar2015/ch4_training_localization_transcription_gt \
    --config.data.icdar_image_dir=/data/icdar2015/ch4_test_images \
    --config.data.icdar_gt_dir=/data/icdar2015/Challenge4_Test_Task1_GT
Without the training folder it trains on the synthetic scenes of configs/det.py at a 1024 px input.
"""

from configs import det


def get_config():
    config = det.get_config()
    config.distribute = "mirrored"
    config.train.steps = 60_000
    config.train.batch_size = 16
    config.train.optimizer = "sgd"
    config.train.learning_rate = 0.01
    config.train.eval_every = 5000
    config.train.checkpoint_every = 1000
    config.train.log_every = 100

    s = config.surrogate
    s.pretrain_steps = 20_000
    s.batch_size = 1024
    s.eval_pairs = 10_000
    s.embedding_units = (512, 512, 512, 512)
    s.embedding_dim = 128
    s.min_box_size = 0.005
    # ICDAR 2015 test ground truth statistics (sizes relative to the 1280 px padded side).
    s.box_width_median = 0.04
    s.box_width_log_std = 0.8
    s.box_aspect_range = (0.7, 8.0)
    s.box_angle_std_deg = 15.0
    s.box_angle_uniform_share = 0.0

    config.tune.steps = 10_000
    config.tune.learning_rate = 1e-4

    d = config.data
    d.image_size = 1024
    d.scale_range = (0.5, 1.5)
    d.train_pool = 20_000
    d.eval_size = 500
    d.max_boxes = 64
    d.scene.max_lines = 16
    d.scene.max_words = 64
    d.ood_scene.max_lines = 16
    d.ood_scene.max_words = 64
    d.aug_rotate_deg = 10.0

    m = config.model
    m.backbone = "resnet50_fpn"
    m.channels = 256
    m.anchor_sizes = (16.0, 32.0, 64.0, 128.0)
    m.anchor_ratios = (2.0, 4.0, 8.0)
    m.anchor_angles = (-60.0, -30.0, 0.0, 30.0, 60.0, 90.0)
    m.rpn_pre_nms = 2000
    m.rpn_post_nms = 500
    m.rpn_samples = 256
    m.roi_samples = 256
    m.head_units = 1024
    m.max_detections = 100

    config.eval.batch_size = 4
    config.eval.score_threshold = 0.5
    return config
