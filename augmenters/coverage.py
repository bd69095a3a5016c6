"""How well a lexicon normalises real colloquial mentions: the share of (mention, standard term) pairs
that `normalize_line` maps exactly to the standard term."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from augmenters.lexicon import Lexicon, read_pairs
from augmenters.paraphrase import normalize_line


@dataclass
class Coverage:
    pairs: int
    correct: int
    identity: int  # pairs whose mention already is the standard term (correct by leaving it alone)
    changed: int  # mentions the lexicon rewrote at all

    @property
    def ratio(self) -> float:
        return self.correct / self.pairs if self.pairs else 0.0


def pair_coverage(pairs_path: str | Path, lexicon: Lexicon) -> Coverage:
    pairs = read_pairs(pairs_path)
    correct = identity = changed = 0
    skipped: Counter[str] = Counter()
    for mention, standard in pairs:
        got = normalize_line(mention, lexicon, "to_clinical", skipped)
        correct += got == standard
        identity += mention == standard
        changed += got != mention
    return Coverage(len(pairs), correct, identity, changed)
