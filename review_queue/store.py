"""The queue store: push, lease, review, arbitrate, finalise; every action audited in the same transaction.

One transaction per operation, so a failed request changes nothing. PostgreSQL leases
with `FOR UPDATE SKIP LOCKED`; SQLite runs every write as one `BEGIN IMMEDIATE`
transaction. The audit append is always the last statement before commit.

`QueueStore` is made of parts, each a module named for what it does: push
(review_queue.push), users and tokens (review_queue.users), leases and their limits
(review_queue.leases), reviews and arbitration (review_queue.submit), strata held back
(review_queue.holds), and finals, statistics and the audit export (review_queue.results).
Every SQL statement they run is in review_queue.sql.

Blind review, for every role: nobody reads an item's decisions before submitting their own
review of it. A pull or a reviewer's lease never carries reviews; an arbitration lease
carries both (the arbiter never reviewed that item); and an audit export for someone who
may review leaves out every row about an item they could still review (review_queue.results).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from medaug.run import DEFAULT_QUEUE_URL
from review_queue import audit, audit_sql, pgfast, sql
from review_queue.db import make_engine
from review_queue.decisions import DEFAULT_SIMILARITY
from review_queue.errors import QueueError
from review_queue.holds import HoldOps
from review_queue.leases import LEASES_DURABLE, LeaseOps
from review_queue.push import PRIORITY_MAX, PRIORITY_MIN, PushOps, check_push_args
from review_queue.records import FinalItem, LeasedItem, PushResult, Refusal, ReviewRecord, SubmitResult, User
from review_queue.results import ResultOps
from review_queue.strata import DEFAULT_IDLE_SECONDS, HoldPolicy, PullOrder
from review_queue.submit import SubmitOps
from review_queue.users import ROLES, UserOps, hash_token, token_fingerprint

__all__ = [
    "DEFAULT_MAX_LEASED",
    "DEFAULT_URL",
    "LEASES_DURABLE",
    "PRIORITY_MAX",
    "PRIORITY_MIN",
    "ROLES",
    "FinalItem",
    "LeasedItem",
    "PushResult",
    "QueueError",
    "QueueStore",
    "Refusal",
    "ReviewRecord",
    "SubmitResult",
    "User",
    "check_push_args",
    "hash_token",
    "migrate",
    "token_fingerprint",
]

DEFAULT_URL = DEFAULT_QUEUE_URL
DEFAULT_MAX_LEASED = (
    50  # items one reviewer may hold at once (pull returns at most this minus what they hold)
)


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema with the migrations shipped inside this package.

    Migration 0003 seals the audit key marker, so the engine's audit key must be at hand
    (MEDAUG_AUDIT_KEY, or `audit.use_key`; see review_queue.audit).
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("review_queue") / "migrations"))
    cfg.attributes["audit_key"] = audit.key_for(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class QueueStore(PushOps, UserOps, LeaseOps, SubmitOps, HoldOps, ResultOps):
    def __init__(
        self,
        engine: Engine,
        *,
        lease_seconds: float = 1800.0,
        similarity: float = DEFAULT_SIMILARITY,
        clock: Callable[[], float] = time.time,
        max_leased: int = DEFAULT_MAX_LEASED,
        max_lease_seconds: float | None = None,
        audit_key: bytes | str | None = None,
        hold: HoldPolicy | None = None,
        order: PullOrder | None = None,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
    ):
        """`max_leased`: items one person may hold at once; `max_lease_seconds`: the longest one lease may
        last from its pull, extensions included (default 4 × lease_seconds); `audit_key`: see review_queue.audit;
        `hold`: when a stratum is held (None: never); `order`: the pull order (review_queue.strata);
        `idle_seconds`: the most one decision counts in the time accounting."""
        if audit_key is not None:
            audit.use_key(engine, audit_key)
        if max_leased < 1:
            raise QueueError(f"max_leased must be at least 1, got {max_leased}")
        self.engine = engine
        self.lease_seconds = lease_seconds
        self.max_leased = max_leased
        self.max_lease_seconds = max_lease_seconds
        self.similarity = similarity
        self.clock = clock
        self.hold = hold
        self.order = order or PullOrder()
        self.idle_seconds = idle_seconds
        self._deficits: tuple[float, dict[str, list[str]]] = (-1e18, {})
        self._pg = engine.dialect.name == "postgresql"

    @classmethod
    def open(cls, url: str = DEFAULT_URL, **kwargs: Any) -> QueueStore:
        engine_kwargs = kwargs.pop("engine_kwargs", {})
        engine = make_engine(url, **engine_kwargs)
        if kwargs.get("audit_key") is not None:
            audit.use_key(engine, kwargs["audit_key"])
        migrate(engine)
        return cls(engine, **kwargs)

    def close(self) -> None:
        self.engine.dispose()

    def warm(self, connections: int = 0) -> None:
        """Compile the hot statements (PostgreSQL) and open `connections` pooled connections now.

        Otherwise the first requests after a start all compile the same statements and open their
        connections at once; under load those first operations took seconds (bench/queue_bench.py).
        """
        if self._pg:
            dialect = self.engine.dialect
            one, two = audit_sql.audit_values_insert(1), audit_sql.audit_values_insert(2)
            for stmt in (
                sql.lease_statement(True, False, (), (), self.order.test_models_last),
                sql.lease_statement(True, True, ()),
                sql.LOCK_FOR_SUBMIT,
                sql.HELD_LEASES,
                audit_sql.FREE_HEAD,
                audit_sql.ONE_HEAD,
                audit_sql.with_writes((), one, LEASES_DURABLE),
                audit_sql.with_writes((), two, LEASES_DURABLE),
                audit_sql.with_writes((sql.REVIEW_INSERT, sql.FIRST_REVIEW), one),
                audit_sql.with_writes((sql.REVIEW_INSERT, sql.SECOND_REVIEW), one),
            ):
                pgfast.prepare(stmt, dialect)
        opened = [self.engine.connect() for _ in range(connections)]
        for conn in opened:
            conn.close()  # back to the pool, open
