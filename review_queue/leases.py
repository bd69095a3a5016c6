"""Leases: pull (reviews and arbitration), extend, release, expire; the per-person cap and the pull quotas.

One person holds at most `max_leased` unexpired leases (a pull returns at most the cap minus
what they hold), and extensions never take a lease past `lease_limit_seconds` after its pull.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

from medaug.schema import Sample
from review_queue import audit, pgfast, sql
from review_queue.audit import Event
from review_queue.errors import Conflict, NotFound, NotYours, QueueError
from review_queue.records import LeasedItem, ReviewRecord
from review_queue.store_base import StoreBase

# Leases (pull, extend, release, expire) are reservations that expire anyway, not decisions, so their
# commits do not wait for the WAL flush on PostgreSQL: a server crash can forget the last few of them
# (each with its audit rows, one transaction, so the chain stays whole) and their holders pull again.
# What rests on a lease (a submit, an arbitration) commits durably, and that flush writes the WAL up
# to and including every earlier commit, so a durable decision never rests on a forgotten lease.
# Waiting for the flush was half the commits of a pull+submit cycle (bench/queue_bench.py).
LEASES_DURABLE = False


def _as_list(v: str | Sequence[str] | None) -> list[str] | None:
    if v is None:
        return None
    return [v] if isinstance(v, str) else list(v)


class LeaseOps(StoreBase):
    def pull(
        self,
        reviewer: str,
        size: int = 10,
        *,
        area: str | Sequence[str] | None = None,
        task: str | Sequence[str] | None = None,
        label: str | Sequence[str] | None = None,
    ) -> list[LeasedItem]:
        """Lease up to `size` open items this reviewer has not reviewed, highest priority first."""
        filters = {
            name: values
            for name, values in (
                ("area", _as_list(area)),
                ("task", _as_list(task)),
                ("label", _as_list(label)),
            )
            if values
        }
        return self._lease(reviewer, size, filters, arbitration=False)

    def pull_arbitration(self, arbiter: str, size: int = 10) -> list[LeasedItem]:
        """Lease disputed items this arbiter did not review; they come with both reviews."""
        return self._lease(arbiter, size, {}, arbitration=True)

    def _lease(
        self, who: str, size: int, filters: dict[str, list[str]], *, arbitration: bool
    ) -> list[LeasedItem]:
        if not 1 <= size <= 500:
            raise QueueError(f"batch size must be 1-500, got {size}")
        now = self.clock()
        expires = now + self.lease_seconds
        params = {
            "p_who": who,
            "p_now": now,
            "p_size": size,
            "p_cap": self.max_leased,
            "l_owner": who,
            "l_started": now,
            "l_expires": expires,
            **{f"p_{name}": values for name, values in filters.items()},
        }
        rank = () if arbitration else self._rank_params(params)
        stmt = sql.lease_statement(
            self._pg, arbitration, tuple(sorted(filters)), rank, self.order.test_models_last
        )
        with self.engine.begin() as conn:
            if self._pg:  # pick, lock and lease in one statement; RETURNING has no order, so sort here
                rows = pgfast.execute(conn, stmt, params)  # its LIMIT is queue_lease_room(): cap minus held
                rows.sort(key=lambda r: (r.pick_rank, -r.priority, r.pushed_at, r.id))
            else:  # one writer at a time: nothing can take the rows between the statements
                params["p_size"] = min(size, self.max_leased - self._held(conn, who, now))
                rows = conn.execute(stmt, params).all() if params["p_size"] > 0 else []
                if rows:
                    conn.execute(
                        sql.LEASE_PICKED,
                        {"ids": [r.id for r in rows], "l_owner": who, "l_started": now, "l_expires": expires},
                    )
            if not rows:
                held = self._held(conn, who, now)
                if held >= self.max_leased:
                    raise Conflict(
                        f"{who} holds {held} leased items, the most one person may hold "
                        f"({self.max_leased}); submit or release some first"
                    )
                return []
            ids = [r.id for r in rows]
            events = [
                Event(
                    "system",
                    "expire",
                    r.id,
                    {"lease_owner": r.old_owner, "lease_expires": r.old_expires},
                    {"lease_owner": None},
                )
                for r in rows
                if r.old_owner is not None
            ]
            events += [
                Event(
                    who,
                    "lease",
                    r.id,
                    {"lease_owner": None},
                    {"lease_owner": who, "lease_expires": expires, "status": r.status},
                )
                for r in rows
            ]
            found = self._reviews_of(conn, ids) if arbitration else {}
            audit.append(conn, events, at=now, durable=LEASES_DURABLE)
        return [
            LeasedItem(
                r.id,
                Sample.model_validate_json(r.sample_json),
                json.loads(r.parent_json) if r.parent_json else None,
                r.status,
                expires,
                found.get(r.id, []),
            )
            for r in rows
        ]

    def _rank_params(self, params: dict[str, Any]) -> tuple[str, ...]:
        """Fill the quota parameters of a pull (values whose quota is unmet); returns the quota keys used."""
        if not self.order.quotas:
            return ()
        at, deficits = self._deficits
        now = self.clock()
        if now - at > self.order.refresh_seconds:
            approved: dict[str, dict[str, int]] = {}
            with self.engine.connect() as conn:
                for key in self.order.quotas:
                    approved[key] = dict(conn.execute(sql.approved_by(key)).all())
            deficits = self.order.deficits(approved)
            self._deficits = (now, deficits)
        for key, values in deficits.items():
            params[f"q_{key}"] = values
        return tuple(sorted(deficits))

    def _held(self, conn: Connection, who: str, now: float) -> int:
        """Unexpired leases `who` holds (what the cap counts)."""
        params = {"h_who": who, "h_now": now}
        found = (
            pgfast.execute(conn, sql.HELD_LEASES, params)
            if self._pg
            else conn.execute(sql.HELD_LEASES, params).all()
        )
        return int(found[0][0])

    def my_items(self, who: str) -> list[LeasedItem]:
        """The caller's unexpired leases (what the page lists after a reload)."""
        now = self.clock()
        with self.engine.connect() as conn:
            rows = conn.execute(sql.MY_LEASES, {"who": who, "now": now}).all()
            disputed = self._reviews_of(conn, [r.id for r in rows if r.status == "arbitration"])
        return [self._leased(r, disputed.get(r.id, [])) for r in rows]

    def get_leased(self, who: str, item_id: str) -> LeasedItem:
        """One item, only for the holder of its lease; reviews are included only in arbitration."""
        with self.engine.connect() as conn:
            row = conn.execute(sql.ITEM, {"id": item_id}).first()
            if row is None:
                raise NotFound(f"unknown item {item_id}")
            self._check_lease(row, who)
            found = self._reviews_of(conn, [item_id]) if row.status == "arbitration" else {}
        return self._leased(row, found.get(item_id, []))

    @staticmethod
    def _leased(row: Any, found: list[ReviewRecord]) -> LeasedItem:
        return LeasedItem(
            row.id,
            Sample.model_validate_json(row.sample_json),
            json.loads(row.parent_json) if row.parent_json else None,
            row.status,
            row.lease_expires,
            found,
        )

    def extend(self, who: str, item_id: str, seconds: float | None = None) -> float:
        """Push the lease expiry to now + seconds (at most the standard lease length, and never beyond
        lease_limit_seconds after the pull: an item cannot be held indefinitely)."""
        secs = self.lease_seconds if seconds is None else min(max(float(seconds), 1.0), self.lease_seconds)
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._lock(conn, item_id)
            self._check_lease(row, who)
            limit = (row.lease_started if row.lease_started is not None else now) + self.lease_limit_seconds
            expires = min(now + secs, limit)
            if now + secs > limit and expires <= row.lease_expires:
                raise Conflict(
                    f"the lease of {who} on item {item_id} already lasts the most a lease may "
                    f"({self.lease_limit_seconds:.0f} s from the pull); submit or release it"
                )
            conn.execute(sql.EXTEND_LEASE, {"e_id": item_id, "e_expires": expires})
            audit.append(
                conn,
                [
                    Event(
                        who,
                        "extend",
                        item_id,
                        {"lease_expires": row.lease_expires},
                        {"lease_expires": expires},
                    )
                ],
                at=now,
                durable=LEASES_DURABLE,
            )
        return expires

    def release(self, who: str, item_id: str) -> None:
        """Give an item back to the pool unreviewed."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._lock(conn, item_id)
            if row.lease_owner != who:
                raise NotYours(f"item {item_id} is not leased to {who}")
            conn.execute(sql.END_LEASES, {"ids": [item_id]})
            audit.append(
                conn,
                [Event(who, "release", item_id, {"lease_owner": who}, {"lease_owner": None})],
                at=now,
                durable=LEASES_DURABLE,
            )

    def expire_leases(self) -> int:
        """Return every expired lease to the pool (pull also takes expired items directly)."""
        now = self.clock()
        with self.engine.begin() as conn:
            rows = conn.execute(sql.LOCK_EXPIRED_LEASES, {"now": now}).all()
            if not rows:
                return 0
            conn.execute(sql.END_LEASES, {"ids": [r.id for r in rows]})
            audit.append(
                conn,
                [
                    Event(
                        "system",
                        "expire",
                        r.id,
                        {"lease_owner": r.lease_owner, "lease_expires": r.lease_expires},
                        {"lease_owner": None},
                    )
                    for r in rows
                ],
                at=now,
                durable=LEASES_DURABLE,
            )
        return len(rows)
