"""Score an ICDAR 2015 (Challenge 4) submission as the official script does, and print its JSON.

    python -m tfls.detection.icdar_eval --gt=GT_FOLDER_OR_ZIP --submission=RES_FOLDER_OR_ZIP \
        [--iou=0.5] [--per-sample] [--output=result.json]

The ground truth holds `gt_img_<id>.txt` files, the submission `res_img_<id>.txt` files (a folder, or a zip
with the files at its top level). The output has the official shape: `{"calculated", "Message", "method",
"per_sample"}`; `per_sample` stays empty without `--per-sample`. A user error prints one line
`tfls: error: ...` and exits with status 2.
"""

import argparse
import json
import sys

from tfls.detection import icdar


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        _fail(message)


def _fail(message):
    print(f"tfls: error: {message}", file=sys.stderr)
    sys.exit(2)


def _iou(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {value}")
    return value


def parse_args(argv=None):
    parser = _ArgumentParser(prog="python -m tfls.detection.icdar_eval", description=__doc__.splitlines()[0])
    parser.add_argument("--gt", required=True, help="folder or zip of gt_img_<id>.txt files")
    parser.add_argument("--submission", required=True, help="folder or zip of res_img_<id>.txt files")
    parser.add_argument("--iou", type=_iou, default=0.5, help="a pair matches when IoU is greater (default 0.5)")
    parser.add_argument("--per-sample", action="store_true", help="add each image's figures, pairs and log")
    parser.add_argument("--output", help="also write the JSON to this file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        result = icdar.evaluate_files(args.gt, args.submission, iou_threshold=args.iou, per_sample=args.per_sample)
    except icdar.ICDARFormatError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"cannot read {e.filename}: {e.strerror}")
    text = json.dumps(result)
    if args.output:
        try:
            with open(args.output, "w") as f:
                f.write(text + "\n")
        except OSError as e:
            _fail(f"cannot write --output {args.output}: {e.strerror}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
