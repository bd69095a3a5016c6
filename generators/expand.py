"""Template expansion: quotas per task, disease area and demographic, deterministic for a seed.

Counts are allocated exactly (largest remainder), not sampled, so a config asking
for 30 % paediatrics gets 30 %; which disease, template and patient fill each
slot is drawn from a seeded RNG, so the same seed always expands to the same prompts.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from generators.knowledge import Disease
from generators.templates import Template
from medaug.schema import AREA_NAMES_ZH, Area, Sex, Task

AGE_BANDS: dict[str, tuple[int, int]] = {
    "child": (0, 14),
    "young_adult": (15, 44),
    "middle_aged": (45, 64),
    "elderly": (65, 95),
}
SEX_ZH = {Sex.male: "男", Sex.female: "女"}
DURATIONS = ["半天", "1天", "2天", "3天", "5天", "1周", "2周", "1个月", "3个月", "半年"]


class Quotas(BaseModel):
    """Relative weights; each is normalised over the keys given (missing keys get no prompts)."""

    model_config = ConfigDict(extra="forbid")

    total: int = Field(gt=0)
    tasks: dict[Task, float] = Field(default_factory=lambda: {t: 1.0 for t in Task if t != Task.other})
    areas: dict[Area, float] = Field(default_factory=lambda: {a: 1.0 for a in Area if a != Area.general})
    age_bands: dict[str, float] = Field(default_factory=lambda: dict.fromkeys(AGE_BANDS, 1.0))
    sex: dict[Sex, float] = Field(default_factory=lambda: {Sex.male: 1.0, Sex.female: 1.0})
    max_comorbidities: int = Field(default=2, ge=0)

    @model_validator(mode="after")
    def _check(self) -> Quotas:
        for name in ("tasks", "areas", "age_bands", "sex"):
            weights: dict[Any, float] = getattr(self, name)
            if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
                raise ValueError(f"quotas.{name}: needs at least one positive weight")
        unknown = set(self.age_bands) - set(AGE_BANDS)
        if unknown:
            raise ValueError(f"quotas.age_bands: unknown band(s) {sorted(unknown)}; known: {list(AGE_BANDS)}")
        return self


@dataclass(frozen=True)
class PromptRow:
    prompt_id: str
    template_id: str
    seed_id: str
    task: Task
    area: Area
    icd10: list[str]
    age: int
    sex: Sex
    comorbidities: list[str]
    system: str
    user: str
    slots: dict[str, str] = field(default_factory=dict)


def allocate(total: int, weights: dict[Any, float]) -> dict[Any, int]:
    """Split `total` into integer counts proportional to `weights` (largest remainder; ties by key order)."""
    s = sum(weights.values())
    raw = {k: total * w / s for k, w in weights.items()}
    counts = {k: int(v) for k, v in raw.items()}
    left = total - sum(counts.values())
    for k in sorted(raw, key=lambda k: -(raw[k] - counts[k]))[:left]:
        counts[k] += 1
    return counts


def _band_age(rng: random.Random, band: str, disease: Disease) -> int:
    lo, hi = AGE_BANDS[band]
    dlo, dhi = disease.age
    lo, hi = max(lo, dlo), min(hi, dhi)
    if lo > hi:  # the band does not fit this disease (e.g. an elderly patient with 手足口病)
        lo, hi = dlo, dhi
    return rng.randint(lo, hi)


def _patient(age: int, sex: Sex) -> str:
    if age < 1:
        return f"{SEX_ZH[sex]}婴，8个月"
    if age < 15:
        return f"{SEX_ZH[sex]}童，{age}岁"
    return f"{SEX_ZH[sex]}性，{age}岁"


def expand(
    templates: list[Template], diseases: list[Disease], comorbidities: list[str], quotas: Quotas, seed: int
) -> list[PromptRow]:
    """All prompts of a run, in a stable order; raises ValueError when a quota cell has no template or disease."""
    rng = random.Random(seed)
    by_area: dict[Area, list[Disease]] = {}
    for d in diseases:
        by_area.setdefault(d.area, []).append(d)
    rows: list[PromptRow] = []
    ts, as_ = sum(quotas.tasks.values()), sum(quotas.areas.values())
    cells = {(t, a): wt / ts * wa / as_ for t, wt in quotas.tasks.items() for a, wa in quotas.areas.items()}
    band_plan = _spread(allocate(quotas.total, quotas.age_bands), rng)
    sex_plan = _spread(allocate(quotas.total, quotas.sex), rng)
    for (task, area), n in allocate(quotas.total, cells).items():
        if n == 0:
            continue
        cands = [t for t in templates if t.task == task and area in t.areas]
        if not cands:
            raise ValueError(f"no template for task {task.value} in area {area.value}")
        area_diseases = by_area.get(area)
        if not area_diseases:
            raise ValueError(f"no disease in the knowledge table for area {area.value}")
        for i in range(n):
            tpl = cands[i % len(cands)]
            disease = area_diseases[rng.randrange(len(area_diseases))]
            k = len(rows)
            age = _band_age(rng, band_plan[k], disease)
            sex = disease.sex or sex_plan[k]
            n_comorb = rng.randint(0, quotas.max_comorbidities) if age >= 15 else 0
            comorb = rng.sample(comorbidities, k=min(n_comorb, len(comorbidities)))
            values = {
                "disease": disease.name,
                "icd10": "、".join(disease.icd10),
                "area_name": AREA_NAMES_ZH[area],
                "symptoms_clinical": "、".join(
                    rng.sample(disease.symptoms_clinical, k=min(2, len(disease.symptoms_clinical)))
                ),
                "symptoms_colloquial": "，".join(
                    rng.sample(disease.symptoms_colloquial, k=min(2, len(disease.symptoms_colloquial)))
                ),
                "findings": "；".join(rng.sample(disease.findings, k=min(2, len(disease.findings)))),
                "drug": rng.choice(disease.drugs),
                "age": str(age),
                "sex": SEX_ZH[sex],
                "patient": _patient(age, sex),
                "comorbidities": "、".join(comorb) if comorb else "体健",
                "duration": rng.choice(DURATIONS),
            }
            system, user = tpl.render(values)
            pid = hashlib.sha256(
                json.dumps([seed, tpl.id, disease.id, k, user], ensure_ascii=False).encode()
            ).hexdigest()[:24]
            rows.append(
                PromptRow(
                    prompt_id=pid,
                    template_id=tpl.id,
                    seed_id=disease.id,
                    task=task,
                    area=area,
                    icd10=list(disease.icd10),
                    age=age,
                    sex=sex,
                    comorbidities=comorb,
                    system=system,
                    user=user,
                    slots=values,
                )
            )
    return rows


def _spread(counts: dict[Any, int], rng: random.Random) -> list[Any]:
    plan = [k for k, n in counts.items() for _ in range(n)]
    rng.shuffle(plan)
    return plan
