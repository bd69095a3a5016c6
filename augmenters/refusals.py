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
    fits: tuple[frozenset[str], ...] = ()  # per answer: the question ids it fits (declared for every answer)
    who: tuple[dict[str, frozenset[str]], ...] = ()  # per question: the sexes/ages its subject can have

    def values_for(self, question: int, slot: str) -> tuple[SlotValue, ...]:
        """The slot's values that can be said of question `question`'s subject (no 我爸怀孕一个多月)."""
        q = self.who[question] if self.who else {}
        return tuple(v for v in self.slots[slot] if _who_fits(q, _who(v)))

    def fitting(self, question: int) -> list[int]:
        """Indices of the answers that may answer question `question`: declared to fit it and using no
        slot the question lacks."""
        qid, used = self.question_ids[question], _placeholders(self.questions[question])
        return [i for i, a in enumerate(self.answers) if qid in self.fits[i] and _placeholders(a) <= used]


# speaker: who asks — the patient ("我现在…") or someone beside them ("我爸…"); an emergency that leaves the
# patient unable to ask (晕倒叫不醒, 说话不清楚) fits only a bystander's question (audit seed 90417).
WHO_KEYS = {
    "sex": frozenset({"male", "female"}),
    "age": frozenset({"child", "adult", "elder"}),
    "speaker": frozenset({"patient", "bystander"}),
}


def _who(entry: object) -> dict[str, frozenset[str]]:
    """The `who:` constraint of a question or slot value (sex/age/speaker sets; a key left out allows all)."""
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


def _declared(path: Path, name: str, c: dict) -> tuple[list[dict], list[dict]]:
    """The category's questions and answers, each declared: a question has an `id` (unique) and its `text`, an
    answer its `text` and the question ids it `fits` (audit seed 8821: an emergency answer about home medicine
    for a question that asked for none; an undeclared answer would fit every question by default)."""
    qs, ans, seen = [], [], set()
    for i, q in enumerate(c.get("questions") or ()):
        text = q.get("text") if isinstance(q, dict) else q
        if not isinstance(q, dict) or not q.get("id") or not isinstance(text, str) or not text:
            raise ValueError(
                f"{path}: category {name}: question {i} ({str(text)[:30]!r}) needs an id and a text"
            )
        if str(q["id"]) in seen:
            raise ValueError(f"{path}: category {name}: question id {q['id']!r} used twice")
        seen.add(str(q["id"]))
        qs.append(q)
    for i, a in enumerate(c.get("answers") or ()):
        text = a.get("text") if isinstance(a, dict) else a
        if not isinstance(text, str) or not text:
            raise ValueError(f"{path}: category {name}: answer {i} needs a text")
        if not isinstance(a, dict) or not isinstance(a.get("fits"), list) or not a["fits"]:
            raise ValueError(
                f"{path}: category {name}: answer {i} ({text[:30]!r}) declares no `fits` (the question ids it answers)"
            )
        ans.append(a)
    return qs, ans


def _check_cues(path: Path, name: str, c: dict, questions: tuple[str, ...]) -> None:
    """The class must follow from the question: with `cues`, every question names one of them (a child for the
    child-dosing class); with `not_cues`, none names one (no photo or child in adult dosing: audit seed 48317)."""
    cues, not_cues = c.get("cues") or (), c.get("not_cues") or ()
    for q in questions:
        if cues and not any(w in q for w in cues):
            raise ValueError(
                f"{path}: category {name}: question {q[:30]!r} names none of its cues {list(cues)}"
            )
        if bad := [w for w in not_cues if w in q]:
            raise ValueError(
                f"{path}: category {name}: question {q[:30]!r} names {bad}, which belong to another class"
            )


@cache
def load_taxonomy(path: Path = REFUSALS_FILE) -> tuple[Category, ...]:
    """Categories, checked: every placeholder has values and every question has an answer that fits it."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    cats = []
    for name, c in raw["categories"].items():
        slots = {k: tuple(v) for k, v in (c.get("slots") or {}).items()}
        qs, ans = _declared(path, name, c)
        qids = tuple(str(q["id"]) for q in qs)
        fits = tuple(frozenset(map(str, a["fits"])) for a in ans)
        if unknown := set().union(*fits) - set(qids):
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
        _check_cues(path, name, c, cat.questions)
        for ai, a in enumerate(cat.answers):
            if not (claims := echoed_claims(a, cat.questions)):
                continue
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
