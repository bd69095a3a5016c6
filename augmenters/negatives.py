"""Typed negative samples by rule: a plausible wrong answer that differs from the correct one in exactly
the intended way, that the knowledge tables say is wrong for this case, labelled with its error type, the
changed span, the reason and the correct answer.

Each constructor returns a Candidate or the reason it cannot make one (counted, never forced). Every
candidate is then checked with the clinical-fact extractor (medaug.facts): exactly one fact changed, of the
type's kind; otherwise it is dropped with the reason. Error types follow the configured ratios and no single
rewrite pattern makes more than 10 % of a type.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from augmenters.derive import derive_row, rng_for
from augmenters.negative_kb import (
    NEGATIVES_FILE,
    NegativeKnowledge,
    entity_extractor,
    flip_concludes,
    load_negative_knowledge,
    sexes,
    stated,
)
from medaug.facts import segmenter
from medaug.guards import negated
from medaug.lexicon import Lexicon
from medaug.schema import NEGATIVE_VERDICT, ErrorType, Label

__all__ = [
    "AUGMENTER",
    "CONSTRUCTORS",
    "DRUG_DOSE",
    "NEGATIVES_FILE",
    "Candidate",
    "NegativeKnowledge",
    "load_negative_knowledge",
    "make_negative",
    "negative_report",
    "negative_rows",
    "negative_summary",
    "verify",
]

AUGMENTER = "rule_negative"
PATTERN_SHARE = 0.10  # no rewrite pattern may make more than this share of one error type
PATTERN_RETRIES = 3  # redraws of a row whose rewrite's pattern is full, before the row is dropped
# No error type may exceed this multiple of its configured share of the negatives: a type that applies to
# every answer (overclaiming) must not crowd out the ones the data rarely allow.
TYPE_EXCESS = 2.0
_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;\n]*")
_CLAUSE_END = "，,。！？!?；;\n"
# Drug amounts (used by the LLM negatives' cheap check too).
DRUG_DOSE = re.compile(
    r"\d+(?:\.\d+)?\s*(?:mg|g|μg|ug|mcg|ml|mL|IU|U|毫克|微克|克|毫升|单位|国际单位|片|粒|支|袋|滴|喷)"
    r"(?:\s*/\s*(?:kg|d|次|天|日))?(?![A-Za-z/])"
)
_TO_MG = {"mg": 1.0, "g": 1000.0, "ug": 0.001}
_UNIT_SWAPS = {"mg": ("g", "ug"), "g": ("mg",), "ug": ("mg",)}
_UNIT_TEXT = {"mg": ("mg", "毫克"), "g": ("g", "克"), "ug": ("μg", "微克")}  # latin, Chinese
_UNIT_HEADS = {"mg": ("mg", "毫克"), "g": ("g", "克"), "ug": ("μg", "ug", "mcg", "微克")}
_FREQ = re.compile(r"(每日|每天|一日|一天)\s*([1-6一二两三四五六])\s*次")
_ONCE_DAILY = re.compile(r"(每日|每天|一日|一天)\s*(1|一)\s*次")
_WEEKLY = re.compile(r"每周\s*(1|一)\s*次")
_CN_SMALL = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6}
_AGE = re.compile(
    r"(\d+(?:\.\d+)?|[一二两三四五六七八九十]+)\s*(?:周岁|岁)(半)?|(\d+|[一二两三四五六七八九十]+)\s*个?月(?:大|龄)"
)
_WEIGHT = re.compile(r"(?:体重)?\s*(\d+(?:\.\d+)?)\s*(?:kg|公斤|千克)")


@dataclass
class Candidate:
    """One wrong answer: what was changed, why it is wrong for this case, and its rewrite pattern."""

    output: str
    before: str
    after: str
    start: int
    reason: str
    pattern: str
    strategy: str
    removed: list[tuple[int, int]] = field(default_factory=list)  # missing referral: spans taken out
    detail: dict[str, Any] = field(default_factory=dict)


Made = Candidate | str  # a candidate, or why none could be made


# What may follow a drug name for it to be the drug itself (对乙酰氨基酚片), not part of a compound product
# (对乙酰氨基酚黄那敏颗粒) or of another word.
_DRUG_FOLLOW = re.compile(
    r"$|[\s\d.,，。；;：:、！？!?（）()“”\"/-]|片|胶囊|颗粒|注射|混悬|缓释|控释|肠溶|分散|口服|糖浆|软膏|乳膏|栓|滴剂|喷|贴|"
    r"针|干混|气雾|吸入|雾化|静|皮下|等|或|和|与|及|治疗|每|一次|进行|来|控制|降|的|也|可|后|时|吗|呢|了|就|都|是|能|会|"
    r"对|有|要|需|应|片剂|钠|钾|钙|加|同时|以及|这|去|影响|两|没|仍|联|合|前|不"
)


_NOT_BEFORE_DRUG = ("复方", "内源性", "艾斯", "艾司", "埃索", "左旋", "右旋", "左", "右", "甲基", "乙酰")


def whole_drug(text: str, span: tuple[int, int]) -> bool:
    """The drug mention at `span` is the drug on its own (not inside a compound product name)."""
    before = text[max(0, span[0] - 3) : span[0]]
    # 艾斯奥美拉唑 / 埃索美拉唑 / 左氧氟沙星 name other drugs: a swap there makes 艾斯阿司匹林 (audit seed 7301)
    return bool(_DRUG_FOLLOW.match(text, span[1])) and not before.endswith(_NOT_BEFORE_DRUG)


def _question(row: dict[str, Any]) -> str:
    return f"{row['instruction']}\n{row.get('input') or ''}"


def _clause_bounds(text: str, at: int) -> tuple[int, int]:
    left = max((text.rfind(c, 0, at) for c in _CLAUSE_END), default=-1) + 1
    rights = [i for i in (text.find(c, at) for c in _CLAUSE_END) if i >= 0]
    return left, min(rights) if rights else len(text)


def _sentence_bounds(text: str, at: int) -> tuple[int, int]:
    ends = "。！？!?；;\n"
    left = max((text.rfind(c, 0, at) for c in ends), default=-1) + 1
    rights = [i + 1 for i in (text.find(c, at) for c in ends) if i >= 0]
    return left, min(rights) if rights else len(text)


def _replace_spans(text: str, spans: list[tuple[int, int]], new: str) -> str:
    out, pos = [], 0
    for s, e in sorted(spans):
        out += [text[pos:s], new]
        pos = e
    return "".join(out) + text[pos:]


def _cn_int(s: str) -> float | None:
    if re.fullmatch(r"\d+(?:\.\d+)?", s):
        return float(s)
    if s in _CN_SMALL:
        return float(_CN_SMALL[s])
    if s.startswith("十"):
        return 10.0 + (_CN_SMALL.get(s[1:], 0) if len(s) > 1 else 0)
    if len(s) == 2 and s[1] == "十":
        return 10.0 * _CN_SMALL.get(s[0], 0)
    return None


def _fmt(x: float) -> str:
    if x >= 1 and abs(x - round(x)) < 1e-9:
        return str(int(round(x)))
    return f"{x:.4f}".rstrip("0").rstrip(".")


# ------------------------------------------------------------------------------------------ diagnosis
def wrong_diagnosis(row: dict[str, Any], kb: NegativeKnowledge, rng: random.Random) -> Made:
    """The diagnosis the answer gives for this patient becomes one of its differentials (differentials.yaml)."""
    ext = entity_extractor()
    question, text = _question(row), row["output"]
    if not any(not f.negated for f in ext.extract(question).of_kind("symptom", "finding")):
        return "question_has_no_presentation"
    by_entry: dict[str, list] = defaultdict(list)
    for f in ext.extract(text).of_kind("disease"):
        entry = kb.disease_surfaces.get(f.surface)
        if entry in kb.diseases_by_name:
            by_entry[entry].append(f)
    if not by_entry:
        return "no_known_diagnosis"
    why = "no_diagnostic_statement"
    options = []
    for name, mentions in sorted(by_entry.items()):
        d = kb.diseases_by_name[name]
        if len(mentions) > 3:
            why = "disease_is_the_topic"  # a text about the disease, not a diagnosis of this patient
            continue
        names = {d.name, *d.aliases, *(f.surface for f in mentions)}
        if any(len(n) >= 2 and n in question for n in names | {n.rstrip("病症") for n in names}):
            why = "disease_named_in_question"
            continue
        if any(f.negated for f in mentions):
            why = "diagnosis_negated"
            continue
        if not any(
            text[max(0, f.span[0] - len(c)) : f.span[0]] == c for f in mentions for c in kb.diagnosis_cues
        ):
            continue
        who = sexes(question)
        for diff in d.differentials:
            if diff.sex and who != {diff.sex}:
                continue  # 前列腺炎 is no differential for a woman, nor for a patient of unknown sex
            if diff.name in text or diff.name in question:
                continue
            if kb.ruled_out_by(d.name, diff.name, question) is None:
                why = "differential_not_ruled_out_by_question"
                continue  # as consistent with what the patient says as the right diagnosis: not wrong
            if kb.shared_symptom(diff.name, question) is None:
                why = "differential_shares_no_symptom"
                continue  # 急性胰腺炎 for an infant's watery diarrhoea: no confusion a clinician makes
            options.append((d, mentions, diff))
    if not options:
        return why if why != "no_diagnostic_statement" or not by_entry else why
    d, mentions, diff = rng.choice(options)
    spans = [f.span for f in mentions]
    return Candidate(
        output=_replace_spans(text, spans, diff.name),
        before=mentions[0].surface,
        after=diff.name,
        start=spans[0][0],
        reason=f"本例表现支持{d.name}（见参考回答）；{diff.name}是{d.presentation}的鉴别诊断，不符合本例：{diff.key}",
        pattern=f"{d.name}->{diff.name}",
        strategy="differential",
        detail={"mentions": len(spans)},
    )


# ------------------------------------------------------------------------------------------ drug
def _recommended(text: str, span: tuple[int, int], kb: NegativeKnowledge) -> str | None:
    """None if the drug at `span` is recommended in its clause, else why not."""
    s, e = _clause_bounds(text, span[0])
    clause = text[s:e]
    if any(w in clause for w in kb.warning_cues) or negated(text, span[0]):
        return "drug_in_warning_context"
    if not any(w in clause for w in kb.treatment_cues):
        return "drug_not_recommended"
    return None


_INJECTED_CLASSES = {"胰岛素", "溶栓药", "铂类化疗药", "紫杉类化疗药", "氨基糖苷类抗生素", "脱水剂", "宫缩剂"}
_INJECTION_WORDS = re.compile(r"注射|打针|打了|皮下|静滴|静脉|输液|针剂|肌注|泵入")


def route_mismatch(text: str, span: tuple[int, int], new: str, kb: NegativeKnowledge) -> bool:
    """The swap keeps a route the new drug does not have: the clause says the drug is injected and the new
    one is a tablet (注射格列齐德), or says it is swallowed and the new one is injected (口服胰岛素)."""
    s, e = _clause_bounds(text, span[0])
    clause = text[s:e]
    injected = new in kb.drugs and kb.drugs[new].cls in _INJECTED_CLASSES
    if _INJECTION_WORDS.search(clause):
        return not injected
    return injected and bool(_ORAL_WORDS.search(clause))


_ORAL_WORDS = re.compile(r"口服|服用|服食|吃|片|胶囊|颗粒|冲服|含服")


def wrong_drug(row: dict[str, Any], kb: NegativeKnowledge, rng: random.Random) -> Made:
    """A recommended drug becomes one of the same role that a rule makes wrong for this patient."""
    ext = entity_extractor()
    question, text = _question(row), row["output"]
    mentions: dict[str, list] = defaultdict(list)
    for f in ext.extract(text).of_kind("drug"):
        if f.surface in kb.drugs:
            mentions[f.surface].append(f)
    if not mentions:
        return "no_known_drug"
    pops = kb.present_populations(question)
    both = question + text
    if any(kb.contraindicated(d, pops, both) for d in mentions):
        return "reference_drug_contraindicated"  # the correct answer is itself wrong for this patient
    if kb.wrong_here_in(set(mentions), both):
        return "reference_drug_contraindicated"  # 干扰素和更昔洛韦 for hepatitis B: the reference is wrong already
    why = "no_rule_makes_a_swap_wrong"
    options = []
    for x, fs in sorted(mentions.items()):
        if not all(whole_drug(text, f.span) for f in fs):
            why = "drug_inside_a_compound_name"
            continue
        if kb.mentions(x, question):
            why = (
                "drug_named_in_question"  # 奥美拉唑怎么吃？ → 口服阿司匹林: no longer an answer (audit 48213)
            )
            continue
        if kb.named_otherwise(x, _replace_spans(text, [f.span for f in fs], "")):
            why = (
                "drug_named_by_another_name"  # 拉米夫定或者贺普丁: the brand name would still offer the drug
            )
            continue
        bad = [r for f in fs if (r := _recommended(text, f.span, kb))]
        if bad:
            why = bad[0]
            continue
        if kb.contraindicated(x, pops, both):
            why = "reference_drug_contraindicated"
            continue
        roles = kb.drugs[x].roles
        for c in kb.contraindications:
            if c.population in pops and not any(u in both for u in c.unless):
                for y in sorted(c.drugs):
                    if y != x and y not in text and kb.drugs[y].roles & roles:
                        options.append((x, y, c.reason, f"contraindicated:{c.population}"))
        for c in kb.confusions:
            if any(y in text for y in c.to):
                continue  # the answer already names a drug the rule calls wrong here (卡马西平 for 失神发作)
            if x in c.sources and c.applies(both):
                options += [(x, y, c.reason, "confusion") for y in c.to if y != x]
    kept = [o for o in options if not any(route_mismatch(text, f.span, o[1], kb) for f in mentions[o[0]])]
    if options and not kept:
        return "swap_changes_the_route"
    carried = [o for o in kept if not any(strength_follows(text, f.span, o[1], kb) for f in mentions[o[0]])]
    if kept and not carried:
        return "drug_strength_would_carry_over"
    kept = carried
    options = kept
    if not options:
        return why
    x, y, reason, strategy = rng.choice(sorted(set(options)))
    spans = [salt_span(text, f.span) for f in mentions[x]]
    return Candidate(
        output=_replace_spans(text, spans, y),
        before=text[spans[0][0] : spans[0][1]],
        after=y,
        start=spans[0][0],
        reason=f"{y}不适合本例：{reason}",
        pattern=kb.drug_pattern(x, y, strategy),
        strategy=strategy,
        detail={"substitute": y},
    )


# Salt parts of a drug's name (雷贝拉唑钠, 盐酸二甲双胍): they belong to the old drug and go with it in a swap
# (雷贝拉唑钠 → 阿司匹林, never 阿司匹林钠: audit seed 48317).
SALT_SUFFIXES = ("钠", "钾", "钙", "镁", "锌")
SALT_PREFIXES = (
    "盐酸",
    "硫酸",
    "枸橼酸",
    "甲磺酸",
    "马来酸",
    "琥珀酸",
    "酒石酸",
    "磷酸",
    "富马酸",
    "苯磺酸",
    "氢溴酸",
)


def salt_span(text: str, span: tuple[int, int]) -> tuple[int, int]:
    """The drug mention at `span` widened over a salt prefix or suffix written with it."""
    s, e = span
    if text[e : e + 1] in SALT_SUFFIXES and text[e : e + 1]:
        e += 1
    for p in SALT_PREFIXES:
        if text[max(0, s - len(p)) : s] == p:
            s -= len(p)
            break
    return s, e


# ------------------------------------------------------------------------------------------ dose
# The strength of one tablet/capsule (奥美拉唑20毫克一粒, 每片0.5g, 20mg/粒): a product's label, not a dose;
# it may only be misread ×10 / ÷10 in its own unit (20毫克 → 20克一粒 exists nowhere: audit seed 48317).
_STRENGTH_BEFORE = re.compile(
    r"(每|一|单|1)\s*(粒|片|支|袋|颗|丸|包|瓶|胶囊)[^，,。；;\d]{0,2}$|规格[^，,。；;\d]{0,3}$|含[^，,。；;\d]{0,3}$"
)
_STRENGTH_AFTER = re.compile(r"\s*(/|每|一|1|的|一个)?\s*(粒|片|支|袋|颗|丸|包|胶囊|规格)")
# A per-dose amount (每次0.5g, 一次20mg, 0.5g/次, 20mg每日两次): where a unit confusion (mg ↔ g / μg) is a
# realistic error.
_PER_DOSE_BEFORE = re.compile(r"(每次|一次|单次|顿服|每回|一回|首剂|首次)[^，,。；;\d]{0,3}$")
_PER_DOSE_AFTER = re.compile(
    r"\s*(/次|每次|一次|[，,]?\s*(每日|每天|一日|一天|日)\s*[1-6一二两三四五六]\s*次|[，,]?\s*(qd|bid|tid|q\d+h))"
)
UNIT_SWAP_MAX_MG = (
    3_000.0  # a per-dose amount above 3 g (吗丁啉10克: audit seed 7301) is no confusion anyone makes
)
UNIT_SWAP_MIN_MG = 0.001


def per_unit_strength(text: str, span: tuple[int, int]) -> bool:
    """The amount at `span` is the strength of one unit (a tablet, capsule, sachet…), not a dose."""
    return bool(_STRENGTH_BEFORE.search(text[max(0, span[0] - 8) : span[0]])) or bool(
        _STRENGTH_AFTER.match(text, span[1])
    )


def per_dose(text: str, span: tuple[int, int]) -> bool:
    """The amount at `span` is the amount taken at one time (每次0.5g, 20mg/次, 20mg每日两次)."""
    return bool(_PER_DOSE_BEFORE.search(text[max(0, span[0] - 8) : span[0]])) or bool(
        _PER_DOSE_AFTER.match(text, span[1])
    )


def unit_swap_allowed(text: str, span: tuple[int, int], new_mg: float) -> str | None:
    """None if the amount at `span` may be read in another unit (mg ↔ g / μg) giving `new_mg`, else why not:
    only a per-dose amount, never a unit's strength, and only to an amount someone could take."""
    if per_unit_strength(text, span):
        return "strength_unit_changed"
    if not per_dose(text, span):
        return "unit_swap_not_per_dose"
    if not UNIT_SWAP_MIN_MG <= new_mg <= UNIT_SWAP_MAX_MG:
        return "unit_swap_unrealistic"
    return None


_AMOUNT_AFTER_DRUG = re.compile(
    r"[^，,。；;\n、和及与]{0,6}?(\d+(?:\.\d+)?)\s*(mg|g|μg|ug|mcg|毫克|微克|克)(\s*/\s*(?:kg|公斤))?"
)
# …肠溶胶囊，一般是20毫克一粒: the strength in the next clause still belongs to the drug (audit 48213)
_AMOUNT_NEXT_CLAUSE = re.compile(
    r"[^，,。；;\n、和及与]{0,6}[，,][^，,。；;\n、和及与]{0,8}?(\d+(?:\.\d+)?)\s*(mg|g|μg|ug|mcg|毫克|微克|克)"
    r"(\s*/\s*(?:kg|公斤))?"
)
_MG_PER = {
    "mg": 1.0,
    "毫克": 1.0,
    "g": 1000.0,
    "克": 1000.0,
    "μg": 0.001,
    "ug": 0.001,
    "mcg": 0.001,
    "微克": 0.001,
}


def strength_follows(text: str, span: tuple[int, int], new: str, kb: NegativeKnowledge) -> bool:
    """An amount (20mg, 0.5克, 10mg/kg) follows the drug at `span` in its clause and is not a usual dose of the
    drug `new` put in its place: the substitute would carry the old drug's strength (二甲双胍500mg → 格列本脲
    500mg), a second, absurd error the negative does not name."""
    m = _AMOUNT_AFTER_DRUG.match(text, span[1]) or _AMOUNT_NEXT_CLAUSE.match(text, span[1])
    if not m:
        return False
    mg = float(m.group(1)) * _MG_PER[m.group(2)]
    d = kb.doses.get(new)
    usual = (d.child_per_kg if m.group(3) else d.adult) if d else None
    return usual is None or not usual[0] <= mg <= usual[1]


def _child_weight(question: str) -> tuple[float | None, str]:
    """Weight in kg stated, or estimated from the age (2 × age + 8, for 1–10 years), and how it was known."""
    if m := _WEIGHT.search(question):
        return float(m.group(1)), f"体重{m.group(1)}kg"
    if m := _AGE.search(question):
        if m.group(3):
            months = _cn_int(m.group(3))
            if months is not None and months < 24:
                return 3.5 + 0.5 * months if months <= 6 else 6 + 0.25 * months, f"{m.group(3)}个月"
            return None, ""
        age = _cn_int(m.group(1))
        if age is not None and m.group(2):
            age += 0.5
        if age is not None and 1 <= age <= 10:
            return 2 * age + 8, f"{_fmt(age)}岁（估计体重约{_fmt(2 * age + 8)}kg）"
    return None, ""


def _dose_reason(drug: str, kb: NegativeKnowledge, before: str, after: str, old_mg: float, new_mg: float,
                 unit: str, daily: bool = False) -> str | None:  # fmt: skip
    """Why `after` is wrong, or None when it is not clearly wrong (within the usual range, small change).
    A daily total (每日服用量, 一天总量: `daily`) is held against the per-day range, not a single dose's; a drug
    with a wide margin (doses.yaml `margin: wide`, e.g. PPIs) is "far above the usual dose", not "poisonous"."""
    d = kb.doses.get(drug)
    ratio = new_mg / old_mg if old_mg else math.inf
    rng_txt = ""
    # mg/kg, mg/(kg·d): a weight-based dose is never held against the adult ranges (audits 24681, 36912:
    # prednisone 2 -> 0.2 mg/(kg·d) for a child was compared with the adult 5-60 mg)
    per_kg = weight_based(unit)
    if daily and d and d.adult and d.adult_max_day and not per_kg:
        lo, hi = d.adult[0], d.adult_max_day
        # the table has no daily minimum: a daily total is short when below one usual dose (audit 36912:
        # "阿莫西林成人每日用量一般为250～4000mg" named a single dose as the daily low)
        rng_txt = (
            f"，{drug}成人每日最多{_fmt(hi)}mg"
            if new_mg > hi
            else f"，每日总量还不到{drug}成人一次的常用量{_fmt(lo)}mg"
        )
        if lo <= new_mg <= hi:
            return None
    elif d and d.adult and not per_kg:
        lo, hi = d.adult
        rng_txt = f"，{drug}成人常用单次剂量为{_fmt(lo)}～{_fmt(hi)}mg"
        if lo <= new_mg <= hi:
            return None  # a usual dose, even if not the one for this case
    elif d and d.child_per_kg and per_kg and not (daily or per_day_unit(unit)):
        lo, hi = d.child_per_kg
        rng_txt = f"，{drug}儿童每次{_fmt(lo)}～{_fmt(hi)}mg/kg"
        if lo <= new_mg <= hi:
            return None
    harm = "远超常用剂量" if d and d.margin == "wide" else "可致过量中毒"
    if ratio >= 9.99:
        return f"剂量错成参考回答的{_fmt(ratio)}倍（{before}→{after}），属于数量级错误，{harm}{rng_txt}"
    if ratio <= 0.1001:
        return f"剂量只有参考回答的1/{_fmt(1 / ratio)}（{before}→{after}），达不到治疗剂量{rng_txt}"
    if daily and d and d.adult_max_day and not per_kg:
        return (
            f"{after}超过{drug}成人每日最大剂量{_fmt(d.adult_max_day)}mg"
            if new_mg > d.adult_max_day
            else None
        )
    if d and d.adult and not per_kg and new_mg > d.adult[1]:
        return f"{after}超过{drug}成人常用单次最大剂量{_fmt(d.adult[1])}mg"
    return None


# A daily total (每日服用量, 一天总量, 每日剂量) written right before an amount.
DAILY_AMOUNT = re.compile(r"(每日|每天|一天|一日|日)(服用|用药)?(总)?(剂)?量")


_BOUND_BEFORE = re.compile(
    r"(超过|超越|至少|不少于|不低于|不超过|不宜超过|不要超过|大于|高于|小于|低于|以上|以内)\s*$"
)


def dose_bound(text: str, span: tuple[int, int]) -> bool:
    """The amount at `span` is a bound (要超过2克才行, 不超过4克), not a dose: the answer's own regimen (每次三粒，
    每天三次) is elsewhere, so changing the bound changes no instruction (audit seed 57331)."""
    return bool(_BOUND_BEFORE.search(text[max(0, span[0] - 6) : span[0]]))


def weight_based(unit: str) -> bool:
    """mg/kg, mg/kg/d (facts.py writes 2mg/(kg·d) as mg/kg/d)."""
    return "/kg" in unit


def per_day_unit(unit: str) -> bool:
    return unit.endswith(("/d", "/日", "/天"))


def daily_amount(text: str, span: tuple[int, int], unit: str) -> bool:
    """The amount at `span` is a total per day (每日服用量要超过2克, 10mg/(kg.d))."""
    return bool(DAILY_AMOUNT.search(text[max(0, span[0] - 10) : span[0]])) or per_day_unit(unit)


def wrong_dose(row: dict[str, Any], kb: NegativeKnowledge, rng: random.Random) -> Made:
    """A drug's dose gets a realistic magnitude error: ×10, ÷10, mg↔g/μg, per-day as per-dose, once-daily or
    weekly taken more often, an adult dose for a small child."""
    ext = entity_extractor()
    question, text = _question(row), row["output"]
    facts = ext.extract(text)
    drugs = [f for f in facts.of_kind("drug") if f.surface in kb.drugs and whole_drug(text, f.span)]
    doses = []
    for n in facts.of_kind("number"):
        base = n.unit.split("/")[0]
        if (
            base not in _TO_MG
            or not re.fullmatch(r"\d+(?:\.\d+)?", n.value or "")
            or re.match(r"0\d", n.surface)
        ):
            continue  # 05克 is a garbled 0.5克: no amount to make ten times larger
        before = [d for d in drugs if d.span[1] <= n.span[0] and n.span[0] - d.span[1] <= 15]
        if not before or re.search(r"[。！？；;\n和及与、]", text[before[-1].span[1] : n.span[0]]):
            continue  # no drug right before, or the amount belongs to the next one (500mg对乙酰氨基酚和100mg…)
        if dose_bound(text, n.span):
            continue  # 每日服用量要超过2克才行: a bound, not the dose the patient takes (audit seed 57331)
        after = [d for d in facts.of_kind("drug") if 0 <= d.span[0] - n.span[1] <= 2]
        between = [m for m in facts.of_kind("number") if before[-1].span[1] <= m.span[0] < n.span[0]]
        if not after and not between:  # 甲硝唑0.4g+20mg: the 20mg is not metronidazole's
            doses.append((before[-1].surface, n))
    if not doses:
        return "no_drug_dose"
    child = "child" in kb.present_populations(question)
    options: list[tuple[str, Any]] = []
    for drug, n in doses:
        options += [("x10", (drug, n)), ("div10", (drug, n))]
        if per_unit_strength(text, n.span):
            continue  # a tablet's strength: only ×10 / ÷10 in its own unit
        if n.unit in _UNIT_SWAPS and per_dose(text, n.span):
            options += [(f"unit_{n.unit}_{u}", (drug, n)) for u in _UNIT_SWAPS[n.unit]]
        s, e = _sentence_bounds(text, n.span[0])
        sent = text[s:e]
        d = kb.doses.get(drug)
        if "每次" in text[max(s, n.span[0] - 4) : n.span[0]] and _FREQ.search(sent):
            options.append(("per_day_as_dose", (drug, n)))
        if d and d.schedule == "once_daily" and _ONCE_DAILY.search(sent):
            options.append(("once_daily_thrice", (drug, n)))
        if d and d.schedule == "weekly" and _WEEKLY.search(sent):
            options.append(("weekly_as_daily", (drug, n)))
        if child and weight_based(n.unit) and not per_day_unit(n.unit) and d and d.adult and d.child_per_kg:
            options.append(("adult_dose_for_child", (drug, n)))
    rng.shuffle(options)
    why = "dose_change_not_clearly_wrong"
    for how, (drug, n) in options:
        made = _dose_change(how, drug, n, text, question, kb)
        if isinstance(made, Candidate):
            return made
        why = made
    return why


def _dose_change(how: str, drug: str, n, text: str, question: str, kb: NegativeKnowledge) -> Made:
    value = float(n.value)
    unit = n.unit
    base = unit.split("/")[0]
    surface = n.surface.rstrip("多余来左右上下以内许 ")
    start = n.span[0]
    unit_txt = surface[len(re.match(r"\d+(?:\.\d+)?\s*", surface).group()) :]
    old_mg = value * _TO_MG[base]
    d = kb.doses.get(drug)
    if how in ("x10", "div10"):
        factor = 10.0 if how == "x10" else 0.1
        after = _fmt(value * factor) + unit_txt
        reason = _dose_reason(
            drug, kb, surface, after, old_mg, old_mg * factor, unit, daily_amount(text, n.span, unit)
        )
    elif how.startswith("unit_"):
        new_unit = how.split("_")[2]
        head = next((t for t in _UNIT_HEADS[base] if unit_txt.startswith(t)), None)
        new_txt = _UNIT_TEXT[new_unit][0 if head and head.isascii() or head == "μg" else 1]
        if head is None:
            return "unit_not_swappable"
        if why := unit_swap_allowed(text, n.span, value * _TO_MG[new_unit]):
            return why
        after = _fmt(value) + new_txt + unit_txt[len(head) :]
        reason = _dose_reason(
            drug, kb, surface, after, old_mg, value * _TO_MG[new_unit], unit, daily_amount(text, n.span, unit)
        )
    elif how == "per_day_as_dose":
        s, e = _sentence_bounds(text, start)
        m = _FREQ.search(text[s:e])
        times = _cn_int(m.group(2)) or 1
        after = _fmt(value * times) + unit_txt
        new_mg = old_mg * times
        if not (d and d.adult and new_mg > d.adult[1]):
            return "per_day_total_within_single_dose_range"
        reason = (f"把每日总量当成了每次剂量（每次{surface}、每日{_fmt(times)}次 → 每次{after}），"
                  f"超过{drug}成人单次最大剂量{_fmt(d.adult[1])}mg")  # fmt: skip
    elif how in ("once_daily_thrice", "weekly_as_daily"):
        s, e = _sentence_bounds(text, start)
        pat = _ONCE_DAILY if how == "once_daily_thrice" else _WEEKLY
        m = pat.search(text[s:e])
        new = "每日3次" if how == "once_daily_thrice" else "每日1次"
        wrong = text[: s + m.start()] + new + text[s + m.end() :]
        if how == "weekly_as_daily":
            reason = f"{drug}在这里是每周用一次，改成每日一次相当于每周7倍剂量，可引起骨髓抑制等严重中毒"
        else:
            day = old_mg * 3
            if not (d and d.adult_max_day and day > d.adult_max_day):
                return "thrice_daily_within_max"
            reason = f"{drug}每日一次即可，改成每日3次后每日{_fmt(day)}mg，超过每日最大剂量{_fmt(d.adult_max_day)}mg"
        return Candidate(wrong, m.group(), new, s + m.start(), reason, f"{how}:{drug}", how)
    elif how == "adult_dose_for_child":
        weight, known = _child_weight(question)
        if weight is None or weight > 30:
            return "child_weight_unknown"
        adult = min(d.adult[1], d.adult[0] * 2)
        after = _fmt(adult) + "mg"
        per_kg = adult / weight
        if per_kg <= d.child_per_kg[1] * 1.5:
            return "adult_dose_fits_this_child"
        reason = (f"给{known}的孩子用了成人剂量{after}，约{_fmt(round(per_kg, 1))}mg/kg，"
                  f"远超儿童每次{_fmt(d.child_per_kg[0])}～{_fmt(d.child_per_kg[1])}mg/kg")  # fmt: skip
    else:  # pragma: no cover - options are built above
        raise AssertionError(how)
    if reason is None:
        return "dose_change_not_clearly_wrong"
    end = start + len(surface)
    return Candidate(text[:start] + after + text[end:], surface, after, start, reason, f"{how}:{drug}", how)


# ------------------------------------------------------------------------------------------ findings
_READING = re.compile(r"高|低|异常|正常|超标|偏|超出|达标")


def reads_the_value(text: str, at: int, lab: str) -> bool:
    """The sentence of the value at `at` says what it means (偏高, 正常 …; the lab's own name aside): a misquoted
    value there would sit beside a reading of the true one (audits 57331, 68442)."""
    ss, se = _sentence_bounds(text, at)
    return bool(_READING.search(text[ss:se].replace(lab, "")))


def contradicts_findings(row: dict[str, Any], kb: NegativeKnowledge, rng: random.Random) -> Made:
    """Only for questions that carry findings: the answer restates a stated finding the other way round,
    misquotes a stated lab value across its reference range, or denies a stated finding."""
    ext = entity_extractor()
    question, text = _question(row), row["output"]
    if not any(c in question for c in kb.case_cues):
        return "question_has_no_findings"  # 白带增多会不会影响怀孕: no patient's findings to contradict
    qfacts = [f for f in ext.extract(question) if not f.negated]
    stated_facts = [f for f in qfacts if f.kind in ("symptom", "finding")]
    options: list[Candidate] = []
    disease_spans = [f.span for f in ext.extract(text).of_kind("disease")]
    # 1. flip: the answer repeats "subject + polarity word" from the question
    for w, opp in kb.opposites.items():
        if text.count(w) > 1:
            continue  # flipped in one place only, the answer still says 偏高 elsewhere: it restates the finding
        for m in re.finditer(re.escape(w), text):
            s = m.start()
            if negated(text, s) or any(text.startswith(o, s) for o in kb.opposites if len(o) > len(w)):
                continue
            if part_of_disease_name(text, m.span()) or any(a <= s < b for a, b in disease_spans):
                continue  # 醛固酮增多症 → 醛固酮减少症 swaps a disease, it contradicts no told finding
            if text[max(0, s - 2) : s].endswith(_NO_CATEGORY_BEFORE):
                continue  # 弱阳性 → 弱阴性 is no category whose advice differs (阳性 ↔ 阴性 is)
            if not flip_concludes(text, s, w, question):
                continue  # the answer only restates the finding: flipped, its advice is unchanged (not wrong)
            cs, _ = _clause_bounds(text, s)
            cs = max(cs, text.rfind("、", 0, s) + 1)
            for k in range(min(8, s - cs), 1, -1):
                subject = text[s - k : s]
                if clinical_subject(subject) and any(
                    not part_of_disease_name(question, q.span())
                    for q in re.finditer(re.escape(subject + w), question)
                ):
                    options.append(Candidate(
                        text[:s] + opp + text[m.end():], w, opp, s,
                        f"问题中写明“{subject}{w}”，回答却说成“{subject}{opp}”，与检查所见相反",
                        f"flip:{w}->{opp}", "flip"))  # fmt: skip
                    break
    # 2. misquote a lab value the question gives
    for lab in kb.labs:
        qm = re.search(re.escape(lab.name) + r"[^\d，。；,;]{0,4}?(\d+(?:\.\d+)?)", question)
        if not qm:
            continue
        v = float(qm.group(1))
        am = re.search(
            re.escape(lab.name) + r"[^\d，。；,;]{0,4}?(" + re.escape(qm.group(1)) + r")(?!\d)", text
        )
        if not am:
            continue
        if reads_the_value(text, am.start(1), lab.name):
            continue  # 餐后血糖5.8，这个血糖值是比较高了: the answer reads the value, a misquote refutes itself
        mid = (lab.low + lab.high) / 2
        new = mid if (v > lab.high or v < lab.low) else lab.high * 1.5
        new_txt = _fmt(round(new, 1))
        side = "高于" if v > lab.high else "低于" if v < lab.low else "在"
        options.append(Candidate(
            text[: am.start(1)] + new_txt + text[am.end(1):], qm.group(1), new_txt, am.start(1),
            f"问题给出的{lab.name}是{qm.group(1)}{lab.unit}（{side}参考范围{_fmt(lab.low)}～{_fmt(lab.high)}"
            f"{lab.unit}），回答却写成{new_txt}{lab.unit}，把{'异常' if side != '在' else '正常'}结果引成了"
            f"{'正常' if side != '在' else '异常'}",
            f"misquote:{lab.name}", "misquote"))  # fmt: skip
    # 3. deny a stated finding of this patient, woven into the sentence that reasons on it (off by default:
    # the answer still states the finding there, so the verifier drops it as self-contradicting)
    if stated_facts and kb.deny_enabled:
        amentions: dict[str, list] = defaultdict(list)
        for f in ext.extract(text):
            if f.kind in ("symptom", "finding") and not f.negated:
                amentions[f.term].append(f)
        for f in stated_facts:
            qs, qe = _sentence_bounds(question, f.span[0])
            if re.search(r"没|无|未|否认|不|非", question[qs : f.span[0]]):
                continue  # a denial anywhere before it in the sentence (没出现多饮，多食，多尿) may reach it
            head = f.surface[-1]
            if re.search(
                f"[不没无]{re.escape(head)}|{re.escape(f.surface)}.{{0,6}}(好了|消失|缓解|没了|好转)",
                question,
            ):
                continue  # told as gone since (这天胃不胀了): denying it now could be right
            if any(w in f.surface for w in kb.deny_never) or f.surface in kb.disease_surfaces:
                continue
            if part_of_disease_name(question, f.span):
                continue  # 乙型急性黄疸肝炎: 黄疸 names the disease, it is no finding told of the patient
            mention = next((m for m in amentions.get(f.term, ()) if _about_patient(text, m.span)), None)
            if mention is None:
                continue  # the answer only names it in general (味精可致头痛、心慌甚至恶心): no denial there
            s, _ = _clause_bounds(text, mention.span[0])
            if g := re.match(r"(您好|你好)[，,！!]?", text[s:]):
                s += g.end()
            for t in kb.deny_templates:
                ins = t["text"].format(finding=f.surface)
                options.append(Candidate(
                    text[:s] + ins + text[s:], "", ins, s,
                    f"问题中明确有“{f.surface}”，回答却说没有，与病史矛盾",
                    f"deny:{t['id']}", "deny"))  # fmt: skip
    if not options:
        has = (
            stated_facts
            or any(lab.name in question for lab in kb.labs)
            or any(w in question for w in kb.opposites)
        )
        return "finding_not_restated_in_answer" if has else "question_has_no_findings"
    by_strategy: dict[str, list[Candidate]] = defaultdict(list)
    for c in options:
        by_strategy[c.strategy].append(c)
    return rng.choice(by_strategy[rng.choice(sorted(by_strategy))])


_PATIENT = re.compile(
    r"你|您|孩子|宝宝|患儿|老公|丈夫|妻子|老婆|妈|爸|老人|爷爷|奶奶|这种情况|目前|现在|考虑|结合|根据"
)


def _about_patient(text: str, span: tuple[int, int]) -> bool:
    """The answer's mention at `span` is about this patient: its sentence addresses them (你/您/孩子/目前…)
    and it is not one item of a list of symptoms (头痛、心慌甚至恶心)."""
    s, e = _sentence_bounds(text, span[0])
    if not _PATIENT.search(text[s:e]):
        return False
    around = text[max(0, span[0] - 1) : span[0]] + text[span[1] : span[1] + 1]
    return not re.search(r"[、等]", around) and not text[max(0, span[0] - 2) : span[0]].endswith("甚至")


def part_of_disease_name(question: str, span: tuple[int, int]) -> bool:
    """The finding at `span` of the question is part of a disease's name (黄疸型肝炎, 黄疸肝炎, 过敏性…,
    醛固酮增多症, 血小板减少症)."""
    return bool(re.match(r"型|性(?!的)|肝炎|病(?!了|情)|症(?!状)", question[span[1] : span[1] + 2]))


# A qualifier before a flipped result word that makes the flip no real category change (弱阳性 → 弱阴性).
_NO_CATEGORY_BEFORE = ("弱", "可疑", "临界", "弱弱")


def clinical_subject(subject: str) -> bool:
    """A flipped finding word's subject names something (转氨酶, ST段), not just a count (3个, 哪2项)."""
    return len(re.sub(r"[\W\d一二三四五六七八九十两几哪个项次种条的是为]", "", subject)) >= 2


# ------------------------------------------------------------------------------------------ referral
def _red_flag(text: str, kb: NegativeKnowledge):
    for flag in kb.red_flags:
        for c in flag.cues:
            i = text.find(c)
            while i >= 0:
                if stated(text, i, now=True):
                    return flag, c
                i = text.find(c, i + 1)
        for p in flag.patterns:
            for m in p.finditer(text):
                if stated(text, m.start(), now=True):
                    return flag, m.group()
    return None


def _urgent_at(text: str, kb: NegativeKnowledge) -> list[tuple[int, int]]:
    out = []
    for c in kb.urgent_cues:
        for m in re.finditer(re.escape(c), text):
            told_not = re.search(
                r"(不用|不必|无需|无须|不需要|没必要|不要|不一定要)\s*$",
                text[max(0, m.start() - 6) : m.start()],
            )
            if not told_not and not any(a <= m.start() < b for a, b in out):
                out.append((m.start(), m.end()))
    return sorted(out)


def missing_referral(row: dict[str, Any], kb: NegativeKnowledge, rng: random.Random) -> Made:
    """The urgent escalation of an answer that needs one (a red flag in the question, or a safety net naming
    one) is deleted or talked down."""
    text = row["output"]
    cues = _urgent_at(text, kb)
    if not cues:
        return "no_urgent_referral"
    sentences = [(m.start(), m.end()) for m in _SENTENCE.finditer(text)]
    hit = [(s, e) for s, e in sentences if any(s <= c < e for c, _ in cues)]
    if len(hit) == len(sentences):
        return "answer_is_only_referral"
    from augmenters.negative_verify import asked_red_flag, past_red_flag

    flag = asked_red_flag(_question(row), kb)  # 会不会引起胸口疼 asks, it does not tell a red flag
    where = "问题中"
    if flag is None and past_red_flag(_question(row), kb):
        return "red_flag_not_current"  # 昨天突然抽搐, over since: waiting for the clinic is acceptable
    if flag is None:
        # a red flag only the reference's own safety advice names (我听别人说…昏迷不醒会死吗？) is no current one:
        # without one in the question, waiting for the clinic is no clearly wrong answer (audit seed 93151)
        return "referral_not_needed_by_red_flag"
    rf, cue = flag
    strategies = ["delete", *(f"downgrade:{i}" for i in range(len(kb.downgrades)))]
    strategy = rng.choice(strategies)
    if strategy == "delete":
        removed = hit
        wrong = "".join(text[s:e] for s, e in sentences if (s, e) not in hit)
        after = ""
    else:
        phrase = kb.downgrades[int(strategy.split(":")[1])]
        c0 = next(c for c, _ in cues)
        cs, _ = _clause_bounds(text, c0)
        ss, se = _sentence_bounds(text, c0)
        se -= 1 if text[se - 1 : se] in "。！？!?；;\n" else 0
        # The clause's lead-in (如果…/出现…时) stays; from the escalation to the sentence end becomes the
        # downgrade, and other sentences with an urgent cue go entirely.
        lead = re.match(r".*?(请|应|需|要|必须|建议|及早|务必)", text[cs:c0])
        keep = cs + lead.start(1) if lead else cs
        removed = sorted({(keep, se), *((s, e) for s, e in hit if not s <= c0 < e)})
        pieces, pos = [], 0
        for s, e in removed:
            pieces += [text[pos:s], phrase if s == keep else ""]
            pos = e
        wrong = "".join(pieces) + text[pos:]
        after = phrase
    if _urgent_at(wrong, kb):
        return "referral_remains"
    before = "".join(text[s:e] for s, e in removed)
    how = "删去了就医建议" if strategy == "delete" else f"把就医建议改成了“{after}”"
    return Candidate(
        wrong, before, after, removed[0][0],
        f"{where}有“{cue}”：{rf.why_for(cue)}；错误回答{how}",
        strategy, "delete" if strategy == "delete" else "downgrade", removed=removed,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ overclaiming
def overclaiming(row: dict[str, Any], kb: NegativeKnowledge, rng: random.Random) -> Made:
    """A promise woven into the answer: a hedge made a guarantee, a follow-up cancelled, a promise added to
    a treatment clause that is not the last one."""
    text = row["output"]
    ext = entity_extractor()
    options: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    facts = ext.extract(text)
    diseases = {f.span[0] for f in facts.of_kind("disease")}
    question = _question(row)
    named = {f.span[0] for f in facts.of_kind("disease") if f.surface in question}
    for r in kb.promise_replace:
        for f in r["find"]:
            for m in re.finditer(re.escape(f), text):
                if negated(text, m.start()) or (r.get("before") == "disease" and m.end() not in diseases):
                    continue
                if r.get("before") == "disease" and m.end() in named:
                    continue  # 我在治子宫内膜异位症 … 考虑是 → 肯定是: she has it already (audit seed 79553)
                if r.get("followed_by") and not any(text.startswith(w, m.end()) for w in r["followed_by"]):
                    continue
                if m.start() and text[m.start() - 1] in r.get("not_after", ()):
                    continue
                ss, se = _sentence_bounds(text, m.start())
                rest = text[ss : m.start()] + "|" + text[m.end() : se]
                if any(w in rest for w in r.get("unless_in_sentence", ())):
                    continue  # 一定是X，需要进一步检查确诊: the sentence would contradict itself
                if clashes_beside(text, m.start(), m.end(), r, kb):
                    continue  # 慢性…可以缓解 → 保证可以根治: contradicts the answer itself
                cs, _ = _clause_bounds(text, m.start())
                if any(w in text[cs : m.start()] for w in r.get("unless_before_in_clause", ())):
                    continue  # 两周到一个月左右再复查一下: a scheduled step, not a hedge to cancel
                if r.get("after_advice"):
                    cs, _ = _clause_bounds(text, m.start())
                    if not _ADVICE.search(text[cs : m.start()]):
                        continue  # 长期用药不仅会增强肝脏压力: a statement about the drug, not advice
                if not segmenter().aligned(text, m.start(), m.end()):
                    continue  # 绝大部分人 → 绝每一位患者: never a swap inside a longer word
                options[r["id"]] += [(m.start(), m.end(), to) for to in r["to"]]
    # a drug counts for a treatment clause only where it is recommended (服用X, 可用X), not where a test of it
    # is (胰岛素释放实验) or it is warned against
    drug_spans = [f.span for f in facts.of_kind("drug", "procedure")]
    drugs = [s for s, e in drug_spans if _recommended(text, (s, e), kb) is None]
    clause_ends = [i for i, ch in enumerate(text) if ch in _CLAUSE_END]
    for end in clause_ends[:-1] if clause_ends and clause_ends[-1] >= len(text.rstrip()) - 1 else clause_ends:
        s, _ = _clause_bounds(text, end - 1 if end else 0)
        s = _clause_start(text, s, end)
        clause = text[s:end]
        if _no_place_for_a_promise(text, s, end, drugs, [a for a, _ in drug_spans]):
            continue
        if clause and (any(s <= d < end for d in drugs) or any(w in clause for w in _TREATMENT_CLAUSE)):
            if any(w in clause for w in kb.warning_cues):
                continue
            if not _ADVICE.search(clause) or _HISTORY.search(clause):
                continue  # a promise follows advice (建议服用…), not the patient's history or a mechanism
            has_drug = any(s <= d < end for d in drugs)
            for r in kb.promise_insert:
                if r.get("after_drug") and not has_drug:
                    continue  # 药到病除 after 手术延长: the promise names a drug's effect
                if r.get("needs_beside") and not clashes_beside(text, end, end, {}, kb, r["needs_beside"]):
                    continue  # 保证不会留下任何后遗症 beside a gastritis remedy is true, not an overclaim
                if r.get("needs") and not any(w in row["output"] for w in r["needs"]):
                    continue  # e.g. stopping on one's own is only wrong for a drug that must not be stopped
                if clashes_beside(text, end, end, r, kb):
                    continue  # 需要长期口服药物治疗，保证药到病除: the promise contradicts its own sentence
                options[r["id"]].append((end, end, "，" + r["text"]))
    if not options:
        return "nothing_to_overclaim"
    rid = rng.choice(sorted(options))
    s, e, new = rng.choice(options[rid])
    wrong = text[:s] + new + text[e:]

    def count(t: str) -> int:
        return sum(t.count(m) for m in kb.promise_markers)

    if count(wrong) <= count(text):
        return "promise_not_stronger"
    return Candidate(
        wrong, text[s:e], new, s,
        f"回答做出了医生不能做出的承诺（“{new.lstrip('，')}”）：任何治疗都不能保证疗效、保证不复发或没有副作用，"
        "也不能免去必要的复查和医生指导",
        rid, "replace" if e > s else "insert",
    )  # fmt: skip


def clashes_beside(
    text: str, start: int, end: int, rule: dict[str, Any], kb: NegativeKnowledge, words: Sequence[str] = ()
) -> str | None:
    """A word of the rule's clash groups ([chronic] unless the rule names others: 慢性, 长期, 复发, 难治 …)
    beside the promise at text[start:end] — in its sentence or the sentence before or after it (the span
    itself, which a replacement removes, aside). With `words`, those are looked for instead (needs_beside)."""
    groups = rule["clashes"] if "clashes" in rule else ["chronic"]
    words = list(words) or [w for g in groups for w in kb.promise_clash.get(g, ())]
    if not words:
        return None
    ss, se = _sentence_bounds(text, start)
    ps = _sentence_bounds(text, ss - 2)[0] if ss >= 2 else ss
    ne = _sentence_bounds(text, se + 1)[1] if se + 1 < len(text) else se
    window = text[ps:start] + "|" + text[end : max(ne, se)]
    hit = next((w for w in words if w in window), None)
    if hit or "chronic" not in groups:
        return hit
    # an answer that says anywhere the condition cannot be cured or needs lifelong treatment (癫痫是无法全愈的
    # … 慢慢减用药量，保证彻底断根: audit seed 93151) is contradicted by a promise however far from it
    whole = text[:start] + "|" + text[end:]
    return next((w for w in kb.promise_clash.get("incurable", ()) if w in whole), None)


# Inside a clause a "." between non-digits (medical texts often end sentences with it) or a "：" also ends
# what the promise would follow: 传播.传染的危险人群包括：做手术者 is a list of risk groups, not advice.
_SOFT_END = re.compile(r"(?<!\d)\.(?!\d)|[：:]")
# A clause right next to the promise that already says the symptom goes (停药后即可消失) or the disease
# heals (有可能会痊愈): the promise would repeat or contradict it.
_NO_TREATMENT = re.compile(
    r"(不需要|不需|不用|无需|无须|不必|没必要)[^，,。；;]{0,3}?(治疗|用药|吃药|手术|处理)"
)
_DRUG_FORM = re.compile(r"(片|胶囊|颗粒|丸|素|口服液|注射液|合剂|冲剂|散|膏)(等)?$")
_TEST_ADVICE = re.compile(r"检查|复查|化验|监测|复检")
# A clause that denies the treatment it names, and a clause that says the first treatment failed (audit seed 3391).
_DENIED_CARE = re.compile(r"(没|不|无|未|非|并不)[^，,。；;]{0,12}(治疗|治好|有效|作用)")
_FAILED = re.compile(
    r"不缓解|无效|没有好转|没好转|不见好|效果不好|控制不好|没效果|不好转|控制不住|不(?:是很|太|很)?明显|效果不大|没什么效果|不起效|没起效"
)
# A next clause that starts with a class of drugs goes on with the list (秋水仙碱，非甾体镇痛药物…: audit seed 6143).
_DRUG_CLASS_START = re.compile(
    r"\s*(非甾体|抗生素|质子泵|糖皮质激素|激素类|抗病毒|降压药|降糖药|抗凝|抗血小板|维生素|益生菌|中成药|消炎药)"
)
# A next clause that hedges what the promise would guarantee, and words of caution about the treatment (audit seed
# 5927: 口服一些药物，百分之百有效，看一看症状是否可以缓解; 副作用有水钠潴留，故宜同时服用氢氯噻嗪，保证彻底断根).
_HEDGED_NEXT = re.compile(r"\s*(看一看|看看|观察|试试|是否|能否|如果|若)")
_CAUTION = re.compile(r"副作用|不良反应|慎重|慎用|谨慎")
# Boilerplate about harm, exhortation and sign-offs: a promise there follows no treatment (audit seed 90417:
# 胃病对患者们带给的危害是非常大的，保证三天之内症状全部消失，一旦发觉自身的症状，就要及时就诊).
_BOILERPLATE = re.compile(
    r"危害|伤害[是也]?(非常|很|比较)?大|一旦发[觉现]|就要及时|期望|希望[^，,。；;]{0,15}(康复|帮助|获得|早日)|"
    r"仅供参考|祝你|祝您|早日康复"
)
# A next clause that is a bare treatment noun phrase (靶向救治, 放射治疗): an item parallel to the clause before.
_BARE_TREATMENT = re.compile(r"\s*[^，,。；;\s]{0,8}?(救治|治疗|手术|化疗|放疗|疗法|介入)\s*$")
_VERB = re.compile(r"建议|可以|可|需要|应|进行|实施|采用|采取|做|用|服|吃|打|接受|配合|给予|给与|行|是|要|能")
# A next clause that offers an alternative or a contrast: a promise before it is cut off or contradicted.
_GOES_ON = re.compile(r"\s*(或者|或是|或|还是|以及|及|和|与|但是|但|不过|然而|可是|只是)")
# A next clause that goes on with the treatment (互相配合维生素, 同时口服…, 并加用…): the promise would split a pair.
# 同时/并 count only before a treatment word (同时注意休息 is lifestyle advice after the treatment, not its other half).
_CONTINUES = re.compile(
    r"\s*(互相配合|相互配合|配合|加用|再用|再加|联合|合用|辅以|加上|"
    r"(同时|并且|并)(?:可以|可|再|还要|需要)?(服|口服|使用|用|加用|配合|联合|注射|输液|静滴|外用|涂))"
)
# A clause that treats nothing a promise could be about: a vaccine (口服轮状疫苗可以间隔再打, audit 36912), a label
# note (不同企业…包装规格不同) or a sterilisation (可以做结扎手术, audit 79553), wound care (两天换一次药) or a
# caution (儿童应在医师指导下服用, audit 48213).
_NOT_A_CURE = re.compile(r"疫苗|接种|包装|规格|企业|厂家|结扎|绝育|避孕|换药|包扎|指导下")
# A next clause that goes on with the instruction: its precaution (…应延长，以免出现耳毒性, audit 24681), the wound
# care (…，重新包扎) or the dosing (早饭前半小时一片，一天一次, audit 48213).
_INSTRUCTION_GOES_ON = re.compile(
    r"\s*(以免|以防|避免|防止|否则|以减少|重新包扎|换药"
    r"|一天|每天|每日|一日|每次|一次|饭前|饭后|睡前|早晚|连用|连服|\d+次|[一二两三四]次)"
)
_GOES_AWAY = re.compile(r"纾解|消失|缓解|好转|减轻|消退|痊愈|全愈|治愈|恢复|康复|控制")
# An item of a list: short, and not itself advice (静脉药瘾者, 女性溢乳).
_LIST_ITEM_LEN = 8


def _clause_start(text: str, s: int, end: int) -> int:
    """Where the clause text[s:end] really starts once a soft end (a CJK "." or "：") inside it counts."""
    ends = [m.end() for m in _SOFT_END.finditer(text, s, end)]
    return ends[-1] if ends else s


def _no_place_for_a_promise(
    text: str, s: int, end: int, drugs: list[int] = (), named: list[int] = ()
) -> bool:
    """A promise after text[s:end] would sit inside an enumeration (the clause or its neighbour carries 、,
    the clause and both neighbours are short list items, or the next clause is just another drug:
    口服诺氟沙星胶囊，黄连素，肠炎宁片), next to a clause that already says the symptom goes away, after a
    clause that says no treatment is needed (不需要治疗), or after advice to get a test, not a treatment."""
    clause = text[s:end]
    if _NO_TREATMENT.search(clause):
        return True
    if re.search(r"(此外|之外|另外|同时|而且|并且|以及)\s*$", clause):
        return True  # …克拉霉素此外，: the clause runs on into the next one
    if _DENIED_CARE.search(clause):
        return True  # 没有证据证明柚子可以治疗高血压 / 也就不需要什么药物以及医院的治疗了: no treatment to promise on
    if _TEST_ADVICE.search(clause) and not any(s <= d < end for d in drugs):
        return True
    ns, ne = _clause_bounds(text, end + 1)
    nxt = text[ns:ne] if end + 1 < len(text) else ""
    ps, _ = _clause_bounds(text, max(s - 2, 0))
    prev = text[ps : max(s - 1, 0)] if s > 0 else ""
    nxt_soft = _SOFT_END.search(nxt)
    nxt = nxt[: nxt_soft.start()] if nxt_soft else nxt
    prev = prev[_clause_start(prev, 0, len(prev)) :]
    if "、" in clause or "、" in nxt:
        return True
    if re.match(r"[^，,。；;]{1,6}等", nxt):
        return True  # 有拉米夫定，阿德福韦酯等…: the next clause ends an enumeration the promise would split
    if _CONTINUES.match(nxt):
        return True  # 可以用口服药物，互相配合维生素: the treatment goes on, a promise would split it (seed 93151)
    if _NOT_A_CURE.search(clause) or _INSTRUCTION_GOES_ON.match(nxt):
        return True
    if _GOES_ON.match(nxt):
        return (
            True  # …，或者是使用胰岛素 / …，但是由于症状不同方法也不一样: an alternative or a "but" follows
        )

    def item(t: str) -> bool:
        return 0 < len(t.strip()) <= _LIST_ITEM_LEN and not _ADVICE.search(t)

    if any(s <= d < end and end - d <= 8 for d in named) and _LIST_GOES_ON.match(nxt):
        return True  # 可选择兰索拉唑，果胶铋和克拉霉素: the clause ends on a drug and the list goes on (seed 7302)
    if any(ns <= d < ns + 3 for d in named) or _DRUG_CLASS_START.match(nxt):
        return True  # 服食雷贝拉唑肠溶胶囊，莫沙必利分散片: the list of drugs goes on
    nns, nne = _clause_bounds(text, ne + 1) if ne + 1 < len(text) else (ne, ne)
    if item(nxt) and any(nns <= d < nns + 3 for d in named):
        return True  # 吃雷贝拉唑钠，丽珠得乐，莫沙必利: a brand name between two drugs

    if _BOILERPLATE.search(clause):
        return True  # …胃病对患者们带给的危害是非常大的，保证三天之内…: boilerplate, not a treatment (seed 90417)
    if _BARE_TREATMENT.match(nxt) and not _VERB.search(nxt):
        return (
            True  # 建议实施手术救治，一定能…，靶向救治: the next clause is a parallel treatment (seed 90417)
        )
    if _HEDGED_NEXT.match(nxt) or _CAUTION.search(prev + clause):
        return True  # …，看一看症状是否缓解 / 副作用有水钠潴留，故宜同时服用…: the promise is hedged or a caution's
    if _FAILED.search(prev) or _FAILED.search(clause):  # 治疗效果不是很明显，保证三天之内… (audit seed 7302)
        return (
            True  # 如果药物不缓解，就得住院治疗: a promise on the fallback contradicts the failure before it
        )
    if len(clause) <= _LIST_ITEM_LEN + 2 and item(nxt) and item(prev):
        return True
    if item(nxt) and (any(ns <= d < ns + len(nxt) for d in drugs) or _DRUG_FORM.search(nxt.strip())):
        return True
    return bool(_GOES_AWAY.search(nxt) or _GOES_AWAY.search(clause))


# A next clause that goes on with a list: a short item joined by 和/及/与/或 (果胶铋和克拉霉素).
_LIST_GOES_ON = re.compile(r"[^，,。；;\s]{1,8}?(和|及|与|或|以及)")
# 应 as advice (应当, 应该, 应及时), not inside 反应/相应/适应/对应/效应/供应 (audit seed 2719: a promise after
# "…凋亡反应和治疗功效相关" in a research text)
_ADVICE = re.compile(r"建议|可以|可(?!能)|需要|(?<![反相适对效供响回])应|宜|请|坚持|配合|首选|选用|推荐")
_HISTORY = re.compile(r"吃了|用了|服了|打了|之前|以前|手术后|没转好|没有效果|无效|没效果|不见好")
_TREATMENT_CLAUSE = (
    "治疗",
    "用药",
    "服药",
    "服用",
    "口服",
    "注射",
    "手术",
    "疗程",
    "静滴",
    "输液",
    "吸入",
    "雾化",
)


CONSTRUCTORS: dict[ErrorType, Callable[[dict[str, Any], NegativeKnowledge, random.Random], Made]] = {
    ErrorType.wrong_diagnosis: wrong_diagnosis,
    ErrorType.wrong_drug: wrong_drug,
    ErrorType.wrong_dose: wrong_dose,
    ErrorType.contradicts_findings: contradicts_findings,
    ErrorType.missing_referral: missing_referral,
    ErrorType.overclaiming: overclaiming,
}


# ------------------------------------------------------------------------------------------ verification
def verify(et: ErrorType, reference: str, cand: Candidate) -> str | None:
    """None if the clinical facts changed exactly as the error type says, else the drop reason."""
    changes = entity_extractor().changes(reference, cand.output)
    kinds = {c.kind for c in changes}
    lost = {c.before.term for c in changes if c.before is not None and c.change == "lost"}
    added = {c.after.term for c in changes if c.after is not None and c.change == "added"}
    other = [c for c in changes if c.change not in ("lost", "added")]
    codes = sorted({c.code for c in changes})
    bad = f"fact_check:{','.join(codes) or 'no_change'}"
    if et in (ErrorType.wrong_diagnosis, ErrorType.wrong_drug, ErrorType.wrong_dose):
        kind = {ErrorType.wrong_diagnosis: "disease", ErrorType.wrong_drug: "drug"}.get(et, "number")
        if kinds == {kind} and len(lost) == 1 and len(added) == 1 and not other:
            return None
        if et == ErrorType.wrong_dose and cand.strategy in ("once_daily_thrice", "weekly_as_daily"):
            if kinds <= {"number", "frequency", "duration"} and len(changes) <= 2:
                return None
        return bad
    if et == ErrorType.contradicts_findings:
        if not changes:
            return None if cand.strategy == "flip" else bad  # the extractor reads no polarity words
        if cand.strategy == "misquote":
            ok = kinds == {"number"} and len(lost) == 1 and len(added) == 1 and not other
            return None if ok else bad
        facts = {(c.before or c.after).term for c in changes}
        return None if kinds <= {"symptom", "finding"} and len(facts) == 1 else bad
    if et == ErrorType.missing_referral:
        inside = all(
            (c.change == "lost" and c.before is not None and _within(c.before.span, reference, cand))
            or (
                c.change == "added"
                and c.kind in ("duration", "number", "frequency")
                and c.after is not None
                and c.after.surface in cand.after
            )
            for c in changes
        )
        return None if inside else bad
    if et == ErrorType.overclaiming:
        ok = all(c.change == "added" and c.kind in ("number", "duration", "frequency") for c in changes)
        return None if ok else bad
    return bad


def _within(span: tuple[int, int], reference: str, cand: Candidate) -> bool:
    return any(s <= span[0] and span[1] <= e for s, e in cand.removed)


# ------------------------------------------------------------------------------------------ selection
# A reference a negative must not be built from: its "correct answer" would teach the same fault (a promise a
# doctor never makes, an advert), or it has too little to be wrong about (audit seed 48317).
REFERENCE_MIN_CHARS = 8
_REF_PROMISE = re.compile(
    r"包治|药到病除|永不复发|百分之百(?:有效|治愈|能|可以|治好)|保证(?:治愈|治好|根治|痊愈|有效|不复发|能治|可以治|断根)|"
    r"(?<![不没])(?:无|没有)任何(?:副作用|不良反应)|一次(?:性)?根治|彻底断根"
)
_REF_ADVERT = re.compile(r"微信|QQ|qq|加我|电话咨询|点击|www\.|https?://")


def reference_unusable(text: str) -> str | None:
    """Why the answer cannot be the correct reference of a negative, or None: empty or a few words, a
    promise of its own (保证治愈, 包治), an advert."""
    body = re.sub(r"[\s\W_]", "", text)
    if len(body) < REFERENCE_MIN_CHARS:
        return "too_short"
    if len(set(body)) < 8:
        return "one_word"
    if (m := _REF_PROMISE.search(text)) and not negated(text, m.start()):
        return "reference_promises"
    if _REF_ADVERT.search(text):
        return "reference_advert"
    return None


def make_negative(
    row: dict[str, Any],
    et: ErrorType,
    seed: int = 0,
    kb: NegativeKnowledge | None = None,
    attempt: int = 0,
) -> Made:
    """One verified candidate of type `et` for `row`, or the reason there is none. A later `attempt` draws
    again (another of the row's rewrites, when the first one's pattern is full)."""
    kb = kb or load_negative_knowledge()
    if bad_ref := reference_unusable(row["output"]):
        return f"reference_unusable:{bad_ref}"
    rng = rng_for(seed, row["id"], f"{AUGMENTER}:{et.value}" + (f":{attempt}" if attempt else ""))
    made = CONSTRUCTORS[et](row, kb, rng)
    if isinstance(made, str):
        return made
    if made.output == row["output"] or not made.output.strip():
        return "unchanged"
    if bad := verify(et, row["output"], made):
        return bad
    # The same verifier the LLM negatives pass: it proves the answer wrong from the texts and the tables
    # alone, and its reason is the one shown.
    from augmenters.negative_verify import check_wrong

    proof = check_wrong(row, et, made.output, kb)
    if isinstance(proof, str):
        return f"not_wrong:{proof}"
    made.reason = proof.reason
    return made


def _cap(n: int) -> int:
    """Most negatives one pattern may make of a type of `n` (two when a type is too small for a share)."""
    return max(2, math.floor(PATTERN_SHARE * n))


def _share_keys(c: Candidate) -> list[str]:
    """What may make at most PATTERN_SHARE of a type: the rewrite pattern, and for a wrong drug also the drug put
    in (one substitute drug must not stand in a tenth of the wrong-drug negatives, whatever it replaced)."""
    sub = c.detail.get("substitute")
    return [c.pattern, f"substitute:{sub}"] if sub else [c.pattern]


def _balance(picked: list[tuple[dict[str, Any], Candidate]]) -> tuple[list, int]:
    """Trim the most common patterns until none is over PATTERN_SHARE of the type (see _cap)."""
    dropped = 0
    while True:
        cap = _cap(len(picked))
        seen: Counter[str] = Counter()
        keep = []
        for row, c in picked:
            keys = _share_keys(c)
            if all(seen[k] < cap for k in keys):
                seen.update(keys)
                keep.append((row, c))
        if len(keep) == len(picked):
            return keep, dropped
        dropped += len(picked) - len(keep)
        picked = keep


@dataclass
class _TypeRun:
    """One error type's candidates, made row by row in its draw order until it has `target` (or a bound
    that the type shares prove it can never keep more than) or the rows run out; resumable."""

    et: ErrorType
    draws: list[dict[str, Any]]
    target: int
    seed: int
    kb: NegativeKnowledge
    stats: Counter[str]
    pos: int = 0
    picked: list[tuple[dict[str, Any], Candidate]] = field(default_factory=list)
    per_pattern: Counter[str] = field(default_factory=Counter)

    @property
    def finished(self) -> bool:
        return self.pos >= len(self.draws) or len(self.picked) >= self.target

    def yield_rate(self) -> float:
        return len(self.picked) / self.pos if self.pos else 0.0

    def advance(self, until: int | None = None, most: float = math.inf) -> None:
        """Make candidates from the next rows, up to draw `until`, while fewer than min(target, most) are picked."""
        et, cap, stop = self.et, _cap(self.target), min(self.target, most)
        last = len(self.draws) if until is None else min(until, len(self.draws))
        while self.pos < last and len(self.picked) < stop:
            row = self.draws[self.pos]
            self.pos += 1
            made = make_negative(row, et, self.seed, self.kb)
            if isinstance(made, str):
                self.stats[f"negative_dropped:{et.value}:{made}"] += 1
                continue
            self.stats[f"negative_made:{et.value}"] += 1
            for attempt in range(1, PATTERN_RETRIES + 1):
                if all(self.per_pattern[k] < cap for k in _share_keys(made)):
                    break
                again = make_negative(row, et, self.seed, self.kb, attempt)  # another rewrite, if any
                made = again if isinstance(again, Candidate) else made
            full = [k for k in _share_keys(made) if self.per_pattern[k] >= cap]
            if full:
                cause = "substitute_cap" if full[0].startswith("substitute:") else "pattern_cap"
                self.stats[f"negative_dropped:{et.value}:{cause}"] += 1
                continue
            self.per_pattern.update(_share_keys(made))
            self.picked.append((row, made))


# draws every type makes first, to see which types are scarce in this data (they are completed first)
_PILOT_DRAWS = 64


def negative_rows(
    rows: list[dict[str, Any]],
    ratios: dict[ErrorType, float],
    lexicon: Lexicon | None = None,
    *,
    seed: int = 0,
    kb: NegativeKnowledge | None = None,
    stats: Counter[str] | None = None,
) -> list[dict[str, Any]]:
    """Negatives from the positive rows. Each type aims at `ratio` × positives (the rows whose draw falls
    under the ratio); rows where the type does not apply are replaced by the next rows in draw order, so
    the mix follows the ratios whenever the data allow. Patterns over 10 % of a type are trimmed.

    The scarcest types (by a pilot of the first draws) are made first; a type made later stops as soon as
    it has as many candidates as the type shares could ever let it keep given the others' counts
    (`_keep_bound`): the same negatives come out, without making the hundreds an abundant type
    (overclaiming) would lose to the type-share cap."""
    kb = kb or load_negative_knowledge()
    stats = stats if stats is not None else Counter()
    positives = list({r["id"]: r for r in rows if r["label"] == Label.positive.value}.values())
    runs: dict[ErrorType, _TypeRun] = {}
    for et in CONSTRUCTORS:
        ratio = ratios.get(et, 0.0)
        if ratio <= 0 or not positives:
            continue
        draws = sorted(
            (
                (rng_for(seed, r["id"], f"{AUGMENTER}:{et.value}:draw").random(), r["id"], r)
                for r in positives
            ),
            key=lambda t: (t[0], t[1]),
        )
        target = sum(1 for u, _, _ in draws if u < ratio)
        runs[et] = _TypeRun(et, [r for _, _, r in draws], target, seed, kb, stats)
        stats[f"negative_target:{et.value}"] += target
    for run in runs.values():
        run.advance(_PILOT_DRAWS)
    order = list(runs)
    for et in sorted(order, key=lambda e: (runs[e].yield_rate(), order.index(e))):
        others = {e: len(r.picked) if r.finished else r.target for e, r in runs.items() if e != et}
        runs[et].advance(most=_keep_bound(et, others, ratios))
    chosen = {et: run.picked for et, run in runs.items()}
    # Type shares and pattern shares are trimmed in turn until both hold (trimming patterns shrinks the
    # total that the type shares are measured against).
    for _ in range(50):
        limits = _type_limits({et: len(p) for et, p in chosen.items()}, ratios)
        changed = False
        for et, picked in chosen.items():
            if len(picked) > limits[et]:
                stats[f"negative_dropped:{et.value}:type_share_cap"] += len(picked) - limits[et]
                picked, changed = picked[: limits[et]], True
            picked, trimmed = _balance(picked)
            if trimmed:
                stats[f"negative_dropped:{et.value}:pattern_cap"] += trimmed
                changed = True
            chosen[et] = picked
        if not changed:
            break
    out = []
    for et, picked in chosen.items():
        for row, c in picked:
            out.append(_negative_row(row, et, c))
            stats[f"negative_{et.value}"] += 1
            stats[f"negative_pattern:{et.value}:{c.pattern}"] += 1
    return out


def _kept_total(counts: dict[ErrorType, float], ratios: dict[ErrorType, float]) -> float:
    """The total the type shares allow: the largest k with k = sum of min(n, TYPE_EXCESS x share x k) over
    the types, solved exactly one linear piece at a time (a count may be inf: a type not yet made)."""
    total_ratio = sum(ratios.get(et, 0.0) for et in counts) or 1.0
    c = {et: TYPE_EXCESS * ratios.get(et, 0.0) / total_ratio for et in counts}
    k = sum(counts.values())
    for _ in range(len(counts) + 1):
        full = [et for et, n in counts.items() if not math.isinf(n) and c[et] * k >= n]  # kept whole
        s, slope = sum(counts[et] for et in full), sum(c[et] for et in counts if et not in full)
        if slope >= 1.0:
            return k  # every total up to k holds (none left to share: the loop cannot go lower)
        nk = s / (1.0 - slope)
        if nk >= k:
            return k
        k = nk
    return k


def _type_limits(counts: dict[ErrorType, int], ratios: dict[ErrorType, float]) -> dict[ErrorType, int]:
    """Most negatives each type may keep: at most TYPE_EXCESS × its configured share of the total kept."""
    total_ratio = sum(ratios.get(et, 0.0) for et in counts) or 1.0
    k = _kept_total(dict(counts), ratios)
    return {
        et: min(n, max(1, math.floor(TYPE_EXCESS * ratios.get(et, 0.0) / total_ratio * k + 1e-9)))
        for et, n in counts.items()
    }


def _keep_bound(et: ErrorType, others: dict[ErrorType, int], ratios: dict[ErrorType, float]) -> float:
    """More candidates of `et` than this can never be kept, whatever their number: its limit with its own
    count unbounded and every other type at its count (or its target, an upper bound, if not yet made).
    Two over it, so that its count never sits exactly at its share (the limits then do not depend on
    how many more it would have made)."""
    k = _kept_total({**others, et: math.inf}, ratios)
    if math.isinf(k):
        return math.inf
    total_ratio = sum(ratios.get(e, 0.0) for e in (*others, et)) or 1.0
    return math.floor(TYPE_EXCESS * ratios.get(et, 0.0) / total_ratio * k) + 2


def _negative_row(row: dict[str, Any], et: ErrorType, c: Candidate) -> dict[str, Any]:
    change = {"before": c.before, "after": c.after, "start": c.start}
    detail = {"error_type": et.value, "strategy": c.strategy, "pattern": c.pattern, "change": change,
              "reason": c.reason, **c.detail}  # fmt: skip
    return derive_row(
        row,
        AUGMENTER,
        detail,
        output=c.output,
        label=Label.negative.value,
        error_type=et.value,
        verdict=f"{NEGATIVE_VERDICT}：{c.reason}",
        reference_output=row["output"],
    )


def negative_summary(stats: Counter[str] | dict[str, int]) -> dict[str, dict[str, Any]]:
    """Per error type: target, made, kept, patterns (count each, the largest share) and drop reasons."""
    out: dict[str, dict[str, Any]] = {}
    for key, n in stats.items():
        if key.startswith("negative_made:"):
            out.setdefault(key.split(":", 1)[1], {})["made"] = n
        elif key.startswith("negative_pattern:"):
            _, et, pattern = key.split(":", 2)
            out.setdefault(et, {}).setdefault("patterns", {})[pattern] = n
        elif key.startswith("negative_dropped:"):
            _, et, reason = key.split(":", 2)
            out.setdefault(et, {}).setdefault("dropped", {})[reason] = n
        elif key.startswith("negative_target:"):
            out.setdefault(key.split(":", 1)[1], {})["target"] = n
        elif key.startswith("negative_") and key[len("negative_") :] in {e.value for e in ErrorType}:
            out.setdefault(key[len("negative_") :], {})["kept"] = n
    for v in out.values():
        pats = v.get("patterns", {})
        v["max_pattern_share"] = round(max(pats.values()) / sum(pats.values()), 3) if pats else 0.0
    return out


SHORTFALL_TOLERANCE = 0.8  # a type whose kept share is under this fraction of its target share falls short


def negative_report(
    stats: Counter[str] | dict[str, int], ratios: dict[ErrorType, float] | dict[str, float]
) -> list[str]:
    """Lines for the job summary: per error type its target (count and share of the configured ratios), how
    many verified candidates were made, how many were kept, the main drop reasons and the top patterns; then a
    SHORTFALL line for each type under SHORTFALL_TOLERANCE of its target share and a PATTERN SHARE line for
    each pattern over its cap (PATTERN_SHARE of the type, at least 2: counts merged from separately capped
    batches can pass it); a type too small for the 10 % share says so on its own line."""
    summary = negative_summary(stats)
    ratio = {ErrorType(k).value: float(v) for k, v in ratios.items() if float(v) > 0}
    if not ratio:
        return []
    total_ratio = sum(ratio.values())
    kept_total = sum(summary.get(et, {}).get("kept", 0) for et in ratio)
    lines = [
        f"negatives: {kept_total} kept of {sum(summary.get(et, {}).get('target', 0) for et in ratio)} targeted"
    ]
    alerts = []
    for et in ratio:
        v = summary.get(et, {})
        kept, target, share = v.get("kept", 0), v.get("target", 0), ratio[et] / total_ratio
        kept_share = kept / kept_total if kept_total else 0.0
        drops = sorted(v.get("dropped", {}).items(), key=lambda kv: (-kv[1], kv[0]))
        pats = sorted(v.get("patterns", {}).items(), key=lambda kv: (-kv[1], kv[0]))
        top = pats[0][1] / kept if pats and kept else 0.0
        small = (
            f" (cap {_cap(kept)} a pattern: too few for {PATTERN_SHARE:.0%})" if top > PATTERN_SHARE else ""
        )
        lines.append(
            f"  {et}: target {target} (share {share:.1%}), made {v.get('made', 0)}, kept {kept} "
            f"(share {kept_share:.1%}); drops: {', '.join(f'{r}={n}' for r, n in drops[:4]) or '-'}; "
            f"top patterns: {', '.join(f'{p}={n}' for p, n in pats[:3]) or '-'}; max pattern share {top:.0%}{small}"
        )
        if kept_share < SHORTFALL_TOLERANCE * share:
            why = drops[0][0] if drops else "no candidates"
            alerts.append(
                f"SHORTFALL {et}: kept {kept} = {kept_share:.1%} of the negatives, target share {share:.1%} "
                f"(main drop reason: {why})"
            )
        for p, n in pats:
            if kept and n > _cap(kept):  # over the cap: counts merged from batches, each capped on its own
                alerts.append(
                    f"PATTERN SHARE {et}: {p} makes {n} of {kept} ({n / kept:.0%}), over the cap of {_cap(kept)} "
                    f"({PATTERN_SHARE:.0%} of the type, at least 2)"
                )
    return lines + alerts
