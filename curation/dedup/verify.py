"""Exact verification of candidate pairs with rapidfuzz (the same scorer the threshold is defined on)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein


def verify_pairs(pairs: np.ndarray, texts: Sequence[str], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose normalised Levenshtein similarity is >= threshold, and their scores.

    A length-ratio filter goes first: similarity can never exceed min/max length,
    so most chance collisions are dropped without computing a distance.
    """
    if len(pairs) == 0:
        return pairs.reshape(0, 2), np.empty(0, dtype=np.float32)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    la, lb = lengths[pairs[:, 0]], lengths[pairs[:, 1]]
    ok = np.minimum(la, lb) >= threshold * np.maximum(la, lb) - 1e-9
    pairs = pairs[ok]
    scores = np.empty(len(pairs), dtype=np.float32)
    sim = Levenshtein.normalized_similarity
    for i, (a, b) in enumerate(pairs.tolist()):
        scores[i] = sim(texts[a], texts[b], score_cutoff=threshold)
    keep = scores >= threshold
    return pairs[keep], scores[keep]
