"""The command line: task registry, mode parsing and config errors, in a fresh process."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "tfls.main", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )


def test_unknown_task_lists_known_ones():
    out = _run("--task=ocr")
    assert out.returncode != 0
    assert "unknown task 'ocr'" in out.stderr and "det, str" in out.stderr


def test_unknown_config_key_is_refused(tmp_path):
    out = _run("--task=str", "--config.train.stepz=3", f"--workdir={tmp_path}")
    assert out.returncode != 0
    assert "stepz" in out.stderr
    assert not os.listdir(tmp_path)


def test_wrong_config_type_is_refused(tmp_path):
    out = _run("--task=str", "--config.train.steps=many", f"--workdir={tmp_path}")
    assert out.returncode != 0
    assert "train.steps" in out.stderr or "many" in out.stderr
    assert not os.listdir(tmp_path)


def test_unknown_mode_is_refused(tmp_path):
    out = _run("--task=str", "--mode=train,fly", f"--workdir={tmp_path}")
    assert out.returncode == 2
    assert "unknown stage" in out.stderr
