"""The knowledge table: diseases with ICD-10 codes, symptoms, findings, lab values and drugs per disease area.

The shipped table (data/knowledge.yaml) is team-written; users bring their own in the same
format as YAML, JSON or CSV (docs/knowledge.md). Every problem is reported with the file,
the row (CSV line or list position) and the field, and all problems of a table are listed
at once, so a hospital's table of thousands of diseases is fixed in one pass, not one error a run.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medaug.schema import AREA_NAMES_ZH, ICD10_SHAPE, Area, Sex

DEFAULT_KNOWLEDGE = Path(__file__).parent / "data" / "knowledge.yaml"
MAX_DISEASES = 100_000
MAX_TEXT = 200  # characters in one symptom, finding, drug or name
MAX_ITEMS = 64  # items in one list field
MAX_ERRORS = 50  # listed per table; the count says how many more
LIST_SEP = "|"  # between list items in a CSV cell
LIST_FIELDS = ("icd10", "symptoms_clinical", "symptoms_colloquial", "findings", "labs", "drugs", "confusable")

_LAB = re.compile(
    r"(?P<name>\S(?:.*?\S)?)\s+(?P<lo>-?\d+(?:\.\d+)?)\s*~\s*(?P<hi>-?\d+(?:\.\d+)?)(?:\s+(?P<unit>\S.*))?"
)


@dataclass(frozen=True)
class Lab:
    """A measured value with the range that fits the disease: "空腹血糖 7.0~13.9 mmol/L"."""

    name: str
    low: float
    high: float
    unit: str
    decimals: int

    def render(self, value: float) -> str:
        return f"{self.name}{value:.{self.decimals}f}{self.unit}"


@cache
def parse_lab(text: str) -> Lab:
    m = _LAB.fullmatch(text.strip())
    if not m:
        raise ValueError(f"lab {text!r} is not 'NAME LOW~HIGH UNIT' (e.g. '空腹血糖 7.0~13.9 mmol/L')")
    lo, hi = float(m["lo"]), float(m["hi"])
    if lo > hi:
        raise ValueError(f"lab {text!r}: low {m['lo']} is above high {m['hi']}")
    decimals = max(len(x.partition(".")[2]) for x in (m["lo"], m["hi"]))
    return Lab(m["name"], lo, hi, m["unit"] or "", decimals)


def _text_list(v: list[str], *, what: str) -> list[str]:
    if len(v) > MAX_ITEMS:
        raise ValueError(f"{len(v)} items in {what}, at most {MAX_ITEMS}")
    for item in v:
        if not item.strip():
            raise ValueError(f"empty item in {what}")
        if len(item) > MAX_TEXT:
            raise ValueError(f"item of {len(item)} characters in {what}, at most {MAX_TEXT}")
    return v


class Disease(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    area: Area
    name: str = Field(min_length=1, max_length=MAX_TEXT)
    icd10: list[str] = Field(min_length=1)
    symptoms_clinical: list[str] = Field(min_length=1)
    symptoms_colloquial: list[str] = Field(min_length=1)
    findings: list[str] = Field(min_length=1)
    drugs: list[str] = Field(min_length=1)
    labs: list[str] = Field(default_factory=list)
    urgent: bool = False
    course: Literal["acute", "chronic"] | None = None  # which durations a patient reports (None: any)
    sex: Sex | None = None
    age: tuple[int, int] = (18, 85)
    confusable: list[str] = Field(default_factory=list)

    @field_validator("symptoms_clinical", "symptoms_colloquial", "findings", "drugs", "labs", "confusable")
    @classmethod
    def _lists(cls, v: list[str], info: Any) -> list[str]:
        return _text_list(v, what=info.field_name)

    @field_validator("icd10")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        for code in v:
            if not ICD10_SHAPE.fullmatch(code):
                raise ValueError(f"{code!r} is not an ICD-10 code (e.g. I21.3, E11.9, C50.9)")
        return v

    @field_validator("labs")
    @classmethod
    def _labs(cls, v: list[str]) -> list[str]:
        for text in v:
            parse_lab(text)
        return v

    @field_validator("age")
    @classmethod
    def _ages(cls, v: tuple[int, int]) -> tuple[int, int]:
        lo, hi = v
        if not 0 <= lo <= hi <= 130:
            raise ValueError(f"[{lo}, {hi}] must satisfy 0 <= min <= max <= 130")
        return v

    def lab_specs(self) -> list[Lab]:
        return [parse_lab(t) for t in self.labs]


class Knowledge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    diseases: list[Disease]
    comorbidities: list[str]


class KnowledgeError(ValueError):
    pass


# ---------------------------------------------------------------- reading


def _read_records(path: Path) -> tuple[list[tuple[str, Any]], list[str] | None]:
    """(row label, raw record) per disease and the comorbidity list if the file has one."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return _read_csv(path), None
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError, csv.Error) as e:
        raise KnowledgeError(f"{path}: cannot read knowledge table: {e}") from e
    comorb = None
    if isinstance(raw, dict):
        unknown = set(raw) - {"diseases", "comorbidities"}
        if unknown:
            raise KnowledgeError(
                f"{path}: unknown top-level key(s) {sorted(unknown)}; expected diseases, comorbidities"
            )
        comorb = raw.get("comorbidities")
        if comorb is not None and (
            not isinstance(comorb, list) or not all(isinstance(c, str) for c in comorb)
        ):
            raise KnowledgeError(f"{path}: comorbidities: expected a list of names")
        raw = raw.get("diseases")
    if not isinstance(raw, list):
        raise KnowledgeError(f"{path}: expected a list of diseases (or a mapping with a 'diseases' list)")
    return [(f"diseases[{i}]", r) for i, r in enumerate(raw)], comorb


def _read_csv(path: Path) -> list[tuple[str, Any]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = set(reader.fieldnames or [])
        known = set(Disease.model_fields) | {"age_min", "age_max"}
        if unknown := fields - known:
            raise KnowledgeError(
                f"{path}: unknown column(s) {sorted(unknown)}; known: {', '.join(sorted(known))}"
            )
        out = []
        for row in reader:
            out.append((f"line {reader.line_num}", _csv_record(row)))
        return out


def _csv_record(row: dict[str, str | None]) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    for k, v in row.items():
        if k is None:  # more cells than columns
            rec["__extra_cells__"] = v
            continue
        v = (v or "").strip()
        if not v:
            continue
        if k in LIST_FIELDS:
            rec[k] = [x.strip() for x in v.split(LIST_SEP) if x.strip()]
        elif k == "age" and "-" in v:
            rec[k] = [x.strip() for x in v.split("-", 1)]
        elif k in ("age_min", "age_max"):
            rec.setdefault("age", [None, None])[0 if k == "age_min" else 1] = v
        else:
            rec[k] = v
    return rec


_AREA_ZH = {v: k.value for k, v in AREA_NAMES_ZH.items()}
_SEX_ZH = {"男": "male", "女": "female", "m": "male", "f": "female"}
_BOOL = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
    "是": True,
    "否": False,
}


def _coerce(rec: dict[str, Any]) -> dict[str, Any]:
    """Friendly spellings users' tables have (Chinese area names, 男/女, 是/否, "18-85")."""
    rec = dict(rec)
    if isinstance(rec.get("area"), str):
        rec["area"] = _AREA_ZH.get(rec["area"].strip(), rec["area"].strip())
    if isinstance(rec.get("sex"), str):
        s = rec["sex"].strip().lower()
        rec["sex"] = None if s in ("", "any", "不限") else _SEX_ZH.get(s, s)
    if isinstance(rec.get("urgent"), str):
        rec["urgent"] = _BOOL.get(rec["urgent"].strip().lower(), rec["urgent"])
    if isinstance(rec.get("age"), list) and None in rec["age"]:
        lo, hi = rec["age"]
        rec["age"] = [lo if lo is not None else 0, hi if hi is not None else 130]
    return rec


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "record"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = f"unknown field (known: {', '.join(Disease.model_fields)})"
    return f"{loc}: {msg}"


def check_knowledge(path: str | Path) -> tuple[Knowledge | None, list[str]]:
    """Read and check a table: (the table or None, every problem found as 'file: row: field: message')."""
    path = Path(path)
    records, comorb = _read_records(path)
    if len(records) > MAX_DISEASES:
        raise KnowledgeError(f"{path}: {len(records)} diseases, at most {MAX_DISEASES}")
    errors: list[str] = []
    diseases: list[Disease] = []
    rows: dict[str, str] = {}
    for where, rec in records:
        if not isinstance(rec, dict):
            errors.append(f"{path}: {where}: expected a mapping of fields, got {type(rec).__name__}")
            continue
        if "__extra_cells__" in rec:
            errors.append(f"{path}: {where}: more cells than columns")
            continue
        label = f"{where} (disease {rec.get('id')})" if rec.get("id") else where
        try:
            d = Disease.model_validate(_coerce(rec))
        except ValidationError as e:
            errors.append(f"{path}: {label}: {_first_error(e)}")
            continue
        if d.id in rows:
            errors.append(f"{path}: {label}: id: duplicate id (first at {rows[d.id]})")
            continue
        rows[d.id] = where
        diseases.append(d)
    ids = set(rows)
    names: dict[str, str] = {}
    for d in diseases:
        label = f"{rows[d.id]} (disease {d.id})"
        for other in d.confusable:
            if other == d.id:
                errors.append(f"{path}: {label}: confusable: a disease is not confusable with itself")
            elif other not in ids:
                errors.append(f"{path}: {label}: confusable: {other!r} is not a disease id in this table")
        if d.name in names:
            errors.append(f"{path}: {label}: name: {d.name!r} is also disease {names[d.name]}")
        names.setdefault(d.name, d.id)
    if not diseases and not errors:
        errors.append(f"{path}: no diseases")
    if errors:
        return None, errors
    return Knowledge(
        diseases=diseases, comorbidities=comorb if comorb is not None else _default().comorbidities
    ), []


def load_knowledge_file(path: str | Path = DEFAULT_KNOWLEDGE) -> Knowledge:
    kb, errors = check_knowledge(path)
    if errors:
        more = f"\n... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise KnowledgeError("\n".join(errors[:MAX_ERRORS]) + more)
    assert kb is not None
    return kb


def write_knowledge(kb: Knowledge, path: str | Path) -> None:
    """The table in the shipped YAML layout, readable by load_knowledge_file and the generate job."""
    data = kb.model_dump(mode="json", exclude_defaults=False)
    for d in data["diseases"]:
        if d["sex"] is None:
            del d["sex"]
        for k in ("labs", "confusable", "course"):
            if not d[k]:
                del d[k]
    Path(path).write_text(
        "# knowledge table imported with `medaug knowledge import` (format: docs/knowledge.md)\n"
        + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120),
        encoding="utf-8",
    )


@cache
def _default() -> Knowledge:
    records, comorb = _read_records(DEFAULT_KNOWLEDGE)
    return Knowledge(diseases=[Disease.model_validate(r) for _, r in records], comorbidities=comorb or [])


@cache
def _default_checked() -> Knowledge:
    return load_knowledge_file(DEFAULT_KNOWLEDGE)


def load_knowledge(path: str | Path | None = None) -> list[Disease]:
    return (_default_checked() if path is None else load_knowledge_file(path)).diseases


def load_comorbidities(path: str | Path | None = None) -> list[str]:
    return (_default_checked() if path is None else load_knowledge_file(path)).comorbidities
