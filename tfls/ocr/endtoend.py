"""ICDAR 2015 (Challenge 4) end-to-end evaluation: a word counts when its box is found and its text is right.

    python -m tfls.ocr.endtoend --gt=GT_FOLDER_OR_ZIP --submission=RES_FOLDER_OR_ZIP [--iou=0.5]
        [--exact-text] [--per-sample] [--output=result.json]

Rule by rule as the official end-to-end script (generic vocabulary, no lexicon):
1. Boxes are paired exactly as in detection (`tfls.detection.icdar.evaluate_image`): detections with more
   than half their area inside one don't-care (`###`) box are ignored; cared-for ground truth and the other
   detections are paired greedily one-to-one in file order at IoU strictly greater than 0.5.
2. A pair is correct when its transcriptions agree case-insensitively. As the official script does, a ground
   truth that starts and/or ends with one of `!?.:,*"()·[]/'` also accepts the word without that character
   (`--exact-text` turns this off: plain case-insensitive equality).
3. Precision = correct / cared-for detections, recall = correct / cared-for ground truth, pooled over the
   dataset; per image, the detection protocol's rules for images without cared-for words.

Files: `gt_img_<id>.txt` as for detection; `res_img_<id>.txt` lines `x1,y1,...,x4,y4,transcription`
(integer corners, clockwise; the transcription is everything after the eighth comma, double-quoted or not).
A user error prints one line `tfls: error: ...` and exits with status 2.
"""

import json
import os
import sys

import numpy as np

from tfls.detection import icdar
from tfls.detection.icdar_eval import _ArgumentParser, _fail, _iou

SPECIAL_CHARACTERS = "!?.:,*\"()·[]/'"


def transcription_match(gt_text, det_text, exact=False):
    """Whether a detection's text reads the ground truth's, case-insensitively.

    Args:
      gt_text: the ground-truth transcription.
      det_text: the detection's.
      exact: plain case-insensitive equality; otherwise (the official rule) one of `SPECIAL_CHARACTERS` at
        the start and/or the end of the ground truth may be missing from the detection.
    """
    gt, det = gt_text.upper(), det_text.upper()
    if gt == det:
        return True
    if exact or not gt:
        return False
    first, last = gt[0] in SPECIAL_CHARACTERS, gt[-1] in SPECIAL_CHARACTERS
    return (first and gt[1:] == det) or (last and gt[:-1] == det) or (first and last and gt[1:-1] == det)


def evaluate_image(det_quads, det_texts, gt_quads, gt_texts, gt_dontcare, iou_threshold=0.5, exact_text=False):
    """End-to-end figures of one image.

    Args:
      det_quads: `[d, 4, 2]` detections (pixels) in the order they were written; `det_texts` their texts.
      gt_quads, gt_texts, gt_dontcare: the ground truth (`gt_dontcare` bool `[g]`).
      iou_threshold: a pair of boxes matches when its IoU is strictly greater.
      exact_text: see `transcription_match`.

    Returns:
      `tfls.detection.icdar.evaluate_image`'s dict (its `matched`, `precision`, `recall`, `hmean` are the
      detection figures) with `correct` (pairs whose text is right), `pairs_correct` (a bool per pair) and
      the end-to-end `e2e_precision`, `e2e_recall`, `e2e_hmean` of the image.
    """
    if len(det_texts) != len(np.asarray(det_quads).reshape(-1, 8)):
        raise ValueError(f"{len(det_texts)} transcriptions for {len(np.asarray(det_quads).reshape(-1, 8))} boxes")
    r = icdar.evaluate_image(det_quads, gt_quads, gt_dontcare, iou_threshold)
    correct = [transcription_match(gt_texts[i], det_texts[j], exact_text) for i, j in r["pairs"]]
    r["pairs_correct"] = correct
    r["correct"] = int(sum(correct))
    r["e2e_precision"], r["e2e_recall"], r["e2e_hmean"] = icdar.image_scores(
        r["correct"], r["num_care_gt"], r["num_care_det"]
    )
    return r


class EndToEndAccumulator:
    """Pools the per-image counts of `evaluate_image` into dataset figures (end-to-end and detection).

    Args:
      iou_threshold: see `evaluate_image`.
      exact_text: see `transcription_match`.
    """

    def __init__(self, iou_threshold=0.5, exact_text=False):
        self.iou_threshold = iou_threshold
        self.exact_text = exact_text
        self.correct = self.matched = self.care_gt = self.care_det = self.images = 0

    def add(self, det_quads, det_texts, gt_quads, gt_texts, gt_dontcare):
        """Scores one image, adds its counts and returns `evaluate_image`'s dict."""
        r = evaluate_image(det_quads, det_texts, gt_quads, gt_texts, gt_dontcare, self.iou_threshold, self.exact_text)
        self.correct += r["correct"]
        self.matched += r["matched"]
        self.care_gt += r["num_care_gt"]
        self.care_det += r["num_care_det"]
        self.images += 1
        return r

    def result(self):
        """`{"precision", "recall", "hmean"}` end to end, the same as `detection_*` (boxes only), the counts
        behind them and `num_images`."""
        precision, recall, hmean = icdar.pooled_scores(self.correct, self.care_gt, self.care_det)
        det_precision, det_recall, det_hmean = icdar.pooled_scores(self.matched, self.care_gt, self.care_det)
        return {
            "precision": precision,
            "recall": recall,
            "hmean": hmean,
            "detection_precision": det_precision,
            "detection_recall": det_recall,
            "detection_hmean": det_hmean,
            "num_correct": int(self.correct),
            "num_matched": int(self.matched),
            "num_care_gt": int(self.care_gt),
            "num_care_det": int(self.care_det),
            "num_images": int(self.images),
        }


def parse_result_file(data, name="<string>"):
    """Parse one end-to-end `res_img_<id>.txt`: `x1,y1,...,x4,y4,transcription` lines (the ground truth's
    grammar: integer corners, clockwise).

    Returns:
      `(quads float64 [d, 4, 2], texts)` in file order.

    Raises:
      ICDARFormatError: naming the file, the 1-based line and what is wrong.
    """
    ann = icdar.parse_gt_file(data, name)
    return ann.quads.astype(np.float64), ann.texts


def read_results(path):
    """Read the `res_img_<id>.txt` files of an end-to-end submission folder or zip.

    Returns:
      `{id (str): (quads [d, 4, 2], texts)}`, sorted by id.

    Raises:
      ICDARFormatError: a missing path, a file that is not `res_img_<id>.txt`, or a bad line.
    """
    files = icdar._sample_files(path, icdar.RESULT_NAME, strict=True)
    return {key: parse_result_file(data, name) for key, (name, data) in files.items()}


def evaluate(gt, results, iou_threshold=0.5, exact_text=False, per_sample=False):
    """The end-to-end evaluation of a submission, in the shape of `tfls.detection.icdar.evaluate`'s output.

    Args:
      gt: `{id: Annotation}` (`tfls.detection.icdar.read_gt`).
      results: `{id: (quads, texts)}` (`read_results`); an image without results has no detections.
      iou_threshold, exact_text: see `evaluate_image`.
      per_sample: fill `per_sample` with each image's figures and pairs.

    Returns:
      `{"calculated": True, "Message": "", "method": {...}, "per_sample": {...}}`; `method` holds
      `EndToEndAccumulator.result()` and the settings.

    Raises:
      ICDARFormatError: a result file without ground truth.
    """
    unknown = sorted(set(results) - set(gt), key=lambda key: (int(key), key))
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise icdar.ICDARFormatError(f"res_img_{unknown[0]}.txt has no ground truth gt_img_{unknown[0]}.txt{more}")
    acc = EndToEndAccumulator(iou_threshold, exact_text)
    samples = {}
    for key, ann in gt.items():
        quads, texts = results.get(key, (np.zeros((0, 4, 2)), []))
        r = acc.add(quads, texts, ann.quads, ann.texts, ann.dontcare)
        if per_sample:
            samples[key] = {
                "precision": r["e2e_precision"],
                "recall": r["e2e_recall"],
                "hmean": r["e2e_hmean"],
                "detection_precision": r["precision"],
                "detection_recall": r["recall"],
                "detection_hmean": r["hmean"],
                "pairs": [{"gt": i, "det": j, "correct": bool(c)} for (i, j), c in zip(r["pairs"], r["pairs_correct"])],
                "gtDontCare": r["gt_dontcare"],
                "detDontCare": r["det_dontcare"],
                "gtTrans": list(ann.texts),
                "detTrans": list(texts),
            }
    method = acc.result()
    method.update(iou_threshold=iou_threshold, exact_text=exact_text)
    return {"calculated": True, "Message": "", "method": method, "per_sample": samples}


def evaluate_files(gt_path, submission_path, iou_threshold=0.5, exact_text=False, per_sample=False):
    """`evaluate` on a ground-truth folder or zip and an end-to-end submission folder or zip."""
    return evaluate(icdar.read_gt(gt_path), read_results(submission_path), iou_threshold, exact_text, per_sample)


def _format_text(text):
    """A transcription as the grammar reads it back: quoted (with `\\` and `"` escaped) only when needed."""
    if text != text.strip() or (text.startswith('"') and text.endswith('"')) or "\n" in text:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
    return text


def write_results(directory, image_id, quads, texts):
    """Write an end-to-end `res_img_<id>.txt`: integer corners and the transcription, one word per line."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"res_img_{image_id}.txt"), "w", encoding="utf-8", newline="\r\n") as f:
        for q, text in zip(np.asarray(quads).reshape(-1, 8), texts):
            f.write(",".join(str(int(round(v))) for v in q) + "," + _format_text(text) + "\n")


def parse_args(argv=None):
    parser = _ArgumentParser(prog="python -m tfls.ocr.endtoend", description=__doc__.splitlines()[0])
    parser.add_argument("--gt", required=True, help="folder or zip of gt_img_<id>.txt files")
    parser.add_argument("--submission", required=True, help="folder or zip of res_img_<id>.txt files with texts")
    parser.add_argument("--iou", type=_iou, default=0.5, help="boxes match when IoU is greater (default 0.5)")
    parser.add_argument("--exact-text", action="store_true", help="no allowance for the GT's edge punctuation")
    parser.add_argument("--per-sample", action="store_true", help="add each image's figures and pairs")
    parser.add_argument("--output", help="also write the JSON to this file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        result = evaluate_files(args.gt, args.submission, args.iou, args.exact_text, args.per_sample)
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
