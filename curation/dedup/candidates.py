"""Candidate pairs from LSH band keys: sort once, pair within equal-key runs.

All pair generation is array work. Keys that occur once (the vast majority) are dropped
after one plain sort; only the rest are ordered by (key, length, node). Buckets up to
`max_bucket` members give all their pairs; bigger ones (shared template text) only pair
members within `window` places in length order, since near-duplicates have near-equal
lengths. This keeps the work linear in the input however skewed the keys.

Pairs whose lengths alone rule out a verified match (verify.py can never accept them) are
dropped as they are made, a slice at a time, and the rest are kept as one int64 code per
pair (a * n + b), so memory follows the pairs worth verifying, not every shared bucket.
"""

from __future__ import annotations

import numpy as np

from curation.dedup.config import DedupConfig

# element rows per slice of pair generation: bounds the transient arrays to a few hundred MB
_SLICE_PAIRS = 1 << 22


def length_may_match(la: np.ndarray, lb: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    """Mask of pairs whose text lengths do not rule out a match: similarity is at most
    min/max length, and a typo match needs a length difference within cfg.typos.
    verify_pairs applies a stricter form of the same test, so nothing it accepts is lost."""
    short, long = np.minimum(la, lb), np.maximum(la, lb)
    return (short >= cfg.threshold * long - 1e-9) | (long - short <= cfg.typos)


def bucket_pairs(
    keys: np.ndarray,
    nodes: np.ndarray,
    lengths: np.ndarray,
    cfg: DedupConfig,
    length_filter: bool = True,
) -> np.ndarray:
    """Unique (a, b) node pairs, a < b, that share at least one band key (and, with
    `length_filter`, whose lengths allow a match: `length_may_match`).

    keys: flat uint64 band keys; nodes: the node each key belongs to (int32 is enough and half the
    memory); lengths: text length per key. The pairs come back as int32 when every node id fits.
    """
    n_nodes = int(nodes.max()) + 1 if nodes.size else 0
    out_dtype = np.int32 if n_nodes <= np.iinfo(np.int32).max else np.int64
    empty = np.empty((0, 2), dtype=out_dtype)
    if keys.size < 2:
        return empty
    # singletons out first, by one sort of the keys alone
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    same_next = k[1:] == k[:-1]
    dup = np.zeros(k.size, dtype=bool)
    dup[1:] |= same_next
    dup[:-1] |= same_next
    sel, k = order[dup], k[dup]
    del order, same_next, dup
    if sel.size == 0:
        return empty
    ln, v = lengths[sel].astype(np.int64), nodes[sel].astype(np.int64)
    del sel
    # sel is in key order already; within a bucket, order by (length, node): one argsort of a
    # packed int64 when it fits, else a lexsort
    group = np.cumsum(np.concatenate(([False], k[1:] != k[:-1])), dtype=np.int64)
    del k
    span_v, span_l = int(v.max()) + 1, int(ln.max()) + 1
    if (int(group[-1]) + 1) * span_l * span_v < 2**62:
        order = np.argsort((group * span_l + ln) * span_v + v)
    else:
        order = np.lexsort((v, ln, group))
    group, ln, v = group[order], ln[order], v[order]
    del order
    starts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
    del group
    sizes = np.diff(np.concatenate((starts, [ln.size])))
    # how many later members of its bucket each element pairs with
    after = np.repeat(starts + sizes, sizes) - np.arange(ln.size) - 1
    reach = np.where(np.repeat(sizes > cfg.max_bucket, sizes), np.minimum(after, cfg.window), after)
    del after
    codes: list[np.ndarray] = []
    ends = np.cumsum(reach)
    lo = 0
    while lo < reach.size:
        hi = int(np.searchsorted(ends, (ends[lo - 1] if lo else 0) + _SLICE_PAIRS, side="right"))
        hi = max(hi, lo + 1)
        r = reach[lo:hi]
        first = np.repeat(np.arange(lo, hi), r)
        step = np.arange(first.size) - np.repeat(np.cumsum(r) - r, r) + 1
        second = first + step
        if length_filter:
            ok = length_may_match(ln[first], ln[second], cfg)
            first, second = first[ok], second[ok]
        a, b = v[first], v[second]
        ok = a != b
        a, b = a[ok], b[ok]
        codes.append(np.minimum(a, b) * n_nodes + np.maximum(a, b))
        del first, second, step, a, b, ok
        lo = hi
    if not codes:
        return empty
    # sort and drop repeats (np.unique's hash table is ~10x slower on tens of millions of int64)
    code = np.concatenate(codes)
    del codes
    if not code.size:  # every pair was filtered out
        return empty
    code.sort()
    code = code[np.concatenate(([True], code[1:] != code[:-1]))]
    out = np.empty((code.size, 2), dtype=out_dtype)
    np.floor_divide(code, n_nodes, out=out[:, 0], casting="unsafe")
    np.remainder(code, n_nodes, out=out[:, 1], casting="unsafe")
    return out
