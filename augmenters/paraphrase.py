"""Lexicon paraphrasing: longest-match Aho-Corasick replacement of colloquial ↔ clinical wordings.

Every match is passed through the guards first; what is replaced is recorded exactly (field, offset,
from, to) in the derived sample's provenance, and what the guards held back is counted by kind.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from augmenters.derive import derive_row, rng_for
from augmenters.guards import check_substitution, protected_spans
from augmenters.lexicon import Lexicon
from augmenters.temperature import fever_grade
from medaug.schema import rows_to_table

AUGMENTER = "lexicon_paraphrase"
PARAPHRASE_FIELDS = ("instruction", "input", "output")
# Particles and degree words around a bare mention (有点拉肚子了 → 拉肚子), stripped for whole-line lookup.
_MENTION_EDGES = (
    "有点儿",
    "有点",
    "有些",
    "一直",
    "老是",
    "总是",
    "经常",
    "比较",
    "特别",
    "非常",
    "还是",
    "感觉",
    "觉得",
    "很",
    "也",
    "都",
    "还",
    "就",
    "了",
    "的",
    "啊",
    "呢",
    "吧",
    "呀",
)


@dataclass(frozen=True)
class Match:
    start: int
    end: int
    key: str
    candidates: tuple[str, ...]


def find_matches(text: str, lexicon: Lexicon, direction: str, skipped: Counter[str]) -> list[Match]:
    """Longest, non-overlapping matches that at least one candidate may safely replace."""
    auto = lexicon.automaton(direction)
    if auto is None or not text:
        return []
    spans = None
    out: list[Match] = []
    for end, (key, typed) in auto.iter_long(text):
        cands = [c.target for c in typed if c.relation == "exact" and not c.context]
        if not cands:
            continue
        start = end - len(key) + 1
        if spans is None:
            spans = protected_spans(text)
        ok = []
        reason = None
        for c in cands:
            why = check_substitution(text, start, end + 1, c, spans)
            if why is None:
                ok.append(c)
            else:
                reason = reason or why
        if ok:
            out.append(Match(start, end + 1, key, tuple(ok)))
        elif reason:
            skipped[reason] += 1
    return out


def apply(text: str, matches: list[Match], choices: list[str | None]) -> str:
    parts, pos = [], 0
    for m, c in zip(matches, choices, strict=True):
        if c is None:
            continue
        parts += [text[pos : m.start], c]
        pos = m.end
    parts.append(text[pos:])
    return "".join(parts)


def normalize_line(
    line: str, lexicon: Lexicon, direction: str = "to_clinical", skipped: Counter[str] | None = None
) -> str:
    """A line with every safe match mapped to its default term; a whole-line (or whole-clause) mention maps
    as a unit through the lexicon's normalisation pairs."""
    skipped = skipped if skipped is not None else Counter()
    whole = _whole_mention(line, lexicon, direction)
    if whole is not None:
        return whole
    pieces = re.split(r"([，,。；;！？!?])", line)
    if len(pieces) > 1:
        return "".join(
            p if i % 2 else normalize_line(p, lexicon, direction, skipped) for i, p in enumerate(pieces)
        )
    matches = find_matches(line, lexicon, direction, skipped)
    return apply(line, matches, [m.candidates[0] for m in matches])


def _whole_mention(line: str, lexicon: Lexicon, direction: str) -> str | None:
    stripped = line.strip()
    whole = lexicon.lookup(stripped, direction)
    if whole is None and stripped:
        core = _strip_edges(stripped)
        whole = lexicon.lookup(core, direction) if core != stripped else None
        if whole is None and direction == "to_clinical":
            whole = fever_grade(stripped)
    return whole


def _strip_edges(s: str) -> str:
    changed = True
    while changed and s:
        changed = False
        for w in _MENTION_EDGES:
            if s.startswith(w) and len(s) > len(w):
                s, changed = s[len(w) :], True
            if s.endswith(w) and len(s) > len(w):
                s, changed = s[: -len(w)], True
    return s


def variants_of(
    row: dict[str, Any],
    lexicon: Lexicon,
    direction: str,
    n: int,
    rng: random.Random,
    fields: tuple[str, ...],
    skipped: Counter[str],
) -> list[tuple[dict[str, str], list[dict[str, Any]]]]:
    """Up to `n` distinct rewrites of the row's fields, each with its exact substitutions."""
    found = {f: find_matches(row[f] or "", lexicon, direction, skipped) for f in fields}
    slots = [(f, m) for f in fields for m in found[f]]
    if not slots:
        return []
    seen: set[tuple[str, ...]] = set()
    out = []
    for _ in range(n * 3):
        if len(out) == n:
            break
        picks: list[str | None] = [rng.choice(m.candidates) if rng.random() < 0.8 else None for _, m in slots]
        if all(p is None for p in picks):
            j = rng.randrange(len(slots))
            picks[j] = rng.choice(slots[j][1].candidates)
        sig = tuple(p or "" for p in picks)
        if sig in seen:
            continue
        seen.add(sig)
        texts, subs, i = {}, [], 0
        for f in fields:
            ms = found[f]
            chosen = picks[i : i + len(ms)]
            i += len(ms)
            if any(c is not None for c in chosen):
                texts[f] = apply(row[f], ms, chosen)
                subs += [
                    {"field": f, "start": m.start, "from": m.key, "to": c}
                    for m, c in zip(ms, chosen, strict=True)
                    if c is not None
                ]
        out.append((texts, subs))
    return out


def paraphrase_rows(
    rows: list[dict[str, Any]],
    lexicon: Lexicon,
    *,
    variants: int = 2,
    seed: int = 0,
    direction: str = "both",
    fields: tuple[str, ...] = PARAPHRASE_FIELDS,
    stats: Counter[str] | None = None,
) -> list[dict[str, Any]]:
    """Derived rows (parents not included). `stats` receives variants made and guard skips by kind."""
    stats = stats if stats is not None else Counter()
    out = []
    for row in rows:
        skipped: Counter[str] = Counter()
        rng = rng_for(seed, row["id"], AUGMENTER)
        for texts, subs in variants_of(row, lexicon, direction, variants, rng, fields, skipped):
            detail = {"direction": direction, "substitutions": subs}
            out.append(derive_row(row, AUGMENTER, detail, **texts))
        for k, v in skipped.items():
            stats[f"paraphrase_skipped_{k}"] += v
    stats["paraphrase_variants"] += len(out)
    return out


def paraphrase_table(table: pa.Table, lexicon: Lexicon, **kwargs: Any) -> pa.Table:
    return rows_to_table(paraphrase_rows(table.to_pylist(), lexicon, **kwargs))
