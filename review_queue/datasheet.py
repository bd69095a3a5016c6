"""The datasheet written beside every export: what is in it, where it came from, how balanced it is.

A reader deciding whether to fine-tune on an export needs the balance across areas, tasks, labels
and demographics, the review statistics and the lineage in one place, without opening Parquet.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa

from generators.expand import AGE_BANDS
from medaug.schema import AREA_NAMES_ZH, TASK_NAMES_ZH, Area, Task
from review_queue.bias import (
    DEFAULT_STEREOTYPES,
    CellRow,
    StereotypeReport,
    band_of,
    load_stereotypes,
    marginal,
)

_BAR = "#4C72B0"
FLAG_PP = 5.0  # a cell this many percentage points off its planned share is marked
MAX_CELLS = 40  # cross-table rows shown (largest deviations first); the rest are counted


def balance(table: pa.Table) -> dict[str, Counter[str]]:
    """Counts per area, task, label, error type, sex and age band."""
    demo = [d or {} for d in table.column("demographics").to_pylist()]
    return {
        "area": Counter(table.column("area").to_pylist()),
        "task": Counter(table.column("task").to_pylist()),
        "label": Counter(table.column("label").to_pylist()),
        "error_type": Counter(e for e in table.column("error_type").to_pylist() if e),
        "sex": Counter(d.get("sex") or "unknown" for d in demo),
        "age": Counter(band_of(d.get("age")) for d in demo),
    }


def _plot(path: Path, panels: list[tuple[str, Counter[str]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (title, counts) in zip(axes[0], panels, strict=True):
        names = list(counts) or ["(none)"]
        values = [counts[n] for n in names] if counts else [0]
        bars = ax.bar(range(len(names)), values, color=_BAR)
        ax.bar_label(bars, fontsize=8)
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        ax.set_title(title)
        ax.set_ylabel("rows")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _ordered(counts: Counter[str], order: list[str]) -> Counter[str]:
    """Every known value in a fixed order (zeros shown: a missing area is the finding)."""
    out = Counter({k: counts.get(k, 0) for k in order})
    out.update({k: v for k, v in counts.items() if k not in out})
    return out


def _table(title: str, counts: Counter[str], total: int, names: dict[str, str] | None = None) -> list[str]:
    lines = [f"| {title} | rows | share |", "|---|---:|---:|"]
    for k, v in counts.items():
        label = f"{k} ({names[k]})" if names and k in names else k
        lines.append(f"| {label} | {v} | {v / total:.1%} |" if total else f"| {label} | {v} | - |")
    return lines + [""]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _dev(r: CellRow, has_plan: bool) -> tuple[str, str]:
    d = r.deviation
    if d is None:
        return "-", ("unplanned" if has_plan and r.released else "")
    flag = ("over" if d > 0 else "under") if abs(d) >= FLAG_PP else ""
    return f"{d:+.1f} pp", flag


def _quota_lines(bias: dict[str, Any]) -> list[str]:
    cells: list[CellRow] = bias["cells"]
    known = sum(r.released for r in cells)
    src = bias["sources"]
    lines = ["### Demographics against the configured quotas", ""]
    if src:
        lines.append(
            "Planned shares come from the generator's own expansion of the quotas of: "
            + ", ".join(f"`{s}`" for s in src)
            + ". Deviation = released share − planned share "
            f"(percentage points); cells {FLAG_PP:.0f} pp or more off are marked."
        )
    else:
        lines.append(
            "No quotas found (no generate run manifest for this version's runs under the runs folder, "
            "and no `--quotas` config given): released counts only."
        )
    lines += ["", f"Rows with sex and age known: {known}; unknown: {bias['unknown_demographics']}.", ""]
    for axis, title in ((0, "sex"), (1, "age band"), (2, "area")):
        lines += [
            f"| {title} | rows | released share | planned share | deviation | |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for r in marginal(cells, axis):
            d, flag = _dev(r, bool(src))
            lines.append(
                f"| {r.cell[0]} | {r.released} | {_pct(r.released_share)} | {_pct(r.planned_share)} "
                f"| {d} | {flag} |"
            )
        lines.append("")
    lines += [
        "sex × age band × area (largest deviation first):",
        "",
        "| sex | age band | area | rows | released share | planned share | deviation | |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in cells[:MAX_CELLS]:
        d, flag = _dev(r, bool(src))
        lines.append(
            f"| {' | '.join(r.cell)} | {r.released} | {_pct(r.released_share)} | "
            f"{_pct(r.planned_share)} | {d} | {flag} |"
        )
    if len(cells) > MAX_CELLS:
        lines.append(f"| … {len(cells) - MAX_CELLS} more cells | | | | | | | |")
    return lines + [""]


def _stereotype_lines(rep: StereotypeReport) -> list[str]:
    lines = [
        "### Stereotyped generalisations",
        "",
        f"Every text field checked against the team's {len(load_stereotypes())} rules "
        f"(`{DEFAULT_STEREOTYPES.relative_to(DEFAULT_STEREOTYPES.parents[2])}`: sex, region, ethnicity, "
        "occupation). A hit is flagged for review, not removed.",
        "",
        f"- Rows scanned: {rep.rows_scanned}; rows flagged: {rep.rows_flagged}"
        + (f" (by label: {dict(sorted(rep.by_label.items()))})" if rep.rows_flagged else "")
        + ".",
        "",
    ]
    if not rep.rows_flagged:
        return lines
    lines += [
        "| category | hits |",
        "|---|---:|",
        *[f"| {k} | {v} |" for k, v in sorted(rep.by_category.items())],
        "",
        "| rule | hits |",
        "|---|---:|",
        *[f"| {k} | {v} |" for k, v in sorted(rep.by_rule.items())],
        "",
        "Examples:",
        "",
        "| category | sample | field | match | context |",
        "|---|---|---|---|---|",
    ]
    for cat in sorted(rep.examples):
        for h in rep.examples[cat]:
            lines.append(f"| {cat} | `{h.sample_id}` | {h.field} | {h.match} | …{h.context}… |")
    return lines + [""]


def _counterfactual_lines(summaries: list[dict[str, Any]]) -> list[str]:
    lines = ["### Counterfactual sex swap", ""]
    if not summaries:
        return lines + [
            "Not run for this version's generate runs (set `bias.counterfactual_sex_swap: true` in "
            "the generate job: the same prompt with the sex swapped, where the knowledge table puts "
            "no sex limit on the disease, must give the same diagnosis).",
            "",
        ]
    lines += [
        "| run | pairs | compared | same diagnosis | mismatches | failed | report |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s['run_id']} | {s['pairs']} | {s['compared']} | {s['same']} | {s['mismatches']} | "
            f"{s['failed']} | `{s['path']}` |"
        )
    return lines + ["", "Mismatched pairs are listed in each report for review.", ""]


def _time_lines(tm: dict[str, Any] | None, version: int) -> list[str]:
    """Physician time per approved sample of the version (absent from manifests merged without it)."""
    if not tm:
        return ["- Physician time: not recorded for this version."]
    per = tm.get("minutes_per_approved")
    cost = f"**{per:.2f} physician minutes per approved sample**" if per is not None else "no approved sample"
    return [
        f"- Physician time: {tm['total_minutes']:.1f} review minutes on the items v{version} accounts for "
        f"(rejected ones included), {tm['approved_items']} approved: {cost} (a decision counts from its lease "
        f"or the reviewer's previous submit, at most {tm['idle_seconds']:.0f} s; arbitrations are not timed)."
    ]


def write_datasheet(
    out: Path,
    table: pa.Table,
    manifest: dict[str, Any],
    export: dict[str, Any],
    bias: dict[str, Any] | None = None,
) -> Path:
    """Write DATASHEET.md, balance.png and demographics.png into `out` (`bias`: review_queue.bias.bias_report)."""
    b = balance(table)
    areas = _ordered(b["area"], [a.value for a in Area])
    tasks = _ordered(b["task"], [t.value for t in Task])
    labels = _ordered(b["label"], ["positive", "negative", "refusal"])
    _plot(out / "balance.png", [("area", areas), ("task", tasks), ("label", labels)])
    _plot(out / "demographics.png", [("sex", b["sex"]), ("age band", _ordered(b["age"], list(AGE_BANDS)))])
    total = table.num_rows
    review = manifest.get("review", {})
    deid = Counter()
    for entries in table.column("deid").to_pylist():
        for e in entries or []:
            deid[e["entity"]] += e["count"]
    parent = manifest.get("parent_version")
    lines = [
        f"# Datasheet: {manifest['dataset']} v{manifest['version']} ({export['format']}, split {export['split']})",
        "",
        f"- Version {manifest['version']}, parent {f'v{parent}' if parent else 'none'}; created by "
        f"{manifest['created_by']} at {manifest['created_at']}.",
        f"- Rows: {total} (this version added {manifest['added']}). Export written {export['created_at']}.",
        "- Every row was reviewed by two physicians independently; disagreements were arbitrated by a third. "
        "Rejected items are not included. Text was de-identified before review.",
        "",
        "## Files",
        "",
        "| file | rows |",
        "|---|---:|",
        *[f"| {f} | {n} |" for f, n in export["files"].items()],
        *[
            f"| {f} (earlier export, split kept) | {n if n is not None else '?'} |"
            for f, n in export.get("kept", {}).items()
        ],
        "",
    ]
    if export.get("training_configs"):
        lines += [
            "Train with LLaMA-Factory (base model `" + str(export.get("base_model")) + "`, override with "
            "`model_name_or_path=...`):",
            "",
            "```bash",
            *[
                f"llamafactory-cli train {Path(export['path']).resolve() / c}"
                for c in export["training_configs"]
            ],
            "```",
            "",
        ]
    if export.get("negatives_without_reference"):
        lines += [
            f"{export['negatives_without_reference']} negative rows have no reference output and so "
            "form no preference pair; they are in the version, not in this export.",
            "",
        ]
    lines += ["## Balance", "", "![area, task and label balance](balance.png)", ""]
    lines += _table("area", areas, total, {k.value: v for k, v in AREA_NAMES_ZH.items()})
    lines += _table("task", tasks, total, {k.value: v for k, v in TASK_NAMES_ZH.items()})
    lines += _table("label", labels, total)
    if b["error_type"]:
        lines += _table("error type (negatives)", b["error_type"], sum(b["error_type"].values()))
    lines += ["## Demographics", "", "![sex and age balance](demographics.png)", ""]
    lines += _table("sex", b["sex"], total) + _table("age band", b["age"], total)
    if bias is not None:
        lines += ["## Bias", ""]
        lines += _quota_lines(bias) + _stereotype_lines(bias["stereotypes"])
        lines += _counterfactual_lines(bias["counterfactual"])
    lines += [
        "## Review",
        "",
        f"- Items accounted for in v{manifest['version']}: {review.get('items', 0)}; outcomes "
        f"{review.get('outcomes', {})}.",
        f"- Double-reviewed: {review.get('double_reviewed', 0)}; agreed: {review.get('agreed', 0)}; arbitrated: "
        f"{review.get('arbitrated', 0)}; agreement rate: {review.get('agreement_rate')}; Cohen's kappa: "
        f"{review.get('kappa')}.",
        *_time_lines(review.get("time"), manifest["version"]),
        f"- Skipped at merge: {manifest.get('skipped', {})}.",
        "",
        "## Lineage",
        "",
        f"- Queue runs (rows added in this version): {manifest.get('runs', {})}.",
        f"- Templates: {manifest.get('templates', {})}.",
        f"- De-identification removed (entity: count, all rows): {dict(sorted(deid.items())) or 'nothing found'}.",
        "- Per row: `lineage/` in the version folder gives the queue item, reviews, arbitration and run; "
        "the row's `provenance` gives template, seed, parent and augmentation chain.",
        "",
        "## Use and limits",
        "",
        "- Synthetic and augmented medical text for fine-tuning; not medical advice and not a clinical reference.",
        "- Negative rows carry a deliberately wrong answer (`label: negative`, `verdict`, `error_type`); "
        "never train on their output as if it were correct.",
        "- Balance reflects what was generated and approved, not disease prevalence.",
        "",
    ]
    path = out / "DATASHEET.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
