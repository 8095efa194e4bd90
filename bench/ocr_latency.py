"""Latency of the OCR export (detector + rectification + recognizer in one graph) at batch 1.

    python bench/ocr_latency.py                        # the shipped models (weights/det, weights/str)
    python bench/ocr_latency.py --detector-workdir=workdir/det --recognizer-workdir=workdir/str
    python bench/ocr_latency.py --untrained            # default configs, random weights

The request is one JPEG photo of 640 x 480 pixels with `--words` (10) rendered words at random angles
(`tfls.ocr.photos`). The export is loaded with the TF1 session loader, the way TF Serving's C++ loader loads
it, and called `--runs` times after `--warmup` calls; the figures are the median (p50) and p90 of the wall
times of the calls. The same is measured for the detection export alone (one pass at the detector's input
side), so what the OCR call costs beyond one detection pass (the other scales' passes, decoding again,
rectifying, one recognizer batch) shows as the difference (`ocr_minus_detection_p50_ms`).

The export's score threshold is set to keep the photo's `--words` highest-scoring boxes of the OCR graph
itself (every detector scale, merged; `--scales`, default the export's `SCALES`) and its lowest text
confidence to 0, so the recognizer reads that many crops per call and every one is returned whatever
the models are (the exports' defaults would drop a word an untrained or unsure model reads badly, and the
figure would then depend on what the models find rather than on the work of reading 10 words).
`num_words_read` records how many were read; with trained models `num_words_correct` records how many of the
photo's words came back with their box (IoU > 0.5) and their text (case-insensitive), which shows the
detections read are the photo's words. Default models: the shipped weights/det and weights/str when both
exist, else the untrained default configs (`models` in the JSON says which).
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

    image, quads, texts = render_photo(np.random.default_rng(seed), 640, 480, words, 16, 40, 30.0)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    return buf.getvalue(), quads, texts


def _words_correct(out, quads, texts):
    """How many of the photo's words the export returned with a matching box and the right text."""
    from tfls.ocr.endtoend import evaluate_image

    n = int(out["num_words"][0])
    det_quads = np.asarray(out["boxes"][0][:n], np.float64).reshape(-1, 4, 2)
    det_texts = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in out["texts"][0][:n]]
    result = evaluate_image(
        det_quads, det_texts, np.asarray(quads, np.float64), list(texts), np.zeros(len(texts), bool)
    )
    return int(result["correct"])


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
    parser.add_argument("--detector-weights", help="a weights folder (default: weights/det when shipped)")
    parser.add_argument("--recognizer-weights", help="a weights folder (default: weights/str when shipped)")
    parser.add_argument("--untrained", action="store_true", help="random weights of the default configs")
    parser.add_argument("--detector-config", help="default: configs/det.py")
    parser.add_argument("--recognizer-config", help="default: configs/str.py")
    parser.add_argument("--detector-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--recognizer-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--scales", default="", help="the OCR export's detector scales (default: its SCALES)")
    parser.add_argument("--words", type=int, default=10)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="ocr_latency.json")
    args = parser.parse_args()
    if bool(args.detector_workdir) != bool(args.recognizer_workdir):
        parser.error("give both --detector-workdir and --recognizer-workdir, or neither")
    if bool(args.detector_weights) != bool(args.recognizer_weights):
        parser.error("give both --detector-weights and --recognizer-weights, or neither")
    if args.detector_workdir and args.detector_weights:
        parser.error("give workdirs or weights folders, not both")
    if args.untrained and (args.detector_workdir or args.detector_weights):
        parser.error("--untrained takes no workdirs or weights")

    import keras
    import tensorflow as tf

    from tfls import registry
    from tfls.configuration import load_config
    from tfls.job.weights import has_weights
    from tfls.ocr.export import SCALES, export_ocr, load_task_model, parse_scales

    try:
        scales = parse_scales(args.scales) if args.scales else list(SCALES)
    except ValueError as e:
        parser.error(f"--scales={args.scales}: {e}")
    keras.utils.set_random_seed(args.seed)
    data, quads, texts = _photo(args.words, args.seed)
    shipped = os.path.join(common.ROOT, "weights")
    det_weights, str_weights = args.detector_weights, args.recognizer_weights
    if not (args.detector_workdir or args.untrained or det_weights or str_weights):
        if all(has_weights(os.path.join(shipped, t)) for t in ("det", "str")):
            det_weights, str_weights = os.path.join(shipped, "det"), os.path.join(shipped, "str")
    if args.detector_workdir or det_weights:
        det_task, detector, det_what = load_task_model(
            "det", args.detector_workdir, det_weights, args.detector_config, args.detector_set
        )
        str_task, recognizer, str_what = load_task_model(
            "str", args.recognizer_workdir, str_weights, args.recognizer_config, args.recognizer_set
        )
        described = f"trained: detector {det_what}; recognizer {str_what}"
        trained, models = True, described.replace(common.ROOT + os.sep, "")
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
        trained, models = False, "untrained, default configs"
    # Keep the `words` best boxes of the OCR graph itself (every scale, merged): the recognizer reads that many.
    from tfls.ocr.export import ocr_function, scaled_detectors

    extra = scaled_detectors(detector, det_task.config, scales)
    probe = ocr_function(
        detector,
        int(det_task.config.data.image_size),
        0.0,
        recognizer,
        str_task.charset.lookup_table(),
        min_text_confidence=0.0,
        scale_detectors=extra,
    )(tf.constant([data]))
    scores = np.sort(probe["box_scores"].numpy()[0][: int(probe["num_words"].numpy()[0])])[::-1]
    threshold = float(scores[min(args.words, len(scores)) - 1]) if scores.size else 0.0
    models += f"; score threshold {threshold:.3g} (keeps the {args.words} best boxes), lowest text confidence 0"

    workdir = tempfile.mkdtemp(prefix="tfls_ocr_latency_")
    try:
        ocr_path = export_ocr(
            detector,
            det_task.config,
            recognizer,
            str_task.charset,
            os.path.join(workdir, "ocr"),
            score_threshold=threshold,
            min_text_confidence=0.0,
            scales=scales,
        )
        det_path = os.path.join(workdir, "det")
        det_task.config.eval.score_threshold = threshold
        det_task.export(detector, det_path)
        ocr_times, out = _session_latency(ocr_path, data, args.runs, args.warmup)
        det_times, _ = _session_latency(det_path, data, args.runs, args.warmup)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    payload = {
        "machine": common.machine(),
        "command": "python bench/ocr_latency.py " + " ".join(sys.argv[1:]),
        "request": f"one 640x480 JPEG photo with {len(quads)} rendered words, batch 1",
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
        "num_words_correct": _words_correct(out, quads, texts) if trained else None,
        "ocr": _stats(ocr_times),
        "detection_only": _stats(det_times),
    }
    payload["scales"] = scales
    payload["detector_sides"] = [int(det_task.config.data.image_size)] + [side for _, side in extra]
    # what the OCR call costs beyond one detection pass: the other scales' passes, decoding again, rectifying
    # and one recognizer batch
    payload["ocr_minus_detection_p50_ms"] = payload["ocr"]["p50_ms"] - payload["detection_only"]["p50_ms"]
    common.write_json(args.output, payload)
    print(
        f"[ocr_latency] p50 {payload['ocr']['p50_ms']:.1f} ms (p90 {payload['ocr']['p90_ms']:.1f}), detection alone "
        f"{payload['detection_only']['p50_ms']:.1f} ms, {payload['num_words_read']} words read"
        + ("" if payload["num_words_correct"] is None else f", {payload['num_words_correct']} of them right"),
        flush=True,
    )


if __name__ == "__main__":
    main()
