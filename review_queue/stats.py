"""Reviewer statistics: throughput, agreement rate and Cohen's kappa, per reviewer and per pair; time accounting.

Time per decision is attention, not lease length: a batch is leased at once, so a decision's time
starts at its lease or at the same reviewer's previous submit, whichever is later, and counts at
most `idle_seconds` (review_queue.strata.active_seconds). Physician minutes per approved sample =
all review minutes (rejected items included: they cost time too) / items finalised as approved or
corrected, overall and per stratum. Arbitrations are not timed (their lease start is not stored).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass

from review_queue.strata import DEFAULT_IDLE_SECONDS, active_seconds


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


def _busy(
    reviews: list[tuple[str, str, str, float, float]], idle_seconds: float
) -> dict[str, list[tuple[str, float]]]:
    """Per reviewer: (item, active seconds) of each of their decisions."""
    mine: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for item, who, _, leased, submitted in reviews:
        mine[who].append((item, leased, submitted))
    out = {}
    for who, rows in mine.items():
        rows.sort(key=lambda r: (r[2], r[0]))
        out[who] = [(r[0], s) for r, s in zip(rows, active_seconds(rows, idle_seconds), strict=True)]
    return out


def compute(
    reviews: list[tuple[str, str, str, float, float]],
    pairs: list[tuple[str, str, str, bool]],
    idle_seconds: float = DEFAULT_IDLE_SECONDS,
) -> dict[str, list[dict[str, object]]]:
    """reviews: (item, reviewer, decision, leased_at, submitted_at); pairs: (item, first, second, agreed)."""
    decision = {(item, who): d for item, who, d, _, _ in reviews}
    busy = {who: [s for _, s in rows] for who, rows in _busy(reviews, idle_seconds).items()}
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
        per_reviewer.append(
            ReviewerStats(
                reviewer=who,
                reviews=len(secs),
                mean_seconds=round(mean, 3),
                per_hour=round(3600.0 / mean, 1) if mean > 0 else 0.0,
                paired=len(rows),
                agreement_rate=sum(r[2] for r in rows) / len(rows) if rows else None,
                kappa=cohen_kappa([(x, y) for x, y, _ in rows]),
            )
        )
    per_pair = [
        PairStats(
            reviewers=key,
            items=len(rows),
            agreement_rate=sum(r[2] for r in rows) / len(rows),
            kappa=cohen_kappa([(x, y) for x, y, _ in rows]),
        )
        for key, rows in sorted(by_pair.items())
    ]
    return {"reviewers": [asdict(r) for r in per_reviewer], "pairs": [asdict(p) for p in per_pair]}


def seconds_per_item(
    reviews: list[tuple[str, str, str, float, float]], idle_seconds: float = DEFAULT_IDLE_SECONDS
) -> dict[str, float]:
    """Active review seconds spent on each item (all its reviews), timed as for `time_accounting`."""
    out: dict[str, float] = defaultdict(float)
    for rows in _busy(reviews, idle_seconds).values():
        for item, s in rows:
            out[item] += s
    return dict(out)


def release_time(
    seconds: dict[str, float], items: list[tuple[str, bool]], idle_seconds: float = DEFAULT_IDLE_SECONDS
) -> dict[str, object]:
    """Physician minutes spent on the items a version accounts for, per approved sample in it.

    items: (item id, approved or corrected) for every item accounted for, rejected ones included
    (their review time is part of what the approved samples cost).
    """
    total = sum(seconds.get(i, 0.0) for i, _ in items)
    approved = sum(ok for _, ok in items)
    return {
        "idle_seconds": idle_seconds,
        "total_minutes": _minutes(total),
        "approved_items": approved,
        "minutes_per_approved": _minutes(total / approved) if approved else None,
    }


def _minutes(seconds: float) -> float:
    return round(seconds / 60.0, 3)


def time_accounting(
    reviews: list[tuple[str, str, str, float, float]],
    stratum_of: dict[str, str | None],
    usable: dict[str | None, int],
    idle_seconds: float = DEFAULT_IDLE_SECONDS,
) -> dict[str, object]:
    """Seconds per decision per reviewer and per stratum, and physician minutes per approved sample.

    reviews: as for `compute`; stratum_of: item id -> stratum; usable: stratum -> items finalised as
    approved or corrected.
    """
    per_reviewer, per_stratum = [], defaultdict(list)
    total = 0.0
    for who, rows in sorted(_busy(reviews, idle_seconds).items()):
        secs = [s for _, s in rows]
        total += sum(secs)
        per_reviewer.append(
            {
                "reviewer": who,
                "decisions": len(secs),
                "minutes": _minutes(sum(secs)),
                "mean_seconds": round(sum(secs) / len(secs), 1),
            }
        )
        for item, s in rows:
            per_stratum[stratum_of.get(item) or "-"].append(s)
    approved = sum(usable.values())
    strata = {}
    for key in sorted(per_stratum.keys() | {k or "-" for k in usable}):
        secs = per_stratum.get(key, [])
        n_ok = usable.get(key, 0) + (usable.get(None, 0) if key == "-" else 0)
        strata[key] = {
            "decisions": len(secs),
            "minutes": _minutes(sum(secs)),
            "mean_seconds": round(sum(secs) / len(secs), 1) if secs else None,
            "approved_items": n_ok,
            "minutes_per_approved": _minutes(sum(secs) / n_ok) if n_ok else None,
        }
    return {
        "idle_seconds": idle_seconds,
        "total_minutes": _minutes(total),
        "approved_items": approved,
        "minutes_per_approved": _minutes(total / approved) if approved else None,
        "reviewers": per_reviewer,
        "strata": strata,
    }
