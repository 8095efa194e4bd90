"""Regenerates docs/RESULTS.md (and its plots) from the JSON files the benchmarks wrote in docs/results/.

python bench/report.py
"""

import glob
import json
import os
import re

import common
import numpy as np

METRICS = {
    "str": [
        ("accuracy", "word acc. (%)", "max"),
        ("total_edit_distance", "total ED", "min"),
        ("normalized_edit_distance", "1 - norm. ED", "max"),
    ],
    "det": [("precision", "precision", "max"), ("recall", "recall", "max"), ("hmean", "hmean", "max")],
}


def _load(name):
    path = os.path.join(common.RESULTS_DIR, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _ms(values, digits=3):
    m, s = common.mean_std(values)
    if m is None:
        return "n/a"
    n = sum(v is not None for v in values)
    if n == 1:
        return f"{m:.{digits}f} (1 seed)"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def _first_set(metrics_by_set):
    return next(iter(metrics_by_set.values()))


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


def quality_section(task, data):
    seeds = data["seeds"]
    metrics = METRICS[task]
    lines = [
        f"### {task.upper()}: gradient quality (held-out set `{next(iter(seeds[0]['baseline']))}`, "
        f"{len(seeds)} seeds, mean ± std)",
        "",
    ]
    header = "| model | " + " | ".join(label for _, label, _ in metrics) + " | rel. to baseline | rel. to control |"
    lines += [header, "|" + "---|" * (len(metrics) + 3)]
    primary, _, mode = metrics[1] if task == "str" else metrics[2]

    def row(name, getter):
        values = {k: [getter(s).get(k) if getter(s) else None for s in seeds] for k, _, _ in metrics}
        rel_b = [
            _rel(getter(s)[primary], _first_set(s["baseline"])[primary], mode) if getter(s) else None for s in seeds
        ]
        rel_c = [
            _rel(getter(s)[primary], _first_set(s["control"])[primary], mode)
            if getter(s) and s.get("control")
            else None
            for s in seeds
        ]
        digits = {"accuracy": 2, "total_edit_distance": 1, "normalized_edit_distance": 4}
        cells = [_ms(values[k], digits.get(k, 3)) for k, _, _ in metrics]
        rb = _ms(rel_b, 1) + " %" if any(v is not None for v in rel_b) and name != "baseline" else ""
        is_ref = name == "baseline" or name.startswith("control")
        rc = _ms(rel_c, 1) + " %" if any(v is not None for v in rel_c) and not is_ref else ""
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {rb} | {rc} |")

    row("baseline", lambda s: _first_set(s["baseline"]))
    if seeds[0].get("control"):
        row("control (ordinary loss)", lambda s: _first_set(s["control"]) if s.get("control") else None)
    for variant in _all_variants(seeds):
        row(variant, lambda s, v=variant: _first_set(s["variants"][v]["metrics"]) if v in s["variants"] else None)
    lines += ["", f"Relative change is of {primary} (positive = better), per seed, then averaged.", ""]
    described = []
    for variant in _all_variants(seeds):
        v = next(s["variants"][variant] for s in seeds if variant in s["variants"])
        pre = "pretrained surrogate" if v.get("pretrained", True) else "surrogate from scratch"
        described.append(f"`{variant}`: {pre}, overrides `{v.get('overrides', {})}`")
    if described:
        lines += ["Variants (all tune for the same steps as the control): " + "; ".join(described) + ".", ""]

    lines += [
        f"### {task.upper()}: approximation quality (mean |e_hat - e|, held-out pairs)",
        "",
        "| surrogate | global pairs | local pairs (its tuned model's outputs) |",
        "|---|---|---|",
    ]
    pre = [s.get("pretrained_surrogate") or {} for s in seeds]
    lines.append(
        f"| pretrained on global pairs (local = baseline's outputs) | "
        f"{_ms([p.get('approx_l1_global') for p in pre])} | {_ms([p.get('approx_l1_local') for p in pre])} |"
    )
    for variant in _all_variants(seeds):
        sur = [s["variants"].get(variant, {}).get("surrogate") or {} for s in seeds]
        lines.append(
            f"| after tuning: {variant} | {_ms([x.get('approx_l1_global') for x in sur])} | "
            f"{_ms([x.get('approx_l1_local') for x in sur])} |"
        )
    lines += [""]
    return lines


def bars_plot(task, data):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = data["seeds"]
    key, label, _ = METRICS[task][1] if task == "str" else METRICS[task][2]
    names = ["baseline"] + (["control"] if seeds[0].get("control") else []) + _all_variants(seeds)

    def values(name):
        if name == "baseline":
            return [_first_set(s["baseline"])[key] for s in seeds]
        if name == "control":
            return [_first_set(s["control"])[key] for s in seeds if s.get("control")]
        return [_first_set(s["variants"][name]["metrics"])[key] for s in seeds if name in s["variants"]]

    means = [np.mean(values(n)) for n in names]
    stds = [np.std(values(n)) for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(
        names,
        means,
        yerr=stds,
        capsize=4,
        color=["#888"] + ["#c96"] * ("control" in names) + ["#48c"] * (len(names) - 1 - ("control" in names)),
    )
    ax.set_ylabel(label)
    ax.set_title(f"{task.upper()}: {label} on the held-out set ({len(seeds)} seeds)")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    path = os.path.join(common.RESULTS_DIR, f"{task}_bars.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.path.basename(path)


def main():
    lines = [
        "# tfls results",
        "",
        "Generated by `python bench/report.py` from the JSON in `docs/results/` (each written by the bench",
        "script named beside it). Every table is what this machine measured; no table cell is typed by hand.",
        'The one hand-written part, "Reading these numbers" (`docs/results/NOTES.md`), quotes the tables.',
        "",
    ]
    for task in ("str", "det"):
        data = _load(f"{task}_quality.json")
        if not data or not data.get("seeds"):
            lines += [
                f"## {task.upper()} quality",
                "",
                f"Not yet measured: run `python bench/quality.py --task={task}`.",
                "",
            ]
            continue
        m = data["machine"]
        lines += [
            f"## {task.upper()} quality",
            "",
            f"Command: `{data['command']}` (overrides: `{data['overrides']}`)",
            f"Machine: {m.get('cpu_model', '?')}, {m.get('cpus')} CPUs, {m.get('gpus', 0)} GPUs, "
            f"TF {m.get('tensorflow')}, commit {m.get('git_commit')}, {m.get('date')}; "
            f"wall time {data.get('wall_time_s', 0) / 60:.1f} min.",
            "",
        ]
        lines += quality_section(task, data)
        lines += [f"![{task} bars](results/{bars_plot(task, data)})", ""]
        for extra in sorted(glob.glob(os.path.join(common.RESULTS_DIR, f"{task}_*.png"))):
            if not extra.endswith("_bars.png"):
                lines += [f"![{os.path.basename(extra)}](results/{os.path.basename(extra)})", ""]
        for path in sorted(glob.glob(os.path.join(common.RESULTS_DIR, f"{task}_quality_*.json"))):
            # investigations: the same bench on one seed's base with other tuning settings (--output=...)
            extra = _load(os.path.basename(path))
            if not extra or not extra.get("seeds"):
                continue
            label = os.path.basename(path)[len(f"{task}_quality_") : -len(".json")]
            lines += [
                f"### {task.upper()} investigation: {label}",
                "",
                f"Command: `{extra['command']}` (overrides: `{extra['overrides']}`, tuning only: "
                f"`{extra.get('tune_overrides', {})}`); "
                f"commit {extra['machine'].get('git_commit')}, {extra['machine'].get('date')}.",
                "",
            ]
            lines += quality_section(task, extra)
    for task in ("str", "det"):
        cap = _load(f"{task}_surrogate_capacity.json")
        if cap and cap.get("rows"):
            lines += [
                f"## {task.upper()} surrogate: approximation error against capacity and pretraining length",
                "",
                f"Command: `{cap['command']}`; commit {cap['machine'].get('git_commit')}, "
                f"{cap['machine'].get('date')}. Fresh surrogate pretrained on global pairs from one trained "
                "baseline; local pairs are that baseline's outputs on the held-out set (never seen in pretraining).",
                "",
                "| overrides | embedding parameters | pretrain steps | global pairs | local pairs | wall (s) |",
                "|---|---|---|---|---|---|",
            ]
            # a quality-bench base (<root>/seed<N>/base): its default pretrained surrogate is the reference row
            found = re.search(r"seed(\d+)/base/?$", cap["base"])
            base_seed = int(found.group(1)) if found else None
            quality = _load(f"{task}_quality.json")
            ref = next((s for s in (quality or {}).get("seeds", []) if s["seed"] == base_seed), None)
            if ref and ref.get("pretrained_surrogate") and not any(not r["overrides"] for r in cap["rows"]):
                p = ref["pretrained_surrogate"]
                lines.append(
                    f"| default (same base, from {task}_quality.json) | default | "
                    f"{common.load_config(task).surrogate.pretrain_steps} | {p['approx_l1_global']:.3f} | "
                    f"{p['approx_l1_local']:.3f} | |"
                )
            for r in cap["rows"]:
                lines.append(
                    f"| `{r['overrides'] or 'default'}` | {r.get('embedding_parameters')} | {r['pretrain_steps']} | "
                    f"{r['approx_l1_global']:.3f} | {r['approx_l1_local']:.3f} | {r['wall_s']:.0f} |"
                )
            lines.append("")
    peer = _load("str_peer.json")
    if peer:
        lines += [
            "## STR peer: Tesseract on the same held-out set",
            "",
            f"Command: `{peer['command']}`; "
            f"{peer['tesseract']['version']}, `--psm 7`, images upscaled 3x, output case-folded and "
            "filtered to the charset.",
            "",
            "| system | word acc. (%) | total ED | 1 - norm. ED | samples |",
            "|---|---|---|---|---|",
        ]
        for name, value in peer.items():
            if isinstance(value, dict) and "synthetic_val" in value:
                r = value["synthetic_val"]
                lines.append(
                    f"| {name} | {r['accuracy']:.2f} | {r['total_edit_distance']} | "
                    f"{r['normalized_edit_distance']:.4f} | {r['num_samples']} |"
                )
        ours = _load("str_quality.json")
        if ours and ours.get("seeds"):
            # the same held-out set (synthetic_val of configs/str.py); mean over the quality bench's seeds
            seeds = ours["seeds"]
            rows = [("baseline", lambda s: s["baseline"]), ("control", lambda s: s.get("control"))]
            rows += [(v, lambda s, v=v: (s["variants"].get(v) or {}).get("metrics")) for v in _all_variants(seeds)]
            for name, get in rows:
                got = [get(s)["synthetic_val"] for s in seeds if get(s) and "synthetic_val" in get(s)]
                if got:
                    acc = np.mean([g["accuracy"] for g in got])
                    ted = np.mean([g["total_edit_distance"] for g in got])
                    ned = np.mean([g["normalized_edit_distance"] for g in got])
                    lines.append(
                        f"| tfls {name} (mean of {len(got)} seeds, str_quality.json) | {acc:.2f} | {ted:.1f} | "
                        f"{ned:.4f} | {got[0]['num_samples']} |"
                    )
        lines.append("")
    notes = os.path.join(common.RESULTS_DIR, "NOTES.md")
    if os.path.exists(notes):
        lines += [open(notes).read()]
    cost = _load("cost.json")
    if cost:
        lines += cost_section(cost)
    with open(os.path.join(common.ROOT, "docs", "RESULTS.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote docs/RESULTS.md")


def cost_section(cost):
    lines = [
        "## Cost",
        "",
        f"Command: `{cost.get('command')}`; machine: {cost['machine'].get('cpu_model')}, "
        f"{cost['machine'].get('cpus')} CPUs, {cost['machine'].get('date')}.",
        "",
    ]
    for task, c in cost.get("tasks", {}).items():
        lines += [f"### {task.upper()}", "", "| quantity | value |", "|---|---|"]
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


if __name__ == "__main__":
    main()
