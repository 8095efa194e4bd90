"""A peer on the STR task's test sets: RapidOCR's recognizer (PaddleOCR's PP-OCRv4 text recognition, ONNX
Runtime on the CPU), recognition only, on the very crops tfls is scored on.

    pip install rapidocr-onnxruntime       # bench only, never in requirements.txt; ships its models, offline
    python bench/rapidocr_peer.py [--limit=N] [--threads=N]

Each 32x100 crop of the STR task's `test` and `test_ood` sets goes to `RapidOCR()(crop, use_det=False,
use_cls=False, use_rec=True)`, one word per call (batch 1, as a client sends); its text is case-folded and
filtered to the charset, then scored like bench/tesseract_peer.py (whose helpers this uses) into
`peers.rapidocr` of docs/results/str_peers.json.
"""

import argparse
import time
from importlib import metadata

import tesseract_peer as peer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=0, help="only the first N images of each set (0 = all)")
    parser.add_argument(
        "--threads", type=int, default=-1, help="ONNX Runtime intra-op threads (-1: the library's default)"
    )
    args = parser.parse_args()
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        parser.error("rapidocr-onnxruntime is not installed (pip install rapidocr-onnxruntime)")

    task = peer.str_task()
    sets = peer.eval_sets(task, args.limit)
    engine = RapidOCR(intra_op_num_threads=args.threads)
    version = f"rapidocr-onnxruntime {metadata.version('rapidocr-onnxruntime')}"
    version += f" (PP-OCRv4 rec, onnxruntime {metadata.version('onnxruntime')})"

    def read(image):
        result, _ = engine(image, use_det=False, use_cls=False, use_rec=True)
        return " ".join(r[0] for r in result or [])

    read(sets["test"][0][0])  # warm-up: the first call initialises the session
    print(f"{version}: {', '.join(f'{n} ({len(s[1])})' for n, s in sets.items())}", flush=True)
    start = time.time()
    results, ms, examples = peer.score(task, sets, read)
    entry = {
        "version": version,
        "settings": f"recognition only (use_det=False, use_cls=False), batch 1, intra_op_num_threads={args.threads}",
        "command": peer.command(),
        **results,
        "ms_per_word": ms,
        "wall_s": time.time() - start,
        "load_average_1min": peer.load_average(),
        "examples": examples,
    }
    peer.save_peer("rapidocr", entry)


if __name__ == "__main__":
    main()
