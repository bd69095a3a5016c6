"""Candidate pairs from LSH band keys: sort once, pair within equal-key runs.

All pair generation is array work: for every offset d, an element and the one d
places later form a pair when they sit in the same bucket. Buckets up to
`max_bucket` members give all their pairs; bigger ones (shared template text) only
pair members within `window` places in length order, since near-duplicates have
near-equal lengths. This keeps the work linear in the input however skewed the keys.
"""

from __future__ import annotations

import numpy as np

from curation.dedup.config import DedupConfig


def bucket_pairs(keys: np.ndarray, nodes: np.ndarray, lengths: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    """Unique (a, b) node pairs, a < b, that share at least one band key.

    keys: flat uint64 band keys; nodes: the node each key belongs to; lengths: text length per key.
    """
    if keys.size < 2:
        return np.empty((0, 2), dtype=np.int64)
    order = np.lexsort((nodes, lengths, keys))
    k, v = keys[order], nodes[order]
    # keep only keys that occur at least twice (singletons are the vast majority)
    dup = np.zeros(k.size, dtype=bool)
    same_next = k[1:] == k[:-1]
    dup[1:] |= same_next
    dup[:-1] |= same_next
    k, v = k[dup], v[dup]
    if k.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
    sizes = np.diff(np.concatenate((starts, [k.size])))
    group = np.repeat(np.arange(starts.size), sizes)
    big = np.repeat(sizes > cfg.max_bucket, sizes)
    out = []
    for d in range(1, min(int(sizes.max()), cfg.max_bucket + 1)):
        same = group[d:] == group[:-d]
        if d > cfg.window:
            same &= ~big[:-d]
        if not same.any():
            break
        a, b = v[:-d][same], v[d:][same]
        out.append(np.stack((np.minimum(a, b), np.maximum(a, b)), axis=1))
    pairs = np.concatenate(out) if out else np.empty((0, 2), dtype=np.int64)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs.astype(np.int64), axis=0)
