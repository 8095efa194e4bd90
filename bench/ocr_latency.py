"""Latency of the OCR export (detector + rectification + recognizer in one graph) at batch 1.

    python bench/ocr_latency.py                        # untrained default models, writes docs/results/ocr_latency.json
    python bench/ocr_latency.py --detector-workdir=workdir/det --recognizer-workdir=workdir/str

The request is one JPEG photo of 640 x 480 pixels with `--words` (10) rendered words at random angles
(`tfls.ocr.photos`). The export is loaded with the TF1 session loader, the way TF Serving's C++ loader loads
it, and called `--runs` times after `--warmup` calls; the figures are the median (p50) and p90 of the wall
times of the calls. The same is measured for the detection export alone, so the cost of reading the words
(decoding again, rectifying, one recognizer batch) shows as the difference.

Without workdirs the models are untrained, built from the default configs: their speed is a trained model's,
but what they detect is not, so the export's score threshold is set to keep as many words as the photo
holds (the `--words` highest-scoring detections), and the recognizer reads that many crops per call, as a
trained detector's would. `num_words_read` records it.
"""

import argparse
import io
import os
import shutil
import sys
import tempfile
import time

import common
import numpy as np


def _photo(words, seed):
    from PIL import Image

    from tfls.ocr.photos import render_photo

    image, quads, _ = render_photo(np.random.default_rng(seed), 640, 480, words, 16, 40, 30.0)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    return buf.getvalue(), len(quads)


def _session_latency(path, data, runs, warmup):
    """Per-call wall times (s) and the last outputs of the export at `path` on one encoded image."""
    import tensorflow as tf

    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        sig = meta.signature_def["serving_default"]
        fetches = {k: v.name for k, v in sig.outputs.items()}
        feed = {sig.inputs["image_bytes"].name: np.array([data], dtype=object)}
        for _ in range(warmup):
            out = sess.run(fetches, feed)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            out = sess.run(fetches, feed)
            times.append(time.perf_counter() - start)
    return np.array(times), out


def _stats(times):
    return {
        "p50_ms": float(np.median(times) * 1000),
        "p90_ms": float(np.percentile(times, 90) * 1000),
        "mean_ms": float(np.mean(times) * 1000),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector-workdir")
    parser.add_argument("--recognizer-workdir")
    parser.add_argument("--detector-config", help="default: configs/det.py")
    parser.add_argument("--recognizer-config", help="default: configs/str.py")
    parser.add_argument("--detector-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--recognizer-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--words", type=int, default=10)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="ocr_latency.json")
    args = parser.parse_args()
    if bool(args.detector_workdir) != bool(args.recognizer_workdir):
        parser.error("give both --detector-workdir and --recognizer-workdir, or neither")

    import keras
    import tensorflow as tf

    from tfls import registry
    from tfls.configuration import load_config
    from tfls.ocr.export import export_ocr, load_task_model

    keras.utils.set_random_seed(args.seed)
    data, placed = _photo(args.words, args.seed)
    if args.detector_workdir:
        det_task, detector, det_what = load_task_model(
            "det", args.detector_workdir, None, args.detector_config, args.detector_set
        )
        str_task, recognizer, str_what = load_task_model(
            "str", args.recognizer_workdir, None, args.recognizer_config, args.recognizer_set
        )
        threshold, models = None, f"trained: {det_what}; {str_what}"
    else:
        built = {}
        for name, config, overrides in (
            ("det", args.detector_config, args.detector_set),
            ("str", args.recognizer_config, args.recognizer_set),
        ):
            cls = registry.task_class(name)
            task = cls(load_config(config or registry.default_config_path(cls), overrides))
            built[name] = (task, task.build_model())
        (det_task, detector), (str_task, recognizer) = built["det"], built["str"]
        # Keep the `words` best detections of the photo, as many as a trained detector would find there.
        from tfls.detection.task import serving_function

        probe = serving_function(detector, det_task.config.data.image_size, 0.0)(tf.constant([data]))
        scores = np.sort(probe["scores"].numpy()[0])[::-1]
        threshold = float(scores[min(args.words, len(scores)) - 1]) if scores.size else 0.0
        models = "untrained, default configs; score threshold set to keep the photo's number of words"

    workdir = tempfile.mkdtemp(prefix="tfls_ocr_latency_")
    try:
        ocr_path = export_ocr(
            detector,
            det_task.config,
            recognizer,
            str_task.charset,
            os.path.join(workdir, "ocr"),
            score_threshold=threshold,
        )
        det_path = os.path.join(workdir, "det")
        if threshold is not None:
            det_task.config.eval.score_threshold = threshold
        det_task.export(detector, det_path)
        ocr_times, out = _session_latency(ocr_path, data, args.runs, args.warmup)
        det_times, _ = _session_latency(det_path, data, args.runs, args.warmup)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    payload = {
        "machine": common.machine(),
        "command": "python bench/ocr_latency.py " + " ".join(sys.argv[1:]),
        "request": f"one 640x480 JPEG photo with {placed} rendered words, batch 1",
        "models": models,
        "detector_input": det_task.config.data.image_size,
        "recognizer_input": list(recognizer.image_shape),
        "recognizer_stages": list(recognizer.stages),
        "detector_backbone": det_task.config.model.backbone,
        "loader": "tf.compat.v1 session loader (as TF Serving)",
        "runs": args.runs,
        "warmup": args.warmup,
        "load_average_1min": os.getloadavg()[0],
        "num_words_read": int(out["num_words"][0]),
        "ocr": _stats(ocr_times),
        "detection_only": _stats(det_times),
    }
    payload["reading_share_p50_ms"] = payload["ocr"]["p50_ms"] - payload["detection_only"]["p50_ms"]
    common.write_json(args.output, payload)
    print(
        f"[ocr_latency] p50 {payload['ocr']['p50_ms']:.1f} ms (p90 {payload['ocr']['p90_ms']:.1f}), detection alone "
        f"{payload['detection_only']['p50_ms']:.1f} ms, {payload['num_words_read']} words read",
        flush=True,
    )


if __name__ == "__main__":
    main()
