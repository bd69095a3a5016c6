"""What every part of the queue store shares: its settings, and the item lock and lease checks.

`review_queue.store.QueueStore` is this base with its parts mixed in (push, users, leases,
submit, holds, results); the parts call each other through `self`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Engine

from review_queue import sql
from review_queue.errors import Conflict, LeaseExpired, NotFound, NotYours
from review_queue.records import ReviewRecord, record
from review_queue.strata import HoldPolicy, PullOrder


class StoreBase:
    engine: Engine
    lease_seconds: float
    max_leased: int
    max_lease_seconds: float | None
    similarity: float
    clock: Callable[[], float]
    hold: HoldPolicy | None
    order: PullOrder
    idle_seconds: float
    _deficits: tuple[float, dict[str, list[str]]]
    _pg: bool

    @property
    def lease_limit_seconds(self) -> float:
        """The longest a lease may last from its pull, extensions included."""
        return self.max_lease_seconds if self.max_lease_seconds is not None else 4 * self.lease_seconds

    def _check_lease(self, row: Any, who: str) -> None:
        if row.status == "final":
            raise Conflict(f"item {row.id} is already final")
        if row.lease_owner != who:
            raise NotYours(f"item {row.id} is not leased to {who}")
        if row.lease_expires < self.clock():
            raise LeaseExpired(f"the lease of {who} on item {row.id} expired; pull again")

    @staticmethod
    def _lock(conn: Connection, item_id: str) -> Any:
        row = conn.execute(sql.LOCK_ITEM, {"id": item_id}).first()
        if row is None:
            raise NotFound(f"unknown item {item_id}")
        return row

    @staticmethod
    def _reviews_of(conn: Connection, ids: Sequence[str]) -> dict[str, list[ReviewRecord]]:
        out: dict[str, list[ReviewRecord]] = {}
        for start in range(0, len(ids), sql.IN_CHUNK):
            for r in conn.execute(sql.REVIEWS_OF, {"ids": list(ids[start : start + sql.IN_CHUNK])}):
                out.setdefault(r.item_id, []).append(
                    record(r.reviewer, r.decision, r.payload, r.submitted_at)
                )
        return out

    def _judge_item(self, item_id: str) -> None:  # review_queue.holds
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:  # review_queue.results
        raise NotImplementedError
