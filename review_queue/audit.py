"""Append-only, hash-chained audit log.

Each row's hash covers its own content and the previous row's hash, so editing a row
breaks its hash and deleting one breaks the chain (or the head, for the newest rows).
Appends lock the single head row, which serialises them in commit order; callers
append as the last step of their transaction to hold that lock briefly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from review_queue.db import audit_head, audit_log

GENESIS = "0" * 64


@dataclass(frozen=True)
class Event:
    actor: str
    action: str  # push | lease | extend | release | expire | submit | arbitrate | export | user
    item_id: str | None = None
    before: Any = None
    after: Any = None


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def row_hash(seq: int, at: str, actor: str, action: str, item_id: str | None, before: str | None,
             after: str | None, prev_hash: str) -> str:
    payload = json.dumps([seq, at, actor, action, item_id, before, after, prev_hash], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def append(conn: Connection, events: list[Event], *, at: float) -> None:
    """Append events inside the caller's transaction (locks the head row until commit)."""
    if not events:
        return
    head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
                        .with_for_update()).one()
    seq, prev = int(head.seq), head.hash
    stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")
    rows = []
    for ev in events:
        seq += 1
        before, after = _dump(ev.before), _dump(ev.after)
        h = row_hash(seq, stamp, ev.actor, ev.action, ev.item_id, before, after, prev)
        rows.append({"seq": seq, "at": stamp, "actor": ev.actor, "action": ev.action, "item_id": ev.item_id,
                     "before": before, "after": after, "prev_hash": prev, "hash": h})
        prev = h
    conn.execute(audit_log.insert(), rows)
    conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=seq, hash=prev))


@dataclass
class VerifyResult:
    rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _iter_rows(engine: Engine, chunk: int = 5000) -> Iterator[sa.Row[Any]]:
    last = 0
    with engine.connect() as conn:
        while True:
            batch = conn.execute(sa.select(audit_log).where(audit_log.c.seq > last)
                                 .order_by(audit_log.c.seq).limit(chunk)).all()
            if not batch:
                return
            yield from batch
            last = batch[-1].seq


def verify(engine: Engine, *, max_problems: int = 100) -> VerifyResult:
    """Recompute the whole chain; report every edited, deleted or reordered row (up to max_problems)."""
    res = VerifyResult()
    expected_seq, prev = 1, GENESIS
    for r in _iter_rows(engine):
        res.rows += 1
        if r.seq != expected_seq:
            res.problems.append(f"rows {expected_seq}..{r.seq - 1} are missing (deleted)")
        if r.prev_hash != prev:
            res.problems.append(f"row {r.seq}: prev_hash does not match the row before it")
        if row_hash(r.seq, r.at, r.actor, r.action, r.item_id, r.before, r.after, r.prev_hash) != r.hash:
            res.problems.append(f"row {r.seq}: content does not match its hash (edited)")
        expected_seq, prev = r.seq + 1, r.hash
        if len(res.problems) >= max_problems:
            return res
    with engine.connect() as conn:
        head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).one()
    if head.seq != expected_seq - 1 or head.hash != prev:
        res.problems.append(f"chain ends at row {expected_seq - 1} but the head records row {head.seq} "
                            "(newest rows deleted or head edited)")
    return res


def export_jsonl(engine: Engine, out: TextIO) -> int:
    """Write every row as one JSON object per line (before/after decoded); returns the row count."""
    n = 0
    for r in _iter_rows(engine):
        rec = dict(r._mapping)
        for key in ("before", "after"):
            rec[key] = None if rec[key] is None else json.loads(rec[key])
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        n += 1
    return n
