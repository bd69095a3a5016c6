"""Clusters from verified pairs (union-find) and the rule for which member is kept."""

from __future__ import annotations

import numpy as np


def components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Component label per node (the smallest node id in it), by union-find with path halving."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            if ra < rb:
                parent[rb] = ra
            else:
                parent[ra] = rb
    return np.fromiter((find(x) for x in range(n)), dtype=np.int64, count=n)


def keepers(comp: np.ndarray, rank_keys: list[np.ndarray]) -> np.ndarray:
    """For every node, the node kept in its component: the one first in lexicographic
    order of `rank_keys` (most significant first; lower is better)."""
    order = np.lexsort(tuple(reversed([*rank_keys]))) if rank_keys else np.arange(comp.size)
    comp_sorted = comp[order]
    # first node of each component in rank order
    firsts = np.unique(comp_sorted, return_index=True)
    best = np.empty(int(comp.max()) + 1 if comp.size else 0, dtype=np.int64)
    best[firsts[0]] = order[firsts[1]]
    return best[comp]
