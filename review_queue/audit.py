"""Append-only, hash-chained audit log.

Each row's hash covers its own content (including its global `seq`) and the hash of the
previous row of its chain, so editing a row breaks its hash and deleting one breaks its
chain (or its chain's head, for the newest rows). There are several chains: a writer
locks any unlocked head (`SKIP LOCKED`) as the last step of its transaction, so writers
on different heads commit in parallel instead of queueing behind one lock until each
commit's WAL flush. Rows of the same item are still in commit order by `seq`, because
the item's row lock orders those transactions and `seq` is drawn under the head lock.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from review_queue import pgfast
from review_queue.db import AUDIT_CHAINS, audit_head, audit_log

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


Write = tuple[Any, dict[str, Any]]  # a statement with named bind parameters, and their values


def append(conn: Connection, events: list[Event], *, at: float, writes: Sequence[Write] = ()) -> None:
    """Append events inside the caller's transaction, after the caller's own `writes`.

    On PostgreSQL the writes, the audit rows and the head update go to the server as one
    statement (data-modifying CTEs), so the append and the writes cost two round trips. The
    writes' bind parameter names must be distinct from each other and from `audit_*`, `head_*`.
    """
    pg = conn.dialect.name == "postgresql"
    if not events or not pg:
        for stmt, params in writes:
            conn.execute(stmt, params)
        if not events:
            return
    chain, prev, seqs = _lock_head(conn, len(events)) if pg else _lock_head_sqlite(conn, len(events))
    stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")
    rows = []
    for seq, ev in zip(seqs, events, strict=True):
        before, after = _dump(ev.before), _dump(ev.after)
        h = row_hash(seq, stamp, ev.actor, ev.action, ev.item_id, before, after, prev)
        rows.append((seq, stamp, ev.actor, ev.action, ev.item_id, before, after, prev, h, chain))
        prev = h
    head = {"head_id": chain, "head_seq": seqs[-1], "head_hash": prev}
    if not pg:
        conn.execute(audit_log.insert(), [dict(zip(_NAMES, r, strict=True)) for r in rows])
        conn.execute(_HEAD_UPDATE, head)
        return
    if len(rows) <= _VALUES_MAX:  # scalar parameters: cheaper to send than ten one-element arrays
        params = {f"a{i}_{c}": v for i, r in enumerate(rows) for c, v in zip(_NAMES, r, strict=True)}
        insert = _values_insert(len(rows))
    else:
        params = {f"audit_{c}": list(col) for c, col in zip(_NAMES, zip(*rows, strict=True), strict=True)}
        insert = _ARRAY_INSERT
    params |= head
    for _, p in writes:
        params |= p
    pgfast.execute(conn, _combined(tuple(stmt for stmt, _ in writes), insert), params)


_COMBINED: dict[tuple[int, ...], tuple[tuple[Any, ...], Any]] = {}
_MAX_COMBINED = 256


def _combined(writes: tuple[Any, ...], insert: Any) -> Any:
    """The head update with the writes and the audit insert as CTEs, built once per set of statements."""
    key = tuple(map(id, (*writes, insert)))
    hit = _COMBINED.get(key)
    if hit is None:
        stmt = _HEAD_UPDATE
        for i, w in enumerate([*writes, insert]):
            stmt = stmt.add_cte(w.cte(f"w{i}"))
        if len(_COMBINED) >= _MAX_COMBINED:  # statements built per call: do not keep them
            return stmt
        hit = _COMBINED.setdefault(key, ((*writes, insert), stmt))  # keeps them alive, so their ids stay unique
    return hit[1]


# Each statement has a fixed shape, so SQLAlchemy compiles it once and PostgreSQL prepares it:
# up to _VALUES_MAX rows as VALUES with one parameter per field, more as one array per column.
_COLUMNS = [("seq", sa.BigInteger), ("at", sa.Text), ("actor", sa.Text), ("action", sa.Text), ("item_id", sa.Text),
            ("before", sa.Text), ("after", sa.Text), ("prev_hash", sa.Text), ("hash", sa.Text), ("chain", sa.Integer)]
_NAMES = [c for c, _ in _COLUMNS]
_VALUES_MAX = 4
_ARRAY_INSERT = audit_log.insert().from_select(
    _NAMES,
    sa.select(*[sa.func.unnest(sa.bindparam(f"audit_{c}", type_=postgresql.ARRAY(t))).label(c) for c, t in _COLUMNS]))
_HEAD_UPDATE = (audit_head.update().where(audit_head.c.id == sa.bindparam("head_id"))
                .values(seq=sa.bindparam("head_seq"), hash=sa.bindparam("head_hash")))


@functools.cache
def _values_insert(n: int) -> Any:
    return audit_log.insert().values([{c: sa.bindparam(f"a{i}_{c}", type_=t) for c, t in _COLUMNS}
                                      for i in range(n)])


# Lock the first free head; the sequence is read only after the lock is held (MATERIALIZED), so
# within one chain seq grows in commit order.
_FREE_HEAD = sa.text(
    "WITH h AS MATERIALIZED (SELECT id, hash FROM audit_head ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "SELECT h.id, h.hash, ARRAY(SELECT nextval('audit_log_seq') FROM generate_series(1, :n)) AS seqs FROM h")
_ONE_HEAD = sa.text(
    "WITH h AS MATERIALIZED (SELECT id, hash FROM audit_head WHERE id = :id FOR UPDATE) "
    "SELECT h.id, h.hash, ARRAY(SELECT nextval('audit_log_seq') FROM generate_series(1, :n)) AS seqs FROM h")


def _lock_head(conn: Connection, n: int) -> tuple[int, str, list[int]]:
    rows = pgfast.execute(conn, _FREE_HEAD, {"n": n})
    if not rows:  # every head is busy: wait for one, picked at random to spread the waiters
        rows = pgfast.execute(conn, _ONE_HEAD, {"n": n, "id": random.randint(1, AUDIT_CHAINS)})
    row = rows[0]
    return int(row.id), row.hash, sorted(row.seqs)


def _lock_head_sqlite(conn: Connection, n: int) -> tuple[int, str, list[int]]:
    """SQLite has one writer at a time (BEGIN IMMEDIATE): chain 1, and seq follows the largest one."""
    row = conn.execute(sa.select(audit_head.c.id, audit_head.c.hash,
                                 sa.select(sa.func.coalesce(sa.func.max(audit_log.c.seq), 0)).scalar_subquery())
                       .where(audit_head.c.id == 1)).one()
    last = int(row[2])
    return 1, row.hash, list(range(last + 1, last + n + 1))


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
    """Recompute every chain; report every edited, deleted or reordered row (up to max_problems)."""
    res = VerifyResult()
    last: dict[int, tuple[int, str]] = {}  # chain -> (seq, hash) of its newest row so far
    for r in _iter_rows(engine):
        res.rows += 1
        prev_seq, prev = last.get(r.chain, (0, GENESIS))
        if r.prev_hash != prev:
            where = f"row {prev_seq}" if prev_seq else "the start of the chain"
            res.problems.append(f"row {r.seq}: prev_hash does not match {where} of chain {r.chain}: rows between "
                                "them are missing (deleted) or edited")
        if row_hash(r.seq, r.at, r.actor, r.action, r.item_id, r.before, r.after, r.prev_hash) != r.hash:
            res.problems.append(f"row {r.seq}: content does not match its hash (edited)")
        last[r.chain] = (r.seq, r.hash)
        if len(res.problems) >= max_problems:
            return res
    with engine.connect() as conn:
        heads = {h.id: (int(h.seq), h.hash) for h in conn.execute(sa.select(audit_head))}
    for chain in sorted(heads.keys() | last.keys()):
        end, want = last.get(chain, (0, GENESIS)), heads.get(chain)
        if want != end:
            recorded = "no head" if want is None else f"the head records row {want[0]}"
            res.problems.append(f"chain {chain} ends at row {end[0]} but {recorded} "
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
