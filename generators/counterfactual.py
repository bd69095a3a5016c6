"""Counterfactual sex-swap check for a generation run: sex must not change the diagnosis where it is irrelevant.

The seed asks that sex never changes the advice (避免偏见与刻板印象). With `bias.counterfactual_sex_swap: true`
a generate run also takes up to `bias.counterfactual_max_pairs` of its prompts that state the patient's sex
and whose disease has no sex limit in the knowledge table (a sex-specific disease — 子宫肌瘤, 乳腺癌 — is never swapped), renders each again
with the patient's sex swapped (the same template, disease, age, findings), generates both sides greedily
(temperature 0: the only difference between the two is the sex) and compares the diagnosis each answer
names. Mismatches are listed in `runs/<run_id>/bias/counterfactual.jsonl` for review.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from generators.expand import SEX_ZH, PromptRow, _patient
from generators.knowledge import Disease
from generators.templates import Template
from medaug.io import write_jsonl
from medaug.schema import Sex

SWAP = {Sex.male: Sex.female, Sex.female: Sex.male}
SUFFIX = "-sexswap"
REPORT = "counterfactual.jsonl"
SUMMARY = "counterfactual.json"


class BiasConfig(BaseModel):
    """The generate job's `bias` section."""

    model_config = ConfigDict(extra="forbid")

    counterfactual_sex_swap: bool = False
    counterfactual_max_pairs: int = Field(default=200, ge=1, le=100_000)


def sex_swap_pairs(
    prompts: list[PromptRow], diseases: list[Disease], templates: list[Template], max_pairs: int
) -> list[tuple[PromptRow, PromptRow]]:
    """(original, swapped) for up to `max_pairs` prompts whose disease has no sex limit and whose template
    writes the patient's sex, taken in prompt-id (hash) order so they spread over tasks, areas and
    templates; deterministic for a run."""
    sex_of = {d.id: d.sex for d in diseases}
    by_id = {t.id: t for t in templates}
    names_sex = {t.id for t in templates if t.slots() & {"sex", "patient"}}  # else both prompts are identical
    eligible = sorted(
        (p for p in prompts if sex_of.get(p.seed_id) is None and p.template_id in names_sex),
        key=lambda p: p.prompt_id,
    )
    pairs = []
    for p in eligible[:max_pairs]:
        sex = SWAP[p.sex]
        values = {**p.slots, "sex": SEX_ZH[sex], "patient": _patient(p.age, sex)}
        system, user = by_id[p.template_id].render(values)
        pairs.append(
            (p, replace(p, prompt_id=p.prompt_id + SUFFIX, sex=sex, system=system, user=user, slots=values))
        )
    return pairs


def named_diagnoses(text: str, diseases: list[Disease]) -> list[str]:
    """Knowledge-table diseases an answer names (by name or ICD-10 code), in order of first mention."""
    first: dict[str, int] = {}
    for d in diseases:
        spots = [text.find(d.name), *(m.start() for c in d.icd10 for m in re.finditer(re.escape(c), text))]
        spots = [s for s in spots if s >= 0]
        if spots:
            first[d.id] = min(spots)
    return sorted(first, key=lambda k: (first[k], k))


def compare_pairs(
    pairs: list[tuple[PromptRow, PromptRow]],
    outputs: dict[str, str | None],
    diseases: list[Disease],
    failures: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One record per pair; `outputs` maps prompt id → generated answer (missing/None: generation failed,
    `failures` says why). The diagnosis of an answer is the first disease it names; `same` is None when a
    side failed."""
    failures = failures or {}
    records = []
    for orig, swap in pairs:
        a, b = outputs.get(orig.prompt_id), outputs.get(swap.prompt_id)
        da = named_diagnoses(a, diseases) if a is not None else None
        db = named_diagnoses(b, diseases) if b is not None else None
        same = None if da is None or db is None else (da[:1] == db[:1])
        records.append(
            {
                "prompt_id": orig.prompt_id,
                "template_id": orig.template_id,
                "disease": orig.seed_id,
                "task": orig.task.value,
                "area": orig.area.value,
                "age": orig.age,
                "sex": orig.sex.value,
                "swapped_sex": swap.sex.value,
                "diagnosis": da[0] if da else None,
                "swapped_diagnosis": db[0] if db else None,
                "named": da,
                "swapped_named": db,
                "same": same,
                "output": a,
                "swapped_output": b,
                "failure": failures.get(orig.prompt_id) if a is None else None,
                "swapped_failure": failures.get(swap.prompt_id) if b is None else None,
            }
        )
    return records


def write_report(records: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    """counterfactual.jsonl (every pair, mismatches first) and counterfactual.json (the summary)."""
    folder.mkdir(parents=True, exist_ok=True)
    ordered = sorted(records, key=lambda r: {False: 0, None: 1, True: 2}[r["same"]])
    path = folder / REPORT
    write_jsonl(ordered, path)
    summary = {
        "pairs": len(records),
        "compared": sum(r["same"] is not None for r in records),
        "same": sum(r["same"] is True for r in records),
        "mismatches": sum(r["same"] is False for r in records),
        "failed": sum(r["same"] is None for r in records),
        "no_diagnosis_named": sum(r["same"] is True and r["diagnosis"] is None for r in records),
        "path": str(path),
    }
    (folder / SUMMARY).write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


def print_mismatches(records: list[dict[str, Any]], limit: int = 20) -> None:
    """The mismatched pairs on the job's output, for review."""
    bad = [r for r in records if r["same"] is False]
    for r in bad[:limit]:
        print(
            f"[bias] sex swap changes the diagnosis: prompt {r['prompt_id']} ({r['disease']}, {r['age']} y): "
            f"{r['sex']} → {r['diagnosis']}, {r['swapped_sex']} → {r['swapped_diagnosis']}",
            flush=True,
        )
    if len(bad) > limit:
        print(f"[bias] … {len(bad) - limit} more mismatches in the report", flush=True)
