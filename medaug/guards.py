"""What a wording change must never touch: negation polarity, laterality, numbers, doses, units,
durations, drug names and ICD codes. A substitution that would break one is skipped and counted by kind,
so a job's summary shows how much the guards held back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import ahocorasick

DRUGS_FILE = Path(__file__).parent / "data" / "drugs.tsv"

NEGATION_CUES = ("没有", "否认", "未见", "未闻及", "并非", "无", "没", "不", "未", "非", "别", "勿")
# Negation reaches forward until punctuation or a contrast word ends its scope.
SCOPE_BREAKS = ("，", "。", "；", "！", "？", ",", ".", ";", "!", "?", "\n", "但", "却", "而", "然而", "、但")
NEGATION_WINDOW = 10
LATERALITY = ("左", "右", "双侧", "两侧", "单侧", "对侧", "同侧", "双")
_LATERAL_CHARS = re.compile("[左右双两单对同]")

_CN_NUM = "零〇一二两三四五六七八九十百千万半"
_UNITS = (
    r"mg|g|kg|μg|ug|mcg|ml|mL|L|IU|U|mmol/L|mmol|μmol/L|mmHg|kPa|bpm|cm|mm|%|℃|°C|"
    r"毫克|微克|克|千克|公斤|毫升|升|单位|国际单位|片|粒|支|袋|滴|喷|揿|贴|次/分|次|度|毫米汞柱|厘米|毫米"
)
_DURATION = r"天|日|周|星期|个月|月|年|小时|分钟|秒"
PROTECTED_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("icd_code", re.compile(r"(?<![A-Za-z])[A-Z]\d{2}(?:\.[0-9A-Za-z]{1,4})?(?:[x+*/][0-9A-Za-z*]{1,4})?")),
    (
        "dose",
        re.compile(rf"\d+(?:\.\d+)?\s*(?:{_UNITS})(?:\s*/\s*(?:d|次|天|日|kg))?|[{_CN_NUM}]+(?:{_UNITS})"),
    ),
    ("duration", re.compile(rf"(?:\d+(?:\.\d+)?|[{_CN_NUM}]+)\s*(?:多)?(?:{_DURATION})(?:余|多|左右)?")),
    ("number", re.compile(rf"\d+(?:[.:/]\d+)*|[{_CN_NUM}]{{2,}}")),
)


class ContextRuleError(ValueError):
    """A context rule that cannot be parsed."""


@dataclass(frozen=True)
class ContextRule:
    """When a non-exact mapping may rewrite text: the sample's area is one of `areas` (any if empty), a
    word of `near` occurs in the same sentence (any if empty) and no word of `not_near` does."""

    areas: tuple[str, ...] = ()
    near: tuple[str, ...] = ()
    not_near: tuple[str, ...] = ()

    def holds(self, text: str, start: int, end: int, area: str | None) -> bool:
        if self.areas and area not in self.areas:
            return False
        left = max((text.rfind(c, 0, start) for c in "。！？!?\n；;"), default=-1) + 1
        rights = [i for i in (text.find(c, end) for c in "。！？!?\n；;") if i >= 0]
        sentence = text[left : min(rights) if rights else len(text)]
        if self.near and not any(w in sentence for w in self.near):
            return False
        return not any(w in sentence for w in self.not_near)


@lru_cache(maxsize=1024)
def parse_context(spec: str) -> ContextRule:
    """`area=cardiovascular|general;near=压|紧;not_near=刺` (every part optional, `;`-separated)."""
    parts: dict[str, tuple[str, ...]] = {}
    for raw in spec.split(";"):
        if not raw.strip():
            continue
        key, sep, val = raw.partition("=")
        key = key.strip()
        if not sep or key not in ("area", "near", "not_near"):
            raise ContextRuleError(f"{raw!r}: expected area=..., near=... or not_near=...")
        words = tuple(w.strip() for w in val.split("|") if w.strip())
        if not words:
            raise ContextRuleError(f"{raw!r}: no values")
        parts[key] = words
    if not parts:
        raise ContextRuleError("empty rule")
    return ContextRule(parts.get("area", ()), parts.get("near", ()), parts.get("not_near", ()))


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str


@cache
def drug_automaton() -> ahocorasick.Automaton:
    a = ahocorasick.Automaton()
    for line in DRUGS_FILE.read_text(encoding="utf-8").splitlines()[1:]:
        if line and not line.startswith("#") and not line.startswith("name\t"):
            name = line.split("\t", 1)[0]
            a.add_word(name, name)
    a.make_automaton()
    return a


def protected_spans(text: str) -> list[Span]:
    """Numbers, doses, units, durations, ICD codes and drug names in `text`."""
    spans = [Span(m.start(), m.end(), kind) for kind, pat in PROTECTED_PATTERNS for m in pat.finditer(text)]
    for end, name in drug_automaton().iter_long(text):
        spans.append(Span(end - len(name) + 1, end + 1, "drug"))
    return spans


def negated(text: str, start: int) -> bool:
    """Whether a negation cue governs the mention starting at `start`."""
    window = text[max(0, start - NEGATION_WINDOW) : start]
    cut = max((window.rfind(b) + len(b) for b in SCOPE_BREAKS if b in window), default=0)
    scope = window[cut:]
    return any(c in scope for c in NEGATION_CUES)


def _laterality(s: str) -> list[str]:
    found = []
    rest = s
    for token in LATERALITY:
        n = rest.count(token)
        if n:
            found += [token] * n
            rest = rest.replace(token, "")
    return sorted(found)


_HAS_QUANTITY = re.compile(rf"[\d{_CN_NUM}]")
# digits that are not a duration or a count of times (头疼3天 is fine; 血小板低30 is a value)
_BARE_VALUE = re.compile(rf"\d+(?:\.\d+)?(?!\d|\.\d|\s*(?:{_DURATION}|次|遍|回))")


@lru_cache(maxsize=65536)
def _quantities(s: str) -> list[str]:
    if not _HAS_QUANTITY.search(s):
        return []
    return sorted(
        m.group() for kind, pat in PROTECTED_PATTERNS if kind != "icd_code" for m in pat.finditer(s)
    )


def has_negation(s: str) -> bool:
    return any(c in s for c in NEGATION_CUES)


def check_substitution(text: str, start: int, end: int, target: str, spans: list[Span]) -> str | None:
    """None if replacing text[start:end] by `target` is safe, else the guard that forbids it."""
    source = text[start:end]
    if _BARE_VALUE.match(text, end):
        # A value right after the wording belongs to it (血小板低30: low, at 30): 血小板减少30 reads as a change.
        return "number_dose_duration"
    for sp in spans:
        if sp.start < end and start < sp.end:
            return sp.kind if sp.kind in ("drug", "icd_code") else "number_dose_duration"
    if _quantities(source) != _quantities(target):
        return "number_dose_duration"
    if (_LATERAL_CHARS.search(source) or _LATERAL_CHARS.search(target)) and _laterality(
        source
    ) != _laterality(target):
        return "laterality"
    if any(b in target for b in SCOPE_BREAKS):
        return "negation"
    if (has_negation(source) or has_negation(target)) and negated(text, start):
        return "negation"
    if names_drug(target):
        return "drug"
    return None


def check_candidate(lexicon, key: str, cand) -> str | None:
    """None if the mapping itself may be used: same kind on both sides (a symptom never becomes a
    diagnosis or back), and a diagnosis is never made wider or narrower (softened or hardened)."""
    for wording in (key, cand.target):
        kind = lexicon.kinds.get(wording)
        if kind is not None and kind != cand.kind:
            return "kind_change"
    if cand.kind == "disease" and cand.relation != "exact":
        return "diagnosis_specificity"
    return None


@lru_cache(maxsize=65536)
def names_drug(text: str) -> bool:
    return any(True for _ in drug_automaton().iter(text))
