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
    who: tuple[dict[str, frozenset[str]], ...] = ()  # per question: the sexes/ages its subject can have

    def values_for(self, question: int, slot: str) -> tuple[SlotValue, ...]:
        """The slot's values that can be said of question `question`'s subject (no 我爸怀孕一个多月)."""
        q = self.who[question] if self.who else {}
        return tuple(v for v in self.slots[slot] if _who_fits(q, _who(v)))

    def fitting(self, question: int) -> list[int]:
        """Indices of the answers that may answer question `question`: declared to fit it (or declaring
        nothing) and using no slot the question lacks."""
        qid, used = self.question_ids[question], _placeholders(self.questions[question])
        return [
            i
            for i, a in enumerate(self.answers)
            if (self.fits[i] is None or qid in self.fits[i]) and _placeholders(a) <= used
        ]


WHO_KEYS = {"sex": frozenset({"male", "female"}), "age": frozenset({"child", "adult", "elder"})}


def _who(entry: object) -> dict[str, frozenset[str]]:
    """The `who:` constraint of a question or slot value (sex/age sets; a key left out allows all)."""
    raw = entry.get("who") if isinstance(entry, dict) else None
    out = {}
    for k, v in (raw or {}).items():
        if k not in WHO_KEYS or not set(v) <= WHO_KEYS[k]:
            raise ValueError(f"who: unknown {k}: {v}")
        out[k] = frozenset(v)
    return out


def _who_fits(a: dict[str, frozenset[str]], b: dict[str, frozenset[str]]) -> bool:
    return all(a.get(k, every) & b.get(k, every) for k, every in WHO_KEYS.items())


# A claim an answer quotes (“见效快”, “省事”): only an answer to a question that makes the claim may echo it.
_QUOTED = re.compile(r"“([^”]{1,12})”")


def echoed_claims(answer: str, questions: tuple[str, ...]) -> set[str]:
    """The quoted phrases of `answer` that are claims one of the category's questions makes."""
    return {m.group(1) for m in _QUOTED.finditer(answer) if any(m.group(1) in q for q in questions)}


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
        qs = [
            {"id": str(i), **q} if isinstance(q, dict) else {"id": str(i), "text": q}
            for i, q in enumerate(c["questions"])
        ]
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
            tuple(_who(q) for q in qs),
        )
        for ai, a in enumerate(cat.answers):
            if not (claims := echoed_claims(a, cat.questions)):
                continue
            if cat.fits[ai] is None:
                raise ValueError(
                    f"{path}: category {name}: answer {a[:30]!r} quotes the claim(s) {sorted(claims)}: "
                    "it needs `fits` (the questions that make them)"
                )
            for qi, qid in enumerate(qids):
                if qid in cat.fits[ai] and (lost := {x for x in claims if x not in cat.questions[qi]}):
                    raise ValueError(
                        f"{path}: category {name}: answer {a[:30]!r} quotes {sorted(lost)}, "
                        f"which question {qid!r} does not say"
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
            for slot in _placeholders(q) & slots.keys():
                if not cat.values_for(qi, slot):
                    raise ValueError(
                        f"{path}: category {name}: no {slot} value fits the subject of {q[:30]!r}"
                    )
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
    values = {k: rng.choice(cat.values_for(qi, k)) for k in sorted(used)}
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
