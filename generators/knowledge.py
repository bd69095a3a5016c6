"""The seed knowledge table: diseases with ICD-10 codes, symptoms, findings and drugs per disease area."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medaug.schema import ICD10_SHAPE, Area, Sex

DEFAULT_KNOWLEDGE = Path(__file__).parent / "data" / "knowledge.yaml"


class Disease(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    area: Area
    name: str
    icd10: list[str] = Field(min_length=1)
    symptoms_clinical: list[str] = Field(min_length=1)
    symptoms_colloquial: list[str] = Field(min_length=1)
    findings: list[str] = Field(min_length=1)
    drugs: list[str] = Field(min_length=1)
    urgent: bool = False
    sex: Sex | None = None
    age: tuple[int, int] = (18, 85)
    confusable: list[str] = Field(default_factory=list)


class Knowledge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    diseases: list[Disease]
    comorbidities: list[str]


class KnowledgeError(ValueError):
    pass


def load_knowledge_file(path: str | Path = DEFAULT_KNOWLEDGE) -> Knowledge:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise KnowledgeError(f"{path}: cannot read knowledge table: {e}") from e
    try:
        kb = Knowledge.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise KnowledgeError(f"{path}: {loc}: {err['msg']}") from e
    ids = {d.id for d in kb.diseases}
    for d in kb.diseases:
        for code in d.icd10:
            if not ICD10_SHAPE.fullmatch(code):
                raise KnowledgeError(f"{path}: disease {d.id}: {code!r} is not an ICD-10 code")
        for other in d.confusable:
            if other not in ids:
                raise KnowledgeError(f"{path}: disease {d.id}: confusable {other!r} is not a disease id")
    return kb


@cache
def _default() -> Knowledge:
    return load_knowledge_file(DEFAULT_KNOWLEDGE)


def load_knowledge(path: str | Path | None = None) -> list[Disease]:
    return (_default() if path is None else load_knowledge_file(path)).diseases


def load_comorbidities(path: str | Path | None = None) -> list[str]:
    return (_default() if path is None else load_knowledge_file(path)).comorbidities
