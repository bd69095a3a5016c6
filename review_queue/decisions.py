"""What a physician can decide about an item, how it changes the sample, and when two reviews agree."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from rapidfuzz.distance import Levenshtein

from medaug.schema import (
    ICD10_SHAPE,
    MAX_LIST_ITEMS,
    AugmentationStep,
    Code,
    ErrorType,
    Label,
    Sample,
    Text,
    check_text,
)

MAX_NOTE_CHARS = 10_000  # a reviewer's comment or rejection text

TEXT_FIELDS = ("instruction", "input", "output")
DEFAULT_SIMILARITY = 0.9


class RejectReason(StrEnum):
    unsafe = "unsafe"  # 医疗安全风险
    factually_wrong = "factually_wrong"  # 医学事实错误
    personal_data = "personal_data"  # 含个人信息
    off_task = "off_task"  # 与任务不符
    low_quality = "low_quality"  # 表述不通顺 / 质量差
    duplicate = "duplicate"  # 重复
    other = "other"


class DecisionError(ValueError):
    """A decision that does not fit the item (names the field)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


Note = Annotated[str, StringConstraints(max_length=MAX_NOTE_CHARS), AfterValidator(check_text)]


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "correct", "reject"]
    # The sample's own limits (medaug/schema.py), so a correction can never make an invalid sample.
    instruction: Text | None = None
    input: Text | None = None
    output: Text | None = None
    icd10: list[Code] | None = Field(default=None, max_length=MAX_LIST_ITEMS)
    label: Label | None = None
    error_type: ErrorType | None = None
    reject_reason: RejectReason | None = None
    reject_text: Note = ""
    comment: Note = ""

    @field_validator("icd10")
    @classmethod
    def _icd_shape(cls, v: list[str] | None) -> list[str] | None:
        for code in v or []:
            if not ICD10_SHAPE.fullmatch(code):
                raise ValueError(f"not an ICD-10 code: {code!r}")
        return v

    def edits(self) -> dict[str, object]:
        return {
            k: getattr(self, k)
            for k in (*TEXT_FIELDS, "icd10", "label", "error_type")
            if getattr(self, k) is not None
        }


def check_shape(decision: Decision) -> None:
    """The checks that need no sample (all of them for approve and reject); raises DecisionError."""
    edits = decision.edits()
    if decision.decision == "reject":
        if decision.reject_reason is None:
            raise DecisionError("reject_reason", "a rejection needs a reason from the list")
        if edits:
            raise DecisionError(next(iter(edits)), "a rejection carries no edits")
        return
    if decision.reject_reason is not None:
        raise DecisionError("reject_reason", f"only a rejection has a reason, this is {decision.decision}")
    if decision.decision == "approve" and edits:
        raise DecisionError(next(iter(edits)), "an approval carries no edits; use correct")


def apply(decision: Decision, sample: Sample) -> Sample:
    """The sample this decision leads to; raises DecisionError when the decision is inconsistent."""
    check_shape(decision)
    if decision.decision != "correct":
        return sample
    edits = decision.edits()
    data = sample.model_dump(mode="python")
    for key in (*TEXT_FIELDS, "icd10"):
        if key in edits:
            data[key] = edits[key]
    label = decision.label or sample.label
    data["label"] = label
    if label == Label.negative:
        data["error_type"] = decision.error_type or sample.error_type
        data["verdict"] = sample.verdict
    else:
        if decision.error_type is not None:
            raise DecisionError("error_type", f"only negatives have an error type, label is {label.value}")
        data["error_type"] = data["verdict"] = None
    if all(data[k] == getattr(sample, k) for k in (*TEXT_FIELDS, "icd10", "label", "error_type")):
        raise DecisionError("decision", "a correction must change something; use approve")
    data["id"] = ""  # corrected content gets its own content id
    try:
        return Sample.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise DecisionError(".".join(str(p) for p in err["loc"]) or "sample", err["msg"]) from e


def agree(a: Decision, b: Decision, sample: Sample, threshold: float = DEFAULT_SIMILARITY) -> bool:
    """Same decision; corrections also need the same label/error type and each text within the threshold."""
    if a.decision != b.decision:
        return False
    if a.decision != "correct":
        return True
    sa_, sb = apply(a, sample), apply(b, sample)
    if sa_.label != sb.label or sa_.error_type != sb.error_type:
        return False
    return all(
        Levenshtein.normalized_similarity(getattr(sa_, k), getattr(sb, k)) >= threshold for k in TEXT_FIELDS
    )


def merge(first: Decision, second: Decision) -> Decision:
    """Agreeing reviews → one decision: the first reviewer's texts, the union of ICD-10 codes."""
    if first.decision != "correct":
        return first
    codes = list(dict.fromkeys([*(first.icd10 or []), *(second.icd10 or [])])) or None
    return first.model_copy(update={"icd10": codes})


def finalize_sample(decision: Decision, sample: Sample, *, item_id: str, deciders: list[str]) -> Sample:
    """The released form: corrections applied and recorded in the augmentation chain for lineage."""
    final = apply(decision, sample)
    if decision.decision != "correct":
        return final
    step = AugmentationStep(
        augmenter="physician_correction",
        detail=json.dumps({"queue_item": item_id, "by": deciders}, ensure_ascii=False),
    )
    prov = final.provenance.model_copy(update={"augmentation": [*final.provenance.augmentation, step]})
    return final.model_copy(update={"provenance": prov})


def outcome_of(decision: Decision) -> str:
    return {"approve": "approved", "correct": "corrected", "reject": "rejected"}[decision.decision]
