"""RecognitionTask pieces (CTC target paths, surrogate pairs, evaluate) and one end-to-end run of the job."""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tfls.configuration import load_config
from tfls.recognition.charset import Charset
from tfls.recognition.ctc_alignment import ctc_target_paths
from tfls.recognition.task import RecognitionTask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(prediction="ctc"):
    config = load_config(os.path.join(ROOT, "configs", "str.py"))
    config.train.init_from = ""
    config.data.corpus_size = 50
    config.data.max_length = 5
    config.data.image_width = 40
    config.data.image_height = 16
    config.data.eval_size = 6
    config.data.train_pool = 8
    config.model.channels = (4, 4, 8, 8)
    config.model.hidden = 8
    config.model.prediction = prediction
    config.surrogate.embedding_filters = (8,)
    config.surrogate.embedding_dilations = (1,)
    config.surrogate.embedding_dim = 8
    config.eval.batch_size = 4
    return config


def test_ctc_target_paths_decode_to_labels():
    cs = Charset(max_length=5)
    labels = cs.encode_batch(["aab", "hello", "", "z"])
    paths = ctc_target_paths(tf.constant(labels), 10).numpy()
    assert paths.shape == (4, 10)
    assert [cs.decode_ctc(p) for p in paths] == ["aab", "hello", "", "z"]


def test_surrogate_pairs_and_evaluate_agree_with_the_true_metric():
    for prediction in ("ctc", "attn"):
        task = RecognitionTask(tiny_config(prediction))
        model = task.build_model()
        surrogate = task.build_surrogate()
        x, y = next(iter(task.eval_datasets()["test"]))
        outputs = task.forward(model, x, y, training=False)
        pred, target, weight = task.surrogate_pairs(outputs, y)
        assert pred.shape[1:] == target.shape[1:] == surrogate.pred_shape
        np.testing.assert_array_equal(weight.numpy(), 1.0)
        # The surrogate's true metric of (softmax, target) equals ED(model's text, ground truth).
        texts, _ = task.predict(model, x)
        gts = [task.charset.decode(r) for r in y.numpy()]
        import Levenshtein

        expected = [Levenshtein.distance(p, g) for p, g in zip(texts, gts)]
        np.testing.assert_array_equal(surrogate.metric_fn(pred.numpy(), target.numpy()), expected)
        metrics = task.evaluate(model, task.eval_datasets()["test"])
        assert metrics["num_samples"] == 6
        assert float(task.ordinary_loss(task.forward(model, x, y, training=True), y)) > 0


# A tiny STR job (seconds on 2 cores); also used by tests/test_distribute.py.
TINY = [
    "--config.train.init_from=",
    "--config.train.steps=6",
    "--config.train.warmup_steps=2",
    "--config.tune.surrogate_warmup_steps=2",
    "--config.train.eval_every=3",
    "--config.train.batch_size=4",
    "--config.surrogate.pretrain_steps=3",
    "--config.surrogate.batch_size=8",
    "--config.surrogate.eval_pairs=16",
    "--config.tune.steps=2",
    "--config.data.train_pool=16",
    "--config.data.eval_size=8",
    "--config.data.corpus_size=50",
    "--config.model.channels=(4,4,8,8)",
    "--config.model.hidden=8",
    "--config.eval.batch_size=8",
]


def test_main_job_end_to_end_tiny(tmp_path):
    args = ["--task=str", f"--workdir={tmp_path}", *TINY]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-m", "tfls.main", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["task"] == "str"
    for model in ("baseline", "control", "tuned"):
        r = results[model]["test"]
        assert r["num_samples"] == 8 and 0 <= r["accuracy"] <= 100 and r["total_edit_distance"] >= 0
    assert results["surrogate"]["approx_l1_global"] >= 0 and results["surrogate"]["approx_l1_local"] >= 0
    assert os.path.exists(os.path.join(results["export"], "saved_model.pb"))
    # the default recognizer is the attention one, tuned on its free-running outputs after a surrogate warm-up
    assert os.path.isdir(tmp_path / "checkpoints" / "tune_warmup")
    assert "tuned vs control" in proc.stdout


def test_training_stream_draws_the_hard_share_and_val_keeps_the_ordinary_mix():
    from tfls.recognition import data as data_lib
    from tfls.recognition.renderer import MixedRenderer

    config = tiny_config()
    config.data.hard_fraction = 0.5
    task = RecognitionTask(config)
    mixed = task.train_renderer
    assert isinstance(mixed, MixedRenderer) and mixed.base is task.renderer and mixed.hard_fraction == 0.5
    assert mixed.hard.distortions["rotation_deg"] == config.data.hard_distortions.rotation_deg
    # the pool holds the mixed stream's examples: example i is rendered by the renderer its first draw picks
    images, _, _ = data_lib.render_arrays(mixed, task.sampler, task.charset, config.data.seed, 0, 4)
    for i in range(4):
        rng = np.random.default_rng([config.data.seed, i])
        text = task.sampler.sample_text(rng)
        pick = mixed.hard if rng.random() < 0.5 else mixed.base
        np.testing.assert_array_equal(images[i], pick.render(text, rng))
    # val and test: the ordinary renderer, not the mixed one
    task.eval_datasets()
    for name in ("val", "test"):
        seed = data_lib.eval_set_seed(config.data.seed, name)
        expected = data_lib.render_arrays(task.renderer, task.sampler, task.charset, seed, 0, config.data.eval_size)[0]
        np.testing.assert_array_equal(task._eval_sets[name][0], expected)
    config.data.hard_fraction = 0.0
    assert RecognitionTask(config).train_renderer is not None
    assert not isinstance(RecognitionTask(config).train_renderer, MixedRenderer)


def test_val_hard_is_rendered_with_the_hard_mix_only_when_asked_and_leaves_the_other_sets_alone():
    from tfls.recognition import data as data_lib

    config = tiny_config()
    without = RecognitionTask(config)
    without.eval_datasets()
    assert sorted(without._eval_sets) == ["test", "test_ood", "val"]
    config.data.val_hard_size = 5
    task = RecognitionTask(config)
    task.eval_datasets()
    assert sorted(task._eval_sets) == ["test", "test_ood", "val", "val_hard"]
    seed = data_lib.eval_set_seed(config.data.seed, "val_hard")
    assert seed not in {data_lib.eval_set_seed(config.data.seed, n) for n in ("val", "test", "test_ood")}
    expected = data_lib.render_arrays(task.hard_renderer, task.sampler, task.charset, seed, 0, 5)[0]
    assert task._eval_sets["val_hard"][0].shape[0] == 5
    np.testing.assert_array_equal(task._eval_sets["val_hard"][0], expected)
    assert task.hard_renderer.distortions["rotation_deg"] == config.data.hard_distortions.rotation_deg
    assert task.hard_renderer.fonts == task.renderer.fonts  # training fonts
    for name in ("val", "test", "test_ood"):  # unchanged by the extra set
        np.testing.assert_array_equal(task._eval_sets[name][0], without._eval_sets[name][0])


def test_free_running_tuning_step_without_host_calls():
    """The TPU-like check on the attention recognizer's free-running tuning step: with streamed global pairs
    and the in-graph edit distance it holds no py_function (tests/test_surrogate_tuner.py shows that the check
    sees the default pair path's py_function)."""
    import keras
    from helpers import HOST_CALL_OPS, op_types

    from tfls.surrogate import SurrogateTuner

    task = RecognitionTask(tiny_config("attn"))
    model = task.build_model()
    data = task.train_dataset(0)

    tuner = SurrogateTuner(
        model, task.build_surrogate(), task.tuning_forward, task.surrogate_pairs, task.ordinary_loss,
        global_batch_size=4, global_pairs="dataset",
    )  # fmt: skip
    tuner.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-3), jit_compile=True)
    spec = tf.data.Dataset.zip((data, tuner._global_pair_stream())).element_spec
    assert task.config.tune.outputs == "free_running"
    assert not op_types(tf.function(tuner.train_step).get_concrete_function(spec)) & HOST_CALL_OPS
