"""Scene text recognition, small default: synthetic words, VGG-BiLSTM-CTC, LS-ED tuning, on 2 CPU cores.

Trains the recognizer with CTC on rendered words (2000 frequent English words + 10% random strings, up to
10 characters, 0-9a-z, mild distortions), pretrains the edit-distance surrogate, tunes with it, evaluates
both models on a held-out rendered set and exports a TF Serving SavedModel:
  python -m tfls.main --task=str
  python -m tfls.main --task=str --config=configs/str.py --workdir=workdir/str --config.train.steps=1500
CTC converges in a few hundred steps here, attention needs far more: see configs/str_paper.py for the
paper-scale TPS-ResNet-BiLSTM-Attn.

Measured here (2 CPU cores, one run, seed 0, with --config.tune.run_control=True): held-out synthetic_val
(500 images) baseline 86.8% / total ED 83, LS-ED tuned (200 steps) 94.0% / 41, control (200 CTC steps, same
learning rate) 95.2% / 32: tuning with the surrogate beats the baseline but not the control (see
docs/results/str_investigation.md; --config.tune.ordinary_loss_weight=1.0, CTC + LS-ED, gave 95.8% / 30).
Surrogate |e_hat - e| 0.40 on held-out (aligned) global pairs, 0.14 on local pairs. Wall time 768 s for the
job with the control stage while another benchmark shared the 2 cores (372 s uncontended before this change,
same stages minus the control; not re-measured uncontended).
"""

import ml_collections

from tfls.config_base import base_config


def data_config(max_length=10):
    """The `data` block: charset, image size, vocabulary, fonts, distortion mixes, sets and LMDB sources."""
    d = ml_collections.ConfigDict()
    d.characters = "0123456789abcdefghijklmnopqrstuvwxyz"
    d.case_sensitive = False
    d.max_length = max_length
    d.image_height = 32
    d.image_width = 100
    d.channels = 1
    d.seed = 1
    # Vocabulary (tfls/recognition/corpus.py): shares of words, numbers and random strings, and of cases.
    d.corpus_size = 50000  # most frequent wordfreq words that fit the charset and max_length
    d.corpus_min_length = 1
    d.number_fraction = 0.15  # integers, years, dates, times, ordinals, quantities (charset characters only)
    d.random_fraction = 0.1  # random strings over the charset, and letter+digit codes
    d.random_max_length = 8
    d.upper_fraction = 0.25  # rendered in UPPER case; the label stays lower case (case-insensitive charset)
    d.title_fraction = 0.25  # rendered in Title case; the rest in lower case
    # Fonts (tfls/recognition/fonts.py, docs/FONTS.md): matplotlib's, Pillow's default and the pinned font-*
    # packages, each checked to draw every character in both cases.
    d.fonts = ""  # comma-separated font files for training; "" = every discovered font not held out
    d.ood_fonts = "Caladea,Lato,Fredoka One,Intuitive,Computer Modern Typewriter"  # held-out families (test_ood)
    d.distortions = train_distortions()
    d.ood_distortions = ood_distortions()
    d.train_pool = 50000  # >0: render this many once and reshuffle; 0: render a fresh stream
    d.render_parallel_calls = 2
    d.eval_size = 500  # images in each of val, test (training fonts and mix) and test_ood (held-out ones)
    d.train_lmdb = ""  # comma-separated LMDB folders; replaces the synthetic training data
    d.train_lmdb_ratios = ""  # e.g. "0.5,0.5"
    d.eval_lmdb = ""  # comma-separated LMDB folders, evaluated beside the synthetic sets under their folder names
    return d


def train_distortions():
    """The training mix of the word renderer (tfls/recognition/renderer.py, DISTORTION_LIMITS).

    Probabilities are per image; magnitudes are maxima, drawn uniformly (rotation and slant: triangular
    around 0) up to them.
    """
    return ml_collections.ConfigDict(
        {
            # Geometry
            "rotation_deg": 4.0,  # max |rotation|, degrees
            "shear": 0.25,  # max |slant| dx/dy
            "perspective": 0.1,  # max corner displacement, fraction of the text height
            "curve_prob": 0.15,  # probability of a curved baseline (arc or wave)
            "curve": 0.35,  # max bend, fraction of the text height
            "tracking_prob": 0.15,  # probability of extra letter spacing
            "tracking": 0.3,  # max extra spacing, fraction of the font size
            # Crop and surroundings
            "crop": 0.3,  # probability of a tight crop (else loose)
            "crop_cut": 0.05,  # max cut into the ink box by a tight crop, fraction of the text height per side
            "margin": 0.5,  # max margin of a loose crop, fraction of the text height per side
            "neighbours_prob": 0.3,  # probability of neighbouring words (partial glyphs at the left/right edges)
            "neighbour_lines_prob": 0.15,  # probability of text lines above/below (partial glyphs at top/bottom)
            "lines_prob": 0.2,  # probability of an underline, overline, box border or side bar
            # Colours
            "colour": True,  # random colours (False: black on white)
            "min_contrast": 70,  # min text/background luminance difference, grey levels
            "low_contrast_prob": 0.1,  # probability of a difference between low_contrast and min_contrast
            "low_contrast": 50,  # smallest difference of a low-contrast image, grey levels
            "outline_prob": 0.1,  # probability of outlined text (stroke of a second colour)
            "text_shadow_prob": 0.1,  # probability of a soft drop shadow
            # Background
            "textured_background": 0.6,  # probability of a procedural background (else a flat colour)
            "backgrounds": "noise,grain,stripes,blotches,photo",  # kinds a textured background is drawn from
            "texture_strength": 0.35,  # max texture amplitude, fraction of the text/background contrast
            # Lighting
            "gradient_prob": 0.3,  # probability of a lighting gradient
            "gradient": 0.4,  # max brightness change across the crop, fraction
            "shadow_prob": 0.2,  # probability of a cast shadow (soft-edged darker part)
            "shadow": 0.45,  # max darkening of a cast shadow, fraction
            # Degradation
            "blur": 0.25,  # probability of a Gaussian blur (one of low resolution, blur and motion blur at most)
            "blur_radius": 1.1,  # max blur radius, output pixels
            "motion_blur_prob": 0.15,  # probability of a motion blur
            "motion_blur": 3.0,  # max motion blur length, output pixels
            "noise": 6.0,  # max std of Gaussian noise, grey levels (capped at contrast / 5, / 8 once blurred)
            "jpeg": 0.3,  # probability of JPEG re-encoding
            "jpeg_quality": 25,  # lowest JPEG quality
            "low_resolution_prob": 0.15,  # probability of down-sampling the crop and scaling it back
            "low_resolution": 1.8,  # max down-sampling factor
        }
    )


def ood_distortions():
    """The held-out mix for test_ood: every range stronger than training's, plus background kinds
    (bricks, scribbles) that training never draws."""
    d = train_distortions()
    d.update(
        {
            "rotation_deg": 8.0,
            "shear": 0.4,
            "perspective": 0.2,
            "curve_prob": 0.3,
            "curve": 0.6,
            "tracking_prob": 0.25,
            "tracking": 0.5,
            "crop": 0.4,
            "crop_cut": 0.08,
            "margin": 0.8,
            "neighbours_prob": 0.5,
            "neighbour_lines_prob": 0.3,
            "lines_prob": 0.35,
            "min_contrast": 60,
            "low_contrast_prob": 0.15,
            "low_contrast": 50,
            "outline_prob": 0.2,
            "text_shadow_prob": 0.2,
            "textured_background": 0.8,
            "backgrounds": "noise,grain,stripes,blotches,photo,bricks,scribbles",
            "texture_strength": 0.45,
            "gradient_prob": 0.5,
            "gradient": 0.5,
            "shadow_prob": 0.35,
            "shadow": 0.5,
            "blur": 0.35,
            "blur_radius": 1.3,
            "motion_blur_prob": 0.25,
            "motion_blur": 4.0,
            "noise": 8.0,
            "jpeg": 0.4,
            "jpeg_quality": 15,
            "low_resolution_prob": 0.25,
            "low_resolution": 2.2,
        }
    )
    return d


def get_config():
    config = base_config()
    config.train.steps = 1500
    config.train.batch_size = 32
    config.train.optimizer = "adam"
    config.train.learning_rate = 1e-3
    config.train.clipnorm = 5.0
    config.train.eval_every = 500
    config.train.checkpoint_every = 500
    config.train.log_every = 100

    s = config.surrogate
    s.pretrain_steps = 1500
    s.batch_size = 64
    s.learning_rate = 1e-3
    s.local_weight = 0.5
    s.grad_penalty_weight = 0.1
    s.eval_pairs = 500
    s.embedding_filters = (64, 64, 64)
    s.embedding_kernel = 3
    s.embedding_dim = 64
    s.max_edits = 4
    s.soft_mix = 0.3
    s.ctc_target = "forced"  # forced: Viterbi path of the label under the model's posteriors | even
    s.ctc_global_layout = "aligned"  # aligned: prediction = target path edited in place | random

    config.tune.steps = 200
    config.tune.learning_rate = 1e-4
    config.tune.ordinary_loss_weight = 0.0

    config.data = data_config()

    m = config.model = ml_collections.ConfigDict()
    m.transformation = "none"  # none | tps
    m.feature_extractor = "vgg"  # vgg | resnet
    m.sequence_model = "bilstm"  # none | bilstm
    m.prediction = "ctc"  # ctc | attn
    m.channels = (16, 32, 64, 96)
    m.resnet_blocks = (1, 2, 5, 3)
    m.hidden = 96
    m.num_fiducials = 20

    config.eval = ml_collections.ConfigDict()
    config.eval.batch_size = 250
    return config
