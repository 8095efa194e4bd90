"""The helpers of bench/scene_crop_reading.py and the report chapters of it and of bench/ocr_threshold.py,
checked on hand-made cases (no trained weights needed)."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from helpers import load_bench as _module  # noqa: E402

crops = _module("scene_crop_reading")
report = _module("report")


def test_bins_count_words_and_accuracy_per_range():
    words = [
        {"text": "ab", "height": 5.0, "angle": 0.0},
        {"text": "abcd", "height": 13.0, "angle": 10.0},
        {"text": "abcde", "height": 15.9, "angle": 30.0},
        {"text": "abcdefghijkl", "height": 50.0, "angle": 90.0},
    ]
    texts = ["ab", "abcd", "xbcde", "abcdefghijk"]
    by_height = crops._bins(words, texts, "height", (0, 12, 16, 24, 10**6))
    assert by_height == [
        {"range": [0, 12], "words": 1, "accuracy": 100.0},
        {"range": [12, 16], "words": 2, "accuracy": 50.0},
        {"range": [24, 10**6], "words": 1, "accuracy": 0.0},
    ]
    by_length = crops._bins(words, texts, "length", (1, 4, 7, 11, 100))
    assert [(b["range"][0], b["words"]) for b in by_length] == [(1, 1), (4, 2), (11, 1)]


def test_scene_words_are_the_cared_for_words_of_the_scenes():
    task = _module("ocr_endtoend").scene_task()
    words, parts = crops.scene_words(task, "test", 3)
    gt, _ = _module("ocr_endtoend").render_set(task, "test", 3)
    expected = [t.lower() for ann in gt.values() for t, d in zip(ann.texts, ann.dontcare) if not d]
    assert [w["text"] for w in words] == expected
    assert sum(len(q) for _, q in parts) == len(expected)
    assert all(w["height"] > 0 and 0 <= w["angle"] <= 180 for w in words)


def test_threshold_chapter_marks_the_best_pair_and_the_detectors_own_row():
    machine = {"cpu_model": "x", "cpus": 2, "gpus": 0, "tensorflow": "2", "git_commit": "c", "date": "d"}
    rows = [
        {"threshold": t, "min_text_confidence": c, "hmean": h, "precision": 0.5, "recall": 0.5}
        for t, c, h in [(0.4, 0.0, 0.50), (0.4, 0.3, 0.60), (0.5, 0.0, 0.52), (0.5, 0.3, 0.58)]
    ]
    data = {
        "rows": rows,
        "chosen": {"threshold": 0.4, "min_text_confidence": 0.3},
        "chosen_at_detection_threshold": 0.3,
        "detection_config_threshold": 0.5,
        "num_scenes": 3,
        "detector": "d",
        "recognizer": "r",
        "machine": machine,
        "command": "python bench/ocr_threshold.py",
    }
    lines = report.ocr_threshold_chapter(data)
    table = {line.split(" | ")[0]: line for line in lines if line.startswith("| 0.")}
    assert "**0.6000" in table["| 0.4"] and "_0.5800" in table["| 0.5"]
    assert "**" not in table["| 0.5"] and "_0.5" not in table["| 0.4"]


threshold_bench = _module("ocr_threshold")


def _row(margin, threshold, confidence, hmean):
    return {"margin": margin, "threshold": threshold, "min_text_confidence": confidence, "hmean": hmean}


def test_choose_takes_the_best_margin_and_breaks_ties_towards_the_exports():
    rows = [
        _row(0.1, 0.4, 0.0, 0.55),
        _row(0.1, 0.5, 0.3, 0.61),
        _row(0.15, 0.5, 0.3, 0.59),
        _row(0.3, 0.4, 0.3, 0.64),  # best overall, at another threshold
        _row(0.3, 0.5, 0.0, 0.58),
    ]
    best, margin, confidence, scales = threshold_bench.choose(rows, 0.5, 0.15)
    assert (best["margin"], best["threshold"], best["min_text_confidence"]) == (0.3, 0.4, 0.3)
    assert (margin, confidence, scales) == (0.1, 0.3, None)  # the best pair at the detector's own threshold 0.5
    # a tie at the own threshold keeps the export's margin; among others the smaller margin wins
    tied = [_row(0.05, 0.5, 0.3, 0.6), _row(0.15, 0.5, 0.3, 0.6), _row(0.2, 0.5, 0.3, 0.6)]
    assert threshold_bench.choose(tied, 0.5, 0.15)[1:3] == (0.15, 0.3)
    assert threshold_bench.choose(tied, 0.5, 0.1)[1:3] == (0.05, 0.3)
    # rows without a margin (a JSON from before --margins) are the export's
    old = [{"threshold": 0.5, "min_text_confidence": c, "hmean": h} for c, h in [(0.0, 0.5), (0.3, 0.6)]]
    assert threshold_bench.choose(old, 0.5, 0.15, [1.0, 2.0])[1:] == (0.15, 0.3, [1.0, 2.0])
    assert threshold_bench.choose(old, 0.7, 0.15)[1:] == (None, None, None)


def test_choose_takes_the_best_scales_and_breaks_ties_towards_the_exports_then_fewer():
    def row(scales, confidence, hmean):
        return {**_row(0.15, 0.5, confidence, hmean), "scales": scales}

    rows = [row([1.0], 0.3, 0.61), row([1.0, 2.0], 0.3, 0.66), row([1.0, 1.5], 0.0, 0.64)]
    assert threshold_bench.choose(rows, 0.5, 0.15, [1.0])[1:] == (0.15, 0.3, [1.0, 2.0])
    tied = [row([1.0], 0.3, 0.6), row([1.0, 2.0], 0.3, 0.6), row([1.0, 1.5, 2.0], 0.3, 0.6)]
    assert threshold_bench.choose(tied, 0.5, 0.15, [1.0, 2.0])[3] == [1.0, 2.0]  # the export's
    assert threshold_bench.choose(tied, 0.5, 0.15, [1.0, 3.0])[3] == [1.0]  # else the fewest scales


def _threshold_data(rows, **fields):
    """An ocr_threshold.json for the report: the fields every run writes, then `fields`."""
    machine = {"cpu_model": "x", "cpus": 2, "gpus": 0, "tensorflow": "2", "git_commit": "c", "date": "d"}
    data = {
        "rows": rows,
        "chosen_at_detection_threshold": 0.3,
        "export_margin": 0.15,
        "detection_config_threshold": 0.5,
        "num_scenes": 3,
        "detector": "d",
        "recognizer": "r",
        "machine": machine,
    }
    return {**data, **fields}


def test_threshold_chapter_shows_the_chosen_margins_grid_and_a_margin_table():
    rows = [
        {**_row(m, t, c, h), "precision": 0.5, "recall": 0.5}
        for m, t, c, h in [
            (0.1, 0.5, 0.0, 0.50),
            (0.1, 0.5, 0.3, 0.57),
            (0.2, 0.5, 0.0, 0.52),
            (0.2, 0.5, 0.3, 0.61),
        ]
    ]
    data = _threshold_data(
        rows,
        chosen={"margin": 0.2, "threshold": 0.5, "min_text_confidence": 0.3},
        chosen_margin_at_detection_threshold=0.2,
        command="python bench/ocr_threshold.py --margins=0.1,0.2",
    )
    lines = report.ocr_threshold_chapter(data)
    grid = [line for line in lines if line.startswith("| 0.5 |")]
    assert len(grid) == 1 and "0.6100" in grid[0] and "0.5700" not in grid[0]  # margin 0.2's row only
    margin_rows = {line.split(" | ")[0]: line for line in lines if line.startswith(("| 0.1 |", "| 0.2 |"))}
    assert margin_rows["| 0.1"] == "| 0.1 | 0.5000 | 0.5700 |"
    assert margin_rows["| 0.2"] == "| 0.2 | 0.5200 | _0.6100_ |"


def test_threshold_chapter_shows_the_chosen_scales_grid_and_a_scales_table():
    rows = [
        {**_row(0.15, 0.5, c, h), "scales": sc, "precision": 0.5, "recall": r}
        for sc, c, h, r in [
            ([1.0], 0.0, 0.50, 0.4),
            ([1.0], 0.3, 0.57, 0.45),
            ([1.0, 2.0], 0.0, 0.52, 0.5),
            ([1.0, 2.0], 0.3, 0.63, 0.55),
        ]
    ]
    data = _threshold_data(
        rows,
        chosen={"scales": [1.0, 2.0], "margin": 0.15, "threshold": 0.5, "min_text_confidence": 0.3},
        chosen_margin_at_detection_threshold=0.15,
        chosen_scales_at_detection_threshold=[1.0, 2.0],
        scale_sets=[[1.0], [1.0, 2.0]],
        export_scales=[1.0],
        detector_input=512,
        command="python bench/ocr_threshold.py --scale-sets=1;1,2",
    )
    lines = report.ocr_threshold_chapter(data)
    grid = [line for line in lines if line.startswith("| 0.5 |")]
    # the main grid holds the chosen set's rows only, its best pair bold and italic
    assert len(grid) == 1 and "_**0.6300" in grid[0] and "0.5700" not in grid[0]
    assert "| 1x | 0.5000 (R 0.400) | 0.5700 (R 0.450) |" in lines
    assert "| 1x+2x | 0.5200 (R 0.500) | _0.6300 (R 0.550)_ |" in lines


def test_scene_crops_chapter_lists_each_recognizer_by_height():
    machine = {"cpu_model": "x", "cpus": 2, "gpus": 0, "tensorflow": "2", "git_commit": "c", "date": "d"}
    row = {
        "weights": "w",
        "accuracy": 50.0,
        "total_edit_distance": 7,
        "longer_than_max_length": 1,
        "by_height": [{"range": [0, 12], "words": 2, "accuracy": 50.0}],
    }
    data = {
        "sets": {"test": {"num_words": 2, "systems": {"a": row}}},
        "scenes_per_set": 1,
        "machine": machine,
        "command": "c",
    }
    lines = report.scene_crops_chapter(data)
    assert "| a (`w`) | 50.0 % | 7 | 50.0 % (2) |" in lines


def test_latency_chapter_rows_and_the_words_read():
    machine = {"cpu_model": "x", "cpus": 2, "git_commit": "c", "date": "d"}
    data = {
        "machine": machine,
        "command": "python bench/ocr_latency.py --runs=5",
        "request": "one photo",
        "models": "trained",
        "runs": 5,
        "warmup": 1,
        "num_words_read": 10,
        "num_words_correct": 7,
        "ocr": {"p50_ms": 36.58, "p90_ms": 41.04, "mean_ms": 37.5},
        "detection_only": {"p50_ms": 22.86, "p90_ms": 25.5, "mean_ms": 23.46},
    }
    lines = report.ocr_latency_chapter(data)
    assert "| OCR (detect, rectify, read) | 36.6 | 41.0 | 37.5 |" in lines
    assert "| detection alone | 22.9 | 25.5 | 23.5 |" in lines
    assert "Words read per call: 10, of which 7 are the photo's words read right." in lines[2]
    # Untrained models: no count of right words; no file at all: the command to run.
    data["num_words_correct"] = None
    assert lines[2].replace(", of which 7 are the photo's words read right", "") == report.ocr_latency_chapter(data)[2]
    assert "Not yet measured" in report.ocr_latency_chapter({})[2]


def _str_seed(seed, base, control, tuned):
    def metrics(ins, dels, subs, short, long):
        return {
            "test": {
                "accuracy": 90.0,
                "total_edit_distance": ins + dels + subs,
                "normalized_edit_distance": 0.9,
                "num_samples": 10,
                "edit_distance_len_10+": long,
                "insertions": ins,
                "deletions": dels,
                "substitutions": subs,
                "edit_distance_len_1-3": short,
            }
        }

    return {
        "seed": seed,
        "baseline": metrics(*base),
        "control": metrics(*control),
        "variants": {"tuned": {"metrics": metrics(*tuned)}},
    }


def test_quality_section_splits_the_errors_by_kind_and_word_length():
    info = {
        "name": "str",
        "metrics": {"accuracy": "max", "total_edit_distance": "min", "normalized_edit_distance": "max"},
        "primary": "accuracy",
        "validation_set": "val",
    }
    seeds = [
        _str_seed(0, (1, 2, 3, 4, 2), (1, 1, 1, 2, 1), (0, 0, 4, 3, 1)),
        _str_seed(1, (1, 2, 3, 4, 2), (3, 1, 3, 5, 2), (2, 0, 2, 1, 3)),
    ]
    lines = report.quality_section(info, {"seeds": seeds})
    start = next(i for i, line in enumerate(lines) if line.startswith("Where the errors are on `test`"))
    # kinds first, then the length buckets by their lower bound (1-3 before 10+), num_samples left out
    assert lines[start + 2] == (
        "| model | insertions | deletions | substitutions | words of length 1-3 | words of length 10+ |"
    )
    rows = {line.split(" | ")[0][2:]: line for line in lines[start + 4 : start + 7]}
    assert rows["baseline"] == "| baseline | 1.0 ± 0.0 | 2.0 ± 0.0 | 3.0 ± 0.0 | 4.0 ± 0.0 | 2.0 ± 0.0 |"
    # control: insertions 1 and 3 (mean 2, sample std sqrt 2 = 1.4), substitutions 1 and 3, length 1-3 2 and 5
    assert rows["control (ordinary loss)"] == (
        "| control (ordinary loss) | 2.0 ± 1.4 | 1.0 ± 0.0 | 2.0 ± 1.4 | 3.5 ± 2.1 | 1.5 ± 0.7 |"
    )
    assert rows["tuned"] == "| tuned | 1.0 ± 1.4 | 0.0 ± 0.0 | 3.0 ± 1.4 | 2.0 ± 1.4 | 2.0 ± 1.4 |"


def test_quality_section_has_no_breakdown_without_extra_counts():
    info = {"name": "det", "metrics": {"hmean": "max"}, "primary": "hmean", "validation_set": "val"}
    seed = {"seed": 0, "baseline": {"test": {"hmean": 0.5, "num_images": 3}}, "control": None, "variants": {}}
    lines = report.quality_section(info, {"seeds": [seed]})
    assert not any(line.startswith("Where the errors are") for line in lines)


def test_approximation_table_names_a_variants_own_pretrained_surrogate():
    """A base without pretraining (STR's default) has no "pretrained on global pairs" row; a variant that
    pretrained its own surrogate gets one, from that surrogate's errors on the baseline's outputs."""
    info = {"name": "str", "metrics": {"accuracy": "max"}, "primary": "accuracy", "validation_set": "val"}

    def seed(s, pre_global):
        own = {"approx_l1_global": pre_global, "approx_l1_local": 0.5, "approx_l1_local_by_set": {"test": 0.25}}
        return {
            "seed": s,
            "baseline": {"test": {"accuracy": 90.0}},
            "control": {"test": {"accuracy": 90.0}},
            "pretrained_surrogate": None,
            "variants": {
                "tuned": {"metrics": {"test": {"accuracy": 91.0}}, "pretrained": True, "own_pretraining": False},
                "paper_pairs": {
                    "metrics": {"test": {"accuracy": 89.0}},
                    "pretrained": True,
                    "own_pretraining": True,
                    "surrogate": {
                        "approx_l1_global": 0.9,
                        "approx_l1_local_by_set": {"test": 0.3},
                        "pretrained_on_baseline": own,
                    },
                },
            },
        }

    lines = report.quality_section(info, {"seeds": [seed(0, 0.4), seed(1, 0.6)]})
    assert not any(line.startswith("| pretrained on global pairs") for line in lines)
    row = next(line for line in lines if line.startswith("| pretrained for paper_pairs"))
    # global: 0.4 and 0.6 (mean 0.5, sample std 0.141); local 0.5 on both seeds; test 0.25
    assert row == (
        "| pretrained for paper_pairs (local = baseline's outputs) | 0.500 ± 0.141 | 0.500 ± 0.000 | 0.250 ± 0.000 |"
    )
    described = next(line for line in lines if line.startswith("Variants"))
    assert "`paper_pairs`: its own pretrained surrogate" in described
    assert "`tuned`: surrogate from scratch (the base pretrains none)" in described


def test_report_hides_the_validation_set_and_every_selection_only_set():
    metrics = {n: {"accuracy": 1.0} for n in ("val", "test", "test_ood", "val_hard")}
    info = {"validation_set": "val", "selection_only_sets": ["val_hard"]}
    assert report.reported_sets(info, metrics) == ["test", "test_ood"]
    assert report.reported_sets({"validation_set": "val"}, metrics) == ["test", "test_ood", "val_hard"]
    assert report.reported_sets({"validation_set": None}, metrics) == list(metrics)  # old protocol: as is


def test_a_control_only_run_has_no_approximation_table():
    """`bench/quality.py --variants=` runs the baseline and the control alone: nothing to approximate."""
    info = {"name": "str", "metrics": {"accuracy": "max"}, "primary": "accuracy", "validation_set": "val"}
    seed = {
        "seed": 0,
        "baseline": {"test": {"accuracy": 90.0}},
        "control": {"test": {"accuracy": 91.0}},
        "pretrained_surrogate": None,
        "variants": {},
    }
    lines = report.quality_section(info, {"seeds": [seed]})
    assert not any("approximation quality" in line for line in lines)
    row = next(line for line in lines if line.startswith("| control (ordinary loss) | 91.00"))
    assert "1.1" in row  # (91 - 90) / 90 = 1.1 % better than the baseline
    with_variant = dict(seed, variants={"tuned": {"metrics": {"test": {"accuracy": 92.0}}}})
    assert any("approximation quality" in line for line in report.quality_section(info, {"seeds": [with_variant]}))
