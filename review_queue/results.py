"""What the queue has produced: final items with their reviews, counts, review statistics, the audit log.

Blind review, for every role: nobody reads an item's decisions before submitting their own
review of it. An audit export for someone who may review (the service passes every caller
whose role has `review`, e.g. admin) leaves out every row about an item they could still
review (not yet in arbitration or final, and not reviewed by them). Such an item becomes
readable to them once they have reviewed it or it has gone to arbitration or final, and never
goes back. Verify's messages name rows and fields, never a decision.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy.engine import Connection

from medaug.schema import Sample
from review_queue import audit, sql
from review_queue.audit import Event
from review_queue.records import FinalItem, ReviewRecord, record, ts
from review_queue.stats import compute, seconds_per_item, time_accounting
from review_queue.store_base import StoreBase


class ResultOps(StoreBase):
    def finalized(self, since: datetime | None = None) -> list[FinalItem]:
        """Every final item (finalised after `since`), oldest first, with its reviews and arbitration."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(sql.FINAL_ITEMS)
                if since is None
                else conn.execute(sql.FINAL_ITEMS_SINCE, {"since": since.timestamp()})
            ).all()
            ids = [r.id for r in rows]
            found = self._reviews_of(conn, ids)
            arb: dict[str, ReviewRecord] = {}
            for start in range(0, len(ids), sql.IN_CHUNK):
                for a in conn.execute(sql.ARBITRATIONS_OF, {"ids": ids[start : start + sql.IN_CHUNK]}):
                    arb[a.item_id] = record(a.arbiter, a.decision, a.payload, a.submitted_at)
        return [
            FinalItem(
                r.id,
                r.run_id,
                Sample.model_validate_json(r.final_json),
                r.outcome,
                r.outcome == "rejected",
                found.get(r.id, []),
                arb.get(r.id),
                ts(r.finalized_at),
            )
            for r in rows
        ]

    def counts(self) -> dict[str, int]:
        """Items per status (open | arbitration | final)."""
        with self.engine.connect() as conn:
            return dict(conn.execute(sql.ITEMS_BY_STATUS).all())

    def stats(self) -> dict[str, Any]:
        # One snapshot for all queries, so every pair read has both of its reviews.
        opts = {"isolation_level": "REPEATABLE READ"} if self._pg else {}
        with self.engine.connect().execution_options(**opts) as conn:
            status = dict(conn.execute(sql.ITEMS_BY_STATUS).all())
            outcome = dict(conn.execute(sql.FINAL_BY_OUTCOME).all())
            revs = [tuple(r) for r in conn.execute(sql.REVIEW_TIMES)]
            pairs = [tuple(r) for r in conn.execute(sql.REVIEW_PAIRS)]
            kinds = dict(conn.execute(sql.ITEM_STRATA).all())
            usable = dict(conn.execute(sql.USABLE_BY_STRATUM).all())
        return {
            "items": status,
            "outcomes": outcome,
            **compute(revs, pairs, self.idle_seconds),  # type: ignore[arg-type]
            "time": time_accounting(revs, kinds, usable, self.idle_seconds),
        }  # type: ignore[arg-type]

    def review_seconds(self) -> dict[str, float]:
        """Active review seconds per item (lease or the reviewer's previous submit to submit, idle capped)."""
        with self.engine.connect() as conn:
            revs = [tuple(r) for r in conn.execute(sql.REVIEW_TIMES)]
        return seconds_per_item(revs, self.idle_seconds)  # type: ignore[arg-type]

    def audit_verify(self) -> audit.VerifyResult:
        return audit.verify(self.engine)

    def audit_export(self, out: TextIO, *, actor: str, blind_for: str | None = None) -> int:
        """Export the log; the export itself is recorded first, so the file includes it.

        Blind review: with `blind_for` (the service passes every caller whose role may review),
        rows about items that person could still review are left out, so nobody reads an item's
        decisions before submitting their own. Returns the rows written.
        """
        now = self.clock()
        after: dict[str, Any] = {"format": "jsonl"} | ({"blind_for": blind_for} if blind_for else {})
        with self.engine.begin() as conn:
            audit.append(conn, [Event(actor, "export", None, None, after)], at=now)
        hide = None if blind_for is None else functools.partial(self.reviewable_by, blind_for)
        return audit.export_jsonl(self.engine, out, hide=hide)

    @staticmethod
    def reviewable_by(who: str, conn: Connection, ids: Iterable[str]) -> set[str]:
        """Of `ids`, the items `who` could still review: not yet past review (any status before
        arbitration/final, so one held back and reopened later counts too) and not reviewed by them."""
        ids = list(ids)
        out: set[str] = set()
        for start in range(0, len(ids), sql.IN_CHUNK):
            out.update(
                conn.execute(
                    sql.REVIEWABLE_BY, {"ids": ids[start : start + sql.IN_CHUNK], "who": who}
                ).scalars()
            )
        return out
