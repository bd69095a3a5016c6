"""ICD-10 code lists for the quality gate.

The project ships no code list (the usable ones are under terms it cannot
redistribute); the config points to one. Two layouts are read: `icd_code,name`
CSV (Beijing clinical edition v601) and `code<TAB>disease` TSV (three-character
categories, e.g. ICD-10-CN). A code is valid by exact match, or by its
three-character category, as configured.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from medaug.schema import ICD10_SHAPE

MAX_BAD_ROWS = 5


class Icd10ListError(ValueError):
    """The configured list cannot be used; the message names the file (and line)."""


@dataclass(frozen=True)
class Icd10List:
    path: str
    codes: frozenset[str]
    categories: frozenset[str]
    skipped_lines: tuple[int, ...] = ()  # rows whose first column is not a code


def normalize_code(code: str) -> str:
    return code.strip().upper()


@lru_cache(maxsize=4)
def load_icd10_list(path: str | Path) -> Icd10List:
    """Read a CSV (`icd_code,name`) or TSV (`code\\tdisease`) list; a header line is recognised and skipped."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise Icd10ListError(f"ICD-10 list not found: {p}") from e
    except UnicodeDecodeError as e:
        raise Icd10ListError(
            f"{p}: not UTF-8 text (byte {e.start}); convert the list to UTF-8 CSV or TSV"
        ) from e
    lines = text.splitlines()
    delimiter = "\t" if lines and "\t" in lines[0] else ","
    codes: set[str] = set()
    skipped: list[int] = []
    for lineno, row in enumerate(csv.reader(lines, delimiter=delimiter), start=1):
        if not row or not row[0].strip():
            continue
        code = normalize_code(row[0])
        if ICD10_SHAPE.fullmatch(code):
            codes.add(code)
            codes.add(code.rstrip("+*"))  # dagger/asterisk marks (A17+, D63*): the bare code is the same code
        elif lineno > 1:  # line 1 may be a header
            skipped.append(lineno)
    # Real lists carry a stray row or two (v601 has "N,N"); many bad rows mean the wrong file or column.
    if len(skipped) > max(MAX_BAD_ROWS, len(codes) // 100):
        raise Icd10ListError(
            f"{p}:{skipped[0]}: first column is not an ICD-10 code ({len(skipped)} such lines); "
            "expected `icd_code,name` CSV or `code<TAB>disease` TSV"
        )
    if not codes:
        raise Icd10ListError(f"{p}: no ICD-10 codes found")
    return Icd10List(str(p), frozenset(codes), frozenset(c[:3] for c in codes), tuple(skipped))
