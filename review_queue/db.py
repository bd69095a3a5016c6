"""Tables and engines of the queue store.

The tables are written out once more in the first Alembic migration (migrations must
not change when this module does); `tests/review_queue/test_migrations.py` checks
that both agree. Times are epoch seconds (float) so SQLite and PostgreSQL compare
them the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

items = sa.Table(
    "queue_items",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(200), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("area", sa.String(32), nullable=False),
    sa.Column("task", sa.String(32), nullable=False),
    sa.Column("label", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open | held | arbitration | final
    sa.Column("outcome", sa.String(16)),  # approved | corrected | rejected, once final
    sa.Column("agreed", sa.Boolean),  # did the two reviews agree (set at the second review)
    sa.Column("reviews_done", sa.Integer, nullable=False),
    sa.Column("first_reviewer", sa.String(100)),  # kept on the row so a locking pull re-checks it
    sa.Column("second_reviewer", sa.String(100)),
    sa.Column("lease_owner", sa.String(100)),
    sa.Column("lease_started", sa.Float),
    sa.Column("lease_expires", sa.Float),
    sa.Column("sample_json", sa.Text, nullable=False),
    sa.Column("parent_json", sa.Text),
    sa.Column("final_json", sa.Text),
    sa.Column("pushed_at", sa.Float, nullable=False),
    sa.Column("finalized_at", sa.Float),
    sa.Column(
        "stratum", sa.String(255)
    ),  # review_queue.strata: source|error_type|model|area (migration 0004)
    sa.Column("test_model", sa.Boolean, nullable=False, server_default=sa.false()),  # pulled last by default
    sa.Index("ix_queue_items_finalized", "finalized_at"),
    sa.Index("ix_queue_items_stratum", "stratum", "status"),
)

sa.Index(
    "ix_queue_items_pick",
    items.c.status,
    items.c.test_model,
    items.c.priority.desc(),
    items.c.pushed_at,
    items.c.id,
)  # pull order
sa.Index("ix_queue_items_lease_owner", items.c.lease_owner)  # counts a reviewer's leases against the cap

reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item_id", sa.String(64), sa.ForeignKey("queue_items.id"), nullable=False),
    sa.Column("reviewer", sa.String(100), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("leased_at", sa.Float, nullable=False),
    sa.Column("submitted_at", sa.Float, nullable=False),
    sa.UniqueConstraint("item_id", "reviewer", name="uq_reviews_item_reviewer"),
)

arbitrations = sa.Table(
    "arbitrations",
    metadata,
    sa.Column("item_id", sa.String(64), sa.ForeignKey("queue_items.id"), primary_key=True),
    sa.Column("arbiter", sa.String(100), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("submitted_at", sa.Float, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),  # set by `medaug queue user revoke`: the token stops working at once
)

# One row per stratum seen by a push; held_at is set while its items are held back from reviewers.
# A maintainer's release records how many decisions the stratum had, so it is judged afresh after.
strata = sa.Table(
    "queue_strata",
    metadata,
    sa.Column("stratum", sa.String(255), primary_key=True),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("held_at", sa.Float),
    sa.Column("hold_detail", sa.Text),  # JSON: decisions, approved, upper bound, threshold
    sa.Column("released_at", sa.Float),
    sa.Column("released_by", sa.String(100)),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("item_id", sa.String(64)),
    sa.Column("before", sa.Text),
    sa.Column("after", sa.Text),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column(
        "chain", sa.Integer, nullable=False, server_default="1"
    ),  # which head this row was chained under
)

AUDIT_CHAINS = 32  # head rows 1..N, created by the migrations

# One row per chain: its last seq and hash. Locking a head serialises the appends to its
# chain, and it makes deleting a chain's newest rows detectable (the chain alone would end
# early, unnoticed). Writers take any unlocked head, so they do not wait for each other's commit.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)


# The audit key marker (one row): rows with seq below `keyed_from_seq` were written before the
# keyed hash (plain SHA-256) and are verified that way; every later row is HMAC-SHA256 with the
# server key. `key_check` is an HMAC of `keyed_from_seq` under that key, so the boundary cannot be
# moved (to pass rewritten rows off as old unkeyed ones) without the key, and a wrong key is
# noticed before anything is written with it.
audit_meta = sa.Table(
    "audit_meta",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("keyed_from_seq", sa.BigInteger, nullable=False),
    sa.Column("key_check", sa.String(64), nullable=False),
)


def ensure_sqlite_parent(url: str) -> None:
    """Create the folder of a SQLite file URL (sqlite:///relative or sqlite:////absolute) if it is missing."""
    if url.startswith("sqlite:////"):
        Path("/" + url.removeprefix("sqlite:////")).parent.mkdir(parents=True, exist_ok=True)
    elif url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """SQLite: WAL + one writer transaction (BEGIN IMMEDIATE); PostgreSQL: a pool sized for many reviewers."""
    from review_queue import sql  # (sql is built on this module's tables)

    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            for pragma in sql.SQLITE_PRAGMAS:
                cur.execute(pragma)
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql(sql.SQLITE_BEGIN)

        return engine
    # At least as many connections as the service runs requests at once (FastAPI/anyio: 40 worker
    # threads): a request that waits for a pooled connection waits behind whole transactions, and
    # the pool hands connections back unfairly (the thread that just returned one takes it again),
    # which was the worst of the latency tail in bench/queue_bench.py (p99 2 s with 64 reviewers on
    # 32 connections, 0.45 s on 64, same machine and load).
    kwargs.setdefault("pool_size", 40)
    kwargs.setdefault("max_overflow", 8)
    kwargs.setdefault("pool_timeout", 120)
    kwargs.setdefault("pool_pre_ping", False)
    try:
        return sa.create_engine(url, **kwargs)
    except ModuleNotFoundError as exc:  # the driver is an extra: say which one
        raise RuntimeError(
            f"queue URL {url.split('@')[-1]!r} needs the PostgreSQL driver ({exc.name}): "
            "pip install 'medaug[postgres]'"
        ) from exc
