"""The Sample: the one record type that flows through every stage of medaug.

Defined once here as a pydantic model (validation at every boundary where data
enters) and as the matching Arrow schema (Parquet shards, Ray Data batches).
Everything else imports from this module; nothing redefines these fields.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import pyarrow as pa
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

NEGATIVE_VERDICT = "此回答不正确"

# ---------------------------------------------------------------- field limits
# One set of limits for every entry (files, HTTP, CLI, Python): a record over a limit is refused
# with the field named, never truncated. The sizes fit the queue's columns (queue_items.id is
# String(64), run_id String(200)) and keep one sample small enough to review and to diff.
MAX_TEXT_CHARS = 100_000  # instruction, input, output, reference_output, extra, augmentation detail
MAX_NAME_CHARS = 4_096  # short strings: provenance fields, verdict, augmenter, entity, comorbidity
MAX_ID_CHARS = 64
MAX_RUN_ID_CHARS = 200
MAX_LIST_ITEMS = 64  # icd10 codes, comorbidities, augmentation steps, de-identified entity types
MAX_CODE_CHARS = 32  # one ICD-10 code
ID_CHARS = "A-Z a-z 0-9 . _ : -"
_ID_RE = re.compile(r"[A-Za-z0-9._:-]+")
_BAD_ID_CHAR = re.compile(r"[^A-Za-z0-9._:-]")
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

# Validation context that lets readers accept question-only records (empty `output`), e.g. for
# `medaug dedup` on a file of patient questions; without it an SFT sample needs an answer.
QUESTION_ONLY = {"require_output": False}


def check_text(v: str) -> str:
    """No NUL (PostgreSQL text cannot hold it) and no lone surrogate (not encodable as UTF-8)."""
    if "\x00" in v:
        raise ValueError(f"contains a NUL character (\\x00) at position {v.index(chr(0))}")
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"not valid Unicode: lone surrogate at position {e.start}") from None
    return v


def check_id(v: str, *, what: str = "id") -> str:
    """1-64 characters of A-Z a-z 0-9 . _ : - (no '/', so an id is one URL path segment)."""
    if len(v) > MAX_ID_CHARS:
        raise ValueError(f"{what} is {len(v)} characters, more than {MAX_ID_CHARS}")
    if not _ID_RE.fullmatch(v):
        if not v:
            raise ValueError(f"{what} must not be empty")
        bad = _BAD_ID_CHAR.search(v)
        assert bad is not None
        raise ValueError(f"{what} may only use {ID_CHARS}; {bad.group()!r} at position {bad.start()}")
    return v


def _sample_id_or_empty(v: str) -> str:
    return check_id(v) if v else v  # empty: computed from the content


Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS), AfterValidator(check_text)]
Name = Annotated[str, StringConstraints(max_length=MAX_NAME_CHARS), AfterValidator(check_text)]
RunId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_RUN_ID_CHARS), AfterValidator(check_text)
]
Code = Annotated[str, StringConstraints(max_length=MAX_CODE_CHARS)]


class Task(StrEnum):
    medical_qa = "medical_qa"  # 医学问答
    record_generation = "record_generation"  # 电子病历生成
    diagnostic_reasoning = "diagnostic_reasoning"  # 疾病推理辅助
    report_explanation = "report_explanation"  # 医学报告解读
    other = "other"  # imported data whose task is unknown


TASK_NAMES_ZH = {
    Task.medical_qa: "医学问答",
    Task.record_generation: "电子病历生成",
    Task.diagnostic_reasoning: "疾病推理辅助",
    Task.report_explanation: "医学报告解读",
    Task.other: "其他",
}


class Label(StrEnum):
    positive = "positive"
    negative = "negative"
    refusal = "refusal"


class Area(StrEnum):
    cardiovascular = "cardiovascular"
    oncology = "oncology"
    endocrine = "endocrine"
    neurology = "neurology"
    obgyn = "obgyn"
    pediatrics = "pediatrics"
    general = "general"  # imported data, or not tied to one area


AREA_NAMES_ZH = {
    Area.cardiovascular: "心血管",
    Area.oncology: "肿瘤",
    Area.endocrine: "内分泌",
    Area.neurology: "神经",
    Area.obgyn: "妇产",
    Area.pediatrics: "儿科",
    Area.general: "综合",
}


class ErrorType(StrEnum):
    wrong_diagnosis = "wrong_diagnosis"
    wrong_drug = "wrong_drug"
    wrong_dose = "wrong_dose"
    contradicts_findings = "contradicts_findings"
    missing_referral = "missing_referral"
    overclaiming = "overclaiming"
    other = "other"


class Sex(StrEnum):
    male = "male"
    female = "female"


class Demographics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    age: int | None = Field(default=None, ge=0, le=130)
    sex: Sex | None = None
    comorbidities: list[Name] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)


class AugmentationStep(BaseModel):
    """One step of a sample's augmentation chain: which augmenter, and exactly what it did."""

    model_config = ConfigDict(extra="forbid")

    augmenter: Name
    detail: Text = ""  # JSON text: substitutions made, prompt used, error injected, ...


class Provenance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Name | None = None  # input file or "template"
    template_id: Name | None = None
    seed_id: Name | None = None  # knowledge-table entry (generated) or source record id (imported)
    prompt_id: Name | None = None  # the expanded prompt / LLM request that produced this sample
    parent_id: Name | None = None
    augmentation: list[AugmentationStep] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    model: Name | None = None
    sampling_params: Name | None = None  # JSON text of the sampling parameters used
    sampling_seed: int | None = Field(default=None, ge=-INT64_MAX - 1, le=INT64_MAX)
    job_id: Name | None = None
    run_id: Name | None = None
    created_at: datetime | None = None


class DeidEntity(BaseModel):
    """What de-identification removed: entity type and count, never the value."""

    model_config = ConfigDict(extra="forbid")

    entity: Name
    count: int = Field(ge=0, le=INT32_MAX)


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    id: Annotated[str, StringConstraints(max_length=MAX_ID_CHARS), AfterValidator(_sample_id_or_empty)] = ""
    instruction: Text
    input: Text = ""
    output: Text
    task: Task = Task.other
    label: Label = Label.positive
    verdict: Name | None = None
    error_type: ErrorType | None = None
    reference_output: Text | None = None  # for negatives: the correct answer, kept alongside
    area: Area = Area.general
    icd10: list[Code] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    demographics: Demographics = Field(default_factory=Demographics)
    provenance: Provenance = Field(default_factory=Provenance)
    deid: list[DeidEntity] | None = Field(
        default=None, max_length=MAX_LIST_ITEMS
    )  # None: not de-identified yet
    extra: Text | None = None  # JSON text for source fields medaug does not model

    @field_validator("instruction", "output")
    @classmethod
    def _not_blank(cls, v: str, info: ValidationInfo) -> str:
        if not v.strip():
            if info.field_name == "output" and info.context and info.context.get("require_output") is False:
                return v  # a question-only record, read for a stage that needs no answer
            raise ValueError("must not be empty")
        return v

    @field_validator("icd10")
    @classmethod
    def _icd_shape(cls, v: list[str]) -> list[str]:
        for code in v:
            if not ICD10_SHAPE.fullmatch(code):
                raise ValueError(f"not an ICD-10 code: {code!r}")
        return v

    @model_validator(mode="after")
    def _label_rules(self) -> Sample:
        if self.label == Label.negative:
            if self.verdict is None:
                self.verdict = NEGATIVE_VERDICT
            if self.error_type is None:
                raise ValueError("a negative sample needs error_type")
        elif self.error_type is not None or self.verdict is not None:
            raise ValueError(f"verdict/error_type are only for negatives, label is {self.label.value}")
        if not self.id:
            self.id = sample_id(self.instruction, self.input, self.output, self.label)
        return self


# Shape only (chapter letter, two digits, then the clinical-edition suffixes: .001, x01, +G01*, /3);
# whether a code exists is the quality gate's job (curation), against a configured code list.
ICD10_SHAPE = re.compile(r"[A-Z][0-9]{2}[0-9A-Za-z.+*/]{0,16}")

_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """NFKC (full/half width), collapsed whitespace: the form ids and exact dedup are computed on."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def sample_id(instruction: str, input: str, output: str, label: Label | str = Label.positive) -> str:
    """Stable content id: the same normalised content always gets the same id, across runs and machines."""
    h = hashlib.sha256()
    for part in (normalize_text(instruction), normalize_text(input), normalize_text(output), str(label)):
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:32]


def now_utc() -> datetime:
    return datetime.now(UTC)


def sampling_json(params: dict[str, Any]) -> str:
    return json.dumps(params, ensure_ascii=False, sort_keys=True)


# ---------------------------------------------------------------- Arrow schema

_AUG_STEP = pa.struct([("augmenter", pa.string()), ("detail", pa.string())])
_PROVENANCE = pa.struct(
    [
        ("source", pa.string()),
        ("template_id", pa.string()),
        ("seed_id", pa.string()),
        ("prompt_id", pa.string()),
        ("parent_id", pa.string()),
        ("augmentation", pa.list_(_AUG_STEP)),
        ("model", pa.string()),
        ("sampling_params", pa.string()),
        ("sampling_seed", pa.int64()),
        ("job_id", pa.string()),
        ("run_id", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)
_DEMOGRAPHICS = pa.struct(
    [("age", pa.int32()), ("sex", pa.string()), ("comorbidities", pa.list_(pa.string()))]
)
_DEID = pa.list_(pa.struct([("entity", pa.string()), ("count", pa.int32())]))

SAMPLE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("instruction", pa.string(), nullable=False),
        pa.field("input", pa.string(), nullable=False),
        pa.field("output", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("verdict", pa.string()),
        pa.field("error_type", pa.string()),
        pa.field("reference_output", pa.string()),
        pa.field("area", pa.string(), nullable=False),
        pa.field("icd10", pa.list_(pa.string())),
        pa.field("demographics", _DEMOGRAPHICS),
        pa.field("provenance", _PROVENANCE),
        pa.field("deid", _DEID),
        pa.field("extra", pa.string()),
    ]
)

SAMPLE_FIELDS = tuple(SAMPLE_SCHEMA.names)


def _arrow_value(v: Any) -> Any:
    if isinstance(v, StrEnum):
        return v.value
    if isinstance(v, dict):
        return {k: _arrow_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_arrow_value(x) for x in v]
    return v


def samples_to_table(samples: list[Sample]) -> pa.Table:
    rows = [_arrow_value(s.model_dump(mode="python")) for s in samples]
    return pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA)


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows already shaped like Sample dumps (e.g. from a batch stage) to the canonical table."""
    return pa.Table.from_pylist([_arrow_value(r) for r in rows], schema=SAMPLE_SCHEMA)


def _drop_nones(value: Any) -> Any:
    """Arrow nulls mean "not set": let the model's defaults apply (every nullable field defaults to None)."""
    if isinstance(value, dict):
        return {k: _drop_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nones(v) for v in value]
    return value


def table_to_samples(table: pa.Table, *, require_output: bool = True) -> list[Sample]:
    """require_output=False keeps question-only records (see QUESTION_ONLY)."""
    ctx = None if require_output else QUESTION_ONLY
    return [Sample.model_validate(_drop_nones(r), context=ctx) for r in conform_table(table).to_pylist()]


def conform_table(table: pa.Table) -> pa.Table:
    """Cast/reorder a table to SAMPLE_SCHEMA; raises ValueError naming the missing or bad column."""
    missing = [
        n for n in SAMPLE_SCHEMA.names if n not in table.column_names and not SAMPLE_SCHEMA.field(n).nullable
    ]
    if missing:
        raise ValueError(f"table lacks required sample column(s): {', '.join(missing)}")
    cols = []
    for f in SAMPLE_SCHEMA:
        if f.name in table.column_names:
            col = table.column(f.name)
            if col.type != f.type:
                try:
                    col = col.cast(f.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                    raise ValueError(f"column {f.name!r}: {col.type} does not fit {f.type}: {e}") from e
        else:
            col = pa.nulls(table.num_rows, f.type)
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=SAMPLE_SCHEMA)


def empty_table() -> pa.Table:
    return SAMPLE_SCHEMA.empty_table()
