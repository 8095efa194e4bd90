"""ICDAR 2015 (Challenge 4) text localisation: the annotation format and the evaluation protocol.

Format: one `gt_img_<id>.txt` per `img_<id>.jpg`, one line per word:
`x1,y1,x2,y2,x3,y3,x4,y4,transcription` (integer pixels, clockwise from the top-left; the transcription may
contain commas; `###` = don't care), UTF-8 with an optional byte-order mark, LF or CRLF line ends. A method's
detections go one image per `res_img_<id>.txt`, lines `x1,y1,...,x4,y4`.

Protocol (rule by rule as the official script, `evaluate_image`): a detection with more than half of its area
inside one single don't-care box is itself ignored; the remaining detections and cared-for boxes are matched
greedily one-to-one in file order at IoU strictly greater than 0.5; precision, recall and hmean are pooled
over the whole dataset. `evaluate` gives the official script's output (method and per-sample figures);
`python -m tfls.detection.icdar_eval` runs it on files.
"""

import dataclasses
import glob
import os
import re
import zipfile

import numpy as np
import shapely

DONT_CARE = "###"


class ICDARFormatError(ValueError):
    """A malformed annotation line; the message names the file and the 1-based line."""


@dataclasses.dataclass
class Annotation:
    """The words of one image: `quads [n, 4, 2]` float32 pixels, `texts`, `dontcare [n]` bool."""

    quads: np.ndarray
    texts: list
    dontcare: np.ndarray


def _signed_area(quad):
    """Shoelace area of `[4, 2]` corners; positive when clockwise on screen (y pointing down)."""
    x, y = quad[:, 0], quad[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _self_intersecting(quad):
    def crosses(a, b, c, d):
        def side(p, q, r):
            return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

        return side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0

    return crosses(quad[0], quad[1], quad[2], quad[3]) or crosses(quad[1], quad[2], quad[3], quad[0])


def normalize_quad(quad):
    """Clockwise, simple corners of one quadrilateral, and what was done to them.

    Returns:
      `(quad [4, 2], fix)`: `fix` is None (already clockwise and simple), "counter_clockwise" (the order was
      reversed, keeping the first corner), "self_intersecting" (the corners were re-sorted clockwise around
      their centre, keeping the first corner) or "degenerate" (zero area; returned unchanged).
    """
    quad = np.asarray(quad, np.float32).reshape(4, 2)
    fix = None
    if _self_intersecting(quad):
        centre = quad.mean(0)
        angles = np.arctan2(quad[:, 1] - centre[1], quad[:, 0] - centre[0])
        order = np.argsort(angles, kind="stable")  # increasing angle = clockwise on screen
        order = np.roll(order, -int(np.flatnonzero(order == 0)[0]))
        quad, fix = quad[order], "self_intersecting"
    area = _signed_area(quad)
    if abs(area) < 1e-6:
        return quad, "degenerate"
    if area < 0:
        quad, fix = quad[[0, 3, 2, 1]], fix or "counter_clockwise"
    return quad, fix


def parse_gt(text, name="<string>", skip_bad=False, stats=None):
    """Parse the content of one `gt_img_<id>.txt`.

    Corners are made clockwise and simple (`normalize_quad`): counter-clockwise and self-intersecting
    quadrilaterals are reordered, zero-area ones become don't-care (they can never be matched and would give
    a degenerate training box); each is counted in `stats` under its `fix` name.

    Args:
      text: file content (str or bytes; a UTF-8 BOM and CRLF line ends are accepted).
      name: file name used in error messages.
      skip_bad: skip malformed lines (counted in `stats["skipped"]`) instead of raising; bytes that are not
        UTF-8 are then replaced (U+FFFD in the transcription) and counted in `stats["non_utf8"]`.
      stats: optional dict of counts.

    Returns:
      An `Annotation`.

    Raises:
      ICDARFormatError: a malformed line (fewer than 8 coordinates or a non-numeric one) or bytes that are
        not UTF-8, when not skipping.
    """
    stats = stats if stats is not None else {}
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = text.count(b"\n", 0, e.start) + 1
            if not skip_bad:
                raise ICDARFormatError(f"{name}: line {line}: not UTF-8 at byte {e.start}: {e.reason}") from None
            stats["non_utf8"] = stats.get("non_utf8", 0) + 1
            text = text.decode("utf-8-sig", errors="replace")
    text = text.lstrip("\ufeff")
    quads, texts, forced_dontcare = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(",", 8)
        try:
            if len(parts) < 8:
                raise ValueError(f"expected 8 coordinates and a transcription, got {len(parts)} fields")
            coords = [float(p) for p in parts[:8]]
            if not all(np.isfinite(coords)):
                raise ValueError("non-finite coordinate")
        except ValueError as e:
            if skip_bad:
                stats["skipped"] = stats.get("skipped", 0) + 1
                continue
            raise ICDARFormatError(f"{name}: line {number}: {e}: {line[:80]!r}") from None
        quad, fix = normalize_quad(coords)
        if fix is not None:
            stats[fix] = stats.get(fix, 0) + 1
        quads.append(quad)
        texts.append(parts[8].strip() if len(parts) > 8 else "")
        forced_dontcare.append(fix == "degenerate")
    quads = np.asarray(quads, np.float32).reshape(-1, 4, 2)
    dontcare = np.array([t == DONT_CARE or f for t, f in zip(texts, forced_dontcare)], bool)
    return Annotation(quads, texts, dontcare)


_ID = re.compile(r"gt_img_(\d+)\.txt$")


def read_gt_zip(path, skip_bad=False, stats=None):
    """Read every `gt_img_<id>.txt` of a zip (the competition's distribution format).

    Returns:
      `{image_id (int): Annotation}`.
    """
    out = {}
    with zipfile.ZipFile(path) as z:
        for member in z.namelist():
            m = _ID.search(os.path.basename(member))
            if m:
                out[int(m.group(1))] = parse_gt(z.read(member), f"{path}:{member}", skip_bad, stats)
    return out


def read_dataset_dir(image_dir, gt_dir=None, skip_bad=False, stats=None):
    """Pair `img_<id>.jpg` images with `gt_img_<id>.txt` annotations.

    Args:
      image_dir: folder of `img_<id>.jpg` (or .png).
      gt_dir: folder of annotations (default: `image_dir`).
      skip_bad: skip malformed lines and images without annotations (counted) instead of raising.
      stats: optional dict receiving "skipped" and "missing_gt" counts.

    Returns:
      A list of `(image_id, image_path, Annotation)` sorted by id.
    """
    gt_dir = gt_dir or image_dir
    items = []
    for path in sorted(glob.glob(os.path.join(image_dir, "img_*.*"))):
        m = re.search(r"img_(\d+)\.(jpg|jpeg|png)$", os.path.basename(path), re.I)
        if not m:
            continue
        gt_path = os.path.join(gt_dir, f"gt_img_{m.group(1)}.txt")
        if not os.path.exists(gt_path):
            if skip_bad:
                if stats is not None:
                    stats["missing_gt"] = stats.get("missing_gt", 0) + 1
                continue
            raise ICDARFormatError(f"{path}: no annotation file {gt_path}")
        with open(gt_path, "rb") as f:
            items.append((int(m.group(1)), path, parse_gt(f.read(), gt_path, skip_bad, stats)))
    if not items:
        raise ICDARFormatError(f"{image_dir}: no img_<id>.jpg files found")
    return sorted(items, key=lambda item: item[0])


def _shapes(quads):
    """Shapely polygons of `[n, 4, 2]` corners; self-intersecting or flat ones made valid (lobes / a line)."""
    polygons = shapely.polygons(quads) if len(quads) else np.empty(0, object)
    invalid = ~shapely.is_valid(polygons)
    if invalid.any():
        polygons[invalid] = shapely.make_valid(polygons[invalid])
    return polygons


def _intersection_areas(polygons1, polygons2):
    if len(polygons1) == 0 or len(polygons2) == 0:
        return np.zeros((len(polygons1), len(polygons2)))
    return shapely.area(shapely.intersection(polygons1[:, None], polygons2[None, :]))


def image_scores(matched, num_care_gt, num_care_det):
    """Precision, recall and hmean of one image, with the official script's rules for empty images.

    No cared-for ground truth gives recall 1 and precision 1 only without cared-for detections (0 with any);
    cared-for ground truth without cared-for detections gives precision 0.

    Returns:
      `(precision, recall, hmean)` floats.
    """
    if num_care_gt == 0:
        recall, precision = 1.0, 0.0 if num_care_det else 1.0
    else:
        recall = matched / num_care_gt
        precision = matched / num_care_det if num_care_det else 0.0
    hmean = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return float(precision), float(recall), float(hmean)


def pooled_scores(matched, num_care_gt, num_care_det):
    """Method-level precision, recall and hmean from counts pooled over a dataset (0 where a count is 0)."""
    recall = matched / num_care_gt if num_care_gt else 0.0
    precision = matched / num_care_det if num_care_det else 0.0
    hmean = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return float(precision), float(recall), float(hmean)


def evaluate_image(det_quads, gt_quads, gt_dontcare, iou_threshold=0.5, area_threshold=0.5):
    """ICDAR 2015 matching and figures of one image, rule by rule as the official script.

    1. A detection is don't care when more than `area_threshold` of its area lies inside ONE single
       don't-care box (each box on its own, not the boxes added together); zero-area detections never are.
    2. Cared-for boxes (in file order) take the first cared-for, still free detection (in file order) whose
       IoU is strictly greater than `iou_threshold`: greedy and one-to-one, not the best IoU.

    Args:
      det_quads: `[d, 4, 2]` detections (pixels), in the order they were written.
      gt_quads: `[g, 4, 2]` ground truth.
      gt_dontcare: `[g]` bool.
      iou_threshold: a pair matches when IoU is strictly greater (0.5 for the challenge; 0.7, 0.8 are
        stricter variants).
      area_threshold: the share of a detection's area inside one don't-care box that makes it don't care.

    Returns:
      dict with `matched`, `num_care_gt`, `num_care_det`, `pairs` (list of (gt index, det index), indices
      into the given arrays), `pair_ious`, `mean_matched_iou` (0 without pairs), `gt_dontcare` and
      `det_dontcare` (index lists), `iou` (`[g, d]` IoU of every pair) and the image's `precision`, `recall`,
      `hmean` (`image_scores`).
    """
    det_quads = np.asarray(det_quads, np.float64).reshape(-1, 4, 2)
    gt_quads = np.asarray(gt_quads, np.float64).reshape(-1, 4, 2)
    gt_dontcare = np.asarray(gt_dontcare, bool).reshape(-1)
    dets, gts = _shapes(det_quads), _shapes(gt_quads)
    det_area, gt_area = shapely.area(dets), shapely.area(gts)
    inter = _intersection_areas(gts, dets)
    union = gt_area[:, None] + det_area[None, :] - inter
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    inside_share = inter[gt_dontcare] / np.where(det_area > 0, det_area, 1.0)[None, :]
    det_dontcare = (det_area > 0) & (inside_share > area_threshold).any(axis=0)
    care_gt = np.flatnonzero(~gt_dontcare)
    care_det = np.flatnonzero(~det_dontcare)
    det_used = np.zeros(len(det_quads), bool)
    pairs, pair_ious = [], []
    for i in care_gt:
        for j in care_det:
            if not det_used[j] and iou[i, j] > iou_threshold:
                det_used[j] = True
                pairs.append((int(i), int(j)))
                pair_ious.append(float(iou[i, j]))
                break
    precision, recall, hmean = image_scores(len(pairs), len(care_gt), len(care_det))
    return {
        "matched": len(pairs),
        "num_care_gt": len(care_gt),
        "num_care_det": len(care_det),
        "pairs": pairs,
        "pair_ious": pair_ious,
        "mean_matched_iou": float(np.mean(pair_ious)) if pair_ious else 0.0,
        "gt_dontcare": [int(i) for i in np.flatnonzero(gt_dontcare)],
        "det_dontcare": [int(j) for j in np.flatnonzero(det_dontcare)],
        "iou": iou,
        "precision": precision,
        "recall": recall,
        "hmean": hmean,
    }


def match_image(det_quads, gt_quads, gt_dontcare, iou_threshold=0.5, area_threshold=0.5):
    """ICDAR 2015 matching of one image (`evaluate_image` without the figures).

    Returns:
      dict with `matched`, `num_care_gt`, `num_care_det` and `pairs` (list of (gt index, det index)).
    """
    r = evaluate_image(det_quads, gt_quads, gt_dontcare, iou_threshold, area_threshold)
    return {k: r[k] for k in ("matched", "num_care_gt", "num_care_det", "pairs")}


class ICDARAccumulator:
    """Pools the per-image matches of `evaluate_image` into dataset precision, recall and hmean.

    Args:
      iou_threshold: passed to `evaluate_image` (0.5 for the challenge).
      area_threshold: passed to `evaluate_image`.
    """

    def __init__(self, iou_threshold=0.5, area_threshold=0.5):
        self.iou_threshold = iou_threshold
        self.area_threshold = area_threshold
        self.matched = self.care_gt = self.care_det = self.images = 0
        self.iou_sum = 0.0

    def add(self, det_quads, gt_quads, gt_dontcare):
        """Matches one image, adds its counts and returns `evaluate_image`'s dict."""
        r = evaluate_image(det_quads, gt_quads, gt_dontcare, self.iou_threshold, self.area_threshold)
        self.matched += r["matched"]
        self.care_gt += r["num_care_gt"]
        self.care_det += r["num_care_det"]
        self.iou_sum += sum(r["pair_ious"])
        self.images += 1
        return r

    def result(self):
        """`{"precision", "recall", "hmean", "mean_matched_iou", "num_images"}` (0 where a denominator is 0).

        `mean_matched_iou` is the mean IoU over every matched pair of the dataset.
        """
        precision, recall, hmean = pooled_scores(self.matched, self.care_gt, self.care_det)
        return {
            "precision": precision,
            "recall": recall,
            "hmean": hmean,
            "mean_matched_iou": float(self.iou_sum / self.matched) if self.matched else 0.0,
            "num_images": int(self.images),
        }


# ----------------------------------------------------------------------------------------------------------
# Evaluation files: the official script's grammar, stricter than `parse_gt` (which serves training data).

_COORDINATES = ",".join([r"\s*(-?[0-9]+)\s*"] * 8)
_GT_LINE = re.compile(_COORDINATES + r",(.*)")
_RESULT_LINE = re.compile(_COORDINATES)
_QUOTED = re.compile(r'\s*"(.*)"\s*')
GT_NAME = re.compile(r"gt_img_([0-9]+)\.txt")
RESULT_NAME = re.compile(r"res_img_([0-9]+)\.txt")


def _diagnose(line, with_transcription):
    """What makes `line` fail the official grammar, in words."""
    fields = line.split(",", 8) if with_transcription else line.split(",")
    expected = (
        "8 integer coordinates and a transcription (x1,y1,...,x4,y4,text)"
        if with_transcription
        else "exactly 8 integer coordinates x1,y1,...,x4,y4 (no score, no transcription)"
    )
    if len(fields) < 8 or (not with_transcription and len(fields) != 8):
        return f"expected {expected}, got {len(fields)} fields"
    for k, field in enumerate(fields[:8], start=1):
        if not re.fullmatch(r"\s*-?[0-9]+\s*", field):
            return f"coordinate {k} {field.strip()!r} is not an integer"
    return f"expected {expected}, got 8 fields"


def _decode(data):
    """Bytes as the official script reads them: UTF-8 (bad bytes replaced), a leading BOM dropped."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    return data.removeprefix("\ufeff")


def _clockwise_sum(points):
    """The official orientation test: sum of (x2 - x1)(y2 + y1) over the edges; > 0 = counter-clockwise."""
    p = [(int(points[k]), int(points[k + 1])) for k in range(0, 8, 2)]
    return sum((p[(k + 1) % 4][0] - p[k][0]) * (p[(k + 1) % 4][1] + p[k][1]) for k in range(4))


def _parse_eval_lines(data, name, with_transcription):
    """`(points [n, 8] int, transcriptions)` of one evaluation file; raises ICDARFormatError on a bad line."""
    pattern = _GT_LINE if with_transcription else _RESULT_LINE
    points, texts = [], []
    for number, line in enumerate(_decode(data).split("\n"), start=1):
        line = line.replace("\r", "")
        if not line:
            continue
        m = pattern.fullmatch(line)
        if m is None:
            raise ICDARFormatError(f"{name}: line {number}: {_diagnose(line, with_transcription)}: {line[:80]!r}")
        coords = [int(m.group(k)) for k in range(1, 9)]
        if _clockwise_sum(coords) > 0:
            raise ICDARFormatError(
                f"{name}: line {number}: corners are counter-clockwise; list them clockwise in image "
                f"coordinates (x right, y down): {line[:80]!r}"
            )
        text = ""
        if with_transcription:
            text = m.group(9)
            quoted = _QUOTED.fullmatch(text)
            if quoted:
                text = quoted.group(1).replace("\\\\", "\\").replace('\\"', '"')
        points.append(coords)
        texts.append(text)
    return np.asarray(points, np.int64).reshape(-1, 8), texts


def parse_gt_file(data, name="<string>"):
    """Parse one `gt_img_<id>.txt` for evaluation, with the official script's grammar.

    Lines are `x1,y1,...,x4,y4,transcription` with integer coordinates, clockwise in image coordinates;
    the transcription is everything after the eighth comma (commas included; a double-quoted one is
    unquoted) and `###`, exactly, marks a don't-care box. A UTF-8 BOM and CR characters are dropped.
    Unlike `parse_gt`, nothing is repaired: a counter-clockwise box is an error, a flat one stays cared for.

    Returns:
      An `Annotation` (quads float32 `[n, 4, 2]`).

    Raises:
      ICDARFormatError: naming the file, the 1-based line and what is wrong.
    """
    points, texts = _parse_eval_lines(data, name, with_transcription=True)
    dontcare = np.array([t == DONT_CARE for t in texts], bool)
    return Annotation(points.reshape(-1, 4, 2).astype(np.float32), texts, dontcare)


def parse_result_file(data, name="<string>"):
    """Parse one `res_img_<id>.txt`: lines of exactly 8 integers `x1,y1,...,x4,y4`, clockwise.

    Returns:
      float64 quads `[d, 4, 2]` in file order.

    Raises:
      ICDARFormatError: naming the file, the 1-based line and what is wrong.
    """
    points, _ = _parse_eval_lines(data, name, with_transcription=False)
    return points.reshape(-1, 4, 2).astype(np.float64)


def _sort_key(sample_id):
    return int(sample_id), sample_id


def _sample_files(path, pattern, strict):
    """`{id: (display name, bytes)}` of the files of a folder or zip whose names fully match `pattern`.

    With `strict` (submissions, as the official script), any other file is an error; directories and
    hidden files are skipped.
    """
    contents = {}
    if os.path.isdir(path):
        for entry in os.listdir(path):
            full = os.path.join(path, entry)
            if not entry.startswith(".") and os.path.isfile(full):
                with open(full, "rb") as f:
                    contents[entry] = (full, f.read())
    elif os.path.isfile(path) and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for entry in archive.namelist():
                if not entry.endswith("/"):
                    contents[entry] = (f"{path}:{entry}", archive.read(entry))
    elif not os.path.exists(path):
        raise ICDARFormatError(f"{path}: no such folder or zip file")
    else:
        raise ICDARFormatError(f"{path}: not a folder or a zip file")
    found = {}
    for entry, named_data in contents.items():
        m = pattern.fullmatch(entry)
        if m is not None:
            found[m.group(1)] = named_data
        elif strict:
            raise ICDARFormatError(
                f"{path}: unexpected file {entry!r}; a submission holds only {pattern.pattern} files, at its top level"
            )
    return dict(sorted(found.items(), key=lambda item: _sort_key(item[0])))


def read_gt(path):
    """Read the `gt_img_<id>.txt` files of a folder or zip for evaluation (`parse_gt_file`).

    Other files are ignored, as the official script does.

    Returns:
      `{id (str, as in the file name): Annotation}`, sorted by id.

    Raises:
      ICDARFormatError: a missing path, no ground-truth file, or a bad line.
    """
    files = _sample_files(path, GT_NAME, strict=False)
    if not files:
        raise ICDARFormatError(f"{path}: no gt_img_<id>.txt files found")
    return {key: parse_gt_file(data, name) for key, (name, data) in files.items()}


def read_results(path):
    """Read the `res_img_<id>.txt` files of a submission folder or zip (`parse_result_file`).

    Returns:
      `{id (str, as in the file name): quads [d, 4, 2]}`, sorted by id.

    Raises:
      ICDARFormatError: a missing path, a file that is not `res_img_<id>.txt`, or a bad line.
    """
    files = _sample_files(path, RESULT_NAME, strict=True)
    return {key: parse_result_file(data, name) for key, (name, data) in files.items()}


def _points_list(quads):
    return [[int(v) if float(v).is_integer() else float(v) for v in q] for q in np.asarray(quads).reshape(-1, 8)]


def evaluate(gt, results, iou_threshold=0.5, area_threshold=0.5, per_sample=False):
    """The official script's evaluation of a submission, with the shape of its output.

    Every ground-truth image is scored; one without a result file has no detections. A result file for an
    image that has no ground truth is an error, as in the official validation.

    Args:
      gt: `{id: Annotation}` (`read_gt`).
      results: `{id: quads [d, 4, 2]}` (`read_results`).
      iou_threshold: see `evaluate_image`.
      area_threshold: see `evaluate_image`.
      per_sample: fill `per_sample` with each image's figures, pairs, IoU matrix (empty above 100
        detections, as the official script), polygons, don't-care indices and log.

    Returns:
      `{"calculated": True, "Message": "", "method": {...}, "per_sample": {id: {...}}}`; `method` holds the
      pooled `precision`, `recall`, `hmean`, the `mean_matched_iou` of all matched pairs, the counts behind
      them and `iou_threshold`.

    Raises:
      ICDARFormatError: a result file without ground truth.
    """
    unknown = sorted(set(results) - set(gt), key=_sort_key)
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ICDARFormatError(f"res_img_{unknown[0]}.txt has no ground truth gt_img_{unknown[0]}.txt{more}")
    acc = ICDARAccumulator(iou_threshold, area_threshold)
    samples = {}
    for key, ann in gt.items():
        dets = results.get(key, np.zeros((0, 4, 2)))
        r = acc.add(dets, ann.quads, ann.dontcare)
        if not per_sample:
            continue
        log = f"GT polygons: {len(ann.quads)}"
        log += f" ({len(r['gt_dontcare'])} don't care)\n" if r["gt_dontcare"] else "\n"
        if key in results:
            log += f"DET polygons: {len(dets)}"
            log += f" ({len(r['det_dontcare'])} don't care)\n" if r["det_dontcare"] else "\n"
            log += "".join(f"Match GT #{i} with Det #{j}\n" for i, j in r["pairs"])
        samples[key] = {
            "precision": r["precision"],
            "recall": r["recall"],
            "hmean": r["hmean"],
            "mean_matched_iou": r["mean_matched_iou"],
            "pairs": [{"gt": i, "det": j} for i, j in r["pairs"]],
            "iouMat": [] if len(dets) > 100 else r["iou"].tolist(),
            "gtPolPoints": _points_list(ann.quads),
            "detPolPoints": _points_list(dets),
            "gtDontCare": r["gt_dontcare"],
            "detDontCare": r["det_dontcare"],
            "evaluationParams": {"IOU_CONSTRAINT": iou_threshold, "AREA_PRECISION_CONSTRAINT": area_threshold},
            "evaluationLog": log,
        }
    method = acc.result()
    method.update(
        num_matched=acc.matched, num_care_gt=acc.care_gt, num_care_det=acc.care_det, iou_threshold=iou_threshold
    )
    return {"calculated": True, "Message": "", "method": method, "per_sample": samples}


def evaluate_files(gt_path, submission_path, iou_threshold=0.5, per_sample=False):
    """`evaluate` on a ground-truth folder or zip and a submission folder or zip."""
    return evaluate(read_gt(gt_path), read_results(submission_path), iou_threshold, per_sample=per_sample)


def write_results(directory, image_id, quads):
    """Write `res_img_<id>.txt` (integer corners, one detection per line) for the official script."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"res_img_{image_id}.txt"), "w", newline="\r\n") as f:
        for q in np.asarray(quads).reshape(-1, 8):
            line = ",".join(str(int(round(v))) for v in q)
            f.write(line + "\n")
