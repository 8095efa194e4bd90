"""Export: the SavedModel's serving_default loads in fresh processes (tf.saved_model.load and the
session-based loader of saved_model_cli, as TF Serving uses) and returns the model's own predictions."""

import io
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
from PIL import Image

from tfls.recognition.charset import Charset
from tfls.recognition.recognizer import Recognizer
from tfls.recognition.serving import decode_images, export_recognizer, predict_text

LOAD_SCRIPT = """
import sys, numpy as np, tensorflow as tf
path, npy = sys.argv[1], sys.argv[2]
fn = tf.saved_model.load(path).signatures["serving_default"]
out = fn(image_bytes=tf.constant(list(np.load(npy, allow_pickle=True))))
print("TEXT", [t.decode() for t in out["text"].numpy()])
print("CONF", out["confidence"].numpy().tolist())
"""


def encode_png(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_decode_images_in_graph():
    raw = np.arange(6 * 8, dtype=np.uint8).reshape(6, 8) * 5
    out = tf.function(lambda b: decode_images(b, 6, 8, 1))(tf.constant([encode_png(raw)])).numpy()
    np.testing.assert_allclose(out[0, ..., 0], raw, atol=1e-4)


def test_export_runs_in_fresh_processes(tmp_path):
    charset = Charset("abc", max_length=3)
    model = Recognizer(
        charset.num_classes, 3, (16, 24, 1), "none", "vgg", "none", "attn", channels=(4, 4, 8, 8), hidden=8
    ).build_with_sample()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(16, 24), dtype=np.uint8) for _ in range(3)]
    expected_text, expected_conf = predict_text(
        model, tf.constant(np.stack(images)[..., None], tf.float32), charset.lookup_table()
    )
    path = str(tmp_path / "export" / "1")
    export_recognizer(model, charset, path)
    pb = open(os.path.join(path, "saved_model.pb"), "rb").read()
    assert b"EagerPyFunc" not in pb and b"PyFunc" not in pb

    npy = str(tmp_path / "inputs.npy")
    np.save(npy, np.array([encode_png(im) for im in images], dtype=object), allow_pickle=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, path, npy], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text_line = [line for line in proc.stdout.splitlines() if line.startswith("TEXT")][0]
    assert text_line == "TEXT " + str([t.decode() for t in expected_text.numpy()])
    conf = eval(next(line for line in proc.stdout.splitlines() if line.startswith("CONF"))[5:])
    np.testing.assert_allclose(conf, expected_conf.numpy(), rtol=1e-4)

    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    proc = subprocess.run(
        [
            cli,
            "run",
            "--dir",
            path,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"image_bytes={npy}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "text" in proc.stdout and "confidence" in proc.stdout
    for t in expected_text.numpy():
        assert repr(t) in proc.stdout or t.decode() in proc.stdout
