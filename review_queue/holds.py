"""Strata held back from reviewers: judged after every decision (review_queue.strata.HoldPolicy), or by hand.

A held stratum's open items are not pulled; items under an unexpired lease stay with their
reviewer and are swept at the next decision. A maintainer's release puts them back, and the
stratum is judged afresh from then on.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Connection

from review_queue import audit, sql
from review_queue.audit import Event
from review_queue.errors import Conflict, NotFound
from review_queue.store_base import StoreBase
from review_queue.strata import Stratum, wilson


class HoldOps(StoreBase):
    @staticmethod
    def _decisions(conn: Connection, stratum: str | None = None) -> dict[str, list[tuple[str, float]]]:
        """(decision, submitted_at) of every review and arbitration, by stratum (one stratum, if given)."""
        out: dict[str, list[tuple[str, float]]] = {}
        stmts, params = (
            (sql.STRATA_DECISIONS, {}) if stratum is None else (sql.STRATUM_DECISIONS, {"stratum": stratum})
        )
        for q in stmts:
            for s, d, at in conn.execute(q, params):
                out.setdefault(s, []).append((d, at))
        return out

    def _judge_item(self, item_id: str) -> None:
        """After a decision: hold the item's stratum if the policy says so (nothing when no policy is set)."""
        if self.hold is None:
            return
        with self.engine.connect() as conn:
            key = conn.execute(sql.STRATUM_OF_ITEM, {"id": item_id}).scalar()
            row = conn.execute(sql.STRATUM, {"stratum": key}).first() if key else None
            if row is None:
                return
            if row.held_at is not None:
                stragglers = conn.execute(sql.OPEN_IN_STRATUM, {"stratum": key}).scalar()
            else:
                since = row.released_at or -1e18
                found = [d for d, at in self._decisions(conn, key).get(key, []) if at > since]
        if row.held_at is not None:  # (outside the read: on SQLite every transaction holds the write lock)
            if stragglers:  # items leased when it was held, released or expired since
                self._hold(key, json.loads(row.hold_detail or "{}"), "system", again=True)
            return
        approved = sum(d != "reject" for d in found)
        hold, upper = self.hold.judge(approved, len(found))
        if hold:
            self._hold(
                key,
                {
                    "decisions": len(found),
                    "approved": approved,
                    "upper": round(upper, 4),
                    "threshold": self.hold.threshold,
                    "min_decisions": self.hold.min_decisions,
                },
                "system",
            )

    def hold_stratum(self, stratum: str, *, actor: str) -> int:
        """Hold a stratum by hand (a maintainer); returns how many open items were held."""
        return self._hold(stratum, {"by_hand": True}, actor)

    def _hold(self, stratum: str, detail: dict[str, Any], actor: str, *, again: bool = False) -> int:
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(sql.LOCK_STRATUM, {"stratum": stratum}).first()
            if row is None:
                raise NotFound(f"unknown stratum {stratum!r}")
            if row.held_at is not None and not again:
                raise Conflict(f"stratum {stratum!r} is already held")
            if row.held_at is None:
                conn.execute(
                    sql.HOLD_STRATUM,
                    {
                        "s_key": stratum,
                        "s_at": now,
                        "s_detail": json.dumps(detail, ensure_ascii=False, sort_keys=True),
                    },
                )
            ids = conn.execute(sql.LOCK_HOLDABLE, {"stratum": stratum, "now": now}).scalars().all()
            for start in range(0, len(ids), sql.IN_CHUNK):
                conn.execute(sql.HOLD_ITEMS, {"ids": list(ids[start : start + sql.IN_CHUNK])})
            events = (
                []
                if again
                else [
                    Event(
                        actor,
                        "hold",
                        None,
                        {"stratum": stratum, "held": False},
                        {"stratum": stratum, "held": True, "items": len(ids), **detail},
                    )
                ]
            )
            events += [
                Event(actor, "hold", i, {"status": "open"}, {"status": "held", "stratum": stratum})
                for i in ids
            ]
            if events:
                audit.append(conn, events, at=now)
        return len(ids)

    def release_stratum(self, stratum: str, *, actor: str) -> int:
        """A maintainer puts a held stratum's items back in the pool; it is judged afresh from now on."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(sql.LOCK_STRATUM, {"stratum": stratum}).first()
            if row is None:
                raise NotFound(f"unknown stratum {stratum!r}")
            if row.held_at is None:
                raise Conflict(f"stratum {stratum!r} is not held")
            conn.execute(sql.UNHOLD_STRATUM, {"s_key": stratum, "s_at": now, "s_by": actor})
            ids = conn.execute(sql.LOCK_HELD, {"stratum": stratum}).scalars().all()
            for start in range(0, len(ids), sql.IN_CHUNK):
                conn.execute(sql.REOPEN_ITEMS, {"ids": list(ids[start : start + sql.IN_CHUNK])})
            audit.append(
                conn,
                [
                    Event(
                        actor,
                        "unhold",
                        None,
                        {"stratum": stratum, "held": True},
                        {"stratum": stratum, "held": False, "items": len(ids)},
                    ),
                    *(Event(actor, "unhold", i, {"status": "held"}, {"status": "open"}) for i in ids),
                ],
                at=now,
            )
        return len(ids)

    def strata_report(self) -> list[dict[str, Any]]:
        """Every stratum: items by status, decisions and approval (Wilson bounds), hold state, review minutes."""
        z = self.hold.z if self.hold else 1.96
        with self.engine.connect() as conn:
            rows = conn.execute(sql.ALL_STRATA).all()
            by_status: dict[str, dict[str, int]] = {}
            for s, st, n in conn.execute(sql.ITEMS_BY_STRATUM_STATUS):
                by_status.setdefault(s, {})[st] = n
            found = self._decisions(conn)
        time = self.stats()["time"]["strata"]
        out = []
        for r in rows:
            ds = found.get(r.stratum, [])
            since = r.released_at or -1e18
            recent = [d for d, at in ds if at > since]
            approved = sum(d != "reject" for d, _ in ds)
            lo, hi = wilson(sum(d != "reject" for d in recent), len(recent), z)
            t = time.get(r.stratum, {})
            out.append(
                {
                    "stratum": r.stratum,
                    **Stratum.parse(r.stratum).__dict__,
                    "items": by_status.get(r.stratum, {}),
                    "decisions": len(ds),
                    "approved": approved,
                    "approval": round(approved / len(ds), 4) if ds else None,
                    "since_release": len(recent),
                    "wilson_low": round(lo, 4),
                    "wilson_high": round(hi, 4),
                    "held": r.held_at is not None,
                    "held_items": by_status.get(r.stratum, {}).get("held", 0),
                    "held_at": r.held_at,
                    "hold_detail": json.loads(r.hold_detail) if r.hold_detail else None,
                    "released_at": r.released_at,
                    "released_by": r.released_by,
                    "review_minutes": t.get("minutes", 0.0),
                    "mean_seconds": t.get("mean_seconds"),
                    "minutes_per_approved": t.get("minutes_per_approved"),
                }
            )
        return out
