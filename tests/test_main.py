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


def _one_error_line(out):
    """The stderr lines a user reads: tfls' own, without TensorFlow's start-up log lines."""
    lines = [line for line in out.stderr.splitlines() if line.startswith("tfls:") or "Traceback" in line]
    assert len(lines) == 1, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    return lines[0]


def test_bad_values_fail_before_anything_runs_in_one_line(tmp_path):
    for arg, expected in [
        ("--config.train.steps=-5", "tfls: error: config.train.steps=-5: must be an integer >= 1"),
        ("--config.surrogate.batch_size=0", "tfls: error: config.surrogate.batch_size=0: must be an integer >= 1"),
        ("--config.data.train_lmdb=/nonexistent/lmdb", "tfls: error: config.data.train_lmdb='/nonexistent/lmdb'"),
    ]:
        out = _run("--task=str", arg, f"--workdir={tmp_path}")
        assert out.returncode == 2
        assert _one_error_line(out).startswith(expected)
        assert not os.listdir(tmp_path)
    out = _run("--task=det", f"--config.data.icdar_image_dir={tmp_path}/missing", f"--workdir={tmp_path}")
    assert out.returncode == 2 and "missing not found" in _one_error_line(out)


def test_unknown_import_path_task_is_one_line(tmp_path):
    out = _run("--task=nowhere.module:Task", f"--workdir={tmp_path}")
    assert out.returncode == 2
    assert _one_error_line(out).startswith("tfls: error: task 'nowhere.module:Task': cannot import module")


def test_verbose_shows_the_traceback(tmp_path):
    out = _run("--task=str", "--config.train.steps=-5", "--verbose", f"--workdir={tmp_path}")
    assert out.returncode == 2 and "Traceback" in out.stderr and "ConfigError" in out.stderr
