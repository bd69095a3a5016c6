"""Reviewer statistics: throughput, agreement rate and Cohen's kappa, per reviewer and per pair."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Kappa of two raters over paired labels; None where chance agreement is total (kappa undefined)."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    ca, cb = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(ca[k] * cb[k] for k in ca.keys() | cb.keys()) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


@dataclass
class ReviewerStats:
    reviewer: str
    reviews: int
    mean_seconds: float
    per_hour: float
    paired: int
    agreement_rate: float | None
    kappa: float | None


@dataclass
class PairStats:
    reviewers: tuple[str, str]
    items: int
    agreement_rate: float | None
    kappa: float | None


def compute(reviews: list[tuple[str, str, str, float, float]], pairs: list[tuple[str, str, str, bool]]
            ) -> dict[str, list[dict[str, object]]]:
    """reviews: (item, reviewer, decision, leased_at, submitted_at); pairs: (item, first, second, agreed)."""
    decision = {(item, who): d for item, who, d, _, _ in reviews}
    busy: dict[str, list[float]] = defaultdict(list)
    for _, who, _, leased, submitted in reviews:
        busy[who].append(max(submitted - leased, 0.0))
    mine: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    by_pair: dict[tuple[str, str], list[tuple[str, str, bool]]] = defaultdict(list)
    for item, a, b, agreed in pairs:
        da, db = decision[(item, a)], decision[(item, b)]
        mine[a].append((da, db, agreed))
        mine[b].append((db, da, agreed))
        key = (a, b) if a < b else (b, a)
        by_pair[key].append((da, db, agreed) if a < b else (db, da, agreed))
    per_reviewer = []
    for who, secs in sorted(busy.items()):
        rows = mine.get(who, [])
        mean = sum(secs) / len(secs)
        per_reviewer.append(ReviewerStats(
            reviewer=who, reviews=len(secs), mean_seconds=round(mean, 3),
            per_hour=round(3600.0 / mean, 1) if mean > 0 else 0.0, paired=len(rows),
            agreement_rate=sum(r[2] for r in rows) / len(rows) if rows else None,
            kappa=cohen_kappa([(x, y) for x, y, _ in rows]),
        ))
    per_pair = [
        PairStats(reviewers=key, items=len(rows), agreement_rate=sum(r[2] for r in rows) / len(rows),
                  kappa=cohen_kappa([(x, y) for x, y, _ in rows]))
        for key, rows in sorted(by_pair.items())
    ]
    return {"reviewers": [asdict(r) for r in per_reviewer], "pairs": [asdict(p) for p in per_pair]}
