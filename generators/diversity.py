"""The diversity report of a generate run: does a large run give many different samples, or many copies?

Figures: distinct diseases, templates and personas planned; the near-duplicate rate among the
prompts and among the outputs, measured with the dedup stage itself (curation/dedup, threshold
0.85 on the normalised text), so the figure is what dedup will throw away later; distinct-n of
the outputs (unique character n-grams / all n-grams, the usual measure for Chinese text); the
plan's novelty redraws and skips; and the quota cells whose demographic targets could not be met,
with the reason. Dedup over a very large run costs minutes, so it is measured on a seeded random
sample of at most `cap` texts (the report says how many); the rate on a sample is a lower bound.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from generators.expand import PlanReport, PromptRow, novelty_text

DEFAULT_CAP = 10_000


def near_duplicate_rate(
    texts: Sequence[str], threshold: float = 0.85, cap: int = DEFAULT_CAP, seed: int = 0
) -> dict[str, Any]:
    """Share of `texts` the dedup stage drops as exact or near duplicates of another (texts as question-only samples)."""
    from curation.dedup import DedupConfig, dedup_table

    texts = list(texts)
    n_all = len(texts)
    if n_all > cap:
        texts = random.Random(seed).sample(texts, cap)
    n = len(texts)
    if n == 0:
        return {"checked": 0, "of": 0, "kept": 0, "rate": 0.0}
    table = pa.table(
        {
            "id": [f"t{i}" for i in range(n)],
            "instruction": texts,
            "input": [""] * n,
            "output": [""] * n,
            "label": ["positive"] * n,
            "task": ["medical_qa"] * n,
            "area": ["general"] * n,
        }
    )
    kept = dedup_table(table, DedupConfig(threshold=threshold)).kept.num_rows
    return {"checked": n, "of": n_all, "kept": kept, "rate": round(1 - kept / n, 4)}


def distinct_n(texts: Sequence[str], ns: Sequence[int] = (1, 2, 3)) -> dict[str, float]:
    """distinct-n over characters (whitespace removed): unique n-grams / all n-grams across the texts."""
    out: dict[str, float] = {}
    for n in ns:
        seen: set[str] = set()
        total = 0
        for t in texts:
            s = "".join(t.split())
            grams = [s[i : i + n] for i in range(len(s) - n + 1)]
            total += len(grams)
            seen.update(grams)
        out[f"distinct_{n}"] = round(len(seen) / total, 4) if total else 0.0
    return out


def diversity_report(
    plan: PlanReport,
    prompts: list[PromptRow],
    outputs: Sequence[str] | None = None,
    *,
    threshold: float = 0.85,
    cap: int = DEFAULT_CAP,
) -> dict[str, Any]:
    """The report that goes into the manifest (`outputs.diversity`) and the run summary."""
    report: dict[str, Any] = {
        "distinct": plan.distinct,
        "plan": {
            "requested": plan.requested,
            "planned": plan.planned,
            "near_duplicates_redrawn": plan.redrawn,
            "skipped_near_duplicates": plan.skipped,
            "index_hits": plan.index_hits,
            "novelty": plan.novelty,
        },
        "cells_out_of_variety": plan.out_of_variety,
        "quota_misses": plan.quota_misses,
        # a seeded prompt counts by its target part: its few-shot examples are shared context
        "prompts": near_duplicate_rate([novelty_text(p) for p in prompts], threshold, cap),
    }
    if outputs is not None:
        outs = [o for o in outputs if o]
        report["outputs"] = near_duplicate_rate(outs, threshold, cap) | distinct_n(outs)
    return report


def format_report(d: dict[str, Any]) -> str:
    """A few lines for the end-of-run summary."""
    dist, pl, pr = d["distinct"], d["plan"], d["prompts"]
    lines = [
        f"diversity: {dist['diseases']}/{dist['diseases_available']} diseases, "
        f"{dist['templates']}/{dist['templates_available']} templates, {dist['personas']} personas",
        f"  prompts: {pl['planned']}/{pl['requested']} planned; {pl['near_duplicates_redrawn']} near-duplicates "
        f"redrawn, {pl['skipped_near_duplicates']} skipped; near-duplicate rate {pr['rate']:.1%} "
        f"(dedup over {pr['checked']} of {pr['of']})",
    ]
    if "outputs" in d:
        o = d["outputs"]
        lines.append(
            f"  outputs: near-duplicate rate {o['rate']:.1%} (over {o['checked']} of {o['of']}); "
            f"distinct-1 {o['distinct_1']:.3f}, distinct-2 {o['distinct_2']:.3f}, distinct-3 {o['distinct_3']:.3f}"
        )
    for c in d["cells_out_of_variety"]:
        lines.append(
            f"  out of variety: {c['task']} x {c['area']}: {c['planned']}/{c['requested']} ({c['reason']})"
        )
    for m in d["quota_misses"]:
        lines.append(
            f"  quota not met: {m['area']} {m['dimension']}={m['value']}: planned {m['planned_share']:.0%} "
            f"vs target {m['target_share']:.0%}: {m['reason']}"
        )
    return "\n".join(lines)
