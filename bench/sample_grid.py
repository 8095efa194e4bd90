"""Writes docs/str_samples.png: rendered words of the training mix, its harder share, the scene word crops,
and the test_ood mix.

Each tile is one image exactly as the recognizer gets it (scaled up 2x for viewing), its label under it.
  python bench/sample_grid.py [--config=configs/str.py] [--rows=8] [--cols=8] [--out=docs/str_samples.png]
With --speed=N it also renders N images of each mix and prints images per second of CPU time (one core:
rendering is single-threaded Python, so CPU time stays meaningful when other jobs share the machine).
"""

import argparse
import importlib.util
import os
import sys
import time

from PIL import Image, ImageDraw, ImageFont

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def load_config(path):
    spec = importlib.util.spec_from_file_location("sample_grid_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def grid(images, labels, title, cols, scale=2):
    """Tiles `images` (uint8 [N, H, W, C]) with their labels under them, and a title above."""
    h, w = images.shape[1:3]
    tile_w, tile_h, caption = w * scale + 8, h * scale + 22, 18
    rows = (len(images) + cols - 1) // cols
    canvas = Image.new("RGB", (cols * tile_w + 8, rows * tile_h + 30), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=14)
    draw.text((8, 6), title, fill=(0, 0, 0), font=font)
    for i, (image, label) in enumerate(zip(images, labels)):
        r, c = divmod(i, cols)
        x, y = 8 + c * tile_w, 30 + r * tile_h
        tile = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).convert("RGB")
        canvas.paste(tile.resize((w * scale, h * scale), Image.NEAREST), (x, y))
        draw.text((x, y + h * scale + 2), label, fill=(0, 0, 160), font=ImageFont.load_default(size=caption - 5))
    return canvas


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(ROOT, "configs", "str.py"))
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--cols", type=int, default=8)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "str_samples.png"))
    parser.add_argument("--speed", type=int, default=0, help="also time this many renders of each mix")
    args = parser.parse_args(argv)

    from tfls.recognition import data as data_lib
    from tfls.recognition.task import RecognitionTask

    task = RecognitionTask(load_config(args.config))
    n = args.rows * args.cols
    panels = []
    sets = [("test", task.renderer, "training fonts and distortion mix (the val/test sets look like this)")]
    train = task.train_renderer
    if train is not task.renderer:
        sets.append(
            (
                "test",
                train.hard,
                f"the harder training mix (data.hard_distortions; {train.hard_fraction:.0%} of training words)",
            )
        )
    sets.append(("test_ood", task.ood_renderer, "held-out fonts and the harder ood mix (test_ood)"))
    for name, renderer, title in sets:
        seed = data_lib.eval_set_seed(task.config.data.seed, name)
        images, _, texts = data_lib.render_arrays(renderer, task.sampler, task.charset, seed, 0, n)
        panels.append(grid(images, texts, title, args.cols))
        if name == "test" and renderer is not task.renderer:
            fraction = float(task.config.data.get("scene_fraction", 0.0))
            if fraction > 0:
                import numpy as np

                pool = task.scene_pool
                index = pool.sample(n, np.random.default_rng(0))
                texts = [task.charset.decode(row) for row in pool.labels[index]]
                title = f"words cut out of training scenes (data.scene_fraction; {fraction:.0%} of each batch)"
                panels.append(grid(pool.images[index], texts, title, args.cols))
    width = max(p.width for p in panels)
    out = Image.new("RGB", (width, sum(p.height for p in panels)), (255, 255, 255))
    y = 0
    for p in panels:
        out.paste(p, (0, y))
        y += p.height
    out.save(args.out, optimize=True)
    print(f"wrote {args.out} ({out.width}x{out.height}, {os.path.getsize(args.out) // 1024} KiB)")
    if args.speed:
        from tfls.recognition.renderer import render_example

        for name, renderer in (("training mix", task.renderer), ("ood mix", task.ood_renderer)):
            start = time.process_time()
            for i in range(args.speed):
                render_example(renderer, task.sampler, 12345, i)
            rate = args.speed / (time.process_time() - start)
            print(f"{name}: {rate:.0f} images/s of CPU time ({renderer.height}x{renderer.width}x{renderer.channels})")


if __name__ == "__main__":
    main()
