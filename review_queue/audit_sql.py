"""The audit log's statements, by name: the hash-chained log and its heads, and the paged reads of
review_queue.reconcile.

Split from review_queue.sql (the queue's own statements) so neither module grows past a screenful of
subjects; the rule is the same for both: nothing else in review_queue builds SQL
(tests/review_queue/test_sql.py). `FREE_HEAD`, `ONE_HEAD`, `NEW_HEAD`, `AUDIT_ARRAY_INSERT` and
`with_writes` are PostgreSQL only; SQLite appends with `SQLITE_HEAD` and `AUDIT_INSERT` (one writer at a
time, chain 1).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from review_queue.db import audit_head, audit_log, audit_meta

# ------------------------------------------------------------------ audit log

AUDIT_MARKER = sa.select(audit_meta).where(audit_meta.c.id == 1)
AUDIT_HEADS = sa.select(audit_head)
AUDIT_ROWS_AFTER = (
    sa.select(audit_log)
    .where(audit_log.c.seq > sa.bindparam("after"))
    .order_by(audit_log.c.seq)
    .limit(sa.bindparam("chunk", type_=sa.Integer))
)
AUDIT_INSERT = audit_log.insert()  # executemany, one dict of AUDIT_FIELDS per row
# SQLite has one writer at a time (BEGIN IMMEDIATE): chain 1, and seq follows the largest one.
SQLITE_HEAD = sa.select(
    audit_head.c.id,
    audit_head.c.hash,
    sa.select(sa.func.coalesce(sa.func.max(audit_log.c.seq), 0)).scalar_subquery(),
).where(audit_head.c.id == 1)

# Each statement has a fixed shape, so SQLAlchemy compiles it once and PostgreSQL prepares it:
# up to AUDIT_VALUES_MAX rows as VALUES with one parameter per field, more as one array per column.
_AUDIT_COLUMNS = [
    ("seq", sa.BigInteger),
    ("at", sa.Text),
    ("actor", sa.Text),
    ("action", sa.Text),
    ("item_id", sa.Text),
    ("before", sa.Text),
    ("after", sa.Text),
    ("prev_hash", sa.Text),
    ("hash", sa.Text),
    ("chain", sa.Integer),
]
AUDIT_FIELDS = [c for c, _ in _AUDIT_COLUMNS]
AUDIT_VALUES_MAX = 4
AUDIT_ARRAY_INSERT = audit_log.insert().from_select(
    AUDIT_FIELDS,
    sa.select(
        *[
            sa.func.unnest(sa.bindparam(f"audit_{c}", type_=postgresql.ARRAY(t))).label(c)
            for c, t in _AUDIT_COLUMNS
        ]
    ),
)


@functools.cache
def audit_values_insert(n: int) -> Any:
    """Insert `n` audit rows given as scalar parameters a{i}_{field}."""
    return audit_log.insert().values(
        [{c: sa.bindparam(f"a{i}_{c}", type_=t) for c, t in _AUDIT_COLUMNS} for i in range(n)]
    )


HEAD_UPDATE = (
    audit_head.update()
    .where(audit_head.c.id == sa.bindparam("head_id"))
    .values(seq=sa.bindparam("head_seq"), hash=sa.bindparam("head_hash"))
)
# The same, also setting synchronous_commit=off for the rest of the transaction (SET LOCAL in the
# statement that is sent anyway, instead of one more round trip).
_HEAD_UPDATE_NO_FLUSH_WAIT = HEAD_UPDATE.where(
    sa.func.set_config("synchronous_commit", "off", sa.true()).is_not(None)
)

# Lock the first free head; the sequence is read only after the lock is held (MATERIALIZED), so
# within one chain seq grows in commit order.
FREE_HEAD = sa.text(
    "WITH h AS MATERIALIZED (SELECT id, hash FROM audit_head ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "SELECT h.id, h.hash, ARRAY(SELECT nextval('audit_log_seq') FROM generate_series(1, :n)) AS seqs FROM h"
)
ONE_HEAD = sa.text(
    "WITH h AS MATERIALIZED (SELECT id, hash FROM audit_head WHERE id = :id FOR UPDATE) "
    "SELECT h.id, h.hash, ARRAY(SELECT nextval('audit_log_seq') FROM generate_series(1, :n)) AS seqs FROM h"
)
# Every head is locked: start a new chain (its head row, inserted by this transaction, is locked by it)
# rather than wait behind a transaction that may itself be waiting for its client.
NEW_HEAD = sa.text(
    "WITH h AS (INSERT INTO audit_head (id, seq, hash) SELECT coalesce(max(id), 0) + 1, 0, :genesis "
    "FROM audit_head HAVING coalesce(max(id), 0) < :max_chains ON CONFLICT (id) DO NOTHING RETURNING id, hash) "
    "SELECT h.id, h.hash, ARRAY(SELECT nextval('audit_log_seq') FROM generate_series(1, :n)) AS seqs FROM h"
)

_COMBINED: dict[tuple[int, ...], tuple[tuple[Any, ...], Any]] = {}
_BUILDING = threading.Lock()
_MAX_COMBINED = 256


def with_writes(writes: tuple[Any, ...], insert: Any, durable: bool = True) -> Any:
    """PostgreSQL: the head update with the caller's writes and the audit insert as CTEs (one statement),
    built once per set of statements."""
    key = (*map(id, (*writes, insert)), durable)
    hit = _COMBINED.get(key)
    if hit is None:
        with _BUILDING:  # one thread builds it; the others at a cold start wait instead of each building it
            return _build_combined(key, writes, insert, durable)
    return hit[1]


def _build_combined(key: tuple[Any, ...], writes: tuple[Any, ...], insert: Any, durable: bool) -> Any:
    hit = _COMBINED.get(key)
    if hit is None:
        stmt = HEAD_UPDATE if durable else _HEAD_UPDATE_NO_FLUSH_WAIT
        for i, w in enumerate([*writes, insert]):
            stmt = stmt.add_cte(w.cte(f"w{i}"))
        if len(_COMBINED) >= _MAX_COMBINED:  # statements built per call: do not keep them
            return stmt
        hit = _COMBINED.setdefault(
            key, ((*writes, insert), stmt)
        )  # keeps them alive, so their ids stay unique
    return hit[1]


# ------------------------------------------------------------------ verify (review_queue.reconcile)


@functools.cache
def table_page(table: sa.Table, key: str, after: bool) -> Any:
    """A chunk (`chunk`) of a table's rows in `key` order; with `after`, those past the key `last`."""
    col = table.c[key]
    q = sa.select(table).order_by(col).limit(sa.bindparam("chunk", type_=sa.Integer))
    return q.where(col > sa.bindparam("last")) if after else q
