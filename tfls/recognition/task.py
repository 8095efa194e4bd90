"""Scene text recognition as a tfls task: synthetic or LMDB words, four-stage recognizer, LS-ED surrogate."""

import io
import logging
import os

import tensorflow as tf

from tfls.recognition import data as data_lib
from tfls.recognition.charset import Charset, decode_ids_tf
from tfls.recognition.corpus import WordSampler, frequent_words
from tfls.recognition.ctc_alignment import ctc_forced_alignments, ctc_target_paths
from tfls.recognition.lsed import EditDistanceEmbedding, RandomStringPairGenerator, edit_distance_metric
from tfls.recognition.metrics import WordMetrics, edit_distance_metric_tf, edit_distances_tf
from tfls.recognition.recognizer import Recognizer
from tfls.recognition.renderer import MixedRenderer, WordRenderer
from tfls.recognition.serving import export_recognizer, predict_text
from tfls.surrogate.surrogate import Surrogate
from tfls.task import Task

log = logging.getLogger(__name__)


class RecognitionTask(Task):
    """STR with an edit-distance surrogate (LS-ED). See configs/str.py for the config keys."""

    name = "str"
    primary_metric = "accuracy"
    primary_metric_mode = "max"
    report_metrics = {"total_edit_distance": "min", "normalized_edit_distance": "max"}
    validation_set = "val"
    # selection sets, never reported: data.val_hard_size > 0, the hard mix's words; data.val_scenes_size > 0,
    # word crops of held-out scenes (what the OCR export reads)
    selection_only_sets = ("val_hard", "val_scenes")
    default_config = "configs/str.py"
    #: ablations of the tuning (bench/quality.py --variants=...)
    tuning_variants = {
        "soft_feedback": {"tune.feedback": "soft"},
        "teacher_forced": {"tune.outputs": "teacher_forced"},
        # the paper's pairs: phi pretrained on global pairs (3000 steps), then global + local pairs while tuning
        # (the default before session 17; bench/quality.py pretrains it in the variant's own run)
        "paper_pairs": {"surrogate.pretrain_steps": 3000, "surrogate.local_weight": 0.5},
    }

    @classmethod
    def validate_config(cls, config):
        from tfls.configuration import check_choice, check_float, check_int, check_paths

        d, m = config.data, config.model
        problems = [
            check_int(config, "data.max_length", 1),
            check_int(config, "data.image_height", 8),
            check_int(config, "data.image_width", 8),
            check_choice(config, "data.channels", (1, 3)),
            check_int(config, "data.eval_size", 0),
            check_int(config, "data.train_pool", 0),
            check_int(config, "data.train_pool_start", 0, 2**30),
            check_int(config, "data.corpus_size", 1),
            check_float(config, "data.random_fraction", 0.0, 1.0),
            check_paths(config, "data.train_lmdb"),
            check_paths(config, "data.eval_lmdb"),
            check_paths(config, "data.fonts", kind="file"),
            check_choice(config, "model.prediction", ("ctc", "attn")),
            check_choice(config, "model.transformation", ("none", "tps")),
            check_choice(config, "model.feature_extractor", ("vgg", "resnet")),
            check_choice(config, "model.sequence_model", ("none", "bilstm")),
            check_int(config, "eval.batch_size", 1),
            check_choice(config, "tune.outputs", ("free_running", "teacher_forced")),
            check_choice(config, "tune.feedback", ("argmax", "soft")),
            check_float(config, "surrogate.realistic_fraction", 0.0, 1.0),
            check_float(config, "surrogate.small_edit_bias", 0.0, 1.0),
            check_float(config, "surrogate.garbage_after_eos", 0.0, 1.0),
            check_int(config, "surrogate.max_edits", 0),
            check_float(config, "surrogate.embedding_sharpen", 0.0, 16.0, exclusive_minimum=True),
            check_float(config, "data.hard_fraction", 0.0, 1.0),
            check_int(config, "data.val_hard_size", 0),
            check_int(config, "data.val_scenes_size", 0),
            check_float(config, "data.scene_fraction", 0.0, 0.9),
            check_int(config, "data.scene_pool", 1),
            check_int(config, "data.scene_pool_start", 0),
            check_float(config, "data.scene_jitter", 0.0, 0.5),
        ]
        if float(d.get("scene_fraction", 0.0)) > 0:
            if d.train_lmdb:
                problems.append(
                    (
                        "data.scene_fraction",
                        d.scene_fraction,
                        "0 with data.train_lmdb (scene crops mix with rendered words)",
                    )
                )
            elif int(d.train_pool) <= 0:
                problems.append(("data.scene_fraction", d.scene_fraction, "0 unless data.train_pool > 0"))
        try:
            wants_scenes = int(d.get("val_scenes_size", 0) or 0) > 0
        except (TypeError, ValueError):
            wants_scenes = False  # check_int above reports it
        if float(d.get("scene_fraction", 0.0)) > 0 or wants_scenes:
            try:
                from tfls.detection import scenes

                scenes.validate_mix(d.get("scene_mix"))
            except ValueError as e:
                problems.append(("data.scene_mix", "...", str(e)))
        for key, value in d.get("distortions", {}).items():
            if isinstance(value, float) and not key.endswith(("_deg", "contrast")) and "prob" in key:
                problems.append(check_float(config, f"data.distortions.{key}", 0.0, 1.0))
        s = config.surrogate
        dilations = tuple(s.get("embedding_dilations", ()) or ())
        if dilations and len(dilations) != len(tuple(s.embedding_filters)):
            problems.append(
                ("surrogate.embedding_dilations", dilations, f"one per convolution ({len(s.embedding_filters)})")
            )
        if d.train_lmdb and d.train_lmdb_ratios:
            ratios = str(d.train_lmdb_ratios).split(",")
            if len(ratios) != len(str(d.train_lmdb).split(",")):
                problems.append(("data.train_lmdb_ratios", d.train_lmdb_ratios, "one ratio per data.train_lmdb folder"))
        frames = int(d.image_width) // 4 if isinstance(d.image_width, int) else None
        if m.prediction == "ctc" and frames and isinstance(d.max_length, int) and 2 * d.max_length > frames:
            problems.append(
                (
                    "data.max_length",
                    d.max_length,
                    f"<= {frames // 2} for CTC (image width {d.image_width} gives {frames} frames)",
                )
            )
        return [p for p in problems if p is not None]

    def __init__(self, config):
        super().__init__(config)
        d = config.data
        self.charset = Charset.from_config(d)
        self.image_shape = (int(d.image_height), int(d.image_width), int(d.channels))
        self._sampler = None
        self._renderer = None
        self._pool = None
        self._eval_arrays = None
        self._functions = {}
        m = config.model
        if m.prediction == "ctc":
            frames = self.num_frames
            if 2 * self.charset.max_length > frames:
                raise ValueError(
                    f"CTC needs data.max_length <= frames / 2 = {frames // 2} (image width "
                    f"{self.image_shape[1]} gives {frames} frames), got {self.charset.max_length}"
                )

    @property
    def num_frames(self):
        """CTC frames: the backbone divides the width by 4."""
        return self.image_shape[1] // 4

    @property
    def is_ctc(self):
        return self.config.model.prediction == "ctc"

    # Data ---------------------------------------------------------------------------------------------

    @property
    def sampler(self):
        """The text sampler: wordfreq words, numbers and random strings, in varied case."""
        if self._sampler is None:
            d = self.config.data
            words = frequent_words(self.charset, d.corpus_size, d.corpus_min_length)
            self._sampler = WordSampler(
                self.charset,
                words,
                d.random_fraction,
                d.random_max_length or None,
                number_fraction=d.get("number_fraction", 0.0),
                upper_fraction=d.get("upper_fraction", 0.0),
                title_fraction=d.get("title_fraction", 0.0),
            )
        return self._sampler

    def _font_split(self):
        """`(training fonts, held-out fonts)`: `data.fonts` (files) or the discovered fonts not held out."""
        from tfls.recognition import fonts as fonts_lib

        d = self.config.data
        train, ood = fonts_lib.split_fonts(
            self.charset.characters, fonts_lib.parse_families(d.get("ood_fonts", "")), self.charset.case_sensitive
        )
        if d.fonts:
            train = [f for f in d.fonts.split(",") if f]
        return train, ood

    @property
    def renderer(self):
        """The word renderer of the training stream, `val` and `test`: training fonts, `data.distortions`."""
        if self._renderer is None:
            d = self.config.data
            train, _ = self._font_split()
            self._renderer = WordRenderer(*self.image_shape[:2], train, dict(d.distortions), self.image_shape[2])
        return self._renderer

    @property
    def train_renderer(self):
        """The training stream's renderer: `renderer`, or (`data.hard_fraction` > 0) a `MixedRenderer` that
        draws that share of words with `data.hard_distortions` (val and test keep the ordinary mix)."""
        d = self.config.data
        fraction = float(d.get("hard_fraction", 0.0))
        if fraction <= 0:
            return self.renderer
        if getattr(self, "_train_renderer", None) is None:
            self._train_renderer = MixedRenderer(self.renderer, self.hard_renderer, fraction)
        return self._train_renderer

    @property
    def hard_renderer(self):
        """The renderer of the training stream's harder share and of `val_hard`: training fonts,
        `data.hard_distortions`."""
        if getattr(self, "_hard_renderer", None) is None:
            d = self.config.data
            if "hard_distortions" not in d:
                raise ValueError("data.hard_distortions is not set: no harder training share and no val_hard set")
            train, _ = self._font_split()
            mix = dict(d.hard_distortions)
            self._hard_renderer = WordRenderer(*self.image_shape[:2], train, mix, self.image_shape[2])
        return self._hard_renderer

    @property
    def ood_renderer(self):
        """The renderer of `test_ood`: held-out fonts (`data.ood_fonts`) and `data.ood_distortions`."""
        if getattr(self, "_ood_renderer", None) is None:
            d = self.config.data
            _, ood = self._font_split()
            if not ood:
                raise ValueError("test_ood needs held-out font families: data.ood_fonts is empty")
            distortions = dict(d.get("ood_distortions", d.distortions))
            self._ood_renderer = WordRenderer(*self.image_shape[:2], ood, distortions, self.image_shape[2])
        return self._ood_renderer

    def _lmdbs(self, paths):
        return [data_lib.LmdbWordDataset(p, self.charset, self.image_shape) for p in paths.split(",") if p]

    def train_dataset(self, seed, input_context=None):
        d = self.config.data
        batch = int(self.config.train.batch_size)
        if input_context is not None:
            batch = input_context.get_per_replica_batch_size(batch)
        if d.train_lmdb:
            ratios = [float(r) for r in d.train_lmdb_ratios.split(",")] if d.train_lmdb_ratios else None
            sets = self._lmdbs(d.train_lmdb)
            return data_lib.lmdb_mixture(sets, ratios or [1.0] * len(sets), batch, seed)
        n_scene = int(round(float(d.get("scene_fraction", 0.0)) * batch))  # scene crops per batch
        if d.train_pool > 0:
            if self._pool is None:
                self._pool = data_lib.ProgressivePool(
                    self.train_renderer,
                    self.sampler,
                    self.charset,
                    d.seed,
                    d.train_pool,
                    start=d.get("train_pool_start", 0),
                )
            if n_scene > 0:
                return self._mixed_dataset(batch, n_scene, seed)
            return self._pool.dataset(batch, seed)
        return data_lib.synthetic_stream(
            self.train_renderer, self.sampler, self.charset, d.seed * 100003 + seed, batch, d.render_parallel_calls
        )

    def reset_training_data(self):
        # the word pool picks unrendered blocks and the scene pool renders its next scene: both depend on fill
        self._pool = None
        self._scene_pool = None

    @property
    def scene_pool(self):
        """The pool of scene word crops (`data.scene_fraction` > 0): scenes of the detection task's renderer
        with the training fonts, this task's vocabulary and `data.scene_mix` (tfls/recognition/scene_words.py)."""
        if getattr(self, "_scene_pool", None) is None:
            # Imported here: scene crops use the detection renderer and the OCR rectification, which import
            # this package (BUILD: tfls_scene_words depends on them; the job binary on all three).
            from tfls.recognition import scene_words

            d = self.config.data
            self._scene_pool = scene_words.ScenePool(
                self.scene_renderer,
                self.charset,
                self.image_shape,
                d.seed,
                d.scene_pool,
                d.get("scene_jitter", 0.0),
                start=d.get("scene_pool_start", 0),
            )
        return self._scene_pool

    @property
    def scene_renderer(self):
        """The scenes of the crops (training pool and `val_scenes`): the detection task's renderer with the
        training fonts, this task's vocabulary and `data.scene_mix`."""
        if getattr(self, "_scene_renderer", None) is None:
            # Imported here: scene crops use the detection renderer and the OCR rectification, which import
            # this package (BUILD: tfls_scene_words depends on them; the job binary on all three).
            from tfls.detection import scenes

            self._scene_renderer = scenes.SceneRenderer(
                self._font_split()[0], self.sampler, self.config.data.get("scene_mix")
            )
        return self._scene_renderer

    def _mixed_dataset(self, batch, n_scene, seed):
        """The word pool's batches of `batch - n_scene` words with `n_scene` scene crops each."""
        from tfls.recognition import scene_words

        words, scenes = self._pool, self.scene_pool
        return data_lib.generator_dataset(
            lambda: scene_words.mixed_batches(words.batches(batch - n_scene, seed), scenes, n_scene, seed),
            batch,
            words.images.shape[1:],
            words.labels.shape[1],
        )

    def eval_datasets(self):
        """`val` and `test` (training fonts and mix, two held-out seeds), `test_ood` (held-out fonts, harder
        mix), `data.eval_size` images each; `val_hard` (training fonts, the training stream's hard mix, a
        selection set for `train.select_on`), `data.val_hard_size` images when that is > 0; `val_scenes`
        (word crops of held-out scenes, cut as the OCR export cuts detected words; selection only),
        `data.val_scenes_size` crops when that is > 0; then each `data.eval_lmdb` set under its folder name."""
        d = self.config.data
        batch = int(self.config.eval.batch_size)
        if getattr(self, "_eval_sets", None) is None:
            names = tuple(n for n in data_lib.EVAL_SETS if n != "val_hard")
            if not self._font_split()[1]:
                log.warning("data.ood_fonts holds out no font family: no test_ood set")
                names = tuple(n for n in names if n != "test_ood")
            val_hard_size = max(int(d.get("val_hard_size", 0)), 0)
            if val_hard_size and d.eval_size > 0:
                names += ("val_hard",)
            renderers = {"test_ood": lambda: self.ood_renderer, "val_hard": lambda: self.hard_renderer}
            arrays = {}
            for name in names:
                renderer = renderers.get(name, lambda: self.renderer)()
                seed = data_lib.eval_set_seed(d.seed, name)
                count = val_hard_size if name == "val_hard" else max(int(d.eval_size), 0)
                arrays[name] = data_lib.render_arrays(renderer, self.sampler, self.charset, seed, 0, count)[:2]
            val_scenes_size = max(int(d.get("val_scenes_size", 0) or 0), 0)
            if val_scenes_size and d.eval_size > 0:
                from tfls.recognition import scene_words

                arrays["val_scenes"] = scene_words.scene_eval_arrays(
                    self.scene_renderer,
                    self.charset,
                    self.image_shape,
                    d.seed,
                    val_scenes_size,
                    d.get("scene_jitter", 0.0),
                )
            # write_summaries shows images of the validation set.
            self._eval_arrays = arrays["val"]
            self._eval_sets = arrays if d.eval_size > 0 else {}
        sets = {name: data_lib.array_dataset(*arrays, batch) for name, arrays in self._eval_sets.items()}
        for lmdb_set in self._lmdbs(d.eval_lmdb):
            sets[os.path.basename(os.path.normpath(lmdb_set.path))] = data_lib.lmdb_eval_dataset(lmdb_set, batch)
        return sets

    def serving_examples(self, n):
        """`n` PNG-encoded images of the `test` set's stream, as a client would send them."""
        from PIL import Image

        seed = data_lib.eval_set_seed(self.config.data.seed, "test")
        images, _, _ = data_lib.render_arrays(self.renderer, self.sampler, self.charset, seed, 0, n)
        out = []
        for image in images:
            buf = io.BytesIO()
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
            out.append(buf.getvalue())
        return out

    # Model and losses ---------------------------------------------------------------------------------

    def build_model(self):
        m = self.config.model
        model = Recognizer(
            self.charset.num_classes,
            self.charset.max_length,
            self.image_shape,
            m.transformation,
            m.feature_extractor,
            m.sequence_model,
            m.prediction,
            channels=tuple(m.channels),
            resnet_blocks=tuple(m.resnet_blocks),
            hidden=m.hidden,
            num_fiducials=m.num_fiducials,
            name="recognizer",
        )
        return model.build_with_sample()

    def forward(self, model, x, y, training):
        teacher = training and not self.is_ctc
        return model(x, targets=y if teacher else None, training=training)

    def tuning_forward(self, model, x, y, training):
        """Attention, `tune.outputs="free_running"`: the decoder runs as at inference (greedy, feeding back
        its own symbols: `tune.feedback`), so z holds the insertions and deletions a user would read; the
        teacher-forced logits are added when the ordinary loss is part of the objective."""
        t = self.config.tune
        if self.is_ctc or t.get("outputs", "free_running") == "teacher_forced":
            return self.forward(model, x, y, training)
        outputs = {"free": model(x, training=training, feedback=t.get("feedback", "argmax"))}
        if t.ordinary_loss_weight > 0:
            outputs["teacher"] = model(x, targets=y, training=training)
        return outputs

    def ordinary_loss(self, outputs, y):
        if isinstance(outputs, dict):
            outputs = outputs["teacher"]
        logits = tf.cast(outputs, tf.float32)
        y = tf.cast(y, tf.int32)
        if self.is_ctc:
            label_length = tf.reduce_sum(tf.cast(y > 0, tf.int32), axis=1)
            logit_length = tf.fill([tf.shape(logits)[0]], tf.shape(logits)[1])
            loss = tf.nn.ctc_loss(y, logits, label_length, logit_length, logits_time_major=False, blank_index=0)
            return tf.reduce_mean(loss)
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))

    def ctc_targets(self, logits, y):
        """CTC target paths `[B, T]` for the surrogate: the forced alignment (Viterbi path) of the ground
        truth under the model's current posteriors, or evenly spread characters (`surrogate.ctc_target`).

        The forced alignment shares the prediction's alignment, so the pair differs only where the text is
        wrong; it runs in numpy through `tf.py_function` (training and evaluation only, never serving).
        """
        if self.config.surrogate.get("ctc_target", "forced") == "even":
            return ctc_target_paths(y, self.num_frames)
        log_probs = tf.stop_gradient(tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1))
        paths = tf.py_function(ctc_forced_alignments, [log_probs, tf.cast(y, tf.int32)], tf.int32)
        paths.set_shape(log_probs.shape[:2])
        return paths

    def surrogate_pairs(self, outputs, y):
        if isinstance(outputs, dict):
            outputs = outputs["free"]
        pred = tf.nn.softmax(tf.cast(outputs, tf.float32), axis=-1)
        if self.is_ctc:
            target_ids = self.ctc_targets(outputs, y)
        else:
            target_ids = tf.cast(y, tf.int32)
        target = tf.one_hot(target_ids, self.charset.num_classes)
        return pred, target, tf.ones([tf.shape(pred)[0]], tf.float32)

    def build_surrogate(self):
        s = self.config.surrogate
        embedding = EditDistanceEmbedding(
            tuple(s.embedding_filters),
            s.embedding_kernel,
            s.embedding_dim,
            dilations=tuple(s.get("embedding_dilations", ())) or None,
            eos_gate=bool(s.get("eos_gate", False)) and not self.is_ctc,
            recurrent=int(s.get("embedding_recurrent", 0)),
            sharpen=float(s.get("embedding_sharpen", 1.0)),
            name="edit_distance_embedding",
        )
        generator = RandomStringPairGenerator(
            self.charset,
            self.sampler,
            max_edits=s.max_edits,
            ctc_frames=self.num_frames if self.is_ctc else None,
            soft_mix=s.soft_mix,
            ctc_layout=s.get("ctc_global_layout", "aligned"),
            realistic_fraction=s.get("realistic_fraction", 0.0),
            small_edit_bias=s.get("small_edit_bias", 0.0),
            garbage_after_eos=s.get("garbage_after_eos", 0.0),
            confidence_skew=s.get("confidence_skew", 2.0),
        )
        metric = edit_distance_metric(self.charset, self.is_ctc)
        return Surrogate(
            embedding,
            metric,
            generator,
            generator.pred_shape,
            seed=self.config.seed,
            metric_fn_tf=edit_distance_metric_tf(self.is_ctc),
        ).build()

    # Evaluation, export, summaries --------------------------------------------------------------------

    def _eval_fn(self, model):
        key = id(model)
        if key not in self._functions:
            table = self.charset.lookup_table()

            @tf.function(jit_compile=False)
            def run(x, y):
                text, confidence = predict_text(model, x, table)
                gt, _ = decode_ids_tf(y, table, ctc=False)
                return text, gt, edit_distances_tf(text, gt), confidence

            self._functions[key] = run
        return self._functions[key]

    def predict(self, model, images):
        """Decoded strings and confidences for a batch of raw images."""
        text, _, _, confidence = self._eval_fn(model)(
            tf.cast(images, tf.float32), tf.zeros([tf.shape(images)[0], self.charset.sequence_length], tf.int32)
        )
        return [t.decode() for t in text.numpy()], confidence.numpy()

    def evaluate(self, model, dataset, tag=None):
        metrics = WordMetrics()
        run = self._eval_fn(model)
        for x, y in dataset:
            text, gt, distances, _ = run(x, y)
            metrics.update(text.numpy(), gt.numpy(), distances.numpy())
        return metrics.result()

    def export(self, model, path):
        export_recognizer(model, self.charset, path)

    def write_summaries(self, writer, model, surrogate, step):
        """Held-out images captioned with predicted vs true text, and a scatter of e_hat against true ED."""
        from tfls import summaries

        images, labels = self._eval_arrays if self._eval_arrays is not None else (None, None)
        if images is None:
            self.eval_datasets()
            images, labels = self._eval_arrays
        n = min(8, len(images))
        preds, _ = self.predict(model, images[:n])
        gts = [self.charset.decode(row) for row in labels[:n]]
        pred, target = surrogate.held_out_pairs(256, seed=12345)
        e_hat = surrogate.distance(pred, target).numpy()
        e = surrogate.metric_fn(pred, target)
        with writer.as_default(step=step):
            tf.summary.image("val/words", summaries.caption_grid(images[:n], preds, gts)[None])
            tf.summary.image("surrogate/scatter", summaries.scatter_image(e, e_hat, "edit distance")[None])


__all__ = ["RecognitionTask", "ctc_target_paths"]
