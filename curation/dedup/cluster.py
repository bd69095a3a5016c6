"""Which samples of a duplicate cluster are kept.

Clusters are the connected components of the verified-pair graph. Keeping only one
member per component is wrong under chaining (A~B, B~C, but C is not near A): C would
be dropped though nothing kept resembles it; on the 20 k benchmark that was 2.3% of all
drops. So members are visited in rule order (best first, see stage.py) and a member is
dropped only when it has a verified edge to a member already kept, which it then names.
A component of mutual near-duplicates still keeps exactly one.
"""

from __future__ import annotations

import numpy as np


def keep_greedy(
    prio: np.ndarray, edges: np.ndarray, scores: np.ndarray, fixed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per node: the kept node it duplicates (itself when kept) and the edge score.

    prio: rank per node, lower is better; nodes < `fixed` are always kept (already queued/released).
    """
    n = prio.size
    keeper = np.arange(n)
    score = np.ones(n, dtype=np.float32)
    if len(edges) == 0:
        return keeper, score
    src = np.concatenate((edges[:, 0], edges[:, 1]))
    dst = np.concatenate((edges[:, 1], edges[:, 0]))
    sc = np.concatenate((scores, scores)).astype(np.float32)
    # adjacency in CSR form, neighbours sorted best-score first
    order = np.lexsort((-sc, src))
    src, dst, sc = src[order], dst[order], sc[order]
    starts = np.searchsorted(src, np.arange(n + 1))
    touched = np.unique(src)
    dropped = np.zeros(n, dtype=bool)
    for node in touched[np.argsort(prio[touched], kind="stable")].tolist():
        if node < fixed:
            continue
        p = prio[node]
        for k in range(starts[node], starts[node + 1]):
            other = int(dst[k])
            if prio[other] < p and not dropped[other]:
                dropped[node] = True
                keeper[node] = other
                score[node] = sc[k]
                break
    return keeper, score
