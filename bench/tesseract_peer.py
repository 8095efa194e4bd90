"""A peer on the same STR held-out set: Tesseract (`--psm 7`, one text line) against tfls' models.

    apt-get install tesseract-ocr          # Debian's package; not needed by the tests
    python bench/tesseract_peer.py --workdir=workdir/str   # a workdir where `--task=str` ran (optional)

Renders exactly the held-out set the STR job evaluates on (`synthetic_val` of configs/str.py), runs
Tesseract on each image, normalises its output the way the task's charset does (case folded, characters
outside the charset dropped), and computes the same metrics. With --workdir, the baseline and tuned rows
of that run's results.json are printed beside it. Writes docs/results/str_peer.json.
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time

import common


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="", help="a finished `--task=str` workdir to compare with")
    parser.add_argument("--limit", type=int, default=0, help="only the first N held-out images (0 = all)")
    args = parser.parse_args()
    if shutil.which("tesseract") is None:
        parser.error("tesseract is not installed (Debian: apt-get install tesseract-ocr)")

    from PIL import Image

    from tfls.recognition import data as data_lib
    from tfls.recognition import metrics
    from tfls.recognition.task import RecognitionTask

    config = common.load_config("str")
    task = RecognitionTask(config)
    d = config.data
    count = args.limit or int(d.eval_size)
    images, _, texts = data_lib.render_arrays(task.renderer, task.sampler, task.charset, d.seed + 7919, 0, count)
    version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    preds = []
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for i, image in enumerate(images):
            path = os.path.join(tmp, f"{i}.png")
            # Tesseract prefers dark text on a light background at ~30 px x-height: upscale 3x.
            pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
            pil.resize((pil.width * 3, pil.height * 3), Image.BICUBIC).save(path)
            out = subprocess.run(["tesseract", path, "stdout", "--psm", "7"], capture_output=True, text=True)
            text = task.charset.normalize(out.stdout.strip())
            preds.append("".join(c for c in text if c in d.characters))
    seconds = time.time() - start
    acc = metrics.WordMetrics()
    acc.update(preds, texts)
    result = {
        "tesseract": {"version": version, "synthetic_val": acc.result(), "seconds_per_image": seconds / max(count, 1)},
        "machine": common.machine(),
        "command": "python bench/tesseract_peer.py " + " ".join(os.sys.argv[1:]),
        "examples": [{"gt": g, "tesseract": p} for g, p in list(zip(texts, preds))[:20]],
    }
    if args.workdir:
        with open(os.path.join(args.workdir, "results.json")) as f:
            ours = json.load(f)
        for name in ("baseline", "control", "tuned"):
            if name in ours:
                result[f"tfls_{name}"] = {"synthetic_val": ours[name]["synthetic_val"]}
    for name, value in result.items():
        if isinstance(value, dict) and "synthetic_val" in value:
            print(f"{name:16s} {value['synthetic_val']}")
    common.write_json("str_peer.json", result)


if __name__ == "__main__":
    main()
