"""Refusal samples from the team's taxonomy: requests a medical assistant must decline or redirect, each
with an answer that says why and what to do instead. Sample i depends only on (seed, i).
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from augmenters.derive import detail_json
from medaug.schema import Area, AugmentationStep, Label, Provenance, Sample, Task, now_utc

REFUSALS_FILE = Path(__file__).parent / "data" / "refusals.yaml"
AUGMENTER = "refusal_taxonomy"
INSTRUCTION = "请回答以下用户的问题。"


MIN_WORDINGS = 5  # questions and answers per category: one fixed sentence per class teaches a template

SlotValue = str | dict[str, str]


@dataclass(frozen=True)
class Category:
    name: str
    area: Area
    questions: tuple[str, ...]
    answers: tuple[str, ...]
    slots: dict[str, tuple[SlotValue, ...]]
    question_ids: tuple[str, ...] = ()
    fits: tuple[frozenset[str] | None, ...] = ()  # per answer: the question ids it fits (None: any)

    def fitting(self, question: int) -> list[int]:
        """Indices of the answers that may answer question `question`: declared to fit it (or declaring
        nothing) and using no slot the question lacks."""
        qid, used = self.question_ids[question], _placeholders(self.questions[question])
        return [
            i
            for i, a in enumerate(self.answers)
            if (self.fits[i] is None or qid in self.fits[i]) and _placeholders(a) <= used
        ]


def _placeholders(template: str) -> set[str]:
    """Slot names a template uses: `{drug}` and `{pair[danger]}` both name a slot (drug, pair)."""
    return {re.split(r"[.\[]", f, maxsplit=1)[0] for _, f, _, _ in string.Formatter().parse(template) if f}


def _keys(template: str) -> set[tuple[str, str]]:
    """(slot, key) for each `{slot[key]}` in a template."""
    return {
        (m.group(1), m.group(2))
        for _, f, _, _ in string.Formatter().parse(template)
        if f and (m := re.fullmatch(r"(\w+)\[(\w+)\]", f))
    }


def _check_slots(path: Path, name: str, slots: dict[str, tuple[SlotValue, ...]], texts: tuple[str, ...]):
    for slot, values in slots.items():
        if not values:
            raise ValueError(f"{path}: category {name}: slot {slot!r} has no values")
        kinds = {type(v) for v in values}
        if len(kinds) != 1 or not kinds <= {str, dict}:
            raise ValueError(f"{path}: category {name}: slot {slot!r} mixes text and mappings")
    for t in texts:
        for slot, key in _keys(t):
            vals = slots.get(slot, ())
            if not vals or isinstance(vals[0], str) or any(key not in v for v in vals):
                raise ValueError(
                    f"{path}: category {name}: {{{slot}[{key}]}} needs key {key!r} in every value"
                )
        for slot in _placeholders(t) & slots.keys():
            if isinstance(slots[slot][0], dict) and f"{{{slot}}}" in t:
                raise ValueError(
                    f"{path}: category {name}: mapping slot {slot!r} must be used as {{{slot}[key]}}"
                )


@cache
def load_taxonomy(path: Path = REFUSALS_FILE) -> tuple[Category, ...]:
    """Categories, checked: every placeholder has values and every question has an answer that fits it."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    cats = []
    for name, c in raw["categories"].items():
        slots = {k: tuple(v) for k, v in (c.get("slots") or {}).items()}
        qs = [q if isinstance(q, dict) else {"id": str(i), "text": q} for i, q in enumerate(c["questions"])]
        ans = [a if isinstance(a, dict) else {"text": a} for a in c["answers"]]
        qids = tuple(str(q["id"]) for q in qs)
        fits = tuple(frozenset(map(str, a["fits"])) if "fits" in a else None for a in ans)
        if unknown := set().union(*(f for f in fits if f)) - set(qids):
            raise ValueError(f"{path}: category {name}: answers fit unknown question id(s) {sorted(unknown)}")
        cat = Category(
            name,
            Area(c["area"]),
            tuple(q["text"] for q in qs),
            tuple(a["text"] for a in ans),
            slots,
            qids,
            fits,
        )
        if len(set(cat.questions)) < MIN_WORDINGS or len(set(cat.answers)) < MIN_WORDINGS:
            raise ValueError(
                f"{path}: category {name}: needs at least {MIN_WORDINGS} distinct questions and answers"
            )
        _check_slots(path, name, slots, cat.questions + cat.answers)
        for q in cat.questions:
            if missing := _placeholders(q) - slots.keys():
                raise ValueError(f"{path}: category {name}: question uses unknown slot(s) {sorted(missing)}")
        for qi, q in enumerate(cat.questions):
            if not cat.fitting(qi):
                raise ValueError(f"{path}: category {name}: no answer fits question {q[:30]!r}")
        cats.append(cat)
    return tuple(cats)


def make_refusal(index: int, seed: int = 0) -> Sample:
    rng = random.Random(f"{seed}:{AUGMENTER}:{index}")
    cats = load_taxonomy()
    cat = cats[index % len(cats)]
    qi = rng.randrange(len(cat.questions))
    question = cat.questions[qi]
    used = _placeholders(question)
    values = {k: rng.choice(cat.slots[k]) for k in sorted(used)}
    ai = rng.choice(cat.fitting(qi))
    answer = cat.answers[ai]
    detail = {
        "category": cat.name,
        "question": qi,
        "answer": ai,
        "slots": {k: v["text"] if isinstance(v, dict) and "text" in v else v for k, v in values.items()},
    }
    return Sample(
        instruction=INSTRUCTION,
        input=question.format(**values),
        output=answer.format(**values),
        task=Task.medical_qa,
        label=Label.refusal,
        area=cat.area,
        provenance=Provenance(
            source="refusal_taxonomy",
            seed_id=f"refusal:{cat.name}",
            augmentation=[AugmentationStep(augmenter=AUGMENTER, detail=detail_json(detail))],
            created_at=now_utc(),
        ),
    )


def make_refusals(n: int, seed: int = 0) -> list[Sample]:
    """`n` refusal samples cycling through the categories; duplicates (same text) are dropped."""
    out: dict[str, Sample] = {}
    i = 0
    while len(out) < n and i < n * 5:
        s = make_refusal(i, seed)
        out.setdefault(s.id, s)
        i += 1
    return list(out.values())
