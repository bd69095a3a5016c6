"""Words that are never a personal name, so a surname character that starts one is not read as a name.

患者常见贫血 and 患者白细胞增高 start with the surnames 常 and 白; what tells them
apart from 患者常伟 is that 常见 and 白细胞 are words. Two sources: the project's
clinical vocabulary (drugs, diseases, symptoms from augmenters/ and generators/
plus curation/data/clinical_words.txt for anatomy, cells and tests) and the
general dictionary that ships with jieba (word, frequency, part of speech), of
which only non-name words starting with a surname character are kept. Built once
per process, consulted only for name candidates (rare), so it costs no throughput.
"""

from __future__ import annotations

import csv
import importlib.util
from functools import cache
from pathlib import Path

import yaml

from curation.deid.lists import DATA_DIR, surnames

_REPO = Path(__file__).resolve().parents[2]
_DRUGS = _REPO / "medaug" / "data" / "drugs.tsv"
_LEXICON = _REPO / "medaug" / "data" / "core_lexicon.tsv"
_KNOWLEDGE = _REPO / "generators" / "data" / "knowledge.yaml"
_MIN_FREQ = 3  # jieba frequencies: below this a "word" is as likely a name as a word
_NAME_TAG_MIN_FREQ = 300
MAX_WORD = 8


def _tsv_column(path: Path, *columns: str) -> list[str]:
    if not path.exists():
        return []
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    out: list[str] = []
    for row in csv.DictReader(lines, delimiter="\t"):
        for c in columns:
            out.extend(v.strip() for v in (row.get(c) or "").split("|"))
    return out


def _knowledge_terms() -> list[str]:
    if not _KNOWLEDGE.exists():
        return []
    data = yaml.safe_load(_KNOWLEDGE.read_text(encoding="utf-8")) or {}
    out: list[str] = []
    for d in data.get("diseases", []):
        out.append(str(d.get("name", "")))
        for key in ("symptoms_clinical", "symptoms_colloquial", "drugs"):
            out.extend(str(x) for x in d.get(key) or [])
    return out


@cache
def clinical_terms() -> frozenset[str]:
    words = _tsv_column(_DRUGS, "name") + _tsv_column(_LEXICON, "term", "variants") + _knowledge_terms()
    for line in (DATA_DIR / "clinical_words.txt").read_text(encoding="utf-8").splitlines():
        if not line.lstrip().startswith("#"):
            words.extend(line.split())
    return frozenset(w for w in words if 2 <= len(w))


@cache
def common_words() -> frozenset[str]:
    """jieba's dictionary words of 2–4 characters, minus rare name-tagged entries and compound surnames.

    jieba tags some everyday words as names (谢谢, 师范: nr), so a name tag only removes a word
    that is also rare; 王建国 (nr, 12) goes, 谢谢 (nr, 1089) stays.
    """
    spec = importlib.util.find_spec("jieba")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    path = Path(next(iter(spec.submodule_search_locations))) / "dict.txt"
    if not path.exists():
        return frozenset()
    compound = {s for s in surnames() if len(s) > 1}  # 欧阳, 东方: a surname, whatever else the word means
    out: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            word, freq, tag = (line.split() + ["", "", ""])[:3]
            if not 2 <= len(word) <= 4 or not freq.isdigit() or word in compound:
                continue
            n = int(freq)
            if n >= _MIN_FREQ and (not tag.startswith("nr") or n >= _NAME_TAG_MIN_FREQ):
                out.add(word)
    return frozenset(out)


def starts_clinical_term(text: str, start: int, end: int) -> bool:
    """A clinical term begins at `start`, or one begun inside text[start:end] reaches its end (苗疫苗)."""
    terms = clinical_terms()
    for i in range(start, end):
        for k in range(2, MAX_WORD + 1):
            piece = text[i : i + k]
            if len(piece) < k:
                break
            if piece in terms and (i == start or i + k >= end):
                return True
    return False


def clinical_term_inside(text: str, start: int, end: int) -> int | None:
    """Where a clinical term begins inside text[start:end] (after its first character), if one does."""
    terms = clinical_terms()
    for i in range(start + 1, end):
        for k in range(2, MAX_WORD + 1):
            if text[i : i + k] in terms:
                return i
    return None


def starts_common_word(text: str, start: int, end: int) -> bool:
    """The candidate starts with a word (常见, 高度, 师范), or its first character ends one (及时看)."""
    words = common_words()
    for k in range(2, 5):
        piece = text[start : start + k]
        if len(piece) == k and piece in words and (k <= end - start or k == 2):
            return True
    return start > 0 and text[start - 1 : start + 1] in words


def is_word(piece: str) -> bool:
    return piece in common_words() or piece in clinical_terms()


def not_a_name(text: str, start: int, end: int, *, strict: bool = True) -> bool:
    """True if text[start:end] reads as clinical vocabulary or (strict) as an ordinary word."""
    if starts_clinical_term(text, start, end):
        return True
    return strict and starts_common_word(text, start, end)
