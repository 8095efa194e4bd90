"""ICDAR 2015 (Challenge 4) text localisation: the annotation format and the evaluation protocol.

Format: one `gt_img_<id>.txt` per `img_<id>.jpg`, one line per word:
`x1,y1,x2,y2,x3,y3,x4,y4,transcription` (integer pixels, clockwise from the top-left; the transcription may
contain commas; `###` = don't care), UTF-8 with an optional byte-order mark, LF or CRLF line ends.

Protocol (as the official script): a detection whose area lies more than half inside don't-care boxes is
itself ignored; the remaining detections and cared-for boxes are matched greedily one-to-one in file order
at IoU strictly greater than 0.5; precision, recall and hmean are pooled over the whole dataset.
"""

import dataclasses
import glob
import os
import re
import zipfile

import numpy as np
import shapely

from tfls.detection import iou as iou_lib

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


def match_image(det_quads, gt_quads, gt_dontcare, iou_threshold=0.5, area_threshold=0.5):
    """ICDAR 2015 matching of one image.

    Args:
      det_quads: `[d, 4, 2]` detections (pixels), in the order they were written.
      gt_quads: `[g, 4, 2]` ground truth.
      gt_dontcare: `[g]` bool.
      iou_threshold: a pair matches when IoU is strictly greater.
      area_threshold: a detection is don't-care when more than this share of its area lies in don't-care boxes.

    Returns:
      dict with `matched`, `num_care_gt`, `num_care_det` and `pairs` (list of (gt index, det index)).
    """
    det_quads = np.asarray(det_quads, np.float64).reshape(-1, 4, 2)
    gt_quads = np.asarray(gt_quads, np.float64).reshape(-1, 4, 2)
    gt_dontcare = np.asarray(gt_dontcare, bool).reshape(-1)
    det_dontcare = np.zeros(len(det_quads), bool)
    if len(det_quads) and gt_dontcare.any():
        dets = shapely.polygons(det_quads)
        dc = shapely.polygons(gt_quads[gt_dontcare])
        inter = shapely.area(shapely.intersection(dets[:, None], dc[None, :]))
        area = shapely.area(dets)
        det_dontcare = (area > 0) & (inter.sum(1) / np.where(area > 0, area, 1) > area_threshold)
    care_gt = np.flatnonzero(~gt_dontcare)
    care_det = np.flatnonzero(~det_dontcare)
    iou = iou_lib.quad_iou_matrix(gt_quads[care_gt], det_quads[care_det])
    gt_used = np.zeros(len(care_gt), bool)
    det_used = np.zeros(len(care_det), bool)
    pairs = []
    for i in range(len(care_gt)):
        for j in range(len(care_det)):
            if not gt_used[i] and not det_used[j] and iou[i, j] > iou_threshold:
                gt_used[i] = det_used[j] = True
                pairs.append((int(care_gt[i]), int(care_det[j])))
    return {"matched": len(pairs), "num_care_gt": len(care_gt), "num_care_det": len(care_det), "pairs": pairs}


class ICDARAccumulator:
    """Pools the per-image matches of `match_image` into dataset precision, recall and hmean."""

    def __init__(self):
        self.matched = self.care_gt = self.care_det = self.images = 0

    def add(self, det_quads, gt_quads, gt_dontcare):
        r = match_image(det_quads, gt_quads, gt_dontcare)
        self.matched += r["matched"]
        self.care_gt += r["num_care_gt"]
        self.care_det += r["num_care_det"]
        self.images += 1
        return r

    def result(self):
        """`{"precision", "recall", "hmean", "num_images"}` (0 where a denominator is 0)."""
        recall = self.matched / self.care_gt if self.care_gt else 0.0
        precision = self.matched / self.care_det if self.care_det else 0.0
        hmean = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        return {
            "precision": float(precision),
            "recall": float(recall),
            "hmean": float(hmean),
            "num_images": int(self.images),
        }


def write_results(directory, image_id, quads):
    """Write `res_img_<id>.txt` (integer corners, one detection per line) for the official script."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"res_img_{image_id}.txt"), "w", newline="\r\n") as f:
        for q in np.asarray(quads).reshape(-1, 8):
            line = ",".join(str(int(round(v))) for v in q)
            f.write(line + "\n")
