"""Colloquial ↔ clinical lexicons: the typed entry format, loaders for ours and for real external ones, and
the Aho-Corasick automata that paraphrasing, term normalisation and the fact extractor run on.

Our format (TSV, `#` comments allowed; or YAML, a list of mappings with the same keys), see docs/lexicon.md:
    term<TAB>variants<TAB>relation<TAB>kind<TAB>direction<TAB>area<TAB>context<TAB>source
    胸痛<TAB>胸口疼|胸口痛<TAB>exact<TAB>symptom<TAB>both<TAB>cardiovascular<TAB><TAB>medaug-core
term is the clinical wording, variants the colloquial ones (`|`-separated). relation says what the term is
to each variant: exact (same meaning), narrower (the term is more specific), broader (more general),
related (neither: only for normalisation). kind is symptom / finding / disease / procedure / history; both
sides of an entry are of that kind, so a mapping never turns a symptom into a diagnosis. direction says
which way the entry may be used; context names the rule that must hold before a non-exact entry is used
(`area=cardiovascular;near=压|紧`, see medaug/guards.py), empty for none.

Positive paraphrases use exact mappings only, or narrower/broader ones whose context rule holds (the
derived sample records it). One wording never has two exact meanings: a file that says so is an error.

Several external formats are accepted so that a user can point the config at the real resources
(IMCS-21 pairs, DXY normalised symptoms, CHIP-CDN, ICD-10 names) without converting them first. They are
normalisation data (a mention and the standard concept it falls under), not synonym lists: their rows
are typed `broader` (or `exact` where mention and term are the same words), so they feed the normaliser
and the fact extractor but never rewrite text.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
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
RELATIONS: tuple[str, ...] = ("exact", "narrower", "broader", "related")
KINDS: tuple[str, ...] = ("symptom", "finding", "disease", "procedure", "history")
CORE_LEXICON = Path(__file__).parent / "data" / "core_lexicon.tsv"
TSV_HEADER = ["term", "variants", "relation", "kind", "direction", "area", "context", "source"]
OLD_TSV_HEADER = ["term", "variants", "direction", "area", "source"]
# In-text matching ignores one-character keys (烧, 哭, 肿): they hit inside unrelated words; whole-line
# normalisation still uses them.
MIN_MATCH_LEN = 2
# The reverse of a relation: 胸骨后压榨感 is narrower than 胸口疼, so 胸口疼 is broader than it.
REVERSE = {"exact": "exact", "narrower": "broader", "broader": "narrower", "related": "related"}


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class LexiconEntry:
    term: str  # the clinical (standard) term
    variants: tuple[str, ...]  # colloquial wordings
    direction: str = "both"
    area: str = Area.general.value
    source: str = "medaug-core"
    relation: str = "exact"  # what the term is to each variant
    kind: str = "symptom"
    context: str = ""  # rule that must hold before a non-exact entry rewrites text


@dataclass(frozen=True)
class Candidate:
    """One way to rewrite a matched wording: the target, how it relates to the source, under what rule."""

    target: str
    relation: str  # what the target is to the source: exact / narrower / broader / related
    kind: str
    context: str = ""
    area: str = Area.general.value


def _entry(
    path: Path,
    line: int,
    term: str,
    variants: Iterable[str],
    direction: str,
    area: str,
    source: str,
    relation: str = "exact",
    kind: str = "symptom",
    context: str = "",
) -> LexiconEntry:
    term = term.strip()
    if not term:
        raise LexiconError(f"{path}:{line}: field 'term' is empty")
    if direction not in DIRECTIONS:
        raise LexiconError(f"{path}:{line}: field 'direction' is {direction!r}, expected one of {DIRECTIONS}")
    if relation not in RELATIONS:
        raise LexiconError(f"{path}:{line}: field 'relation' is {relation!r}, expected one of {RELATIONS}")
    if kind not in KINDS:
        raise LexiconError(f"{path}:{line}: field 'kind' is {kind!r}, expected one of {KINDS}")
    if area not in Area.__members__:
        raise LexiconError(
            f"{path}:{line}: field 'area' is {area!r}, expected one of {list(Area.__members__)}"
        )
    if context:
        from medaug.guards import ContextRuleError, parse_context

        try:
            parse_context(context)
        except ContextRuleError as e:
            raise LexiconError(f"{path}:{line}: field 'context': {e}") from e
    vs = tuple(dict.fromkeys(v.strip() for v in variants if v.strip() and v.strip() != term))
    return LexiconEntry(term, vs, direction, area, source or path.name, relation, kind, context.strip())


def _read_medaug_tsv(path: Path, lines: list[str]) -> list[LexiconEntry]:
    out: list[LexiconEntry] = []
    header_seen = False
    for no, raw in enumerate(lines, 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        cols = raw.rstrip("\n\r").split("\t")
        if not header_seen:
            header_seen = True
            if cols[: len(OLD_TSV_HEADER)] == OLD_TSV_HEADER:
                raise LexiconError(
                    f"{path}:{no}: old lexicon header {OLD_TSV_HEADER}; every mapping now needs a relation "
                    f"and a kind: use the header {TSV_HEADER} (docs/lexicon.md)"
                )
            if cols[: len(TSV_HEADER)] == TSV_HEADER:
                continue
        if len(cols) < 4:
            raise LexiconError(
                f"{path}:{no}: expected columns {TSV_HEADER} (at least term, variants, relation, kind), "
                f"got {len(cols)} column(s)"
            )
        cols += [""] * (len(TSV_HEADER) - len(cols))
        term, variants, relation, kind, direction, area, context, source = cols[: len(TSV_HEADER)]
        out.append(
            _entry(
                path,
                no,
                term,
                variants.split("|"),
                direction or "both",
                area or "general",
                source,
                relation.strip(),
                kind.strip(),
                context,
            )
        )
    _check_unambiguous(path, out)
    return out


def _check_unambiguous(path: Path, entries: list[LexiconEntry]) -> None:
    """One wording, one exact meaning: two context-free exact mappings of a variant is an error."""
    seen: dict[str, str] = {}
    for e in entries:
        if e.relation != "exact" or e.context or e.direction == "to_colloquial":
            continue
        for v in e.variants:
            if seen.setdefault(v, e.term) != e.term:
                raise LexiconError(
                    f"{path}: wording {v!r} is an exact variant of both {seen[v]!r} and {e.term!r}; "
                    "type one of them narrower/broader/related or give it a context rule"
                )


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


def _norm_relation(mention: str, term: str) -> str:
    return "exact" if mention == term else "broader"


def _read_pairs(path: Path, lines: list[str], *, skip_header: bool) -> list[LexiconEntry]:
    """IMCS-21 style `colloquial\\tclinical` pairs; one colloquial mention may have several rows."""
    return [
        _entry(
            path,
            no,
            clinical,
            [colloquial],
            "to_clinical",
            "general",
            path.name,
            _norm_relation(colloquial, clinical),
            "symptom",
        )  # fmt: skip
        for no, colloquial, clinical in _pair_rows(path, lines, skip_header=skip_header)
    ]


def _read_dxy(path: Path, lines: list[str]) -> list[LexiconEntry]:
    """DXY `normalised<TAB>variant/variant/...`: normalisation lists, typed broader."""
    out: list[LexiconEntry] = []
    for no, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        cols = raw.rstrip("\n\r").split("\t")
        if len(cols) != 2:
            raise LexiconError(f"{path}:{no}: expected `term<TAB>variant/variant`, got {len(cols)} column(s)")
        out.append(
            _entry(path, no, cols[0], cols[1].split("/"), "to_clinical", "general", path.name, "broader")
        )
    return out


def _read_icd_csv(path: Path, text: str) -> list[LexiconEntry]:
    """ICD-10 `icd_code,name`: disease names with no colloquial variants (they stay as they are)."""
    rows = csv.reader(text.splitlines())
    next(rows, None)
    out = []
    for no, row in enumerate(rows, 2):
        if len(row) < 2 or not row[1].strip():
            raise LexiconError(f"{path}:{no}: expected `icd_code,name`")
        out.append(_entry(path, no, row[1], [], "to_clinical", "general", path.name, "exact", "disease"))
    return out


def _read_chip_cdn(path: Path, text: str) -> list[LexiconEntry]:
    """CHIP-CDN `[{text, normalized_result}]`; single-target rows only, typed broader (a coding, not a
    synonym: 失血性贫血 is coded under a wider ICD name)."""
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
        mention = str(rec["text"])
        out.append(
            _entry(
                path,
                i,
                target,
                [mention],
                "to_clinical",
                "general",
                path.name,
                _norm_relation(mention.strip(), target.strip()),
                "disease",
            )  # fmt: skip
        )
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
        for key in ("relation", "kind"):
            if key not in it:
                raise LexiconError(
                    f"{path}: entry {i}: field {key!r} is missing (one of {RELATIONS if key == 'relation' else KINDS})"
                )
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
                str(it["relation"]),
                str(it["kind"]),
                str(it.get("context") or ""),
            )
        )
    _check_unambiguous(path, out)
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
    if first.split("\t")[:2] == TSV_HEADER[:2] or first.count("\t") >= 3:
        return _read_medaug_tsv(path, lines)
    if first.count("\t") == 1 and "/" in first.split("\t")[1]:
        return _read_dxy(path, lines)
    raise LexiconError(
        f"{path}:1: unknown lexicon format (expected a header {'/'.join(TSV_HEADER)}, `原始词\\t标准词` pairs, "
        "DXY `term\\tvariant/variant`, ICD `icd_code,name`, CHIP-CDN JSON or YAML)"
    )


class Lexicon:
    """Entries merged in priority order: for one wording the earlier-loaded mapping is the default, and a
    later context-free exact mapping that would give it a second meaning is dropped (counted in stats)."""

    def __init__(self, entries: Sequence[LexiconEntry]):
        self.entries = list(entries)
        self.clinical_terms = {e.term for e in self.entries}
        self.kinds: dict[str, str] = {}  # wording → kind (first entry wins)
        for e in self.entries:
            self.kinds.setdefault(e.term, e.kind)
            for v in e.variants:
                self.kinds.setdefault(v, e.kind)
        to_clin: dict[str, list[Candidate]] = {}
        to_coll: dict[str, list[Candidate]] = {}
        norm: dict[str, list[str]] = {}
        exact_of: dict[str, str] = {}
        self.conflicts = 0
        for e in self.entries:
            for v in e.variants:
                _append(norm, v, e.term)
            if e.direction in ("both", "to_clinical"):
                for v in e.variants:
                    if v in self.clinical_terms and e.relation == "exact":
                        continue  # a standard term stays itself
                    if e.relation == "exact" and not e.context:
                        if exact_of.setdefault(v, e.term) != e.term:
                            self.conflicts += 1
                            continue
                    _append(to_clin, v, Candidate(e.term, e.relation, e.kind, e.context, e.area))
            if e.direction in ("both", "to_colloquial"):
                for v in e.variants:
                    _append(to_coll, e.term, Candidate(v, REVERSE[e.relation], e.kind, e.context, e.area))
        self.to_clinical_candidates = {k: tuple(v) for k, v in to_clin.items()}
        self.to_colloquial_candidates = {k: tuple(v) for k, v in to_coll.items()}
        both = {k: list(v) for k, v in to_clin.items()}
        for k, v in to_coll.items():
            for c in v:
                _append(both, k, c)
        self.both_candidates = {k: tuple(v) for k, v in both.items()}
        self.normalisation = {k: tuple(v) for k, v in norm.items()}
        # Exact wording → its canonical term: what the fact extractor compares.
        self.canonical: dict[str, str] = dict(exact_of)
        self._automata: dict[str, ahocorasick.Automaton | None] = {}

    # Plain views (target strings only, exact first) for callers that only need the wordings.
    @property
    def to_clinical(self) -> dict[str, tuple[str, ...]]:
        return {k: tuple(c.target for c in v) for k, v in self.to_clinical_candidates.items()}

    @property
    def to_colloquial(self) -> dict[str, tuple[str, ...]]:
        return {k: tuple(c.target for c in v) for k, v in self.to_colloquial_candidates.items()}

    def candidates(self, direction: str) -> dict[str, tuple[Candidate, ...]]:
        if direction == "to_clinical":
            return self.to_clinical_candidates
        if direction == "to_colloquial":
            return self.to_colloquial_candidates
        return self.both_candidates

    def known_wordings(self) -> set[str]:
        """Every wording of the lexicon, plus the protected compounds (多饮水, 放化疗) that block matches
        inside them."""
        from medaug.facts import fact_words

        protect = {w.surface for w in fact_words() if w.kind == "protect"}
        return self.clinical_terms | {v for e in self.entries for v in e.variants} | protect

    def automaton(self, direction: str) -> ahocorasick.Automaton | None:
        """Keys of at least MIN_MATCH_LEN chars; value = (key, candidates). None when nothing to match.

        Every other known wording is a key with no candidates: longest match then keeps 支气管炎 whole
        instead of rewriting the 气管炎 inside it.
        """
        if direction not in self._automata:
            a = ahocorasick.Automaton()
            mapping = self.candidates(direction)
            for key in self.known_wordings() - mapping.keys():
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

    def lookup(
        self, text: str, direction: str, relations: tuple[str, ...] = ("exact", "broader")
    ) -> str | None:
        """The whole text as one known wording: its exact mapping, else (to_clinical) the standard term a
        normalisation pair of an allowed relation gives, or itself if it already is a standard term."""
        cands = self.candidates(direction).get(text)
        if cands:
            exact = [c.target for c in cands if c.relation == "exact" and not c.context]
            if exact:
                return exact[0]
        if direction == "to_clinical":
            if text in self.clinical_terms:
                return text
            if cands:
                ok = [c.target for c in cands if c.relation in relations and not c.context]
                if ok:
                    return ok[0]
        return None

    def stats(self) -> dict[str, object]:
        return {
            "entries": len(self.entries),
            "colloquial_keys": len(self.to_clinical_candidates),
            "clinical_keys": len(self.to_colloquial_candidates),
            "by_area": dict(Counter(e.area for e in self.entries)),
            "by_source": dict(Counter(e.source for e in self.entries)),
            "by_relation": dict(Counter(e.relation for e in self.entries)),
            "by_kind": dict(Counter(e.kind for e in self.entries)),
            "exact_conflicts_dropped": self.conflicts,
        }


def _append(d: dict, key: str, value) -> None:
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
