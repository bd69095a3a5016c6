"""How well a lexicon normalises real colloquial mentions: the share of (mention, standard term) pairs
that `medaug lexicon normalize` (augmenters/normalize.py) maps exactly to the standard term."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from augmenters.normalize import Normaliser
from medaug.lexicon import Lexicon, read_pairs


@dataclass
class Coverage:
    pairs: int
    correct: int
    identity: int  # pairs whose mention already is the standard term (correct by leaving it alone)
    changed: int  # mentions rewritten at all
    exact: int = 0  # found by exact lookup (or a temperature grade)
    ranked: int = 0  # ranked candidates above the threshold
    left: int = 0  # below the threshold: left as they are

    @property
    def ratio(self) -> float:
        return self.correct / self.pairs if self.pairs else 0.0


def pair_coverage(pairs_path: str | Path, lexicon: Lexicon, normaliser: Normaliser | None = None) -> Coverage:
    pairs = read_pairs(pairs_path)
    normaliser = normaliser or Normaliser(lexicon)
    results = normaliser.normalise_many([m for m, _ in pairs])
    cov = Coverage(len(pairs), 0, 0, 0)
    for r, (mention, standard) in zip(results, pairs, strict=True):
        got = r.term or mention
        cov.correct += got == standard
        cov.identity += mention == standard
        cov.changed += got != mention
        cov.exact += r.how in ("exact", "fever")
        cov.ranked += r.how == "ranked"
        cov.left += r.how in ("below_threshold", "not_bare")
    return cov
