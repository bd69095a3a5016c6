"""What the queue store hands back: users, leased and final items, reviews, push and submit results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from medaug.schema import Sample


@dataclass(frozen=True)
class Refusal:
    row: int  # 1-based position in the pushed batch
    id: str | None
    reason: str


@dataclass
class PushResult:
    inserted: int = 0
    already_queued: int = 0
    refused: int = 0
    refusals: list[Refusal] = field(default_factory=list)


@dataclass(frozen=True)
class User:
    name: str
    role: str


@dataclass(frozen=True)
class ReviewRecord:
    reviewer: str
    decision: str
    submitted_at: datetime
    comment: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class LeasedItem:
    id: str
    sample: Sample
    parent: dict[str, Any] | None
    status: str
    lease_expires: float
    reviews: list[ReviewRecord]  # filled only for an arbiter's arbitration lease


@dataclass(frozen=True)
class FinalItem:
    item_id: str
    run_id: str
    sample: Sample  # corrections/arbitration applied; the original sample when rejected
    outcome: str  # approved | corrected | rejected
    rejected: bool
    reviews: list[ReviewRecord]
    arbitration: ReviewRecord | None
    finalized_at: datetime


@dataclass(frozen=True)
class SubmitResult:
    item_id: str
    status: str  # open | arbitration | final


def ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def record(who: str, decision: str, payload: str, submitted: float) -> ReviewRecord:
    data = json.loads(payload)
    return ReviewRecord(
        reviewer=who,
        decision=decision,
        submitted_at=ts(submitted),
        comment=data.get("comment", ""),
        payload=data,
    )
