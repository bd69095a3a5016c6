"""Execute the queue's prebuilt statements on PostgreSQL straight through psycopg.

The hot paths (pull, submit, audit append) use statements built once at import time. Going
through `Connection.execute` still costs SQLAlchemy's per-execution work (cache lookup,
execution context, result wrapping), about 0.1 ms per statement; at three statements per
operation that was a third of the client's time under 64 reviewers. Here a statement is
compiled once per dialect and run on a cursor kept with the pooled psycopg connection,
inside the caller's transaction; rows come back as plain tuples wrapped in a named tuple
class made once per statement (psycopg's own row factories rebuild the column
descriptions on every fetch). Statements with expanding IN parameters go through
SQLAlchemy as usual.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Compiled, Connection


@dataclass
class _Prepared:
    stmt: Any  # kept alive so its id stays unique
    compiled: Compiled
    row: Any = None  # the named tuple class, made at the first result


_PREPARED: dict[tuple[int, int], _Prepared] = {}
_IDLE = 0  # libpq PQTRANS_IDLE: no transaction open yet (psycopg.pq.TransactionStatus.IDLE)
_CURSOR = "review_queue.pgfast.cursor"
_COMPILING = threading.Lock()


def prepare(stmt: Any, dialect: Any) -> _Prepared:
    """`stmt` compiled for `dialect`, once: concurrent first callers wait for one compile, not each do it.

    At a cold start every reviewer thread used to compile the same statements at the same moment;
    under load those first operations took seconds and were the whole p99 of bench/queue_bench.py.
    """
    key = (id(stmt), id(dialect))
    prep = _PREPARED.get(key)
    if prep is None:
        with _COMPILING:
            prep = _PREPARED.get(key)
            if prep is None:
                prep = _PREPARED[key] = _Prepared(stmt, stmt.compile(dialect=dialect))
    return prep


def execute(conn: Connection, stmt: Any, params: dict[str, Any]) -> list[Any]:
    """Run `stmt` with named `params` in the connection's transaction; returns all rows (empty for no result)."""
    prep = prepare(stmt, conn.dialect)
    if prep.compiled.post_compile_params:
        return conn.execute(stmt, params).all()
    pooled = conn.connection
    cur = pooled.info.get(_CURSOR)
    if cur is None:
        cur = pooled.info[_CURSOR] = pooled.driver_connection.cursor()  # type: ignore[union-attr]
    drv = pooled.driver_connection
    if drv.pgconn.transaction_status == _IDLE:  # type: ignore[union-attr]
        # The transaction's first statement: psycopg would send BEGIN alone and wait for it; in a
        # pipeline BEGIN and the statement go together, one round trip fewer per transaction.
        with drv.pipeline():  # type: ignore[union-attr]
            cur.execute(prep.compiled.string, prep.compiled.construct_params(params))
    else:
        cur.execute(prep.compiled.string, prep.compiled.construct_params(params))
    res = cur.pgresult
    if res is None or not res.nfields:  # no result set; not `cur.description`, which builds Column objects
        return []
    if prep.row is None:
        prep.row = namedtuple("Row", [d.name for d in cur.description], rename=True)  # type: ignore[misc]
    make = prep.row._make
    return [make(r) for r in cur.fetchall()]
