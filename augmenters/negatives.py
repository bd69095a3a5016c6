"""Typed negative samples by rule: a plausible wrong answer that differs from the correct one in exactly
the intended way, labelled negative with its error type, the correct answer kept as reference_output.

Each constructor returns the wrong output and a detail of what was injected, or None when the answer
offers nothing to inject that error into (counted as not applicable, never forced).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import ahocorasick
import yaml

from augmenters.derive import derive_row, rng_for
from augmenters.guards import DRUGS_FILE, drug_automaton, negated
from augmenters.lexicon import Lexicon
from medaug.schema import ErrorType, Label

NEGATIVES_FILE = Path(__file__).parent / "data" / "negatives.yaml"
AUGMENTER = "rule_negative"
_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;\n]*")
# Drug amounts only: a changed temperature, blood pressure or lab value is a different error type.
DRUG_DOSE = re.compile(
    r"\d+(?:\.\d+)?\s*(?:mg|g|μg|ug|mcg|ml|mL|IU|U|毫克|微克|克|毫升|单位|国际单位|片|粒|支|袋|滴|喷)"
    r"(?:\s*/\s*(?:kg|d|次|天|日))?(?![A-Za-z/])"
)
_DOSE_PARTS = re.compile(r"(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[^\d\s].*)")
UNIT_SWAPS = {
    "mg": "g",
    "g": "mg",
    "μg": "mg",
    "ug": "mg",
    "mcg": "mg",
    "毫克": "克",
    "克": "毫克",
    "微克": "毫克",
    "ml": "L",
    "mL": "L",
    "毫升": "升",
    "IU": "mg",
    "单位": "毫克",
}
SCALES = (10.0, 0.1, 5.0, 0.2, 3.0)


@dataclass
class Drug:
    name: str
    cls: str
    area: str
    contraindicated: frozenset[str]


@dataclass
class NegativeKnowledge:
    confusable: dict[str, list[list[str]]]
    referral_cues: list[str]
    overclaims: list[str]
    opposites: dict[str, str]
    contradiction_templates: list[str]
    population_cues: dict[str, list[str]]
    drugs: dict[str, Drug]
    _autos: dict[str, ahocorasick.Automaton] = field(default_factory=dict)
    _diseases: dict[str | None, dict[str, set[str]]] = field(default_factory=dict)

    def automaton(self, name: str, words: list[str]) -> ahocorasick.Automaton:
        if name not in self._autos:
            a = ahocorasick.Automaton()
            for w in words:
                a.add_word(w, w)
            a.make_automaton()
            self._autos[name] = a
        return self._autos[name]

    def diseases(self, area: str | None = None) -> dict[str, set[str]]:
        """Disease → the diseases it is confusable with, from the groups of `area` (all areas if None)."""
        if area in self._diseases:
            return self._diseases[area]
        out: dict[str, set[str]] = {}
        for name, groups in self.confusable.items():
            if area is not None and name != area:
                continue
            for g in groups:
                for d in g:
                    out.setdefault(d, set()).update(x for x in g if x != d)
        self._diseases[area] = out
        return out

    def populations(self, text: str) -> set[str]:
        return {p for p, cues in self.population_cues.items() if any(c in text for c in cues)}


@cache
def load_negative_knowledge(path: Path = NEGATIVES_FILE) -> NegativeKnowledge:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    drugs = {}
    for no, line in enumerate(DRUGS_FILE.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#") or line.startswith("name\t"):
            continue
        cols = line.split("\t")
        if len(cols) != 4:
            raise ValueError(f"{DRUGS_FILE}:{no}: expected name, class, area, contraindicated")
        drugs[cols[0]] = Drug(cols[0], cols[1], cols[2], frozenset(x for x in cols[3].split("|") if x))
    return NegativeKnowledge(
        confusable=raw["confusable"],
        referral_cues=raw["referral_cues"],
        overclaims=raw["overclaims"],
        opposites={a: b for a, b in raw["finding_opposites"]} | {b: a for a, b in raw["finding_opposites"]},
        contradiction_templates=raw["contradiction_templates"],
        population_cues=raw["population_cues"],
        drugs=drugs,
    )


Injected = tuple[str, dict[str, Any]] | None


def _matches(auto: ahocorasick.Automaton, text: str) -> list[tuple[int, int, str]]:
    return [(end - len(w) + 1, end + 1, w) for end, w in auto.iter_long(text)]


def _replace_all(text: str, spans: list[tuple[int, int, str]], word: str, new: str) -> str:
    out, pos = [], 0
    for s, e, w in spans:
        if w == word:
            out += [text[pos:s], new]
            pos = e
    return "".join(out) + text[pos:]


def wrong_diagnosis(
    row: dict[str, Any], kb: NegativeKnowledge, rng: random.Random, lexicon: Lexicon
) -> Injected:
    conf = kb.diseases()
    spans = _matches(kb.automaton("diseases", list(conf)), row["output"])
    named = sorted({w for _, _, w in spans})
    if not named:
        return None
    disease = rng.choice(named)
    in_area = kb.diseases(row["area"]).get(disease, set())
    options = sorted((in_area or conf[disease]) - set(named))
    if not options:
        return None
    other = rng.choice(options)
    return _replace_all(row["output"], spans, disease, other), {"from": disease, "to": other}


def wrong_drug(row: dict[str, Any], kb: NegativeKnowledge, rng: random.Random, lexicon: Lexicon) -> Injected:
    spans = _matches(drug_automaton(), row["output"])
    named = sorted({w for _, _, w in spans if w in kb.drugs})
    if not named:
        return None
    drug = kb.drugs[rng.choice(named)]
    flags = kb.populations(f"{row['instruction']}\n{row['input']}")
    contra = sorted(d.name for d in kb.drugs.values() if d.contraindicated & flags and d.name not in named)
    if contra:
        other = kb.drugs[rng.choice(contra)]
        reason = "contraindicated:" + ",".join(sorted(other.contraindicated & flags))
    else:
        pool = [d for d in kb.drugs.values() if d.cls != drug.cls and d.name not in named]
        same_area = sorted(d.name for d in pool if d.area == drug.area)
        other = kb.drugs[rng.choice(same_area or sorted(d.name for d in pool))]
        reason = f"wrong_class:{drug.cls}->{other.cls}"
    out = _replace_all(row["output"], spans, drug.name, other.name)
    return out, {"from": drug.name, "to": other.name, "reason": reason}


def _fmt(x: float) -> str:
    return str(int(round(x))) if abs(x - round(x)) < 1e-9 else f"{x:.3f}".rstrip("0").rstrip(".")


def wrong_dose(row: dict[str, Any], kb: NegativeKnowledge, rng: random.Random, lexicon: Lexicon) -> Injected:
    text = row["output"]
    doses = [m for m in DRUG_DOSE.finditer(text) if _DOSE_PARTS.fullmatch(m.group())]
    if not doses:
        return None
    m = rng.choice(doses)
    parts = _DOSE_PARTS.fullmatch(m.group())
    assert parts is not None
    num, unit = parts.group("num"), parts.group("unit")
    unit_head = unit.split("/")[0].strip()
    if unit_head in UNIT_SWAPS and rng.random() < 0.4:
        new = num + unit.replace(unit_head, UNIT_SWAPS[unit_head], 1)
        how = f"unit {unit_head}->{UNIT_SWAPS[unit_head]}"
    else:
        factor = rng.choice(SCALES)
        new = _fmt(float(num) * factor) + unit
        how = f"scale x{_fmt(factor)}"
    return text[: m.start()] + new + text[m.end() :], {
        "from": m.group(),
        "to": new,
        "how": how,
        "start": m.start(),
    }


def contradicts_findings(
    row: dict[str, Any], kb: NegativeKnowledge, rng: random.Random, lexicon: Lexicon
) -> Injected:
    question = f"{row['instruction']}\n{row['input']}"
    text = row["output"]
    auto = kb.automaton("findings", list(kb.opposites))
    given = {w for _, _, w in _matches(auto, question)}
    flips = [(s, e, w) for s, e, w in _matches(auto, text) if w in given]
    if flips:
        s, e, w = rng.choice(flips)
        new = kb.opposites[w]
        return text[:s] + new + text[e:], {"strategy": "flip", "from": w, "to": new, "start": s}
    terms = lexicon.automaton("to_colloquial")
    stated = (
        sorted(
            {k for end, (k, c) in terms.iter_long(question) if c and not negated(question, end - len(k) + 1)}
        )
        if terms is not None
        else []
    )
    if not stated:
        return None
    finding = rng.choice(stated)
    sentence = rng.choice(kb.contradiction_templates).format(finding=finding)
    return sentence + text, {"strategy": "deny", "finding": finding, "inserted": sentence}


def missing_referral(
    row: dict[str, Any], kb: NegativeKnowledge, rng: random.Random, lexicon: Lexicon
) -> Injected:
    sentences = _SENTENCE.findall(row["output"])
    auto = kb.automaton("referral", kb.referral_cues)
    removed = [s for s in sentences if any(True for _ in auto.iter(s))]
    if not removed or len(removed) == len(sentences):
        return None
    kept = "".join(s for s in sentences if s not in removed)
    return kept, {"removed": removed}


def overclaiming(
    row: dict[str, Any], kb: NegativeKnowledge, rng: random.Random, lexicon: Lexicon
) -> Injected:
    text = row["output"].rstrip()
    claim = rng.choice(kb.overclaims)
    sep = "" if text.endswith(("。", "！", "？", "!", "?", ".")) else "。"
    return text + sep + claim, {"inserted": claim, "start": len(text) + len(sep)}


CONSTRUCTORS: dict[
    ErrorType, Callable[[dict[str, Any], NegativeKnowledge, random.Random, Lexicon], Injected]
] = {
    ErrorType.wrong_diagnosis: wrong_diagnosis,
    ErrorType.wrong_drug: wrong_drug,
    ErrorType.wrong_dose: wrong_dose,
    ErrorType.contradicts_findings: contradicts_findings,
    ErrorType.missing_referral: missing_referral,
    ErrorType.overclaiming: overclaiming,
}


def negative_rows(
    rows: list[dict[str, Any]],
    ratios: dict[ErrorType, float],
    lexicon: Lexicon,
    *,
    seed: int = 0,
    kb: NegativeKnowledge | None = None,
    stats: Counter[str] | None = None,
) -> list[dict[str, Any]]:
    """Negatives from the positive rows: for each error type, a row is drawn with probability `ratio`."""
    kb = kb or load_negative_knowledge()
    stats = stats if stats is not None else Counter()
    out = []
    for row in rows:
        if row["label"] != Label.positive.value:
            continue
        for et in CONSTRUCTORS:
            ratio = ratios.get(et, 0.0)
            if ratio <= 0:
                continue
            rng = rng_for(seed, row["id"], f"{AUGMENTER}:{et.value}")
            if rng.random() >= ratio:
                continue
            made = CONSTRUCTORS[et](row, kb, rng, lexicon)
            if made is None:
                stats[f"negative_not_applicable_{et.value}"] += 1
                continue
            wrong, detail = made
            if wrong == row["output"] or not wrong.strip():
                stats[f"negative_not_applicable_{et.value}"] += 1
                continue
            out.append(
                derive_row(
                    row,
                    AUGMENTER,
                    {"error_type": et.value, **detail},
                    output=wrong,
                    label=Label.negative.value,
                    error_type=et.value,
                    reference_output=row["output"],
                )
            )
            stats[f"negative_{et.value}"] += 1
    return out
