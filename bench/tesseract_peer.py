"""A peer on the STR task's test sets: Tesseract (`--psm 7`, one text line) on the very images tfls is scored on.

    apt-get install tesseract-ocr          # Debian's package; not needed by the tests
    python bench/tesseract_peer.py [--limit=N]

Renders the STR task's `test` and `test_ood` sets exactly as the job evaluates them
(`RecognitionTask(configs/str.py).eval_datasets()`), runs Tesseract on each crop (upscaled 3x), keeps only the
charset's characters of its output, case-folded, and scores it with the task's own `WordMetrics` (word
accuracy %, total and normalised edit distance) and the wall time per word (PNG write + one `tesseract`
process). Its entry `peers.tesseract` goes into docs/results/str_peers.json, beside the other peers'
(bench/rapidocr_peer.py uses the helpers below); `bench/report.py` puts them beside tfls' models.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import common
import numpy as np

SETS = ("test", "test_ood")
PEERS_JSON = "str_peers.json"


def str_task():
    """The STR task of configs/str.py (the config the default job evaluates with)."""
    from tfls import configuration
    from tfls.recognition.task import RecognitionTask

    return RecognitionTask(configuration.load_config(os.path.join(common.ROOT, "configs", "str.py")))


def eval_sets(task, limit=0):
    """`{set: (uint8 images [N, 32, 100, C], ground-truth strings)}` for `test` and `test_ood`, from the
    task's own evaluation datasets (float32 0-255 images, EOS-padded label ids)."""
    datasets = task.eval_datasets()
    out = {}
    for name in SETS:
        images, texts = [], []
        for x, y in datasets[name]:
            images.append(np.clip(np.rint(x.numpy()), 0, 255).astype(np.uint8))
            texts += [task.charset.decode(row) for row in y.numpy()]
        images = np.concatenate(images)
        if limit:
            images, texts = images[:limit], texts[:limit]
        out[name] = (images, texts)
    return out


def clean(task, text):
    """A peer's output as the task compares it: case-folded, only the charset's characters kept."""
    text = task.charset.normalize(text.strip())
    return "".join(c for c in text if c in task.charset.characters)


def score(task, sets, read):
    """Runs `read(uint8 image [H, W, C]) -> str` on every image of every set: `{set: metrics}` (WordMetrics'
    plus `ms_per_word`, the wall time of `read` per image), the mean ms per word over all sets, and the first
    examples of each set."""
    from tfls.recognition import metrics

    results, examples, total_s, total_n = {}, {}, 0.0, 0
    for name, (images, texts) in sets.items():
        preds, seconds = [], 0.0
        for i, image in enumerate(images):
            start = time.perf_counter()
            raw = read(image)
            seconds += time.perf_counter() - start
            preds.append(clean(task, raw))
            if (i + 1) % 100 == 0:
                print(f"  {name}: {i + 1}/{len(images)} ({1000 * seconds / (i + 1):.0f} ms/word)", flush=True)
        acc = metrics.WordMetrics()
        acc.update(preds, texts)
        results[name] = {**acc.result(), "ms_per_word": 1000.0 * seconds / max(len(images), 1)}
        examples[name] = [{"gt": g, "pred": p} for g, p in list(zip(texts, preds))[:15]]
        total_s += seconds
        total_n += len(images)
        r = results[name]
        print(
            f"  {name}: accuracy {r['accuracy']:.1f} %, total ED {r['total_edit_distance']}, "
            f"norm. ED {r['normalized_edit_distance']:.4f}, {r['ms_per_word']:.1f} ms/word",
            flush=True,
        )
    return results, 1000.0 * total_s / max(total_n, 1), examples


def save_peer(name, entry):
    """Puts `entry` under `peers.<name>` of docs/results/str_peers.json, keeping the other peers' entries;
    `machine` is this run's, `command` every peer's command."""
    path = os.path.join(common.RESULTS_DIR, PEERS_JSON)
    data = {}
    if os.path.exists(path):
        with open(path) as f:
            data = json.load(f)
    peers = data.get("peers", {})
    peers[name] = entry
    payload = {
        "machine": common.machine(),
        "command": "; ".join(p["command"] for p in peers.values() if p.get("command")),
        "sets": list(SETS),
        "config": "configs/str.py",
        "comparison": "case-insensitive, peer output filtered to the charset's characters (0-9a-z)",
        "peers": peers,
    }
    common.write_json(PEERS_JSON, payload)


def command():
    return "python bench/" + os.path.basename(sys.argv[0]) + "".join(" " + a for a in sys.argv[1:])


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=0, help="only the first N images of each set (0 = all)")
    parser.add_argument("--scale", type=int, default=3, help="upscaling of the 32x100 crops before Tesseract")
    args = parser.parse_args()
    if shutil.which("tesseract") is None:
        parser.error("tesseract is not installed (Debian: apt-get install tesseract-ocr)")

    from PIL import Image

    task = str_task()
    sets = eval_sets(task, args.limit)
    version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "word.png")

        def read(image):
            # Tesseract prefers dark text on a light background at ~30 px x-height: upscale the crop.
            pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
            pil.resize((pil.width * args.scale, pil.height * args.scale), Image.BICUBIC).save(path)
            out = subprocess.run(["tesseract", path, "stdout", "--psm", "7"], capture_output=True, text=True)
            return out.stdout

        print(f"{version}: {', '.join(f'{n} ({len(s[1])})' for n, s in sets.items())}", flush=True)
        start = time.time()
        results, ms, examples = score(task, sets, read)
    entry = {
        "version": version,
        "settings": f"--psm 7, crops upscaled {args.scale}x (bicubic), one process per word",
        "command": command(),
        **results,
        "ms_per_word": ms,
        "wall_s": time.time() - start,
        "load_average_1min": load_average(),
        "examples": examples,
    }
    save_peer("tesseract", entry)


if __name__ == "__main__":
    main()
