"""Team-written word lists behind the recognizers, loaded once from curation/data/."""

from __future__ import annotations

from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def _words(name: str) -> list[str]:
    out: list[str] = []
    for line in (DATA_DIR / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            out.extend(line.split())
    return out


@cache
def surnames() -> tuple[str, ...]:
    """Longest first, so compound surnames (欧阳) win over their first character in an alternation."""
    return tuple(sorted(set(_words("surnames.txt")), key=lambda s: (-len(s), s)))


@cache
def hospital_generic_words() -> frozenset[str]:
    return frozenset(_words("hospital_generic_words.txt"))


@cache
def stop_chars() -> dict[str, frozenset[str]]:
    """`key = chars` lines give a set of characters; `key = word word …` lines a set of words."""
    out: dict[str, frozenset[str]] = {}
    for line in (DATA_DIR / "stop_chars.txt").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            value = value.strip()
            out[key.strip()] = frozenset(value.split() if " " in value else value)
    return out


@cache
def hospital_names() -> frozenset[str]:
    """The shipped gazetteer of well-known hospitals (curation/data/hospitals.txt)."""
    return frozenset(_words("hospitals.txt"))


@cache
def place_names() -> frozenset[str]:
    """Provinces, cities and well-known districts that begin a hospital's name (curation/data/places.txt)."""
    return frozenset(_words("places.txt"))
