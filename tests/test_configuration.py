"""Config loading and the checks run before a job: every refused value names its key, value and range."""

import os
import sys

import pytest

from tfls import configuration
from tfls.configuration import ConfigError
from tfls.detection.task import DetectionTask
from tfls.recognition.task import RecognitionTask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def str_config(**overrides):
    return configuration.load_config(os.path.join(ROOT, "configs", "str.py"), overrides)


def det_config(**overrides):
    return configuration.load_config(os.path.join(ROOT, "configs", "det.py"), overrides)


@pytest.mark.parametrize("path", ["str.py", "str_paper.py", "det.py", "det_paper.py"])
def test_shipped_configs_are_valid(path):
    task = DetectionTask if path.startswith("det") else RecognitionTask
    configuration.validate(configuration.load_config(os.path.join(ROOT, "configs", path)), task)


BAD_BASE_VALUES = [
    ("train.steps", -5, "an integer >= 1"),
    ("train.steps", 0, "an integer >= 1"),
    ("train.batch_size", 0, "an integer >= 1"),
    ("train.learning_rate", 0.0, "a finite number > 0.0"),
    ("train.learning_rate", float("nan"), "a finite number > 0.0"),
    ("train.clipnorm", -1.0, "a finite number >= 0.0"),
    ("train.optimizer", "adamw", "one of 'adam', 'adadelta', 'sgd'"),
    ("train.schedule", "step", "one of 'constant', 'cosine'"),
    ("train.final_learning_rate_ratio", 1.5, "a finite number in [0.0, 1.0]"),
    ("train.init_from", "/nonexistent/weights", "existing folders (/nonexistent/weights not found)"),
    ("train.checkpoint_every", 0, "an integer >= 1"),
    ("train.eval_every", -1, "an integer >= 0"),
    ("surrogate.batch_size", 0, "an integer >= 1"),
    ("surrogate.pretrain_steps", -1, "an integer >= 0"),
    ("surrogate.learning_rate", -1e-3, "a finite number > 0.0"),
    ("surrogate.inner_steps", 0, "an integer >= 1"),
    ("surrogate.local_weight", 1.5, "a finite number in [0.0, 1.0]"),
    ("surrogate.grad_penalty_weight", -0.1, "a finite number >= 0.0"),
    ("surrogate.grad_penalty_every", 0, "an integer >= 1"),
    ("surrogate.eval_pairs", 0, "an integer >= 1"),
    ("tune.steps", 0, "an integer >= 1"),
    ("tune.learning_rate", 0.0, "a finite number > 0.0"),
    ("tune.ordinary_loss_weight", -1.0, "a finite number >= 0.0"),
    ("tune.surrogate_every", 0, "an integer >= 1"),
    ("tune.global_batch_size", -1, "an integer >= 0"),
    ("tune.distance_power", 8.0, "a finite number in [0.1, 4.0]"),
    ("tune.objective", "oracle", "one of 'surrogate', 'exact'"),
    ("distribute", "gpu", "one of 'none', 'mirrored', 'multi_worker', 'tpu'"),
]


@pytest.mark.parametrize("key,value,allowed", BAD_BASE_VALUES)
def test_each_bad_base_value_is_refused_with_key_value_and_range(key, value, allowed):
    config = str_config(**{key: value})
    with pytest.raises(ConfigError) as info:
        configuration.validate(config, RecognitionTask)
    assert str(info.value) == f"config.{key}={value!r}: must be {allowed}"


def test_warmup_longer_than_training_is_refused():
    config = str_config(**{"train.schedule": "cosine", "train.warmup_steps": 5000, "train.steps": 100})
    with pytest.raises(ConfigError, match=r"config.train.warmup_steps=5000: must be an integer < train.steps \(100\)"):
        configuration.validate(config, RecognitionTask)


def test_recognition_specific_values_are_refused():
    config = str_config(**{"model.prediction": "ctc", "data.max_length": 20, "data.image_width": 100})
    with pytest.raises(ConfigError, match=r"config.data.max_length=20: must be <= 12 for CTC"):
        configuration.validate(config, RecognitionTask)
    with pytest.raises(ConfigError, match=r"config.data.train_lmdb='/nonexistent/lmdb': must be existing folders"):
        configuration.validate(str_config(**{"data.train_lmdb": "/nonexistent/lmdb"}), RecognitionTask)
    with pytest.raises(ConfigError, match=r"config.model.prediction='rnn'"):
        configuration.validate(str_config(**{"model.prediction": "rnn"}), RecognitionTask)


def test_detection_specific_values_are_refused(tmp_path):
    config = det_config(**{"data.icdar_image_dir": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match=r"config.data.icdar_image_dir=.*missing not found"):
        configuration.validate(config, DetectionTask)
    with pytest.raises(ConfigError, match=r"config.eval.score_threshold=2.0: must be a finite number in \[0.0, 1.0\]"):
        configuration.validate(det_config(**{"eval.score_threshold": 2.0}), DetectionTask)


def test_several_problems_are_named_together():
    config = str_config(**{"train.steps": -5, "surrogate.batch_size": 0})
    with pytest.raises(ConfigError) as info:
        configuration.validate(config, RecognitionTask)
    assert "config.train.steps=-5" in str(info.value) and "config.surrogate.batch_size=0" in str(info.value)


def test_load_config_refuses_unknown_keys_and_files(tmp_path):
    with pytest.raises(ConfigError, match="has no such key"):
        str_config(**{"train.stepz": 3})
    with pytest.raises(ConfigError, match="has no key 'trian'"):
        str_config(**{"trian.steps": 3})
    with pytest.raises(ConfigError, match="does not exist"):
        configuration.load_config(str(tmp_path / "nope.py"))
    config = configuration.load_config(os.path.join(ROOT, "configs", "str.py"), ["train.steps=7", "data.fonts=a.ttf"])
    assert config.train.steps == 7 and config.data.fonts == "a.ttf"


def test_the_paper_config_tunes_as_the_paper_does():
    """configs/str_paper.py starts from the 2-core default but keeps the paper's tuning: phi on every step,
    global + local pairs from a pretrained phi, and its own global batch (the default's tune.surrogate_every=4
    and 32 global pairs are cost levers for 2 cores)."""
    config = configuration.load_config(os.path.join(ROOT, "configs", "str_paper.py"))
    assert config.tune.surrogate_every == 1
    assert config.tune.global_batch_size in (0, config.surrogate.batch_size)
    # and the paper's pairs: phi pretrained on global pairs, then global + local pairs (the 2-core default
    # tunes on local pairs only, without pretraining)
    assert config.surrogate.pretrain_steps > 0 and 0.0 < config.surrogate.local_weight < 1.0
