"""Template expansion: quotas per task, disease area and demographic, deterministic for a seed.

Counts are allocated exactly (largest remainder), not sampled: each (task, area) cell gets its
share, and inside a cell every (age band, sex) pair gets its share too. The patient's
demographics are planned first and the disease is then drawn among those that allow them, so
obstetric and breast diseases do not skew the sex ratio; where no disease of an area allows a
planned patient (a male obstetric patient, an elderly child), the nearest patient the
knowledge table allows is used and the plan report says which cells missed and why.

Variety comes from every axis at once: template (and its phrase pools), disease, persona
(region, occupation, schooling → how colloquial the wording is), who asks, setting, visit,
symptom subset and order, findings subset, lab values drawn inside the disease's ranges,
comorbidities with durations. With novelty on (the default) a prompt that is a near-duplicate
of one already planned (the dedup stage's own similarity, generators/novelty.py) is redrawn up
to `attempts` times, then skipped; the report counts skips and names the cells that ran out.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from generators.knowledge import Disease
from generators.seeded import TEMPLATE_ID as SEEDED_TEMPLATE
from generators.seeded import Seeded, fewshot_target, fewshot_user, load_seeds, pick_examples
from generators.templates import Template
from medaug.schema import AREA_NAMES_ZH, Area, Sex, Task

if TYPE_CHECKING:
    from curation.dedup import DedupIndex

AGE_BANDS: dict[str, tuple[int, int]] = {
    "child": (0, 14),
    "young_adult": (15, 44),
    "middle_aged": (45, 64),
    "elderly": (65, 95),
}
SEX_ZH = {Sex.male: "男", Sex.female: "女"}
DURATIONS = ["半天", "1天", "2天", "3天", "5天", "1周", "2周", "1个月", "3个月", "半年"]
DEFAULT_PERSONAS = Path(__file__).parent / "data" / "personas.yaml"
QUOTA_TOLERANCE = 0.05  # a share further than this from its target is reported


class Novelty(BaseModel):
    """Plan-time near-duplicate avoidance (the dedup stage's similarity on the prompt text)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    threshold: float = Field(default=0.85, gt=0.0, le=1.0)
    attempts: int = Field(default=6, ge=1, le=100)  # draws per planned prompt before it is skipped
    # a persistent prompt index (a curation.dedup index folder of its own): the generate job plans away from
    # every prompt recorded there by earlier runs and records this run's plan in it (origin "plan:<run id>")
    index: str | None = None


class Quotas(BaseModel):
    """Relative weights; each is normalised over the keys given (missing keys get no prompts)."""

    model_config = ConfigDict(extra="forbid")

    total: int = Field(gt=0)
    tasks: dict[Task, float] = Field(default_factory=lambda: {t: 1.0 for t in Task if t != Task.other})
    areas: dict[Area, float] = Field(default_factory=lambda: {a: 1.0 for a in Area if a != Area.general})
    age_bands: dict[str, float] = Field(default_factory=lambda: dict.fromkeys(AGE_BANDS, 1.0))
    sex: dict[Sex, float] = Field(default_factory=lambda: {Sex.male: 1.0, Sex.female: 1.0})
    max_comorbidities: int = Field(default=2, ge=0)
    novelty: Novelty = Field(default_factory=Novelty)
    # a share of every cell written few-shot from the user's own samples (generators/seeded.py)
    seeded: Seeded | None = None

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


@dataclass
class PlanReport:
    """What the plan could and could not do; goes into the run summary and manifest."""

    requested: int = 0
    planned: int = 0
    redrawn: int = 0  # candidates rejected as near-duplicates and drawn again
    skipped: int = 0  # planned prompts given up after `attempts` near-duplicate draws
    index_hits: int = 0
    novelty: dict[str, Any] = field(default_factory=dict)
    out_of_variety: list[dict[str, Any]] = field(default_factory=list)
    quota_misses: list[dict[str, Any]] = field(default_factory=list)
    distinct: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "planned": self.planned,
            "near_duplicates_redrawn": self.redrawn,
            "skipped_near_duplicates": self.skipped,
            "index_hits": self.index_hits,
            "novelty": self.novelty,
            "cells_out_of_variety": self.out_of_variety,
            "quota_misses": self.quota_misses,
            "distinct": self.distinct,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlanReport:
        """The report as saved with a run's plan (to_dict's inverse), for a resumed run's summary."""
        return cls(
            requested=d["requested"], planned=d["planned"], redrawn=d["near_duplicates_redrawn"],
            skipped=d["skipped_near_duplicates"], index_hits=d["index_hits"], novelty=d["novelty"],
            out_of_variety=d["cells_out_of_variety"], quota_misses=d["quota_misses"], distinct=d["distinct"],
        )  # fmt: skip


def allocate(total: int, weights: dict[Any, float]) -> dict[Any, int]:
    """Split `total` into integer counts proportional to `weights` (largest remainder; ties by key order)."""
    s = sum(weights.values())
    raw = {k: total * w / s for k, w in weights.items()}
    counts = {k: int(v) for k, v in raw.items()}
    left = total - sum(counts.values())
    for k in sorted(raw, key=lambda k: -(raw[k] - counts[k]))[:left]:
        counts[k] += 1
    return counts


# ---------------------------------------------------------------- personas


class Education(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: str
    weight: float = Field(gt=0)
    colloquial: float = Field(ge=0.0, le=1.0)
    tones: list[str] = Field(min_length=1)


class Personas(BaseModel):
    """Team-written persona pools (data/personas.yaml)."""

    model_config = ConfigDict(extra="forbid")

    regions: list[str] = Field(min_length=1)
    occupations: dict[str, list[str]]
    educations: list[Education] = Field(min_length=1)
    askers: dict[str, list[str]]
    settings: list[str] = Field(min_length=1)
    concerns: list[str] = Field(min_length=1)
    visits: list[str] = Field(min_length=1)
    durations: dict[str, list[str]]  # acute / chronic: what a patient with such a disease reports
    history_years: list[int] = Field(min_length=1)

    @model_validator(mode="after")
    def _keys(self) -> Personas:
        for name, need in (
            ("occupations", {"working", "retired"}),
            ("askers", {"adult", "elderly", "child"}),
        ):
            pools: dict[str, list[str]] = getattr(self, name)
            if missing := need - {k for k, v in pools.items() if v}:
                raise ValueError(f"{name}: needs non-empty {sorted(missing)}")
        return self


@cache
def load_personas(path: str | Path = DEFAULT_PERSONAS) -> Personas:
    path = Path(path)
    try:
        return Personas.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot read personas: {e}") from e
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e


def _patient(age: int, sex: Sex, months: int | None = None) -> str:
    if age < 1:
        if months == 0:
            return f"{SEX_ZH[sex]}，新生儿"
        return f"{SEX_ZH[sex]}婴，{months or 8}个月"
    if age < 15:
        return f"{SEX_ZH[sex]}童，{age}岁"
    return f"{SEX_ZH[sex]}性，{age}岁"


# ---------------------------------------------------------------- planning


def _fits(d: Disease, sex: Sex, lo: int, hi: int) -> tuple[bool, bool]:
    return d.sex in (None, sex), d.age[0] <= hi and d.age[1] >= lo


@dataclass
class _Slot:
    """One planned prompt: its cell and target patient."""

    task: Task
    area: Area
    band: str
    sex: Sex
    order: int  # position in the cell (round-robin template on the first draw)
    seeded: bool = False  # few-shot from the seed samples instead of a template


class _Planner:
    def __init__(self, templates: list[Template], diseases: list[Disease], comorbidities: list[str],
                 quotas: Quotas, seed: int, personas: Personas):  # fmt: skip
        self.rng = random.Random(seed)
        self.seed = seed
        self.quotas = quotas
        self.templates = templates
        self.comorbidities = comorbidities
        self.p = personas
        self.by_area: dict[Area, list[Disease]] = {}
        for d in diseases:
            self.by_area.setdefault(d.area, []).append(d)
        self.by_id = {d.id: d for d in diseases}
        self._compat: dict[tuple[Area, Sex, str], tuple[list[Disease], str | None]] = {}
        self.misses: Counter[tuple[str, str, str]] = Counter()
        self.miss_reason: dict[tuple[str, str, str], str] = {}
        self.edu_weights = [e.weight for e in personas.educations]
        self.durations = {
            "acute": personas.durations["acute"],
            "chronic": personas.durations["chronic"],
            None: personas.durations["acute"] + personas.durations["chronic"],
        }

    def diseases_for(self, area: Area, sex: Sex, band: str) -> tuple[list[Disease], str | None]:
        """Diseases allowing the planned patient, or the nearest the table allows and what had to give."""
        key = (area, sex, band)
        if key not in self._compat:
            lo, hi = AGE_BANDS[band]
            ds = self.by_area[area]
            both = [d for d in ds if all(_fits(d, sex, lo, hi))]
            if both:
                self._compat[key] = (both, None)
            elif sex_ok := [d for d in ds if _fits(d, sex, lo, hi)[0]]:
                self._compat[key] = (sex_ok, "age_band")
            elif age_ok := [d for d in ds if _fits(d, sex, lo, hi)[1]]:
                self._compat[key] = (age_ok, "sex")
            else:
                self._compat[key] = (ds, "sex+age_band")
        return self._compat[key]

    def _reason(self, area: Area, what: str, sex: Sex, band: str) -> str:
        ds = self.by_area[area]
        if what.startswith("sex"):
            forced = sorted({d.name for d in ds if d.sex is not None and d.sex != sex})
            return (f"no {area.value} disease in the knowledge table allows {sex.value} patients"
                    f" in this age band (sex fixed by: {', '.join(forced[:6])}{' ...' if len(forced) > 6 else ''})")  # fmt: skip
        lo, hi = AGE_BANDS[band]
        ages = f"{min(d.age[0] for d in ds)}-{max(d.age[1] for d in ds)}"
        return f"no {area.value} disease allows ages {lo}-{hi} for {sex.value} patients (disease age limits span {ages})"

    def draw(self, slot: _Slot, cands: list[Template], first: bool, k: int) -> PromptRow:
        rng = self.rng
        tpl = cands[slot.order % len(cands)] if first else rng.choice(cands)
        pool, relaxed = self.diseases_for(slot.area, slot.sex, slot.band)
        disease = pool[rng.randrange(len(pool))]
        lo, hi = AGE_BANDS[slot.band]
        sex = disease.sex or slot.sex
        if relaxed and "age_band" in relaxed or not _fits(disease, sex, lo, hi)[1]:
            lo, hi = disease.age
        else:
            lo, hi = max(lo, disease.age[0]), min(hi, disease.age[1])
        age = rng.randint(lo, hi)
        months = None
        if age == 0:
            months = 0 if disease.age[1] == 0 else rng.randint(1, 11)
        values = self.values(tpl, disease, slot.area, age, sex, months)
        system, user = tpl.render(values)
        template_id = tpl.id
        if slot.seeded:
            assert self.quotas.seeded is not None
            cfg = self.quotas.seeded
            examples = pick_examples(load_seeds(cfg.file), slot.task, slot.area, cfg.shots, rng)
            target = fewshot_target(values)
            user = fewshot_user(examples, target, slot.task, cfg.max_field_chars)
            template_id = SEEDED_TEMPLATE
            values["_novelty_text"] = target
            values["seed_samples"] = ",".join(s.id for s in examples)
        pid = hashlib.sha256(
            json.dumps([self.seed, template_id, disease.id, k, user], ensure_ascii=False).encode()
        ).hexdigest()[:24]
        comorb = values.pop("_comorbidities").split("\x1f") if values["_comorbidities"] else []
        return PromptRow(
            prompt_id=pid, template_id=template_id, seed_id=disease.id, task=slot.task, area=slot.area,
            icd10=list(disease.icd10), age=age, sex=sex, comorbidities=comorb, system=system, user=user,
            slots=values,
        )  # fmt: skip

    def values(
        self, tpl: Template, d: Disease, area: Area, age: int, sex: Sex, months: int | None
    ) -> dict[str, str]:
        rng, p = self.rng, self.p
        edu = rng.choices(p.educations, weights=self.edu_weights)[0]
        child = age < 15
        group = "child" if child else "elderly" if age >= 65 else "adult"
        occ_pool = p.occupations["retired"] if age >= 60 and rng.random() < 0.8 else p.occupations["working"]
        region, occ = rng.choice(p.regions), rng.choice(occ_pool)
        persona = (
            f"家长住{region}，{occ}，{edu.level}文化" if child else f"住{region}，{occ}，{edu.level}文化"
        )
        # comorbidities: none for children, fewer for the young, never the disease itself
        usable = [c for c in self.comorbidities if c not in d.name and d.name not in c]
        top = (
            0
            if child
            else self.quotas.max_comorbidities
            if age >= 40
            else min(1, self.quotas.max_comorbidities)
        )
        comorb = rng.sample(usable, k=min(rng.randint(0, top), len(usable)))
        history = "、".join(f"{c}{rng.choice(p.history_years)}年" for c in comorb) or "既往体健"
        findings = _subset(rng, d.findings, 1, 3)
        labs = [
            lab.render(round(rng.uniform(lab.low, lab.high), lab.decimals))
            for lab in _subset(rng, d.lab_specs(), 1, 3)
        ]
        report = findings + labs
        rng.shuffle(report)
        confusable = [self.by_id[c].name for c in d.confusable if c in self.by_id]
        drug = rng.choice(d.drugs)
        others = [x for x in d.drugs if x != drug]
        values = {
            "disease": d.name,
            "icd10": "、".join(d.icd10),
            "area_name": AREA_NAMES_ZH[area],
            "symptoms_clinical": "、".join(_subset(rng, d.symptoms_clinical, 2, 3)),
            "symptoms_colloquial": "，".join(_subset(rng, d.symptoms_colloquial, 2, 3)),
            "symptoms": _persona_symptoms(rng, d, edu.colloquial),
            "findings": "；".join(findings),
            "labs": "，".join(labs) if labs else "；".join(findings),
            "report": "；".join(report),
            "drug": drug,
            "drug2": rng.choice(others) if others else drug,
            "age": str(age),
            "sex": SEX_ZH[sex],
            "patient": _patient(age, sex, months),
            "comorbidities": "、".join(comorb) if comorb else "体健",
            "history": history,
            "duration": rng.choice(self.durations[d.course]),
            "persona": persona,
            "tone": rng.choice(edu.tones),
            "asker": rng.choice(p.askers[group]),
            "setting": rng.choice(p.settings),
            "concern": rng.choice(p.concerns),
            "visit": rng.choice(p.visits),
            "turns": str(rng.randint(3, 5)),
            "confusable": rng.choice(confusable) if confusable else "其他症状相似的疾病",
            "_comorbidities": "\x1f".join(comorb),
        }
        for name, alts in tpl.phrases.items():
            values[name] = rng.choice(alts).format(**values)
        values["_persona"] = f"{region}|{occ}|{edu.level}"
        return values


def novelty_text(row: PromptRow) -> str:
    """What makes a prompt different: the whole user text, or a seeded prompt's target (its examples are shared)."""
    return row.slots.get("_novelty_text", row.user)


def _subset(rng: random.Random, items: list[Any], lo: int, hi: int) -> list[Any]:
    if not items:
        return []
    k = rng.randint(min(lo, len(items)), min(hi, len(items)))
    return rng.sample(items, k=k)


def _persona_symptoms(rng: random.Random, d: Disease, colloquial: float) -> str:
    """2-4 symptoms in random order, each in everyday words with the persona's probability."""
    n = max(len(d.symptoms_clinical), len(d.symptoms_colloquial))
    picks = rng.sample(range(n), k=rng.randint(min(2, n), min(4, n)))
    out = []
    for i in picks:
        use_co = i < len(d.symptoms_colloquial) and (
            i >= len(d.symptoms_clinical) or rng.random() < colloquial
        )
        out.append(d.symptoms_colloquial[i] if use_co else d.symptoms_clinical[i])
    return "，".join(out)


def _cell_slots(task: Task, area: Area, n: int, quotas: Quotas, rng: random.Random) -> list[_Slot]:
    demo = {(b, s): wb * ws for b, wb in quotas.age_bands.items() for s, ws in quotas.sex.items()}
    plan = [k for k, c in allocate(n, demo).items() for _ in range(c)]
    rng.shuffle(plan)
    return [_Slot(task, area, b, s, i) for i, (b, s) in enumerate(plan)]


def plan(
    templates: list[Template],
    diseases: list[Disease],
    comorbidities: list[str],
    quotas: Quotas,
    seed: int,
    *,
    index: DedupIndex | None = None,
    avoid: list[str] | None = None,
    personas: Personas | None = None,
) -> tuple[list[PromptRow], PlanReport]:
    """All prompts of a run, in a stable order, and the plan report.

    index: a dedup index of earlier prompts/samples to stay away from; avoid: texts to stay away from.
    Raises ValueError when a quota cell has no template or disease.
    """
    pl = _Planner(templates, diseases, comorbidities, quotas, seed, personas or load_personas())
    rng = pl.rng
    nov = quotas.novelty
    filt = None
    if nov.enabled:
        from generators.novelty import NoveltyFilter

        filt = NoveltyFilter(nov.threshold, index=index)
        if avoid:
            filt.add(avoid)
    report = PlanReport(requested=quotas.total, novelty=nov.model_dump())
    rows: list[PromptRow] = []
    ts, as_ = sum(quotas.tasks.values()), sum(quotas.areas.values())
    cells = {(t, a): wt / ts * wa / as_ for t, wt in quotas.tasks.items() for a, wa in quotas.areas.items()}
    seeded_due, seeded_taken = 0.0, 0
    for (task, area), n in allocate(quotas.total, cells).items():
        if n == 0:
            continue
        cands = [t for t in templates if t.task == task and area in t.areas]
        if not cands:
            raise ValueError(f"no template for task {task.value} in area {area.value}")
        if not pl.by_area.get(area):
            raise ValueError(f"no disease in the knowledge table for area {area.value}")
        pending = _cell_slots(task, area, n, quotas, rng)
        if quotas.seeded is not None:
            load_seeds(quotas.seeded.file)  # a bad seed file fails before any work
            # carried over cells, so small cells add up to the share overall (24 cells of 1 at 0.5 give 12)
            seeded_due += n * quotas.seeded.share
            k_seeded = int(seeded_due + 1e-9) - seeded_taken
            seeded_taken += k_seeded
            for s in pending[:k_seeded]:
                s.seeded = True
        for slot in pending:
            pl.diseases_for(area, slot.sex, slot.band)
        attempt = 0
        while pending:
            first = attempt == 0
            drawn = [pl.draw(s, cands, first, len(rows) + i) for i, s in enumerate(pending)]
            if filt is None:
                rows.extend(drawn)
                break
            verdict = filt.check([novelty_text(r) for r in drawn])
            retry = []
            for s, r, v in zip(pending, drawn, verdict, strict=True):
                if v is None:
                    rows.append(r)
                else:
                    retry.append(s)
            attempt += 1
            if attempt >= nov.attempts and retry:
                report.skipped += len(retry)
                report.out_of_variety.append(
                    {
                        "task": task.value,
                        "area": area.value,
                        "requested": n,
                        "planned": n - len(retry),
                        "reason": f"{len(retry)} prompts stayed near-duplicates after {nov.attempts} draws: "
                        f"too few templates/diseases for this cell's size",
                    }  # fmt: skip
                )
                break
            report.redrawn += len(retry)
            pending = retry
    report.planned = len(rows)
    report.index_hits = filt.index_hits if filt else 0
    report.quota_misses = quota_misses(rows, quotas, pl)
    report.distinct = {
        "diseases": len({r.seed_id for r in rows}),
        "templates": len({r.template_id for r in rows}),
        "seeded_prompts": sum(r.template_id == SEEDED_TEMPLATE for r in rows),
        "personas": len({r.slots.get("_persona") for r in rows}),
        "diseases_available": len(diseases),
        "templates_available": len(templates),
    }
    return rows, report


def quota_misses(rows: list[PromptRow], quotas: Quotas, pl: _Planner | None = None) -> list[dict[str, Any]]:
    """Per area and overall: sex and age-band shares further than QUOTA_TOLERANCE from the target, with why."""
    out: list[dict[str, Any]] = []
    groups: dict[str, list[PromptRow]] = {"all": rows}
    for r in rows:
        groups.setdefault(r.area.value, []).append(r)
    sw, bw = sum(quotas.sex.values()), sum(quotas.age_bands.values())
    for name, rs in groups.items():
        n = len(rs)
        if not n:
            continue
        sexes = Counter(r.sex for r in rs)
        bands = Counter(_band(r.age) for r in rs)
        for dim, counts, weights, total_w in (
            ("sex", sexes, quotas.sex, sw),
            ("age_band", bands, quotas.age_bands, bw),
        ):
            for key, w in weights.items():
                target, got = w / total_w, counts.get(key, 0) / n
                if abs(got - target) > QUOTA_TOLERANCE:
                    out.append({
                        "area": name, "dimension": dim, "value": getattr(key, "value", key),
                        "target_share": round(target, 3), "planned_share": round(got, 3),
                        "reason": _miss_reason(pl, name, dim, key) if pl else "",
                    })  # fmt: skip
    return out


def _band(age: int) -> str:
    for name, (lo, hi) in AGE_BANDS.items():
        if lo <= age <= hi:
            return name
    return next(reversed(AGE_BANDS))


def _miss_reason(pl: _Planner, area: str, dim: str, key: Any) -> str:
    if area == "all":
        return "follows from the per-area misses (areas whose diseases fix sex or age)"
    a = Area(area)
    reasons = []
    for (ar, sex, band), (_, relaxed) in pl._compat.items():
        if ar != a or not relaxed:
            continue
        if dim == "sex" and "sex" in relaxed.split("+") and sex == key:
            reasons.append(pl._reason(a, "sex", sex, band))
        if dim == "age_band" and "age_band" in relaxed and band == key:
            reasons.append(pl._reason(a, "age_band", sex, band))
    if reasons:
        return sorted(set(reasons))[0]
    other = "sex" if dim == "age_band" else "age_band"
    return f"follows from the {other} limits of this area's diseases (the other dimension took the only fitting patients)"


def expand(
    templates: list[Template], diseases: list[Disease], comorbidities: list[str], quotas: Quotas, seed: int
) -> list[PromptRow]:
    """All prompts of a run, in a stable order; raises ValueError when a quota cell has no template or disease."""
    return plan(templates, diseases, comorbidities, quotas, seed)[0]
