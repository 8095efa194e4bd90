"""The recognizer alone in the OCR pipeline: how many scene words it reads when the boxes are right.

    python bench/scene_crop_reading.py                                       # weights/str
    python bench/scene_crop_reading.py --weights=before=/tmp/old_str,after=weights/str --limit=150

Renders the detection task's `test` and `test_ood` scenes (`--sets`; as bench/ocr_endtoend.py renders them,
scenes 0 .. `--limit` - 1), cuts every cared-for ground-truth word out exactly as the OCR export cuts a
detected word (`tfls.ocr.export.word_crops`: perspective crop, `MARGIN`, grey) and has each recognizer read
the crops. So the end-to-end loss that is the recognizer's, not the detector's, is measured apart: accuracy
(case-insensitive, as the end-to-end rule) and total edit distance, split by the word's height in the scene
(pixels), its angle and its length. Words longer than the recognizer's `data.max_length` are counted (they
cannot be read) and kept in the figures.

Writes docs/results/str_scene_crops.json (TFLS_RESULTS_DIR elsewhere); `python bench/report.py` renders it.
"""

import argparse
import math
import time

import common
import numpy as np

HEIGHT_BINS = (0, 12, 16, 24, 40, 10**6)
ANGLE_BINS = (0, 5, 20, 60, 181)
LENGTH_BINS = (1, 4, 7, 10, 11, 100)


def scene_words(task, set_name, count):
    """`(words, parts)`: the cared-for words of scenes 0 .. count - 1 (text, height, angle) and, per scene
    holding any, `(image, their quads)`."""
    import ocr_endtoend

    words, parts = [], []
    for scene in ocr_endtoend.render_scenes(task, set_name, count):
        quads = np.asarray(scene.quads, np.float32).reshape(-1, 4, 2)
        keep = [j for j, t in enumerate(scene.texts) if t != "###"]
        for j in keep:
            q = quads[j]
            height = 0.5 * (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1]))
            angle = abs(math.degrees(math.atan2(q[1, 1] - q[0, 1], q[1, 0] - q[0, 0])))
            words.append({"text": scene.texts[j].lower(), "height": float(height), "angle": float(angle)})
        if keep:
            parts.append((scene.image, quads[keep]))
    return words, parts


def read_all(recognizer_task, model, parts, batch=256):
    from tfls.ocr.export import word_crops
    from tfls.recognition.serving import predict_text

    table = recognizer_task.charset.lookup_table()
    crops = np.concatenate([word_crops(image, quads, model.image_shape).numpy() for image, quads in parts])
    texts = []
    for start in range(0, len(crops), batch):
        out, _ = predict_text(model, crops[start : start + batch], table)
        texts += [t.decode() for t in out.numpy()]
    return texts


def _bins(words, texts, key, edges):
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        pick = [(w, t) for w, t in zip(words, texts) if lo <= (len(w["text"]) if key == "length" else w[key]) < hi]
        if pick:
            out.append(
                {
                    "range": [lo, hi],
                    "words": len(pick),
                    "accuracy": 100.0 * float(np.mean([w["text"] == t for w, t in pick])),
                }
            )
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--weights", default="weights/str", help="recognizer weights folders, optionally labelled: a=path,b=path"
    )
    parser.add_argument("--sets", default="test,test_ood")
    parser.add_argument("--limit", type=int, default=150, help="scenes per set")
    parser.add_argument("--output", default="str_scene_crops.json")
    args = parser.parse_args()
    start = time.time()

    import ocr_endtoend

    from tfls.ocr.export import load_task_model
    from tfls.recognition.metrics import edit_distances

    systems = []
    for item in args.weights.split(","):
        label, _, path = item.rpartition("=")
        systems.append((label or path, path))
    scene_task = ocr_endtoend.scene_task()
    results = {}
    for set_name in args.sets.split(","):
        words, parts = scene_words(scene_task, set_name, args.limit)
        results[set_name] = {"num_words": len(words), "systems": {}}
        for label, path in systems:
            task, model, _ = load_task_model("str", weights=path)
            texts = read_all(task, model, parts)
            too_long = sum(len(w["text"]) > task.charset.max_length for w in words)
            row = {
                "weights": path,
                "accuracy": 100.0 * float(np.mean([w["text"] == t for w, t in zip(words, texts)])),
                "total_edit_distance": int(edit_distances(texts, [w["text"] for w in words]).sum()),
                "longer_than_max_length": int(too_long),
                "by_height": _bins(words, texts, "height", HEIGHT_BINS),
                "by_angle": _bins(words, texts, "angle", ANGLE_BINS),
                "by_length": _bins(words, texts, "length", LENGTH_BINS),
            }
            results[set_name]["systems"][label] = row
            print(f"{set_name} {label}: accuracy {row['accuracy']:.1f} %, total ED {row['total_edit_distance']}")
    common.write_json(
        args.output,
        {
            "sets": results,
            "scenes_per_set": args.limit,
            "machine": common.machine(),
            "wall_time_s": time.time() - start,
            "command": f"python bench/scene_crop_reading.py --weights={args.weights} --limit={args.limit}",
        },
    )


if __name__ == "__main__":
    main()
