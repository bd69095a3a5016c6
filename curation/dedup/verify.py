"""Verification of candidate pairs: rapidfuzz similarity (the scorer the threshold is defined on),
then, for pairs that pass it, the clinical facts of the raw texts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA, Levenshtein

from curation.dedup.config import DedupConfig

_CHUNK = 1 << 20


def verify_pairs(pairs: np.ndarray, texts: Sequence[str], cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose normalised Levenshtein similarity is >= cfg.threshold, or that differ by at most
    cfg.typos characters in a long enough text (see DedupConfig), and their similarity scores.

    A length filter goes first: similarity can never exceed min/max length, and the edit
    distance is at least the length difference, so most chance collisions are dropped
    without computing a distance.
    """
    threshold = cfg.threshold
    if len(pairs) == 0:
        return pairs.reshape(0, 2), np.empty(0, dtype=np.float32)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    la, lb = lengths[pairs[:, 0]], lengths[pairs[:, 1]]
    # typos allowed per the shorter text's own characters (the field separators do not count)
    seps = np.fromiter((t.count("\x1e") for t in texts), dtype=np.int64, count=len(texts))
    short = np.minimum(la - seps[pairs[:, 0]], lb - seps[pairs[:, 1]])
    allowed = np.minimum(cfg.typos, short // cfg.typo_chars)  # edits a pair may differ by, whatever the ratio
    ok = (short >= threshold * np.maximum(la, lb) - 1e-9) | (np.abs(la - lb) <= allowed)
    pairs, allowed, la, lb = pairs[ok], allowed[ok], la[ok], lb[ok]
    scores = np.zeros(len(pairs), dtype=np.float32)
    keep = np.zeros(len(pairs), dtype=bool)
    for lo in range(0, len(pairs), _CHUNK):  # element-wise in C (rapidfuzz cpdist), a chunk at a time
        sl = slice(lo, lo + _CHUNK)
        qa = [texts[i] for i in pairs[sl, 0].tolist()]
        qb = [texts[i] for i in pairs[sl, 1].tolist()]
        got = process.cpdist(
            qa, qb, scorer=Levenshtein.normalized_similarity, score_cutoff=threshold, dtype=np.float32
        )
        scores[sl] = got
        keep[sl] = got >= threshold
        # typos are counted as OSA edits: two swapped characters (怎么 → 么怎) are one typo, not two
        k = allowed[sl]
        try_typos = np.flatnonzero(~keep[sl] & (k > 0) & (np.abs(la[sl] - lb[sl]) <= k))
        if try_typos.size:
            ta = [qa[i] for i in try_typos.tolist()]
            tb = [qb[i] for i in try_typos.tolist()]
            edits = process.cpdist(ta, tb, scorer=OSA.distance, score_cutoff=cfg.typos, dtype=np.int64)
            hit = try_typos[edits <= k[try_typos]]
            keep[lo + hit] = True
            for i in hit.tolist():
                scores[lo + i] = Levenshtein.normalized_similarity(qa[i], qb[i])
    return pairs[keep], scores[keep]


def same_facts(pairs: np.ndarray, raw: Sequence[str | None]) -> np.ndarray:
    """Mask of pairs whose raw texts state the same clinical facts (medaug.facts.fact_changes).

    Only verified pairs come here, so the extractor (jieba, a few hundred ms to build) is
    loaded only when there is something to check. A text that is None (an index entry
    written before raw texts were stored) cannot be checked and is let through.
    """
    if len(pairs) == 0:
        return np.ones(0, dtype=bool)
    from medaug.facts import fact_changes

    out = np.ones(len(pairs), dtype=bool)
    for i, (a, b) in enumerate(pairs.tolist()):
        ra, rb = raw[a], raw[b]
        if ra is not None and rb is not None and ra != rb:
            out[i] = not fact_changes(ra, rb)
    return out
