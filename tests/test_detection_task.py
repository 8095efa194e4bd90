"""End to end: `python -m tfls.main --task=det` on a tiny config, then the export loaded in fresh processes."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "--config.data.image_size=64",
    "--config.data.train_pool=8",
    "--config.data.eval_size=4",
    "--config.data.max_words=2",
    "--config.data.min_height=8",
    "--config.data.max_height=12",
    "--config.train.steps=6",
    "--config.train.batch_size=2",
    "--config.train.eval_every=0",
    "--config.train.checkpoint_every=3",
    "--config.train.log_every=2",
    "--config.surrogate.pretrain_steps=5",
    "--config.surrogate.batch_size=32",
    "--config.surrogate.eval_pairs=64",
    "--config.tune.steps=3",
    "--config.model.rpn_pre_nms=30",
    "--config.model.rpn_post_nms=8",
    "--config.model.head_units=32",
    "--config.model.max_detections=8",
    "--config.eval.batch_size=2",
    "--config.eval.score_threshold=0.0",
]


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    return env


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("det_job")
    cmd = [sys.executable, "-m", "tfls.main", "--task=det", f"--workdir={workdir}"] + TINY
    cmd += [f"--config.eval.results_dir={workdir / 'icdar_results'}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(workdir / "results.json") as f:
        return workdir, json.load(f), proc.stdout


def test_main_job_writes_results(finished_job):
    _, results, stdout = finished_job
    assert results["task"] == "det" and results["wall_time_s"] > 0
    for model in ("baseline", "tuned"):
        metrics = results[model]["test"]
        assert metrics["num_images"] == 4
        assert set(metrics) >= {"precision", "recall", "hmean"}
        assert all(0.0 <= metrics[k] <= 1.0 for k in ("precision", "recall", "hmean"))
    assert np.isfinite(results["surrogate"]["approx_l1_global"])
    assert "approx_l1_local" in results["surrogate"]
    assert os.path.isdir(results["export"])
    assert "tuned" in stdout and "baseline" in stdout


def test_icdar_result_files_per_model(finished_job):
    # one folder per model and evaluation set, so the tuned model's evaluation leaves the baseline's files
    workdir, _, _ = finished_job
    for model in ("baseline", "control", "tuned"):
        folder = workdir / "icdar_results" / model / "test"
        if model == "control":
            assert not folder.exists()  # the default job runs no control stage
            continue
        names = sorted(os.listdir(folder))
        assert len(names) == 4 and all(n.startswith("res_img_") and n.endswith(".txt") for n in names)
        for name in names:
            for line in (folder / name).read_text().splitlines():
                assert len([int(v) for v in line.split(",")]) == 8
    assert not [n for n in os.listdir(workdir / "icdar_results") if n.startswith("res_img_")]


def _image_bytes(width, height):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


LOAD_SCRIPT = r"""
import sys, numpy as np, tensorflow as tf
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = fn(image_bytes=tf.constant([open(sys.argv[2], "rb").read()] * 2))
b, s, n = out["boxes"], out["scores"], out["num_detections"]
assert b.dtype == tf.float32 and s.dtype == tf.float32 and n.dtype == tf.int32, (b.dtype, s.dtype, n.dtype)
assert b.shape[0] == 2 and b.shape[2] == 8 and s.shape == b.shape[:2] and n.shape == (2,)
assert np.all(b.numpy()[:, int(n[0]):] == 0)
print("LOADED", b.shape)
"""


def test_export_loads_in_fresh_processes(finished_job, tmp_path):
    _, results, _ = finished_job
    export = results["export"]
    image = tmp_path / "img.png"
    image.write_bytes(_image_bytes(80, 48))  # not square: exercises the padding in the serving graph
    script = tmp_path / "load.py"
    script.write_text(LOAD_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), export, str(image)], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and "LOADED" in proc.stdout, proc.stderr[-3000:]
    np.save(tmp_path / "inputs.npy", np.array([image.read_bytes()], dtype=object))
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    proc = subprocess.run(
        [
            cli,
            "run",
            "--dir",
            export,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"image_bytes={tmp_path / 'inputs.npy'}",
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "num_detections" in proc.stdout and "boxes" in proc.stdout
