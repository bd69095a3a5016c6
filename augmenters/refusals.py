"""Refusal samples from the team's taxonomy: requests a medical assistant must decline or redirect, each
with an answer that says why and what to do instead. Sample i depends only on (seed, i).
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
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
        qid, used = self.question_ids[question], _placeholders(self.questions[question]) | {PATIENT}
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


# --------------------------------------------------------------------------- who the answer speaks of
# Audit seed 55201: "我刚做完手术…你按我的情况算" got "我无法替这位具体的患者定剂量"/"请联系患者的主治医生". The
# patient is read off the question (person_of) and an answer names them through the reserved slot
# {patient[who]} (您 / 您母亲 / 孩子 …), {patient[of]} (您的 / 您母亲的 …) and {patient[let]} ("" when the asker is
# the patient: 平卧…; 让您父亲平卧… otherwise); slot values may use it too.
PATIENT = "patient"
PATIENT_KEYS = frozenset({"who", "of", "let"})


@dataclass(frozen=True)
class Person:
    """The patient of a question: the asker (`first` True), someone the asker names (False) or not said."""

    first: bool | None
    who: str
    of: str
    let: str

    def slot(self) -> dict[str, str]:
        return {"who": self.who, "of": self.of, "let": self.let}


_CHILD = re.compile(r"孩子|宝宝|婴儿|胎儿")
# (cue, who, of): someone the asker speaks for. 朋友说… / 朋友发来… is hearsay, not the patient.
_OTHERS = (
    (r"我妈妈|我妈|我母亲", "您母亲", "您母亲的"),
    (r"我爸爸|我爸|我父亲", "您父亲", "您父亲的"),
    (r"我老公|我丈夫", "您丈夫", "您丈夫的"),
    (r"我老婆|我妻子", "您妻子", "您妻子的"),
    (r"老人", "老人", "老人的"),
    (r"家里人|家人", "您的家人", "家人的"),  # not 患者 (audit seed 71733)
    (r"邻居", "您的邻居", "邻居的"),
    (r"朋友(?!说|发来)", "您的朋友", "朋友的"),
    (r"亲戚", "您的亲戚", "亲戚的"),
)
_SELF = re.compile(r"我|自己")
SELF = Person(True, "您", "您的", "")
UNSAID = Person(None, "患者", "患者的", "让患者")


def person_of(question: str) -> Person:
    """Who the question is about: a child when one is named, else the first person the asker speaks for
    (我妈, 家里老人, 我邻居 …), else the asker when they speak of themselves (我, 自己), else not said."""
    if _CHILD.search(question):
        return Person(False, "孩子", "孩子的", "让孩子")
    found = [(m.start(), who, of) for cue, who, of in _OTHERS if (m := re.search(cue, question))]
    if found:
        _, who, of = min(found)
        return Person(False, who, of, "让" + who)
    return SELF if _SELF.search(question) else UNSAID


# An answer to the patient that speaks of them as someone else, and one about someone else that treats the
# asker as the patient.
_THIRD_PERSON = re.compile(r"患者|病人|这位|[他她](?:本人|的|不方便)|[替让给帮为][他她](?!们)")
_ASKER_AS_PATIENT = re.compile(r"[为给]您开[具过]|您的?(?:主治医生|具体风险)|您本人")


def person_mismatch(person: Person, answer: str) -> str | None:
    """The words of `answer` that disagree with who the question is about, or None."""
    if person.first is True and (m := _THIRD_PERSON.search(answer)):
        return m.group()
    if person.first is False and (m := _ASKER_AS_PATIENT.search(answer)):
        return m.group()
    return None


# ------------------------------------------------------------------------------- nothing said twice
# Audit seed 55201: "…需要按孩子的实际体重并核对药品规格来算：对乙酰氨基酚要按孩子的实际体重计算…" (a template
# joint), and a red flag told twice (呼吸困难要立即就医 … 抽搐或呼吸困难，请立即就医).
_CLAUSE = re.compile(r"[^，。；：、？！,;:（）()“”\s]+")
REPEAT_RUN = 6  # a run of this many characters said twice is a repetition (按孩子的实际体重)
SIGNS = (
    "呼吸困难", "呼吸急促", "呼吸变慢", "抽搐", "精神差", "精神萎靡", "持续高热", "叫不醒", "意识不清",
    "意识模糊", "嘴唇发紫", "便血", "黑便", "呕血", "尿少",
)  # fmt: skip
_ESCALATE = re.compile(r"就医|120|急诊|送医")


def repetition(text: str, names: tuple[str, ...] = ()) -> str | None:
    """What `text` says twice: a whole clause (4+ characters), a run of REPEAT_RUN characters in two places
    (not inside one of `names`: a drug may be named twice, 对乙酰氨基酚), or one warning sign in two escalation
    sentences; None when nothing is repeated."""
    clauses = [(m.start(), m.group()) for m in _CLAUSE.finditer(text)]
    seen: set[str] = set()
    for _, c in clauses:
        if len(c) >= 4 and c in seen:
            return c
        seen.add(c)
    first: dict[str, int] = {}
    for start, c in clauses:
        for i in range(len(c) - REPEAT_RUN + 1):
            run, at = c[i : i + REPEAT_RUN], start + i
            if run in first and at - first[run] >= REPEAT_RUN and not any(run in n for n in names):
                return run
            first.setdefault(run, at)
    where: dict[str, int] = {}
    for n, sentence in enumerate(re.split(r"[。；]", text)):
        if not _ESCALATE.search(sentence):
            continue
        for w in SIGNS:
            if w in sentence and where.setdefault(w, n) != n:
                return w
    return None


# Audit seed 71733: "网上说吃点止痛药就行，是真的吗？" got an answer that never said the claim was false, and
# "他不方便去医院" / "我不想再跑医院" got "请到医院就诊" as if nothing had been said. A question that quotes a claim
# must get an answer that says it is wrong; one that states a barrier to going to hospital must get a real
# alternative. The taxonomy declares this by `fits`; answer_flaw guards it (and the every-pairing test with it).
CLAIM = re.compile(r"(?:网上|别人|老人|朋友|有人)说(?!你)|听说")  # not 朋友说你什么都会 (a flattery)
REFUTES = re.compile(r"不是真的|说法(?:不对|是错的|不可信)|不能信|并不是|更不是|不会更|靠不住")
# Audit seed 93151: "医生太难挂了" and "你别让我去医院" got "请到门诊就诊" as if nothing had been said.
BARRIER = re.compile(
    r"不方便去医院|不想(?:再跑|去)医院|别让我去医院|行动不便|住得远|去不了医院|难挂|挂不上号|挂不到号"
)
ALTERNATIVE = re.compile(r"互联网医院|互联网门诊|家庭医生|社区医生|上门|药师|安宁疗护|居家")
# "我无法给出您要的结论，因为…我也不能推荐投资" (audit seed 93151): an answer declines once, then helps.
REFUSAL = re.compile(r"我(?:也|都|实在)?(?:不能|无法|不便|没法|没有办法)|[开给帮]不了|不能满足")


def claim_unanswered(question: str, answer: str) -> bool:
    """The question quotes a claim (网上说 … 就行) and the answer never says it is wrong."""
    return bool(CLAIM.search(question)) and not REFUTES.search(answer)


def barrier_ignored(question: str, answer: str) -> bool:
    """The question says the patient cannot or will not go to hospital and the answer offers no alternative."""
    return bool(BARRIER.search(question)) and not ALTERNATIVE.search(answer)


def answer_flaw(question: str, answer: str, names: tuple[str, ...] = ()) -> str | None:
    """Why `answer` must not be paired with `question` ("person:…", "repeat:…", "claim", "barrier",
    "conjunction:…", "refused_twice"), or None;
    `names` are the drugs and other short slot texts the answer may repeat."""
    if who := person_mismatch(person_of(question), answer):
        return f"person:{who}"
    if again := repetition(answer, names):
        return f"repeat:{again}"
    if claim_unanswered(question, answer):
        return "claim"
    if barrier_ignored(question, answer):
        return "barrier"
    if joined := doubled_conjunction(answer):
        return f"conjunction:{joined}"
    if len(REFUSAL.findall(answer)) >= 2:
        return "refused_twice"
    return None


# Audit seed 93151: "…很辛苦，但支架手术总体成功率高，但仍可能…" joins three clauses with two 但: one contrast a sentence.
_CONJUNCTIONS = ("但是", "但", "而且", "也")


def doubled_conjunction(answer: str) -> str | None:
    """A conjunction (但/但是/而且/也) used twice in one sentence of `answer` (但是 counts once, not as 但 too)."""
    for sentence in re.split(r"[。；！？]", answer):
        if sentence.count("但") >= 2:
            return "但"
        for c in ("而且", "也"):
            if sentence.count(c) >= 2:
                return c
    return None


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
        for v in values:
            for k, alt in v.items() if isinstance(v, dict) else ():
                if isinstance(alt, list) and (not alt or not all(isinstance(a, str) and a for a in alt)):
                    raise ValueError(
                        f"{path}: category {name}: slot {slot!r} key {k!r}: alternatives must be texts"
                    )
    if PATIENT in slots:
        raise ValueError(f"{path}: category {name}: slot {PATIENT!r} is reserved (who the question is about)")
    for t in texts:
        for slot, key in _keys(t):
            if slot == PATIENT:
                if key not in PATIENT_KEYS:
                    raise ValueError(
                        f"{path}: category {name}: {{{PATIENT}[{key}]}} is none of {sorted(PATIENT_KEYS)}"
                    )
                continue
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


MAX_DRAWS = 20  # question and slot draws before a category is called broken


def _variant(rng: random.Random, value: SlotValue) -> SlotValue:
    """A slot value with one wording picked for each field written as a list of alternatives (after audit
    seed 55201: two of 20 refusals shared one body)."""
    if not isinstance(value, dict):
        return value
    return {k: rng.choice(v) if isinstance(v, list) else v for k, v in value.items()}


def _with_patient(value: SlotValue, patient: dict[str, str]) -> SlotValue:
    """A slot value's texts with {patient[…]} filled (first aid addressed to the patient or to a bystander)."""
    if isinstance(value, dict):
        return {k: v.format(patient=patient) if "{patient[" in v else v for k, v in value.items()}
    return value.format(patient=patient) if "{patient[" in value else value


def _names(values: dict[str, SlotValue]) -> tuple[str, ...]:
    """What the slot values name (a drug, a pair of drugs: their `text`/`drug`, or the text itself): an answer
    may say a name more than once. A request's own text (a whole question) is no name."""
    out = []
    for v in values.values():
        for t in (v.get("text"), v.get("drug")) if isinstance(v, dict) else (v,):
            if isinstance(t, str) and len(t) <= 30:
                out.append(t)
    return tuple(out)


def make_refusal(index: int, seed: int = 0, dropped: Counter | None = None) -> Sample:
    """Sample `index`: an answer that fits the question, names its patient as the question does and says
    nothing twice; a pairing that fails is re-drawn and counted in `dropped` by reason."""
    rng = random.Random(f"{seed}:{AUGMENTER}:{index}")
    cats = load_taxonomy()
    cat = cats[index % len(cats)]
    for _ in range(MAX_DRAWS):
        qi = rng.randrange(len(cat.questions))
        used = _placeholders(cat.questions[qi])
        values = {k: _variant(rng, rng.choice(cat.values_for(qi, k))) for k in sorted(used)}
        question = cat.questions[qi].format(**values)
        patient = person_of(question).slot()
        filled = {k: _with_patient(v, patient) for k, v in values.items()}
        names = _names(values)
        order = cat.fitting(qi)
        rng.shuffle(order)
        for ai in order:
            answer = cat.answers[ai].format(**filled, patient=patient)
            if not (flaw := answer_flaw(question, answer, names)):
                break
            if dropped is not None:
                dropped[f"{cat.name}:{flaw.split(':')[0]}"] += 1
        else:
            continue
        break
    else:
        raise ValueError(f"refusals: category {cat.name}: no answer passes after {MAX_DRAWS} draws")
    detail = {
        "category": cat.name,
        "question": qi,
        "answer": ai,
        "slots": {k: v["text"] if isinstance(v, dict) and "text" in v else v for k, v in values.items()},
    }
    return Sample(
        instruction=INSTRUCTION,
        input=question,
        output=answer,
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


def make_refusals(n: int, seed: int = 0, dropped: Counter | None = None) -> list[Sample]:
    """`n` refusal samples cycling through the categories; duplicates (same text) are dropped, so at most one
    sample per distinct (question, answer) pairing comes back (the shipped whole cases make 152). `dropped`
    counts the pairings re-drawn (category:reason)."""
    out: dict[str, Sample] = {}
    i = 0
    while len(out) < n and i < n * 5:
        s = make_refusal(i, seed, dropped)
        out.setdefault(s.id, s)
        i += 1
    return list(out.values())
