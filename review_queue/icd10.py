"""ICD-10 codes for the page's picker: a small built-in list, optionally a full code table from a CSV/TSV."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

from medaug.schema import ICD10_SHAPE


def load_codes(extra: Path | None = None) -> list[tuple[str, str]]:
    """(code, name) pairs; `extra` is a `code,name` CSV (header optional) or TSV, e.g. a clinical-edition list."""
    text = (resources.files("review_queue") / "icd10_common.tsv").read_text(encoding="utf-8")
    codes = dict(line.split("\t", 1) for line in text.splitlines() if line.strip())
    if extra is not None:
        with extra.open(encoding="utf-8-sig", newline="") as f:
            delim = "\t" if extra.suffix in (".tsv", ".txt") else ","
            for n, row in enumerate(csv.reader(f, delimiter=delim), 1):
                if len(row) < 2:
                    raise ValueError(f"{extra}:{n}: expected code and name columns")
                code = row[0].strip()
                if ICD10_SHAPE.fullmatch(code):
                    codes.setdefault(code, row[1].strip())
                elif n > 1:
                    raise ValueError(f"{extra}:{n}: code: not an ICD-10 code: {code!r}")
    return sorted(codes.items())


def search(codes: list[tuple[str, str]], query: str, limit: int = 20) -> list[tuple[str, str]]:
    q = query.strip().upper()
    if not q:
        return codes[:limit]
    starts = [c for c in codes if c[0].upper().startswith(q)]
    taken = set(starts)
    contains = [c for c in codes if c not in taken and (q in c[0].upper() or query.strip() in c[1])]
    return (starts + contains)[:limit]
