"""LLM paraphrasing through the same LLM stage as generation: the question rewritten in a patient's voice,
or the answer in plainer or more clinical register. A rewrite whose clinical facts differ from the
original's (medaug/facts.py via augmenters/preserve.py) is rejected with a reason code naming the fact
kind that changed and both fact sets in its detail; nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from augmenters.derive import derive_row
from augmenters.preserve import PreservationCheck
from medaug.lexicon import Lexicon
from medaug.run import StageStats
from medaug.schema import conform_table, rows_to_table
from medaug.stage import StageResult, reject_table

if TYPE_CHECKING:
    from medaug.llm.stage import LLMOutcome, LLMRequest, LLMStage

AUGMENTER = "llm_paraphrase"
SYSTEM = "你是一名严谨的医学编辑，只改写措辞，绝不改变医学含义。"


@dataclass(frozen=True)
class Mode:
    field: str
    task: str


MODES: dict[str, Mode] = {
    "patient_question": Mode(
        "instruction",
        "把下面的医学问题改写成患者本人口吻的提问，用日常口语描述症状。",
    ),
    "plain_answer": Mode(
        "output",
        "把下面医生的回答改写得更通俗易懂，让没有医学背景的患者能看懂。",
    ),
    "clinical_answer": Mode(
        "output",
        "把下面的回答改写成规范的临床书面语，使用标准医学术语。",
    ),
}
RULES = "必须保留所有症状、诊断、药物名称、剂量、数字、时间、左右侧以及否定（如“无”“没有”）的含义，不得增删医学信息。"


def build_request(row: dict[str, Any], mode: str) -> LLMRequest:
    from medaug.llm.stage import LLMRequest

    m = MODES[mode]
    context = f"\n\n补充信息：{row['input']}" if row["input"] and m.field == "instruction" else ""
    user = f"{m.task}{RULES}\n\n原文：{row[m.field]}{context}"
    return LLMRequest(key=f"{row['id']}:{AUGMENTER}:{mode}", system=SYSTEM, user=user, fields=(m.field,))


def outcomes_to_rows(
    rows: list[dict[str, Any]],
    modes: list[str],
    outcomes: list[LLMOutcome],
    check: PreservationCheck,
    provenance: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]], Counter[str]]:
    """Derived rows, rejections (parent id, reason, detail) and counts; outcomes are in request order."""
    derived, rejected, counts = [], [], Counter()
    it = iter(outcomes)
    for row in rows:
        for mode in modes:
            o = next(it)
            field = MODES[mode].field
            if o.fields is None:
                reason = f"llm_{o.error or 'failed'}"
            else:
                reason = check.check(row[field], o.fields[field])
            if reason is not None:
                detail = f"mode={mode}"
                if reason.startswith("fact_changed:"):
                    detail = check.detail(row[field], o.fields[field], mode=mode, field=field)
                rejected.append((row["id"], f"{AUGMENTER}:{reason}", detail))
                counts[f"llm_paraphrase_rejected_{reason.removeprefix('fact_changed:')}"] += 1
                continue
            req = build_request(row, mode)
            detail = {"mode": mode, "field": field, "system": req.system, "prompt": req.user, "seed": o.seed}
            new = derive_row(row, AUGMENTER, detail, **{field: o.fields[field]})
            new["provenance"] |= {**provenance, "sampling_seed": o.seed}
            derived.append(new)
            counts["llm_paraphrases"] += 1
    return derived, rejected, counts


def llm_paraphrase_table(
    table: pa.Table,
    stage: LLMStage,
    lexicon: Lexicon,
    modes: tuple[str, ...] = ("patient_question", "plain_answer"),
) -> StageResult:
    """Kept: the derived rewrites only (parents stay where they were); rejected: failed or unfaithful ones."""
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown LLM paraphrase mode(s) {unknown}; known: {list(MODES)}")
    rows = conform_table(table).to_pylist()
    requests = [build_request(r, m) for r in rows for m in modes]
    outcomes = stage.run(requests)
    provenance = llm_provenance(stage)
    derived, rejected, counts = outcomes_to_rows(
        rows, list(modes), outcomes, PreservationCheck(lexicon), provenance
    )
    return llm_result("llm_paraphrase", len(rows), derived, rejected, counts)


def llm_provenance(stage: LLMStage) -> dict[str, Any]:
    return {
        "model": stage.engine_config.model,
        "sampling_params": json.dumps(stage.sampling.to_dict(), ensure_ascii=False, sort_keys=True),
    }


def llm_result(
    name: str,
    rows_in: int,
    derived: list[dict[str, Any]],
    rejected: list[tuple[str, str, str]],
    counts: Counter[str],
) -> StageResult:
    rej = reject_table([r[0] for r in rejected], [r[1] for r in rejected], [r[2] for r in rejected])
    stats = StageStats(name, rows_in=rows_in, rows_out=len(derived), extra=dict(sorted(counts.items())))
    stats.rejects.update(r[1] for r in rejected)
    return StageResult(kept=rows_to_table(derived), rejected=rej, stats=stats)
