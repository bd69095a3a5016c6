"""Typed negatives written by the LLM: it is given the question, the correct answer and the one error
type to inject. A result is kept only if it shows that error (a cheap type-specific check) and the verifier
that every rule negative passes too (augmenters.negative_verify) proves it wrong for this case from the
knowledge tables, so a model that ignores the instruction, or writes an answer that is also acceptable,
yields counted rejections, not mislabelled negatives. A kept one carries the same verdict, change
(before → after) and reason as a rule negative.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from augmenters.derive import derive_row, rng_for
from augmenters.llm_paraphrase import llm_provenance, llm_result
from augmenters.negative_verify import Proof, check_wrong
from augmenters.negatives import DRUG_DOSE, NegativeKnowledge, load_negative_knowledge
from medaug.guards import drug_automaton
from medaug.schema import NEGATIVE_VERDICT, ErrorType, Label, conform_table

if TYPE_CHECKING:
    from medaug.llm.stage import LLMOutcome, LLMRequest, LLMStage

AUGMENTER = "llm_negative"
SYSTEM = "你是医学数据标注助手，负责为模型训练构造带有特定错误的反面示例回答。这些回答只用于训练判别，不会给患者看。"
ERROR_PROMPTS: dict[ErrorType, str] = {
    ErrorType.wrong_diagnosis: "把诊断换成同一专科里一个容易混淆但错误的疾病",
    ErrorType.wrong_drug: "把推荐的药物换成错误的或对该患者禁忌的药物",
    ErrorType.wrong_dose: "把药物剂量改错（放大或缩小数倍，或者换错单位）",
    ErrorType.contradicts_findings: "让回答与问题中给出的症状、体征或检查结果相矛盾",
    ErrorType.missing_referral: "删去所有建议立即就医、急诊或拨打120的内容，让回答显得可以在家观察",
    ErrorType.overclaiming: "加入夸大疗效的承诺，例如“保证治愈”“百分之百有效”",
}
_OVERCLAIM = re.compile(r"保证|百分之百|百分百|100%|一定能|绝对|根治|彻底治愈|不会复发")


_HINTED = (ErrorType.wrong_diagnosis, ErrorType.wrong_drug, ErrorType.wrong_dose)


def table_hint(row: dict[str, Any], error_type: ErrorType) -> str:
    """For the types whose wrongness the tables must prove (diagnosis, drug, dose): the change the rule
    constructor can prove for this row, so the model writes an error the verifier can keep; "" if none."""
    if error_type not in _HINTED:
        return ""
    from augmenters.negatives import Candidate, make_negative

    made = make_negative(row, error_type, seed=0, kb=load_negative_knowledge())
    if not isinstance(made, Candidate):
        return ""
    return f"可以把“{made.before}”改成“{made.after}”（{made.reason}），只改这一处，不要加解释。"


def build_request(row: dict[str, Any], error_type: ErrorType) -> LLMRequest:
    from medaug.llm.stage import LLMRequest

    question = row["instruction"] + (f"\n{row['input']}" if row["input"] else "")
    user = (
        f"问题：{question}\n\n正确回答：{row['output']}\n\n"
        f"请在正确回答的基础上只注入一种错误：{ERROR_PROMPTS[error_type]}。其余内容尽量保持不变，语气自然可信。"
        + table_hint(row, error_type)
    )
    return LLMRequest(
        key=f"{row['id']}:{AUGMENTER}:{error_type.value}", system=SYSTEM, user=user, fields=("output",)
    )


def shows_error(error_type: ErrorType, reference: str, wrong: str, kb: NegativeKnowledge) -> bool:
    """Whether `wrong` differs from `reference` in the way the error type says (a necessary condition)."""
    if error_type == ErrorType.wrong_dose:
        return sorted(DRUG_DOSE.findall(reference)) != sorted(DRUG_DOSE.findall(wrong))
    if error_type == ErrorType.wrong_drug:
        drugs = drug_automaton()
        return {w for _, w in drugs.iter_long(reference)} != {w for _, w in drugs.iter_long(wrong)}
    if error_type == ErrorType.wrong_diagnosis:
        names = kb.diseases()
        return {d for d in names if d in reference} != {d for d in names if d in wrong}
    if error_type == ErrorType.missing_referral:

        def cues(t: str) -> int:
            return sum(t.count(c) for c in kb.referral_cues)

        return cues(reference) > 0 and cues(wrong) < cues(reference)
    if error_type == ErrorType.overclaiming:
        return len(_OVERCLAIM.findall(wrong)) > len(_OVERCLAIM.findall(reference))
    return True  # contradicts_findings: no cheap test; physicians review every negative's error type


def outcomes_to_rows(
    pairs: list[tuple[dict[str, Any], ErrorType]],
    outcomes: list[LLMOutcome],
    provenance: dict[str, Any],
    kb: NegativeKnowledge,
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]], Counter[str]]:
    derived, rejected, counts = [], [], Counter()
    for (row, et), o in zip(pairs, outcomes, strict=True):
        wrong = (o.fields or {}).get("output", "")
        proof: Proof | str = "not_checked"
        if o.fields is None:
            reason = f"llm_{o.error or 'failed'}"
        elif not wrong.strip():
            reason = "empty"
        elif wrong.strip() == row["output"].strip():
            reason = "unchanged"
        elif not shows_error(et, row["output"], wrong, kb):
            reason = "error_not_injected"
        elif isinstance(proof := check_wrong(row, et, wrong, kb), str):
            reason = f"not_wrong:{proof}"
        else:
            reason = None
        if reason is not None:
            rejected.append((row["id"], f"{AUGMENTER}:{reason}", f"error_type={et.value}"))
            counts[f"llm_negative_rejected_{reason.replace(':', '_')}"] += 1
            continue
        assert isinstance(proof, Proof)
        req = build_request(row, et)
        detail = {"error_type": et.value, "strategy": "llm", **proof.to_dict(), "system": req.system,
                  "prompt": req.user, "seed": o.seed}  # fmt: skip
        new = derive_row(
            row,
            AUGMENTER,
            detail,
            output=wrong,
            label=Label.negative.value,
            error_type=et.value,
            verdict=f"{NEGATIVE_VERDICT}：{proof.reason}",
            reference_output=row["output"],
        )
        new["provenance"] |= {**provenance, "sampling_seed": o.seed}
        derived.append(new)
        counts[f"llm_negative_{et.value}"] += 1
    return derived, rejected, counts


def plan(
    rows: list[dict[str, Any]], ratios: dict[ErrorType, float], seed: int
) -> list[tuple[dict[str, Any], ErrorType]]:
    """Which (positive row, error type) pairs to ask for; drawn per row and type, independent of batching."""
    out = []
    for row in rows:
        if row["label"] != Label.positive.value:
            continue
        for et in ERROR_PROMPTS:
            r = ratios.get(et, 0.0)
            if r > 0 and rng_for(seed, row["id"], f"{AUGMENTER}:{et.value}").random() < r:
                out.append((row, et))
    return out


def llm_negatives_table(table: pa.Table, stage: LLMStage, ratios: dict[ErrorType, float], seed: int = 0):
    """Kept: the LLM-written negatives only; rejected: failures and answers that do not show the error."""
    rows = conform_table(table).to_pylist()
    pairs = plan(rows, ratios, seed)
    outcomes = stage.run([build_request(row, et) for row, et in pairs])
    derived, rejected, counts = outcomes_to_rows(
        pairs, outcomes, llm_provenance(stage), load_negative_knowledge()
    )
    return llm_result("llm_negatives", len(rows), derived, rejected, counts)
