"""Colloquial ↔ clinical lexicons: the entry format, loaders for ours and for real external ones, and the
Aho-Corasick automata that paraphrasing and term normalisation run on.

Our format (TSV, `#` comments allowed; or YAML, a list of mappings with the same keys):
    term<TAB>variants<TAB>direction<TAB>area<TAB>source
    胸痛<TAB>胸口疼|心口疼<TAB>both<TAB>cardiovascular<TAB>medaug-core
term is the clinical wording, variants the colloquial ones (`|`-separated); direction says which way the
entry may be used (both, to_clinical only, to_colloquial only); area is a medaug Area.

Several external formats are accepted so that a user can point the config at the real resources
(IMCS-21 pairs, DXY normalised symptoms, CHIP-CDN, ICD-10 names) without converting them first.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import ahocorasick
import yaml

from medaug.schema import Area

Direction = Literal["both", "to_clinical", "to_colloquial"]
DIRECTIONS: tuple[str, ...] = ("both", "to_clinical", "to_colloquial")
CORE_LEXICON = Path(__file__).parent / "data" / "core_lexicon.tsv"
TSV_HEADER = ["term", "variants", "direction", "area", "source"]
# In-text matching ignores one-character keys (烧, 哭, 肿): they hit inside unrelated words; whole-line
# normalisation still uses them.
MIN_MATCH_LEN = 2


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class LexiconEntry:
    term: str  # the clinical (standard) term
    variants: tuple[str, ...]  # colloquial wordings
    direction: str = "both"
    area: str = Area.general.value
    source: str = "medaug-core"


def _entry(path: Path, line: int, term: str, variants: Iterable[str], direction: str, area: str, source: str):
    term = term.strip()
    if not term:
        raise LexiconError(f"{path}:{line}: field 'term' is empty")
    if direction not in DIRECTIONS:
        raise LexiconError(f"{path}:{line}: field 'direction' is {direction!r}, expected one of {DIRECTIONS}")
    if area not in Area.__members__:
        raise LexiconError(
            f"{path}:{line}: field 'area' is {area!r}, expected one of {list(Area.__members__)}"
        )
    vs = tuple(dict.fromkeys(v.strip() for v in variants if v.strip() and v.strip() != term))
    return LexiconEntry(term, vs, direction, area, source or path.name)


def _read_medaug_tsv(path: Path, lines: list[str]) -> list[LexiconEntry]:
    out: list[LexiconEntry] = []
    header_seen = False
    for no, raw in enumerate(lines, 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        cols = raw.rstrip("\n\r").split("\t")
        if not header_seen:
            header_seen = True
            if cols[: len(TSV_HEADER)] == TSV_HEADER:
                continue
        if len(cols) < 2:
            raise LexiconError(f"{path}:{no}: expected columns {TSV_HEADER}, got {len(cols)} column(s)")
        cols += [""] * (5 - len(cols))
        term, variants, direction, area, source = cols[:5]
        out.append(
            _entry(path, no, term, variants.split("|"), direction or "both", area or "general", source)
        )
    return out


def _pair_rows(path: Path, lines: list[str], *, skip_header: bool) -> list[tuple[int, str, str]]:
    out = []
    for no, raw in enumerate(lines, 1):
        if (skip_header and no == 1) or not raw.strip():
            continue
        cols = raw.rstrip("\n\r").split("\t")
        if len(cols) != 2 or not cols[0].strip() or not cols[1].strip():
            raise LexiconError(f"{path}:{no}: expected `colloquial<TAB>clinical`, got {raw.strip()[:60]!r}")
        out.append((no, cols[0].strip(), cols[1].strip()))
    return out


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """(colloquial, clinical) rows of an IMCS-21 style pair file (header `原始词\\t标准词` optional)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise LexiconError(f"{path}: cannot read pairs: {e}") from e
    header = bool(lines) and lines[0].split("\t")[:2] == ["原始词", "标准词"]
    return [(a, b) for _, a, b in _pair_rows(path, lines, skip_header=header)]


def _read_pairs(path: Path, lines: list[str], *, skip_header: bool) -> list[LexiconEntry]:
    """IMCS-21 style `colloquial\\tclinical` pairs; one colloquial mention may have several rows."""
    return [
        _entry(path, no, clinical, [colloquial], "to_clinical", "general", path.name)
        for no, colloquial, clinical in _pair_rows(path, lines, skip_header=skip_header)
    ]


def _read_dxy(path: Path, lines: list[str]) -> list[LexiconEntry]:
    """DXY `normalised<TAB>variant/variant/...`."""
    out: list[LexiconEntry] = []
    for no, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        cols = raw.rstrip("\n\r").split("\t")
        if len(cols) != 2:
            raise LexiconError(f"{path}:{no}: expected `term<TAB>variant/variant`, got {len(cols)} column(s)")
        out.append(_entry(path, no, cols[0], cols[1].split("/"), "both", "general", path.name))
    return out


def _read_icd_csv(path: Path, text: str) -> list[LexiconEntry]:
    """ICD-10 `icd_code,name`: clinical names with no colloquial variants (they stay as they are)."""
    rows = csv.reader(text.splitlines())
    next(rows, None)
    out = []
    for no, row in enumerate(rows, 2):
        if len(row) < 2 or not row[1].strip():
            raise LexiconError(f"{path}:{no}: expected `icd_code,name`")
        out.append(_entry(path, no, row[1], [], "to_clinical", "general", path.name))
    return out


def _read_chip_cdn(path: Path, text: str) -> list[LexiconEntry]:
    """CHIP-CDN `[{text, normalized_result}]`; only single-target rows are usable as replacements."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LexiconError(f"{path}:{e.lineno}: not valid JSON: {e.msg}") from e
    if not isinstance(data, list):
        raise LexiconError(f"{path}: expected a JSON list of {{text, normalized_result}}")
    out = []
    for i, rec in enumerate(data):
        if not isinstance(rec, dict) or "text" not in rec or "normalized_result" not in rec:
            raise LexiconError(f"{path}: record {i}: expected fields 'text' and 'normalized_result'")
        target = str(rec["normalized_result"])
        if "##" in target or not target.strip():
            continue
        out.append(_entry(path, i, target, [str(rec["text"])], "to_clinical", "general", path.name))
    return out


def _read_yaml(path: Path, text: str) -> list[LexiconEntry]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise LexiconError(f"{path}: not valid YAML: {e}") from e
    items = data.get("entries") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise LexiconError(f"{path}: expected a list of entries (or a mapping with 'entries')")
    out = []
    for i, it in enumerate(items):
        if not isinstance(it, dict) or "term" not in it:
            raise LexiconError(f"{path}: entry {i}: field 'term' is missing")
        variants = it.get("variants") or []
        if isinstance(variants, str):
            variants = variants.split("|")
        out.append(
            _entry(
                path,
                i,
                str(it["term"]),
                [str(v) for v in variants],
                str(it.get("direction", "both")),
                str(it.get("area", "general")),
                str(it.get("source", path.name)),
            )
        )
    return out


def load_lexicon_file(path: str | Path) -> list[LexiconEntry]:
    """Entries from one file; the format is recognised from the suffix and the first line."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise LexiconError(f"{path}: cannot read lexicon: {e}") from e
    except UnicodeDecodeError as e:
        raise LexiconError(f"{path}: not UTF-8 (byte {e.start})") from e
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return _read_yaml(path, text)
    if suffix == ".json":
        return _read_chip_cdn(path, text)
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip() and not ln.startswith("#")), "")
    if first.split(",")[:2] == ["icd_code", "name"]:
        return _read_icd_csv(path, text)
    if first.split("\t")[:2] == ["原始词", "标准词"]:
        return _read_pairs(path, lines, skip_header=lines[0] == first)
    if first.split("\t")[:2] == TSV_HEADER[:2] or first.count("\t") >= 2:
        return _read_medaug_tsv(path, lines)
    if first.count("\t") == 1 and "/" in first.split("\t")[1]:
        return _read_dxy(path, lines)
    raise LexiconError(
        f"{path}:1: unknown lexicon format (expected a header {'/'.join(TSV_HEADER)}, `原始词\\t标准词` pairs, "
        "DXY `term\\tvariant/variant`, ICD `icd_code,name`, CHIP-CDN JSON or YAML)"
    )


class Lexicon:
    """Entries merged in priority order: for one key the earlier-loaded mapping is the default."""

    def __init__(self, entries: Sequence[LexiconEntry]):
        self.entries = list(entries)
        self.clinical_terms = {e.term for e in self.entries}
        to_clin: dict[str, list[str]] = {}
        to_coll: dict[str, list[str]] = {}
        for e in self.entries:
            if e.direction in ("both", "to_clinical"):
                for v in e.variants:
                    if v not in self.clinical_terms:
                        _append(to_clin, v, e.term)
            if e.direction in ("both", "to_colloquial"):
                for v in e.variants:
                    _append(to_coll, e.term, v)
        self.to_clinical = {k: tuple(v) for k, v in to_clin.items()}
        self.to_colloquial = {k: tuple(v) for k, v in to_coll.items()}
        both = {k: list(v) for k, v in self.to_clinical.items()}
        for k, v in self.to_colloquial.items():
            for x in v:
                _append(both, k, x)
        self.both = {k: tuple(v) for k, v in both.items()}
        self._automata: dict[str, ahocorasick.Automaton | None] = {}

    def mapping(self, direction: str) -> dict[str, tuple[str, ...]]:
        if direction == "to_clinical":
            return self.to_clinical
        if direction == "to_colloquial":
            return self.to_colloquial
        return self.both

    def automaton(self, direction: str) -> ahocorasick.Automaton | None:
        """Keys of at least MIN_MATCH_LEN chars; value = (key, candidates). None when nothing to match.

        Every other known wording is a key with no candidates: longest match then keeps 支气管炎 whole
        instead of rewriting the 气管炎 inside it.
        """
        if direction not in self._automata:
            a = ahocorasick.Automaton()
            mapping = self.mapping(direction)
            known = self.clinical_terms | {v for e in self.entries for v in e.variants}
            for key in known - mapping.keys():
                if len(key) >= MIN_MATCH_LEN:
                    a.add_word(key, (key, ()))
            for key, cands in mapping.items():
                if len(key) >= MIN_MATCH_LEN:
                    a.add_word(key, (key, cands))
            if any(mapping):
                a.make_automaton()
                self._automata[direction] = a
            else:
                self._automata[direction] = None
        return self._automata[direction]

    def lookup(self, text: str, direction: str) -> str | None:
        """The whole text as one known term: its first mapping, or itself if it is already in that register."""
        cands = self.mapping(direction).get(text)
        if cands:
            return cands[0]
        if direction == "to_clinical" and text in self.clinical_terms:
            return text
        return None

    def stats(self) -> dict[str, object]:
        from collections import Counter

        return {
            "entries": len(self.entries),
            "colloquial_keys": len(self.to_clinical),
            "clinical_keys": len(self.to_colloquial),
            "by_area": dict(Counter(e.area for e in self.entries)),
            "by_source": dict(Counter(e.source for e in self.entries)),
        }


def _append(d: dict[str, list[str]], key: str, value: str) -> None:
    lst = d.setdefault(key, [])
    if value not in lst:
        lst.append(value)


def load_lexicon(paths: Sequence[str | Path] = (), *, include_core: bool = True) -> Lexicon:
    """External lexicons first (the user's choice wins), then the shipped core lexicon."""
    entries: list[LexiconEntry] = []
    for p in paths:
        entries.extend(load_lexicon_file(p))
    if include_core:
        entries.extend(load_lexicon_file(CORE_LEXICON))
    return Lexicon(entries)


@cache
def cached_lexicon(paths: tuple[str, ...], include_core: bool) -> Lexicon:
    """One lexicon (and its automata) per process: batch stages call this once per batch."""
    return load_lexicon(paths, include_core=include_core)
