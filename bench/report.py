"""Regenerates docs/RESULTS.md (and its plots) from the JSON files the benchmarks wrote in docs/results/.

    python bench/report.py

Every task with a `<task name>_quality.json` gets the same tables: the metric names and directions come
from the task class (`Task.reported_metrics()`, its `primary_metric` first), or from the JSON's own record of
them when the class cannot be imported. Tables show the test sets only: the task's `validation_set`, which
selected the baseline's checkpoint, is never reported. A JSON written before the val/test split (no
`validation_set` recorded; its one set `synthetic_val` both selected the baseline and was reported) is
rendered under a heading that says so.
"""

import argparse
import glob
import json
import os
import re

import common
import numpy as np

BUILTIN_ORDER = ("str", "det")
OLD_PROTOCOL_NOTE = (
    "**Old protocol.** This JSON predates the val/test split: its evaluation set `{sets}` also selected the "
    "baseline's checkpoint (the best of the train stage's evaluations), so no figure below comes from a set "
    "the selection never saw, and the baseline's may be optimistic. Rerun the command above for test-set tables."
)


def _load(name):
    path = os.path.join(common.RESULTS_DIR, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def task_info(data, stem):
    """What the tables of one results JSON need: metrics `{name: mode}` (primary first), the primary metric,
    the validation set (None for an old-protocol JSON) and the task's name.

    The task class is asked first (`data["task"]`, else the file's stem); a JSON whose class cannot be
    imported here falls back on the metrics it recorded. None when neither works.
    """
    spec = data.get("task", stem)
    try:
        cls = common.task_class(spec)
        metrics, primary, validation = cls.reported_metrics(), cls.primary_metric, cls.validation_set
        selection_only = list(cls.selection_only_sets)
    except ValueError as e:
        if "metrics" not in data:
            print(f"[report] {stem}: skipped: {e}; the JSON records no metrics to fall back on", flush=True)
            return None
        metrics, primary, validation = data["metrics"], data["primary_metric"], data["validation_set"]
        selection_only = list(data.get("selection_only_sets", ()))
    if "validation_set" in data and data["validation_set"] != validation:
        print(f"[report] {stem}: the JSON's models were selected on {data['validation_set']!r}", flush=True)
    return {
        "name": data.get("task_name", stem),
        "metrics": metrics,
        "primary": primary,
        "validation_set": data.get("validation_set"),  # what selected these models; None: old protocol
        "selection_only_sets": selection_only,
    }


def reported_sets(info, metrics_by_set):
    """Set names a table may show: every set but the validation set and the task's other selection sets
    (`Task.selection_only_sets`); an old-protocol JSON's sets as they are."""
    names = list(metrics_by_set)
    if info["validation_set"] is None:
        return names
    hidden = {info["validation_set"], *info.get("selection_only_sets", ())}
    return [n for n in names if n not in hidden]


def _digits(values):
    present = [abs(v) for v in values if v is not None]
    if not present:
        return 3
    top = max(present)
    return 1 if top >= 100 else 2 if top >= 10 else 4


def _ms(values, digits=None):
    m, s = common.mean_std(values)
    if m is None:
        return "n/a"
    digits = _digits(values) if digits is None else digits
    n = sum(v is not None for v in values)
    if n == 1:
        return f"{m:.{digits}f} (1 seed)"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def _rel(new, old, mode):
    if old is None or new is None or old == 0:
        return None
    change = (new - old) / abs(old) * 100.0
    return change if mode == "max" else -change


def _all_variants(seeds):
    names = []
    for s in seeds:
        names += [v for v in s["variants"] if v not in names]
    return names


def _seeds(seeds):
    return f"{len(seeds)} seed" + ("s" if len(seeds) != 1 else "")


def _header(name, mode):
    return f"{name} {'↑' if mode == 'max' else '↓'}"


def _models(seeds):
    """`(row label, seed -> {set: metrics} or None)` for the baseline, the control and each variant."""
    rows = [("baseline", lambda s: s.get("baseline"))]
    if any(s.get("control") for s in seeds):
        rows.append(("control (ordinary loss)", lambda s: s.get("control")))
    for variant in _all_variants(seeds):
        rows.append((variant, lambda s, v=variant: (s["variants"].get(v) or {}).get("metrics")))
    return rows


def _breakdown_keys(reported, metrics):
    """The counts a task logs beside its reported metrics (STR: insertions, deletions, substitutions, and the
    edit distance by word length, `edit_distance_len_<a>-<b>` / `<a>+`), in reading order: the kinds first,
    then the length buckets by their lower bound. Sizes (`num_*`) and the reported metrics are left out."""
    extra = [
        k
        for k, v in reported.items()
        if k not in metrics and not k.startswith("num_") and isinstance(v, (int, float)) and not isinstance(v, bool)
    ]

    def lower(k):
        digits = "".join(ch if ch.isdigit() else " " for ch in k.rsplit("_", 1)[-1]).split()
        return int(digits[0]) if digits else 0

    kinds = [k for k in extra if "_len_" not in k]
    lengths = sorted((k for k in extra if "_len_" in k), key=lower)
    return kinds + lengths


def _breakdown_header(key):
    if "_len_" in key:
        return "words of length " + key.rsplit("_len_", 1)[1]
    return key


def quality_section(info, data):
    seeds = data["seeds"]
    metrics, primary = info["metrics"], info["primary"]
    title = info["name"]
    sets = reported_sets(info, seeds[0]["baseline"])
    lines = []
    if info["validation_set"] is None:
        lines += [OLD_PROTOCOL_NOTE.format(sets="`, `".join(sets)), ""]
    elif not sets:
        lines += [f"No test set in this JSON (only `{info['validation_set']}`, which selected the baseline).", ""]
    models = _models(seeds)
    for set_name in sets:

        def at(getter, s, set_name=set_name):
            return (getter(s) or {}).get(set_name) or {}

        def rel(getter, reference, metric):
            return [_rel(at(getter, s).get(metric), at(reference, s).get(metric), metrics[metric]) for s in seeds]

        values = {(name, k): [at(getter, s).get(k) for s in seeds] for name, getter in models for k in metrics}
        digits = {k: _digits([v for name, _ in models for v in values[(name, k)]]) for k in metrics}
        lines += [
            f"### {title}: model quality on `{set_name}` ({_seeds(seeds)}, mean ± std)",
            "",
            "| model | "
            + " | ".join(_header(k, m) for k, m in metrics.items())
            + f" | {primary}: rel. to baseline | rel. to control |",
            "|" + "---|" * (len(metrics) + 3),
        ]
        changes = []
        for name, getter in models:
            is_ref = name == "baseline" or name.startswith("control")
            row = []
            for k in metrics:
                rb = rel(getter, lambda x: x.get("baseline"), k)
                rc = rel(getter, lambda x: x.get("control"), k)
                row.append(_ms(rb, 1) + " %" if any(v is not None for v in rb) and name != "baseline" else "")
                row.append(_ms(rc, 1) + " %" if any(v is not None for v in rc) and not is_ref else "")
            changes.append(f"| {name} | " + " | ".join(row) + " |")
            cells = [_ms(values[(name, k)], digits[k]) for k in metrics]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {row[0]} | {row[1]} |")
        lines += [""]
        if len(seeds) > 1:
            shown = list(metrics)[:2]
            lines += [
                f"Per seed on `{set_name}`: {' / '.join(shown)} (change of each: the control's vs the baseline, "
                "every other model's vs the control; positive = better):",
                "",
                "| model | " + " | ".join(f"seed {s['seed']}" for s in seeds) + " |",
                "|" + "---|" * (len(seeds) + 1),
            ]
            for name, getter in models:
                cells = []
                for s in seeds:
                    parts = []
                    for k in shown:
                        value = at(getter, s).get(k)
                        if value is None:
                            parts.append("n/a")
                            continue
                        text = f"{value:.{digits[k]}f}"
                        reference = "baseline" if name.startswith("control") else "control"
                        change = _rel(value, at(lambda x, r=reference: x.get(r), s).get(k), metrics[k])
                        if change is not None and name != "baseline":
                            text += f" ({change:+.1f} %)"
                        parts.append(text)
                    cells.append(" / ".join(parts))
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
            lines += [""]
        breakdown = _breakdown_keys(at(lambda x: x.get("baseline"), seeds[0]), metrics)
        if breakdown:
            lines += [
                f"Where the errors are on `{set_name}`: each count's mean ± std over seeds (lower is better; "
                "the length columns split the total edit distance by the ground-truth word's length):",
                "",
                "| model | " + " | ".join(_breakdown_header(k) for k in breakdown) + " |",
                "|" + "---|" * (len(breakdown) + 1),
            ]
            for name, getter in models:
                cells = [_ms([at(getter, s).get(k) for s in seeds], 1) for k in breakdown]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
            lines += [""]
        if len(metrics) > 1:
            lines += [
                f"Relative change of every reported metric on `{set_name}` (positive = better):",
                "",
                "| model | " + " | ".join(f"{k} vs baseline | {k} vs control" for k in metrics) + " |",
                "|" + "---|" * (2 * len(metrics) + 1),
                *changes,
                "",
            ]
    lines += [
        "↑ higher is better, ↓ lower is better. Relative changes are per seed, then averaged; positive = better.",
        "",
    ]
    described = []
    for variant in _all_variants(seeds):
        v = next(s["variants"][variant] for s in seeds if variant in s["variants"])
        pre = "pretrained surrogate" if v.get("pretrained", True) else "surrogate from scratch"
        if v.get("own_pretraining"):
            pre = "its own pretrained surrogate"
        elif v.get("pretrained", True) and not any(s.get("pretrained_surrogate") for s in seeds):
            pre = "surrogate from scratch (the base pretrains none)"
        described.append(f"`{variant}`: {pre}, overrides `{v.get('overrides', {})}`")
    if described:
        lines += ["Variants (all tune for the same steps as the control): " + "; ".join(described) + ".", ""]

    if not any(s.get("pretrained_surrogate") for s in seeds) and not _all_variants(seeds):
        return lines  # a control-only run (--variants=): no surrogate to report
    found = {
        name
        for s in seeds
        for sur in [s.get("pretrained_surrogate") or {}] + [v.get("surrogate") or {} for v in s["variants"].values()]
        for name in (sur.get("approx_l1_local_by_set") or {})
    }
    local_sets = [n for n in sets if n in found]  # reported sets only, never the validation set
    lines += [
        f"### {title}: approximation quality (mean |e_hat - e|, held-out pairs)",
        "",
        "| surrogate | global pairs | local pairs, all sets (its tuned model's outputs) |"
        + "".join(f" local: {n} |" for n in local_sets),
        "|---|---|---|" + "---|" * len(local_sets),
    ]

    def approx_row(label, rows):
        """One surrogate's errors (a dict per seed): global pairs, local pairs, then each reported set."""
        cells = [_ms([r.get("approx_l1_global") for r in rows], 3), _ms([r.get("approx_l1_local") for r in rows], 3)]
        cells += [_ms([(r.get("approx_l1_local_by_set") or {}).get(n) for r in rows], 3) for n in local_sets]
        return f"| {label} | " + " | ".join(cells) + " |"

    pre = [s.get("pretrained_surrogate") or {} for s in seeds]
    if any(pre):
        lines.append(approx_row("pretrained on global pairs (local = baseline's outputs)", pre))
    variant_runs = {name: [s["variants"].get(name, {}) for s in seeds] for name in _all_variants(seeds)}
    for name, runs in variant_runs.items():
        # a variant that pretrained its own surrogate: that surrogate on the baseline's outputs
        if any(v.get("own_pretraining") for v in runs):
            own = [(v.get("surrogate") or {}).get("pretrained_on_baseline") or {} for v in runs]
            lines.append(approx_row(f"pretrained for {name} (local = baseline's outputs)", own))
    for name, runs in variant_runs.items():
        lines.append(approx_row(f"after tuning: {name}", [v.get("surrogate") or {} for v in runs]))
    lines += [""]
    return lines


def bars_plot(info, data):
    """The primary metric of every model, one panel per reported set; returns the PNG's file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = data["seeds"]
    primary = info["primary"]
    sets = reported_sets(info, seeds[0]["baseline"])
    models = _models(seeds)
    fig, axes = plt.subplots(1, max(len(sets), 1), figsize=(7 * max(len(sets), 1), 3.5), squeeze=False)
    for ax, set_name in zip(axes[0], sets):
        names, means, stds = [], [], []
        for name, getter in models:
            values = [((getter(s) or {}).get(set_name) or {}).get(primary) for s in seeds]
            values = [v for v in values if v is not None]
            if values:
                names.append(name.split(" ")[0])
                means.append(np.mean(values))
                stds.append(np.std(values))
        colours = ["#888" if n == "baseline" else "#c96" if n == "control" else "#48c" for n in names]
        ax.bar(names, means, yerr=stds, capsize=4, color=colours)
        ax.set_ylabel(f"{primary} ({'higher' if info['metrics'][primary] == 'max' else 'lower'} is better)")
        old = " (old protocol: also the selection set)" if info["validation_set"] is None else ""
        ax.set_title(f"{info['name']}: {primary} on {set_name} ({_seeds(seeds)}){old}", fontsize=10)
        plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    path = os.path.join(common.RESULTS_DIR, f"{info['name']}_bars.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.path.basename(path)


def _stems(suffix):
    """Task names with a `<name><suffix>` file in the results folder, built-in tasks first."""
    found = []
    for path in glob.glob(os.path.join(common.RESULTS_DIR, f"*{suffix}")):
        match = re.fullmatch(r"(.+)" + re.escape(suffix), os.path.basename(path))
        if match:
            found.append(match.group(1))
    return [s for s in BUILTIN_ORDER if s in found or suffix == "_quality.json"] + sorted(
        s for s in found if s not in BUILTIN_ORDER
    )


def _machine_line(data):
    m = data["machine"]
    return (
        f"Machine: {m.get('cpu_model', '?')}, {m.get('cpus')} CPUs, {m.get('gpus', 0)} GPUs, "
        f"TF {m.get('tensorflow')}, commit {m.get('git_commit')}, {m.get('date')}; "
        f"wall time {data.get('wall_time_s', 0) / 60:.1f} min."
    )


def quality_chapter(stem):
    data = _load(f"{stem}_quality.json")
    if not data or not data.get("seeds"):
        return [f"## {stem} quality", "", f"Not yet measured: run `python bench/quality.py --task={stem}`.", ""]
    info = task_info(data, stem)
    if info is None:
        return []
    lines = [
        f"## {info['name']} quality",
        "",
        f"Command: `{data['command']}` (overrides: `{data['overrides']}`)",
        _machine_line(data),
        "",
    ]
    lines += quality_section(info, data)
    lines += [f"![{info['name']} bars](results/{bars_plot(info, data)})", ""]
    for extra in sorted(glob.glob(os.path.join(common.RESULTS_DIR, f"{stem}_*.png"))):
        if not extra.endswith("_bars.png"):
            lines += [f"![{os.path.basename(extra)}](results/{os.path.basename(extra)})", ""]
    for path in sorted(glob.glob(os.path.join(common.RESULTS_DIR, f"{stem}_quality_*.json"))):
        # investigations: the same bench on one seed's base with other tuning settings (--output=...)
        extra = _load(os.path.basename(path))
        if not extra or not extra.get("seeds"):
            continue
        extra_info = task_info(extra, stem)
        if extra_info is None:
            continue
        label = os.path.basename(path)[len(f"{stem}_quality_") : -len(".json")]
        extra_info["name"] = f"{info['name']} investigation {label}"
        lines += [
            f"### {info['name']} investigation: {label}",
            "",
            f"Command: `{extra['command']}` (overrides: `{extra['overrides']}`, tuning only: "
            f"`{extra.get('tune_overrides', {})}`); "
            f"commit {extra['machine'].get('git_commit')}, {extra['machine'].get('date')}.",
            "",
        ]
        lines += quality_section(extra_info, extra)
    return lines


def capacity_chapter(stem, name=None):
    cap = _load(name or f"{stem}_surrogate_capacity.json")
    if not cap or not cap.get("rows"):
        return []
    study = ""
    if name:
        study = ": " + name[len(f"{stem}_surrogate_capacity_") : -len(".json")]
    lines = [
        f"## {stem} surrogate{study}: approximation error against capacity, pretraining, distance and penalty",
        "",
        f"Command: `{cap['command']}`; commit {cap['machine'].get('git_commit')}, "
        f"{cap['machine'].get('date')}. Fresh surrogate pretrained on global pairs from one trained "
        "baseline; local pairs are that baseline's outputs on the held-out sets (never seen in pretraining).",
        "",
    ]
    if "validation_set" not in cap:
        lines += [
            "Old protocol: the local pairs come from `synthetic_val`, the set that also selected the baseline.",
            "",
        ]
    lines += [
        "| overrides | embedding parameters | pretrain steps | global pairs | local pairs | wall (s) |",
        "|---|---|---|---|---|---|",
    ]
    # a quality-bench base (<root>/seed<N>/base): its default pretrained surrogate is the reference row
    found = re.search(r"seed(\d+)/base/?$", cap["base"])
    base_seed = int(found.group(1)) if found else None
    quality = _load(f"{stem}_quality.json")
    ref = next((s for s in (quality or {}).get("seeds", []) if s["seed"] == base_seed), None)
    if ref and ref.get("pretrained_surrogate") and not any(not r["overrides"] for r in cap["rows"]):
        p = ref["pretrained_surrogate"]
        try:
            config = common.load_config(cap.get("task", stem), quality.get("config"), quality.get("overrides"))
            steps = config.surrogate.pretrain_steps
        except Exception as e:  # noqa: BLE001 - the reference row is optional; say why it is missing
            print(f"[report] {stem} capacity: no default row ({e})", flush=True)
            steps = None
        if steps is not None:
            lines.append(
                f"| default (same base, from {stem}_quality.json) | default | {steps} | "
                f"{p['approx_l1_global']:.3f} | {p['approx_l1_local']:.3f} | |"
            )
    for r in cap["rows"]:
        lines.append(
            f"| `{r['overrides'] or 'default'}` | {r.get('embedding_parameters')} | {r['pretrain_steps']} | "
            f"{r['approx_l1_global']:.3f} | {r['approx_l1_local']:.3f} | {r['wall_s']:.0f} |"
        )
    lines.append("")
    with_values = [r for r in cap["rows"] if r.get("mean_e_hat_by_true_value")]
    if with_values:
        lines += [
            "Mean e_hat for each true value e (pairs counted in brackets): a faithful surrogate gives e_hat = e.",
            "",
            "| overrides | pairs | " + " | ".join(f"e = {k}" for k in ("0", "1", "2", "3", "4", "5", "6", ">6")) + " |",
            "|---|---|" + "---|" * 8,
        ]
        for r in with_values:
            for kind, values in r["mean_e_hat_by_true_value"].items():
                cells = [
                    f"{values[k][1]:.2f} ({values[k][0]})" if k in values else ""
                    for k in ("0", "1", "2", "3", "4", "5", "6", ">6")
                ]
                lines.append(f"| `{r['overrides'] or 'default'}` | {kind} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


PEER_LABELS = {"tesseract": "Tesseract", "rapidocr": "RapidOCR (PP-OCRv4 rec)"}
PEER_SETS = ("test", "test_ood")


def _peer_cells(got, ms):
    """`accuracy | total ED | ms per word` cells from a list of metric dicts (seeds; averaged) and a latency."""
    cells = []
    for key, digits in (("accuracy", 1), ("total_edit_distance", 0)):
        values = [g.get(key) for g in got if g.get(key) is not None]
        if not values:
            cells.append("n/a")
        elif len(values) == 1:
            cells.append(f"{values[0]:.{digits}f}")
        else:
            cells.append(_ms(values, digits))
    cells.append("n/a" if ms is None else f"{ms:.1f}")
    return cells


def ood_breakdown_chapter():
    """bench/ood_breakdown.py: what the held-out fonts and each part of the ood mix cost the recognizer."""
    data = _load("str_ood_breakdown.json")
    if not data:
        return []
    rows = data["rows"]
    base = rows[0]
    lines = [
        "## STR: where test_ood's errors come from",
        "",
        f"`{data['command']}` ({data['count']} words of the `test` stream, the same words in every row; weights "
        f"`{data['weights']}`; {_machine_line(data)}). Each row changes the fonts, the mix, or one group of the "
        "training mix to its ood values; the last column is the change of total edit distance from the first row.",
        "",
        "| case | accuracy | total ED | ED vs first row |",
        "|---|---|---|---|",
    ]
    for row in rows:
        change = row["total_edit_distance"] - base["total_edit_distance"]
        lines.append(
            f"| {row['case']} | {row['accuracy']:.1f} % | {row['total_edit_distance']} | "
            f"{'+' if change >= 0 else ''}{change} |"
        )
    return lines + [""]


def penalty_sweep_chapter(name="det_penalty_sweep.json"):
    """bench/det_penalty_sweep.py: LS-IoU's held-out error at each gradient-penalty weight (and number of
    box-spectrum frequencies), the weight chosen on the validation set's local pairs. `name` may be a study
    beside the main sweep, `det_penalty_sweep_<study>.json` (e.g. `--output=` with longer pretraining)."""
    data = _load(name)
    if not data:
        return []
    study = name[len("det_penalty_sweep_") : -len(".json")] if name != "det_penalty_sweep.json" else ""
    rows = data["rows"]
    local = any(r.get("approx_l1_local_val") is not None for r in rows)
    bands = list(rows[0].get("approx_l1_global_by_iou", {}))
    lines = [
        "## LS-IoU: the gradient penalty's weight and the box spectrum" + (f" (study: {study})" if study else ""),
        "",
        f"`{data['command']}` ({data['pretrain_steps']} pretraining steps of {data['batch_size']} global pairs, "
        f"{data.get('pretrain_schedule', 'constant')} rate; {_machine_line(data)}). Mean |e_hat - e| of 1 - IoU on "
        "held-out global pairs, by IoU band"
        + (", and on the baseline's own RoI boxes on the validation set (local)" if local else "")
        + f"; the median |d e_hat / d pred|. Chosen by {data['selected_by']}: lambda = {data['selected']}"
        + (f", {data['selected_frequencies']} spectrum frequencies." if "selected_frequencies" in data else "."),
        "",
        "| lambda | spectrum frequencies | global | "
        + " | ".join(b.replace("iou_", "IoU ") for b in bands)
        + (" | local (val) |" if local else " |")
        + " grad norm | pretrain s |",
        "|---|---|---|" + "---|" * len(bands) + ("---|" if local else "") + "---|---|",
    ]

    def cell(v):
        return "-" if v is None else f"{v:.3f}"

    for r in rows:
        by = r.get("approx_l1_global_by_iou", {})
        lines.append(
            f"| {r['grad_penalty_weight']:g} | {r.get('embedding_frequencies', 0)} | {cell(r['approx_l1_global'])} | "
            + " | ".join(cell(by.get(b)) for b in bands)
            + (f" | {cell(r.get('approx_l1_local_val'))}" if local else "")
            + f" | {r['grad_norm_median']:.2f} | {r['pretrain_s']:.0f} |"
        )
    return lines + [""]


def lsiou_gradient_check_chapter():
    """bench/lsiou_gradient_check.py: LS-IoU's gradient against the true 1 - IoU's (central differences)."""
    data = _load("det_gradient_check.json")
    if not data:
        return []
    bands = list(data["rows"][0]["by_band"])
    lines = [
        "## LS-IoU: where the surrogate's gradient points",
        "",
        f"`{data['command']}` ({_machine_line(data)}). Held-out global pairs with 1 - IoU in (0.02, 0.7); "
        "cosine between d e_hat / d pred and the exact metric's central-difference gradient in (cx, cy, w, h, "
        "angle), its median overall and by band of 1 - IoU, the share of pairs below 0.5 and below 0, and the "
        "median ratio of the gradient norms (surrogate / true).",
        "",
        "| surrogate | pairs | mean abs error | cos median | "
        + " | ".join(f"cos median, 1 - IoU {b}" for b in bands)
        + " | cos < 0.5 | cos < 0 | norm ratio |",
        "|---|---|---|---|" + "---|" * len(bands) + "---|---|---|",
    ]
    for r in data["rows"]:
        name = "/".join(r["surrogate"].rstrip("/").split("/")[-4:])
        cells = [r["by_band"][b]["cos_median"] for b in bands]
        lines.append(
            f"| `{name}` | {r['pairs']} | {r['approx_l1']:.3f} | {r['cos_median']:.3f} | "
            + " | ".join("-" if c is None else f"{c:.3f}" for c in cells)
            + f" | {r['share_cos_below_0.5']:.3f} | {r['share_cos_negative']:.3f} | {r['norm_ratio_median']:.2f} |"
        )
    return lines + [""]


def gradient_check_chapter():
    """bench/lsed_gradient_check.py: the LS-ED surrogate's direction in z against the per-row cross entropy."""
    data = _load("str_gradient_check.json")
    if not data:
        return []
    share = data["share_of_gradient_on_correct_words"]
    lines = [
        "## STR: where the LS-ED surrogate's gradient points",
        "",
        f"`{data['command']}` (`{data['set']}`, the selection set: {data['words']} words, {data['wrong_words']} "
        f"read wrong with {data['total_edits']} edits; weights `{data['weights']}`; {_machine_line(data)}). The "
        "gradient of e_hat with respect to the free-running logits, against the reference direction softmax - "
        "one_hot(truth) of the per-row cross entropy (which knows the answer). Each direction is normalised per "
        "word, the logits stepped against it by the size shown, decoded again and counted.",
        "",
        f"Cosine of the two directions: wrong words {data['cosine_wrong_mean']} (same length as the truth "
        f"{data['cosine_wrong_same_length_mean']}), correct words {data['cosine_correct_mean']}. Share of the summed "
        f"gradient norm that falls on words already read right: surrogate {share['surrogate']:.0%}, reference "
        f"{share['reference']:.0%}.",
        "",
        "| true edits e | words | mean e_hat | mean gradient norm, surrogate | mean gradient norm, reference |",
        "|---|---|---|---|---|",
    ]
    for e, row in sorted(data["e_hat_by_e"].items(), key=lambda kv: int(kv[0])):
        lines.append(
            f"| {e} | {row['n']} | {row['mean_e_hat']:.3f} | {row.get('mean_grad_norm_surrogate', float('nan')):.4f} | "
            f"{row.get('mean_grad_norm_reference', float('nan')):.4f} |"
        )
    lines += [
        "",
        "| direction | step | wrong words improved | wrong words worse | correct words broken | total edits after |",
        "|---|---|---|---|---|---|",
    ]
    for name, steps in data["steps"].items():
        for size, v in steps.items():
            lines.append(
                f"| {name} | {size} | {v['wrong_fixed_or_better']:.1%} | {v['wrong_worse']:.1%} | "
                f"{v['correct_broken']:.1%} | {v['total_edits_after']} |"
            )
    if data.get("examples"):
        lines += [
            "",
            "| truth | read | e | e_hat | cosine | surrogate step (best size): reads |",
            "|---|---|---|---|---|---|",
        ]
        for ex in data["examples"][:8]:
            best = ex["surrogate_step_best"]
            lines.append(
                f"| {ex['truth']} | {ex['read']} | {ex['e']} | {ex['e_hat']:.2f} | {ex['cosine_with_reference']:.2f} | "
                f"{best['reads']} ({best['size']:g}, e={best['e']}) |"
            )
    return lines + [""]


def edit_kinds_chapter():
    """bench/lsed_edit_kinds.py: the mean e_hat each surrogate gives k edits of one kind."""
    data = _load("str_edit_kinds.json")
    if not data:
        return []
    lines = [
        "## STR: what the LS-ED surrogate charges for each kind of edit",
        "",
        f"`{data['command']}` ({_machine_line(data)}). {data['pairs_per_cell']} vocabulary words per cell, the "
        "prediction exactly k edits of one kind away (true distance k), as recognizer-like softmax rows against "
        "the one-hot truth; each cell is the mean e_hat (a faithful surrogate gives k).",
        "",
        "| surrogate | " + " | ".join(f"{kind} k={k}" for kind in data["kinds"] for k in (1, 3)) + " |",
        "|---|" + "---|" * (2 * len(data["kinds"])),
    ]
    for row in data["rows"]:
        cells = [f"{row['by_kind'][kind][str(k)]:.2f}" for kind in data["kinds"] for k in (1, 3)]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return lines + [""]


def peer_chapter():
    """The peers of bench/tesseract_peer.py and bench/rapidocr_peer.py (str_peers.json) beside tfls' STR
    models (the baseline, control and tuned rows of str_quality.json, when it holds the same sets)."""
    peers = _load("str_peers.json")
    if not peers or not peers.get("peers"):
        return [
            "## STR peers",
            "",
            "Not yet measured: run `python bench/tesseract_peer.py` and `python bench/rapidocr_peer.py`.",
            "",
        ]
    m = peers.get("machine", {})
    lines = [
        "## STR peers: Tesseract and RapidOCR on the same test images",
        "",
        f"Command: `{peers.get('command')}`; machine: {m.get('cpu_model', '?')}, {m.get('cpus')} CPUs, "
        f"commit {m.get('git_commit')}, {m.get('date')}. Every peer reads the STR task's own `test` and "
        "`test_ood` crops (configs/str.py); its output is case-folded and filtered to the charset, then scored "
        "with the task's metrics. ms per word: wall time of one word at batch 1 on this machine (peers: the "
        "whole call, per set; tfls: the exported recognizer's serving latency, batch 1 median, cost.json).",
        "",
    ]
    for name, p in peers["peers"].items():
        load = p.get("load_average_1min")
        lines.append(
            f"- {PEER_LABELS.get(name, name)}: {p.get('version')}; {p.get('settings', '')}"
            + (f"; 1-min load average {load:.1f} when it finished" if load is not None else "")
            + "."
        )
    lines.append("")
    ours = _load("str_quality.json")
    seeds = (ours or {}).get("seeds") or []
    cost = (_load("cost.json") or {}).get("tasks", {}).get("str", {})
    tfls_ms = cost.get("serving_latency_b1_median_ms")
    for set_name in PEER_SETS:
        rows = []
        for name, p in peers["peers"].items():
            if isinstance(p.get(set_name), dict):
                rows.append((PEER_LABELS.get(name, name), [p[set_name]], p[set_name].get("ms_per_word")))
        for name, getter in _models(seeds):
            got = [g for g in ((getter(s) or {}).get(set_name) for s in seeds) if g]
            if got:
                rows.append((f"tfls {name} ({len(got)} seed{'s' if len(got) != 1 else ''})", got, tfls_ms))
        if not rows:
            continue
        count = rows[0][1][0].get("num_samples", "?")
        lines += [
            f"### `{set_name}` ({count} words)",
            "",
            "| system | word accuracy (%) ↑ | total edit distance ↓ | ms per word ↓ |",
            "|---|---|---|---|",
        ]
        lines += [f"| {label} | " + " | ".join(_peer_cells(got, ms)) + " |" for label, got, ms in rows]
        lines.append("")
    if not any(s.get("baseline", {}).get(n) for s in seeds for n in PEER_SETS):
        lines += [
            "No tfls rows: str_quality.json is missing or holds no `test` / `test_ood` results "
            "(run `python bench/quality.py --task=str`).",
            "",
        ]
    return lines


OCR_LABELS = {"tfls": "tfls (OCR export: detector + recognizer)", "rapidocr": "RapidOCR (PP-OCRv4 det + cls + rec)"}
OCR_COMMAND = "python bench/ocr_endtoend.py --peers=rapidocr"


def _fraction(value):
    return "n/a" if value is None else f"{value:.3f}"


def ocr_threshold_chapter(data=None, name="ocr_threshold.json"):
    """bench/ocr_threshold.py: end-to-end hmean on the val scenes for each score threshold and lowest text
    confidence; the best pair in bold, the best confidence at the detector's own threshold in italics.
    `name`: an `ocr_threshold_<tag>.json` kept from an earlier run gets a chapter titled with its tag."""
    data = data if data is not None else _load(name)
    if not data:
        return []
    tag = _tag(name, "ocr_threshold")
    chosen = data["chosen"]
    # the choice at the detector's threshold, else (a grid without that threshold) the best pair's
    shown_margin = data.get("chosen_margin_at_detection_threshold")
    if shown_margin is None:
        shown_margin = chosen.get("margin", data.get("export_margin"))
    shown_scales = data.get("chosen_scales_at_detection_threshold") or chosen.get("scales")
    # the scale set chosen at the detector's threshold (a JSON from before --scale-sets has one set)
    all_rows = [r for r in data["rows"] if r.get("scales", shown_scales) == shown_scales]
    scale_sets = data.get("scale_sets") or []
    margins = sorted({r["margin"] for r in all_rows if "margin" in r})
    # the grid at the margin chosen at the detector's threshold (a JSON from before --margins has one margin)
    rows = [r for r in all_rows if r.get("margin", shown_margin) == shown_margin]
    thresholds = sorted({r["threshold"] for r in rows})
    confidences = sorted({r["min_text_confidence"] for r in rows})
    cell = {(r["threshold"], r["min_text_confidence"]): r for r in rows}
    on_grid = chosen.get("margin", shown_margin) == shown_margin and chosen.get("scales", shown_scales) == shown_scales
    lines = [
        "## OCR: the score threshold and the lowest text confidence, chosen on `val`" + (f" ({tag})" if tag else ""),
        "",
        f"`{data['command']}` ({data['num_scenes']} `val` scenes of the detection task; detector "
        f"{data['detector']}; recognizer {data['recognizer']}; {_machine_line(data)}). End-to-end hmean (ICDAR 2015 "
        "rule) of the OCR graph keeping the boxes that score at least the row's threshold and the words read with "
        "at least the column's confidence; in bold the best pair, in italics the best confidence at the "
        f"detector's own threshold ({data['detection_config_threshold']}, `eval.score_threshold`), which the OCR "
        "export keeps (the detection export and `tfls read --detector` use it too); that confidence (and the scales "
        "and margin it is shown at) is what the export's defaults were set to from the run this chapter shows."
        + (
            f" Crop margin {shown_margin:g} of the word's height (the best at the detector's threshold; the margins "
            "table below)."
            if len(margins) > 1
            else ""
        )
        + (
            f" Detector input scales {_scales_label(shown_scales)} (multiples of its input side, merged by rotated "
            "NMS; the best at the detector's threshold, the scales table below)."
            if len(scale_sets) > 1
            else ""
        ),
        "",
    ]

    def grid_cell(t, c):
        r = cell.get((t, c))
        text = "n/a" if r is None else f"{r['hmean']:.4f} (P {r['precision']:.3f}, R {r['recall']:.3f})"
        if on_grid and chosen["threshold"] == t and chosen["min_text_confidence"] == c:
            text = f"**{text}**"
        if t == data["detection_config_threshold"] and c == data.get("chosen_at_detection_threshold"):
            text = f"_{text}_"
        return text

    lines += _confidence_table("score threshold", thresholds, confidences, grid_cell)
    if len(margins) > 1:
        own = data["detection_config_threshold"]
        at_own = {(r["margin"], r["min_text_confidence"]): r for r in all_rows if r["threshold"] == own}
        lines += [
            f"The crop margin (a fraction of the word's height on each side; the export had {data['export_margin']:g} "
            f"when this ran), end-to-end hmean at the detector's threshold {own:g}; in italics the chosen pair"
            + (
                ""
                if on_grid
                else f" (the best pair overall: margin {chosen['margin']:g}, score {chosen['threshold']:g}, "
                f"confidence {chosen['min_text_confidence']:g})"
            )
            + ":",
            "",
        ]

        def margin_cell(m, c):
            r = at_own.get((m, c))
            text = "n/a" if r is None else f"{r['hmean']:.4f}"
            return f"_{text}_" if m == shown_margin and c == data.get("chosen_at_detection_threshold") else text

        lines += _confidence_table("margin", margins, confidences, margin_cell)
    if len(scale_sets) > 1:
        own = data["detection_config_threshold"]
        at_own = {
            (tuple(r["scales"]), r["min_text_confidence"]): r
            for r in data["rows"]
            if r["threshold"] == own and r.get("margin", shown_margin) == shown_margin and "scales" in r
        }
        lines += [
            "The detector's input scales (each photo detected at every listed multiple of the detector's input side "
            f"{data.get('detector_input', '')}, the boxes of all merged by rotated NMS; the export had "
            f"{_scales_label(data.get('export_scales'))} when this ran), end-to-end hmean at the detector's threshold "
            f"{own:g} and margin {shown_margin:g}; in italics the chosen set and confidence:",
            "",
        ]

        def scales_cell(sc, c):
            r = at_own.get((tuple(sc), c))
            text = "n/a" if r is None else f"{r['hmean']:.4f} (R {r['recall']:.3f})"
            chosen_here = list(sc) == shown_scales and c == data.get("chosen_at_detection_threshold")
            return f"_{text}_" if chosen_here else text

        lines += _confidence_table("scales", scale_sets, confidences, scales_cell, _scales_label)
    return lines


def _scales_label(scales):
    return "n/a" if not scales else "+".join(f"{v:g}x" for v in scales)


def _confidence_table(row_name, row_values, confidences, render, label=lambda v: f"{v:g}"):
    """A markdown table with a row per value of `row_values` and a column per lowest text confidence;
    `render(row_value, confidence)` gives each cell's text. Ends with a blank line."""
    lines = [
        f"| {row_name} | " + " | ".join(f"confidence >= {c:g}" for c in confidences) + " |",
        "|---|" + "---|" * len(confidences),
    ]
    lines += [f"| {label(v)} | " + " | ".join(render(v, c) for c in confidences) + " |" for v in row_values]
    return lines + [""]


def scene_crops_chapter(data=None):
    """bench/scene_crop_reading.py: each recognizer on the ground-truth word boxes of the OCR scenes."""
    data = data if data is not None else _load("str_scene_crops.json")
    if not data:
        return []
    lines = [
        "## OCR: the recognizer on the scenes' ground-truth word boxes",
        "",
        f"`{data['command']}` ({data['scenes_per_set']} scenes per set; {_machine_line(data)}). Every cared-for "
        "word of the detection task's scenes, cut out of its ground-truth box as the OCR export cuts a detected "
        "word, read by each recognizer: the end-to-end loss that is the recognizer's, measured apart from the "
        "detector's. Accuracy is case-insensitive; words longer than the recognizer's max_length are kept (they "
        "cannot be read).",
        "",
    ]
    for set_name, info in data["sets"].items():
        systems = info["systems"]
        first = next(iter(systems.values()))
        heights = [b["range"] for b in first["by_height"]]
        head = " | ".join(f"h {lo}-{hi if hi < 10**5 else ''} px" for lo, hi in heights)
        lines += [
            f"### `{set_name}` ({info['num_words']} words; {first['longer_than_max_length']} longer than max_length)",
            "",
            f"| recognizer | accuracy | total ED | {head} |",
            "|---|---|---|" + "---|" * len(heights),
        ]
        for label, row in systems.items():
            by = {tuple(b["range"]): b for b in row["by_height"]}
            cells = [
                f"{by[tuple(r)]['accuracy']:.1f} % ({by[tuple(r)]['words']})" if tuple(r) in by else "n/a"
                for r in heights
            ]
            lines.append(
                f"| {label} (`{row['weights']}`) | {row['accuracy']:.1f} % | {row['total_edit_distance']} | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
    return lines


def _tag(name, stem):
    """`"<stem>_<tag>.json"` -> `"<tag>"`; the stem's own file -> `""`."""
    return name[len(stem) + 1 : -len(".json")] if name.startswith(stem + "_") else ""


def _command_and_machine(data):
    """`Command: ...; machine: ..., commit, date[; load]` of an OCR bench's JSON."""
    m = data.get("machine", {})
    load = data.get("load_average_1min")
    return (
        f"Command: `{data.get('command')}`; machine: {m.get('cpu_model', '?')}, {m.get('cpus')} CPUs, "
        f"commit {m.get('git_commit')}, {m.get('date')}"
        + ("" if load is None else f"; 1-min load average {load:.1f} when it finished")
    )


def ocr_endtoend_chapter(data=None, name="ocr_endtoend.json"):
    """Whole-scene OCR (bench/ocr_endtoend.py, ocr_endtoend.json): per set, each system's end-to-end
    precision, recall and hmean (ICDAR 2015 rule), its detection hmean and its ms per image. `name`: an
    `ocr_endtoend_<tag>.json` (another setting of the same bench) gets a chapter titled with its tag."""
    tag = _tag(name, "ocr_endtoend")
    if data is None:
        data = _load(name)
        if tag and not data:
            return []
    if not data or not data.get("systems"):
        return [
            "## OCR end to end",
            "",
            f"Not yet measured: run `{OCR_COMMAND}` (needs trained detector weights in weights/det; "
            "`python bench/ocr_endtoend.py --systems=rapidocr` measures RapidOCR alone).",
            "",
        ]
    scenes = data.get("scenes", {})
    lines = [
        "## OCR end to end" + (f" ({tag})" if tag else ""),
        "",
        _command_and_machine(data) + ". Scenes: the detection task's own evaluation sets "
        f"({scenes.get('task_config', 'configs/det.py')}; seed {scenes.get('seed')}), whole scenes at their own "
        f"sizes, sent as {scenes.get('encoding', 'PNG')} bytes, one per call. "
        f"Rule: {data.get('rule', 'ICDAR 2015 end to end')}. "
        "P, R, H: end-to-end precision, recall, hmean; detection H: the same boxes scored as detection only; "
        "ms per image: median wall time of one call (batch 1) on this machine.",
        "",
    ]
    for name, system in data["systems"].items():
        lines.append(f"- {OCR_LABELS.get(name, name)}: {system.get('description', '')}.")
    for name, note in {**data.get("skipped", {}), **data.get("pending", {})}.items():
        lines.append(f"- {OCR_LABELS.get(name, name)}: not measured: {note}.")
    lines.append("")
    set_names = [s for s in PEER_SETS if any(isinstance(v.get(s), dict) for v in data["systems"].values())]
    for set_name in set_names:
        info = scenes.get("sets", {}).get(set_name, {})
        count = f"{info.get('num_scenes', '?')} scenes, {info.get('num_care_words', '?')} cared-for words"
        lines += [
            f"### `{set_name}` ({count})",
            "",
            "| system | e2e P ↑ | e2e R ↑ | e2e H ↑ | detection H ↑ | ms per image ↓ |",
            "|---|---|---|---|---|---|",
        ]
        for name, system in data["systems"].items():
            r = system.get(set_name)
            if not isinstance(r, dict):
                continue
            ms = r.get("ms_per_image_median")
            cells = [_fraction(r.get(k)) for k in ("precision", "recall", "hmean", "detection_hmean")]
            cells.append("n/a" if ms is None else f"{ms:.0f}")
            lines.append(f"| {OCR_LABELS.get(name, name)} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def ocr_latency_chapter(data=None):
    """The OCR export's latency at batch 1 (bench/ocr_latency.py, ocr_latency.json): p50 / p90 of the whole
    call and of the detection export alone on the same request."""
    data = data if data is not None else _load("ocr_latency.json")
    if not data or not data.get("ocr"):
        return ["## OCR latency", "", "Not yet measured: run `python bench/ocr_latency.py --runs=50`.", ""]
    read, correct = data.get("num_words_read"), data.get("num_words_correct")
    lines = [
        "## OCR latency",
        "",
        _command_and_machine(data)
        + f". Request: {data.get('request')}; {data.get('loader', 'session loader')}, {data.get('runs')} calls "
        f"after {data.get('warmup')} warm-up calls. Models: {data.get('models')}. Detector input "
        f"{data.get('detector_input')} px"
        + (
            f" (the OCR export detects at {', '.join(str(v) for v in data['detector_sides'])} px and merges)"
            if len(data.get("detector_sides") or []) > 1
            else ""
        )
        + f", recognizer input {data.get('recognizer_input')}. Words read per call: "
        f"{read}" + ("" if correct is None else f", of which {correct} are the photo's words read right") + ".",
        "",
        "| export | p50 ms ↓ | p90 ms ↓ | mean ms |",
        "|---|---|---|---|",
    ]
    for key, label in (("ocr", "OCR (detect, rectify, read)"), ("detection_only", "detection alone")):
        r = data.get(key)
        if isinstance(r, dict):
            lines.append(f"| {label} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['mean_ms']:.1f} |")
    lines.append("")
    return lines


def cost_section(cost):
    lines = [
        "## Cost",
        "",
        f"Command: `{cost.get('command')}`; machine: {cost['machine'].get('cpu_model')}, "
        f"{cost['machine'].get('cpus')} CPUs, {cost['machine'].get('date')}.",
        "",
    ]
    for task, c in cost.get("tasks", {}).items():
        lines += [f"### {task}", "", "| quantity | value |", "|---|---|"]
        for k, v in c.items():
            if isinstance(v, dict | list):
                continue
            lines.append(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
        lines.append("")
        for k, v in c.items():
            if isinstance(v, list) and v and isinstance(v[0], dict):
                cols = list(v[0])
                lines += [f"{k}:", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                lines += [
                    "| " + " | ".join(f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |"
                    for r in v
                ]
                lines.append("")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--output", default=os.path.join(common.ROOT, "docs", "RESULTS.md"), help="the Markdown file to write"
    )
    args = parser.parse_args()
    lines = [
        "# tfls results",
        "",
        "Generated by `python bench/report.py` from the JSON in `docs/results/` (each written by the bench",
        "script named beside it). Every table is what this machine measured; no table cell is typed by hand.",
        "Tables report test sets only, never the validation set that selected the model; JSON from before the",
        "val/test split is marked as old protocol where it appears.",
        'The one hand-written part, "Reading these numbers" (`docs/results/NOTES.md`), quotes the tables.',
        "",
    ]
    for stem in _stems("_quality.json"):
        lines += quality_chapter(stem)
    for stem in _stems("_surrogate_capacity.json"):
        lines += capacity_chapter(stem)
        for path in sorted(glob.glob(os.path.join(common.RESULTS_DIR, f"{stem}_surrogate_capacity_*.json"))):
            lines += capacity_chapter(stem, os.path.basename(path))
    lines += peer_chapter()
    lines += ood_breakdown_chapter()
    lines += gradient_check_chapter()
    lines += edit_kinds_chapter()
    lines += penalty_sweep_chapter()
    for path in sorted(glob.glob(os.path.join(common.RESULTS_DIR, "det_penalty_sweep_*.json"))):
        lines += penalty_sweep_chapter(os.path.basename(path))
    lines += lsiou_gradient_check_chapter()
    lines += ocr_endtoend_chapter()
    for path in sorted(glob.glob(os.path.join(common.RESULTS_DIR, "ocr_endtoend_*.json"))):
        lines += ocr_endtoend_chapter(name=os.path.basename(path))
    lines += ocr_latency_chapter()
    lines += ocr_threshold_chapter()
    for path in sorted(glob.glob(os.path.join(common.RESULTS_DIR, "ocr_threshold_*.json"))):
        lines += ocr_threshold_chapter(name=os.path.basename(path))
    lines += scene_crops_chapter()
    notes = os.path.join(common.RESULTS_DIR, "NOTES.md")
    if os.path.exists(notes):
        with open(notes) as f:
            lines += [f.read()]
    cost = _load("cost.json")
    if cost:
        lines += cost_section(cost)
    with open(args.output, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
