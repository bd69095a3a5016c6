"""Which samples of a duplicate cluster are kept.

Clusters are the connected components of the verified-pair graph. Keeping only one
member per component is wrong under chaining (A~B, B~C, but C is not near A): C would
be dropped though nothing kept resembles it; on the 20 k benchmark that was 2.3% of all
drops. So members are visited in rule order (best first, see stage.py) and a member is
dropped only when it has a verified edge to a member already kept, which it then names.
A component of mutual near-duplicates still keeps exactly one.

An edge may carry a condition that is costly to check (the clinical facts of both texts):
`agree` is asked only for an edge that would drop a member, so edges between two members
that are dropped anyway, or from a member already dropped, are never checked. The result is
the same as removing every disagreeing edge first.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def keep_greedy(
    prio: np.ndarray,
    edges: np.ndarray,
    scores: np.ndarray,
    fixed: int = 0,
    agree: Callable[[int], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per node: the kept node it duplicates (itself when kept) and the edge score.

    prio: rank per node, lower is better; nodes < `fixed` are always kept (already queued/released).
    agree: optional test of an edge (its row in `edges`); an edge it rejects never drops a member.
    """
    n = prio.size
    keeper = np.arange(n)
    score = np.ones(n, dtype=np.float32)
    if len(edges) == 0:
        return keeper, score
    src = np.concatenate((edges[:, 0], edges[:, 1]))
    dst = np.concatenate((edges[:, 1], edges[:, 0]))
    sc = np.concatenate((scores, scores)).astype(np.float32)
    eid = np.concatenate((np.arange(len(edges)), np.arange(len(edges))))
    # adjacency in CSR form, neighbours sorted best-score first
    order = np.lexsort((-sc, src))
    src, dst, sc, eid = src[order], dst[order], sc[order], eid[order]
    starts = np.searchsorted(src, np.arange(n + 1))
    touched = np.unique(src)
    dropped = np.zeros(n, dtype=bool)
    for node in touched[np.argsort(prio[touched], kind="stable")].tolist():
        if node < fixed:
            continue
        p = prio[node]
        for k in range(starts[node], starts[node + 1]):
            other = int(dst[k])
            if prio[other] < p and not dropped[other] and (agree is None or agree(int(eid[k]))):
                dropped[node] = True
                keeper[node] = other
                score[node] = sc[k]
                break
    return keeper, score
