"""The OCR pipeline's detection score threshold, chosen on the `val` scenes by end-to-end hmean.

    python bench/ocr_threshold.py                                   # weights/det + weights/str, 150 val scenes
    python bench/ocr_threshold.py --recognizer=workdir/x/models/baseline --limit=50
    python bench/ocr_threshold.py --margins=0,0.05,0.1,0.15,0.2,0.3   # also the crop margin
    python bench/ocr_threshold.py --scale-sets="1;1,1.5;1,2;1,2.5"      # also the detector's input scales

The detector keeps boxes scoring at least `eval.score_threshold` (0.5 in configs/det.py, the value the
detection benchmarks use). Reading a word needs a well-placed box as well as a confident one, so the OCR's
best threshold need not be detection's. This script runs the OCR graph (`tfls.ocr.export.ocr_function`, eager:
the same ops as the export) once per `val` scene of the detection task at the lowest threshold of `--grid`,
then scores every pair (score threshold, lowest text confidence) of the grids end to end (ICDAR 2015 rule,
`tfls.ocr.endtoend.evaluate`) and records the best pair and the best lowest confidence at the detector's own
threshold (`eval.score_threshold`, which the detection export and `tfls read --detector` also use; the OCR
export keeps it, so with `--scales=1` both routes return the same boxes). Only `val` is read: the reported sets (`test`,
`test_ood`) are then measured once, with the export's defaults, by `python bench/ocr_endtoend.py`.

`--margins` repeats the whole grid for each crop margin (`tfls.ocr.export.word_crops`: the border added around
each detected box, a fraction of the word's height, before the crop is resized to the recognizer's input); the
best margin at the detector's own threshold is recorded beside the best confidence there. Without it only the
export's `MARGIN` is scored. `--scale-sets` does the same for the detector's input scales
(`tfls.ocr.export.SCALES`: each image detected at every scale of a set, multiples of the detector's input
side, the boxes merged by rotated NMS); without it only the export's `SCALES` are scored. Merging at the
grid's lowest threshold and then dropping the boxes under a higher one gives what merging at the higher one
gives (a kept box is only ever suppressed by a higher-scoring one), so one pass per scale set scores the grid.

Writes docs/results/ocr_threshold.json (TFLS_RESULTS_DIR elsewhere); `python bench/report.py` renders it.
"""

import argparse
import time

import common
import numpy as np

DEFAULT_GRID = "0.2,0.3,0.4,0.5,0.6,0.7,0.8"
DEFAULT_CONFIDENCES = "0,0.05,0.1,0.2,0.3,0.5,0.6,0.7,0.8"


def choose(rows, own_threshold, export_margin, export_scales=None):
    """`(best row, margin, confidence, scales)`: the row with the highest end-to-end hmean over every (scales,
    margin, score threshold, lowest confidence), and the best (margin, confidence, scales) at the detector's
    own threshold. Ties go to the export's scales and margin, then the fewer scales, the smaller margin, the
    higher threshold and the lower confidence, so a grid that cannot tell values apart keeps what the export
    has (and the cheaper graph)."""
    export_scales = list(export_scales) if export_scales is not None else None

    def key(r):
        margin = r.get("margin", export_margin)
        scales = r.get("scales", export_scales)
        return (
            round(r["hmean"], 6),
            scales == export_scales,
            margin == export_margin,
            -len(scales or []),
            -margin,
            r["threshold"],
            -r["min_text_confidence"],
        )

    best = max(rows, key=key)
    at_own = [r for r in rows if abs(r["threshold"] - own_threshold) < 1e-9]
    if not at_own:
        return best, None, None, None
    top = max(at_own, key=key)
    return best, top.get("margin", export_margin), top["min_text_confidence"], top.get("scales", export_scales)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector", default="weights/det")
    parser.add_argument("--recognizer", default="weights/str")
    parser.add_argument("--limit", type=int, default=150, help="val scenes")
    parser.add_argument("--grid", default=DEFAULT_GRID, help="thresholds to score")
    parser.add_argument("--confidence-grid", default=DEFAULT_CONFIDENCES, help="lowest text confidences to score")
    parser.add_argument("--margins", default="", help="crop margins to score (default: the export's MARGIN)")
    parser.add_argument(
        "--scale-sets", default="", help="detector scale sets to score, ';' between sets (default: the export's)"
    )
    parser.add_argument("--output", default="ocr_threshold.json")
    args = parser.parse_args()
    start = time.time()

    import ocr_endtoend
    import tensorflow as tf

    from tfls.ocr import endtoend
    from tfls.ocr.export import MARGIN, SCALES, ocr_function, parse_scales, scaled_detectors

    grid = sorted(float(v) for v in args.grid.split(","))
    confidences = sorted(float(v) for v in args.confidence_grid.split(","))
    margins = sorted(float(v) for v in args.margins.split(",")) if args.margins else [MARGIN]
    try:
        parts = [part for part in args.scale_sets.split(";") if part.strip()]
        scale_sets = [parse_scales(part) for part in parts] if parts else [list(SCALES)]
    except ValueError as e:
        parser.error(f"--scale-sets: {e}")
    det_task, detector, det_what = ocr_endtoend.load_model("det", args.detector, None, [])
    str_task, recognizer, str_what = ocr_endtoend.load_model("str", args.recognizer, None, [])
    gt, images = ocr_endtoend.render_set(det_task, "val", args.limit)
    rows = []
    for scales, margin in [(sc, m) for sc in scale_sets for m in margins]:
        serve = ocr_function(
            detector,
            int(det_task.config.data.image_size),
            grid[0],
            recognizer,
            str_task.charset.lookup_table(),
            margin=margin,
            min_text_confidence=0.0,
            scale_detectors=scaled_detectors(detector, det_task.config, scales),
        )
        found = {}
        for key in gt:
            out = serve(tf.constant([images[key]]))
            n = int(out["num_words"][0])
            quads = out["boxes"][0, :n].numpy().reshape(-1, 4, 2).astype(np.float64)
            texts = [t.decode() for t in out["texts"][0, :n].numpy()]
            found[key] = (quads, texts, out["box_scores"][0, :n].numpy(), out["text_confidences"][0, :n].numpy())
        for threshold in grid:
            for min_confidence in confidences:
                results = {}
                for key, (quads, texts, scores, conf) in found.items():
                    keep = (scores >= threshold) & (conf >= min_confidence)
                    results[key] = (quads[keep], [t for t, k in zip(texts, keep) if k])
                m = endtoend.evaluate(gt, results, ocr_endtoend.IOU_THRESHOLD)["method"]
                rows.append(
                    {
                        "scales": scales,
                        "margin": margin,
                        "threshold": threshold,
                        "min_text_confidence": min_confidence,
                        **{k: m[k] for k in m if not k.startswith("num_")},
                    }
                )
                print(
                    f"scales {scales}, margin {margin:.2f}, score >= {threshold:.2f}, text confidence >= "
                    f"{min_confidence:.2f}: end to end P {m['precision']:.4f} R {m['recall']:.4f} H "
                    f"{m['hmean']:.4f}; detection H {m['detection_hmean']:.4f}",
                    flush=True,
                )

    own = float(det_task.config.eval.score_threshold)
    best, margin_own, confidence, scales_own = choose(rows, own, MARGIN, list(SCALES))
    print(
        f"best on val: scales {best['scales']}, margin {best['margin']}, score >= {best['threshold']}, text "
        f"confidence >= {best['min_text_confidence']}",
        flush=True,
    )
    print(
        f"best at the detector's own threshold {own}: scales {scales_own}, margin {margin_own}, text confidence "
        f"{confidence}",
        flush=True,
    )
    common.write_json(
        args.output,
        {
            "detector": det_what,
            "recognizer": str_what,
            "num_scenes": len(gt),
            "rows": rows,
            "chosen": {
                "scales": best["scales"],
                "margin": best["margin"],
                "threshold": best["threshold"],
                "min_text_confidence": best["min_text_confidence"],
            },
            "chosen_at_detection_threshold": confidence,
            "chosen_margin_at_detection_threshold": margin_own,
            "chosen_scales_at_detection_threshold": scales_own,
            "margins": margins,
            "export_margin": MARGIN,
            "scale_sets": scale_sets,
            "detector_input": int(det_task.config.data.image_size),
            "export_scales": list(SCALES),
            "detection_config_threshold": own,
            "machine": common.machine(),
            "wall_time_s": time.time() - start,
            "command": f"python bench/ocr_threshold.py --detector={args.detector} --recognizer={args.recognizer} "
            f"--limit={args.limit}"
            + (f" --margins={args.margins}" if args.margins else "")
            + (f' --scale-sets="{args.scale_sets}"' if args.scale_sets else ""),
        },
    )


if __name__ == "__main__":
    main()
