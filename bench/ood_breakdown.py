"""Where a recognizer's test_ood errors come from: the held-out fonts, or the harder distortion mix (and which
part of it).

    python bench/ood_breakdown.py                              # the shipped baseline, weights/str
    python bench/ood_breakdown.py --weights=workdir/x/models/baseline --count=500

Renders `--count` words of the `test` stream (the same words in every case) four ways: training fonts with the
training mix (the `test` set), held-out fonts with the training mix, training fonts with the ood mix, held-out
fonts with the ood mix (the `test_ood` set's fonts and mix), training fonts with the hard mix of the training
stream's harder share (`data.hard_distortions`, the mix of `val_hard`); then training fonts with the training
mix where one group of distortion keys takes its ood value. The recognizer reads every set; accuracy and total edit
distance show which change costs what. Writes docs/results/str_ood_breakdown.json.
"""

import argparse
import os
import time

import common

# groups of recognition/renderer.py DISTORTION_LIMITS keys, in the order of configs/str.py
GROUPS = {
    "geometry": "rotation_deg shear perspective curve_prob curve tracking_prob tracking",
    "crop and surroundings": "crop crop_cut margin neighbours_prob neighbour_lines_prob lines_prob",
    "colours": "colour min_contrast low_contrast_prob low_contrast outline_prob text_shadow_prob",
    "background": "textured_background backgrounds texture_strength",
    "lighting": "gradient_prob gradient shadow_prob shadow",
    "degradation": (
        "blur blur_radius motion_blur_prob motion_blur noise jpeg jpeg_quality low_resolution_prob low_resolution"
    ),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=os.path.join(common.ROOT, "weights", "str"), help="a weights folder")
    parser.add_argument("--count", type=int, default=500, help="words per case")
    parser.add_argument("--set", action="append", help="config override (repeatable)")
    parser.add_argument("--output", default="str_ood_breakdown.json")
    args = parser.parse_args()
    start = time.time()

    from tfls.job.weights import load_weights
    from tfls.recognition import data as data_lib
    from tfls.recognition.renderer import DISTORTION_LIMITS, WordRenderer
    from tfls.recognition.task import RecognitionTask

    config = common.load_config("str", None, overrides=common.parse_overrides(args.set))
    grouped = sorted(k for keys in GROUPS.values() for k in keys.split())
    if grouped != sorted(DISTORTION_LIMITS):
        raise SystemExit(f"GROUPS must cover the distortion keys exactly: {sorted(DISTORTION_LIMITS)}")
    task = RecognitionTask(config)
    model = task.build_model()
    load_weights(args.weights, model, f"weights in {args.weights}")
    d = config.data
    train_fonts, ood_fonts = task._font_split()
    train_mix, ood_mix = dict(d.distortions), dict(d.ood_distortions)
    cases = [
        ("training fonts, training mix (test)", train_fonts, train_mix),
        ("held-out fonts, training mix", ood_fonts, train_mix),
        ("training fonts, ood mix", train_fonts, ood_mix),
        ("held-out fonts, ood mix (test_ood's fonts and mix)", ood_fonts, ood_mix),
        ("training fonts, the training stream's hard mix (val_hard's mix)", train_fonts, dict(d.hard_distortions)),
    ]
    for group, keys in GROUPS.items():
        mix = dict(train_mix)
        for key in keys.split():
            mix[key] = ood_mix[key]
        cases.append((f"training fonts, training mix, {group} at ood values", train_fonts, mix))
    seed = data_lib.eval_set_seed(d.seed, "test")
    rows = []
    for name, fonts, mix in cases:
        renderer = WordRenderer(*task.image_shape[:2], fonts, mix, task.image_shape[2])
        images, labels = data_lib.render_arrays(renderer, task.sampler, task.charset, seed, 0, args.count)[:2]
        metrics = task.evaluate(model, data_lib.array_dataset(images, labels, int(config.eval.batch_size)))
        rows.append(
            {"case": name, "accuracy": metrics["accuracy"], "total_edit_distance": metrics["total_edit_distance"]}
        )
        print(f"{name}: accuracy {metrics['accuracy']:.1f} %, total ED {metrics['total_edit_distance']}", flush=True)
    common.write_json(
        args.output,
        {
            "weights": os.path.relpath(os.path.abspath(args.weights), common.ROOT),
            "count": args.count,
            "groups": GROUPS,
            "rows": rows,
            "machine": common.machine(),
            "wall_time_s": time.time() - start,
            "command": "python bench/ood_breakdown.py" + (f" --weights={args.weights}" if args.weights else ""),
        },
    )


if __name__ == "__main__":
    main()
