"""Writes LMDB word datasets in the STR community's format (`image-%09d`, `label-%09d`, `num-samples`).

From a folder and a `gt.txt` of `path<TAB>label` lines:
  python -m tfls.recognition.make_lmdb --gt_file=data/gt.txt --output=data/lmdb_val
From the synthetic renderer (a fixed held-out set to reuse across runs):
  python -m tfls.recognition.make_lmdb --synthetic=2000 --seed=123 --config=configs/str.py --output=data/synth_val
Missing files, undecodable images and malformed lines are skipped, counted and named in the log.
"""

import argparse
import io
import logging
import os
import sys

import lmdb
from PIL import Image

from tfls.images import MAX_PIXELS

log = logging.getLogger("make_lmdb")


def write_lmdb(output, examples, map_size=1 << 34):
    """Writes `(image_bytes, label)` pairs with keys numbered from 1.

    Args:
      output: LMDB folder (created).
      examples: iterable of `(encoded image bytes, label str)`.
      map_size: LMDB map size in bytes (virtual; sparse on disk).

    Returns:
      Number of records written.
    """
    os.makedirs(output, exist_ok=True)
    env = lmdb.open(output, map_size=map_size)
    count = 0
    txn = env.begin(write=True)
    for data, label in examples:
        count += 1
        txn.put(f"image-{count:09d}".encode(), data)
        txn.put(f"label-{count:09d}".encode(), label.encode("utf-8"))
        if count % 1000 == 0:
            txn.commit()
            txn = env.begin(write=True)
    txn.put(b"num-samples", str(count).encode())
    txn.commit()
    env.close()
    return count


def gt_file_examples(gt_file, image_dir=None, stats=None, max_pixels=MAX_PIXELS):
    """Yields `(bytes, label)` from a `path<TAB>label` file, skipping (and counting in `stats`) bad lines.

    The file is UTF-8 (a byte-order mark and CRLF line ends are accepted). Labels are written as they are:
    empty, long or out-of-charset labels are the reader's to filter (`LmdbWordDataset` counts them by reason),
    since the charset is chosen when training, not when writing.

    Args:
      gt_file: the ground-truth file; paths are relative to `image_dir` (default: the file's folder).
      image_dir: root of the image paths.
      stats: dict updated with counts `written`, `malformed_line`, `non_utf8_line`, `missing_file`,
        `corrupt_image`, `image_too_large`.
      max_pixels: larger images are skipped (the readers would refuse them).
    """
    stats = stats if stats is not None else {}
    image_dir = image_dir or os.path.dirname(os.path.abspath(gt_file))

    def skip(reason, lineno, message, *args):
        stats[reason] = stats.get(reason, 0) + 1
        log.warning("%s:%d: " + message, gt_file, lineno, *args)

    with open(gt_file, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                skip("non_utf8_line", lineno, "not UTF-8 (%s): %r", e.reason, raw[:80])
                continue
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            if "\t" not in line:
                skip("malformed_line", lineno, "no TAB between path and label: %r", line)
                continue
            path, label = line.split("\t", 1)
            full = os.path.join(image_dir, path)
            try:
                with open(full, "rb") as im:
                    data = im.read()
            except OSError as e:
                skip("missing_file", lineno, "cannot read %s: %s", full, e)
                continue
            try:
                with Image.open(io.BytesIO(data)) as img:
                    if img.width * img.height > max_pixels:
                        skip("image_too_large", lineno, "%s has %dx%d pixels (limit %d)", full, *img.size, max_pixels)
                        continue
                    img.load()
                    if img.width == 0 or img.height == 0:
                        raise ValueError("empty image")
            except Exception as e:  # PIL raises many types for bad data
                skip("corrupt_image", lineno, "undecodable image %s: %s", full, e)
                continue
            stats["written"] = stats.get("written", 0) + 1
            yield data, label


def synthetic_examples(config, count, seed):
    """Yields `count` PNG-encoded rendered words of stream `seed`, with the renderer of `config.data`."""
    from tfls.recognition.task import RecognitionTask

    task = RecognitionTask(config)
    for i in range(count):
        from tfls.recognition.renderer import render_example

        image, label = render_example(task.renderer, task.sampler, seed, i)
        buf = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
        yield buf.getvalue(), task.charset.normalize(label)


def _load_config(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("tfls_lmdb_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="LMDB folder to write")
    parser.add_argument("--gt_file", help="path<TAB>label file")
    parser.add_argument("--image_dir", help="root of the gt_file paths (default: its folder)")
    parser.add_argument("--synthetic", type=int, default=0, help="render this many words instead")
    parser.add_argument("--seed", type=int, default=123, help="render stream seed")
    parser.add_argument("--config", default="configs/str.py", help="config whose data block sets the renderer")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if bool(args.gt_file) == bool(args.synthetic):
        parser.error("give exactly one of --gt_file or --synthetic")
    stats = {}
    if args.gt_file:
        examples = gt_file_examples(args.gt_file, args.image_dir, stats)
    else:
        examples = synthetic_examples(_load_config(args.config), args.synthetic, args.seed)
    count = write_lmdb(args.output, examples)
    skipped = {k: v for k, v in stats.items() if k != "written"}
    log.info("wrote %d records to %s; skipped %d %s", count, args.output, sum(skipped.values()), skipped or "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
