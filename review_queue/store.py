"""The queue store: push, lease, review, arbitrate, finalise; every action audited in the same transaction.

One transaction per operation, so a failed request changes nothing. PostgreSQL leases
with `FOR UPDATE SKIP LOCKED`; SQLite runs every write as one `BEGIN IMMEDIATE`
transaction. The audit append is always the last statement before commit.

Blind review, for every role: nobody reads an item's decisions before submitting their own
review of it. A pull or a reviewer's lease never carries reviews; an arbitration lease
carries both (the arbiter never reviewed that item); and an audit export for someone who
may review (the service passes every caller whose role has `review`, e.g. admin) leaves out
every row about an item they could still review (not yet in arbitration or final, and not
reviewed by them). Such an item becomes readable to them once they have reviewed it or it has
gone to arbitration or final, and never goes back. Verify's messages name rows and fields,
never a decision.

Limits: one person holds at most `max_leased` unexpired leases (a pull returns at most the
cap minus what they hold), and extensions never take a lease past `lease_limit_seconds`
after its pull.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any, TextIO

import pyarrow as pa
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from medaug.run import DEFAULT_QUEUE_URL
from medaug.schema import MAX_ID_CHARS, MAX_RUN_ID_CHARS, Sample, check_id, check_text, conform_table
from review_queue import audit, pgfast
from review_queue.audit import Event, text_sha256
from review_queue.db import arbitrations, items, make_engine, reviews, strata, users
from review_queue.decisions import (
    DEFAULT_SIMILARITY,
    Decision,
    DecisionError,
    agree,
    apply,
    check_shape,
    finalize_sample,
    merge,
    outcome_of,
)
from review_queue.errors import Conflict, InvalidDecision, LeaseExpired, NotFound, NotYours, QueueError
from review_queue.stats import compute, seconds_per_item, time_accounting
from review_queue.strata import (
    DEFAULT_IDLE_SECONDS,
    HoldPolicy,
    PullOrder,
    Stratum,
    is_test_model,
    stratum_of,
    wilson,
)

ROLES = ("reviewer", "arbiter", "maintainer", "admin")
DEFAULT_URL = DEFAULT_QUEUE_URL
DEFAULT_MAX_LEASED = 50  # items one reviewer may hold at once (pull returns at most this minus what they hold)
_ANALYZE_AFTER = 200  # pushed rows


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


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_fingerprint(token_hash: str) -> str:
    """What the audit log records of a token: a hash of its stored hash (verify can match it; nobody can use it)."""
    return hashlib.sha256(f"medaug-token:{token_hash}".encode()).hexdigest()


@dataclass(frozen=True)
class Refusal:
    row: int  # 1-based position in the pushed batch
    id: str | None
    reason: str


@dataclass
class PushResult:
    inserted: int = 0
    already_queued: int = 0
    refused: int = 0
    refusals: list[Refusal] = field(default_factory=list)


PRIORITY_MIN, PRIORITY_MAX = -(2**31), 2**31 - 1  # queue_items.priority is a 32-bit INTEGER


def check_push_args(run_id: str, priority: int) -> None:
    """The push arguments that go into columns as they are: bounded, so a bad one is a 4xx, not a DB error."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise QueueError(f"priority must be an integer from {PRIORITY_MIN} to {PRIORITY_MAX}")
    if not isinstance(run_id, str) or not 1 <= len(run_id) <= MAX_RUN_ID_CHARS:
        raise QueueError(f"run_id must be 1-{MAX_RUN_ID_CHARS} characters")
    try:
        check_text(run_id)
    except ValueError as e:
        raise QueueError(f"run_id: {e}") from None


def _short_id(row: Any) -> str | None:
    """A refused row's id for the answer, only when it is a plausible id (never a huge or odd value)."""
    v = row.get("id") if isinstance(row, dict) else None
    return v if isinstance(v, str) and len(v) <= MAX_ID_CHARS and "\x00" not in v else None


@dataclass(frozen=True)
class User:
    name: str
    role: str


@dataclass(frozen=True)
class ReviewRecord:
    reviewer: str
    decision: str
    submitted_at: datetime
    comment: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class LeasedItem:
    id: str
    sample: Sample
    parent: dict[str, Any] | None
    status: str
    lease_expires: float
    reviews: list[ReviewRecord]  # filled only for an arbiter's arbitration lease


@dataclass(frozen=True)
class FinalItem:
    item_id: str
    run_id: str
    sample: Sample  # corrections/arbitration applied; the original sample when rejected
    outcome: str  # approved | corrected | rejected
    rejected: bool
    reviews: list[ReviewRecord]
    arbitration: ReviewRecord | None
    finalized_at: datetime


@dataclass(frozen=True)
class SubmitResult:
    item_id: str
    status: str  # open | arbitration | final


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _record(who: str, decision: str, payload: str, submitted: float) -> ReviewRecord:
    data = json.loads(payload)
    return ReviewRecord(reviewer=who, decision=decision, submitted_at=_ts(submitted),
                        comment=data.get("comment", ""), payload=data)


def _parent_view(s: Sample) -> str:
    return json.dumps({"id": s.id, "instruction": s.instruction, "input": s.input, "output": s.output,
                       "label": s.label.value}, ensure_ascii=False)


def _as_list(v: str | Sequence[str] | None) -> list[str] | None:
    if v is None:
        return None
    return [v] if isinstance(v, str) else list(v)


class QueueStore:
    def __init__(self, engine: Engine, *, lease_seconds: float = 1800.0, similarity: float = DEFAULT_SIMILARITY,
                 clock: Callable[[], float] = time.time, max_leased: int = DEFAULT_MAX_LEASED,
                 max_lease_seconds: float | None = None, audit_key: bytes | str | None = None,
                 hold: HoldPolicy | None = None, order: PullOrder | None = None,
                 idle_seconds: float = DEFAULT_IDLE_SECONDS):
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
            one, two = audit._values_insert(1), audit._values_insert(2)
            for stmt in (_lease_statement(True, False, (), (), self.order.test_models_last), _lease_statement(True, True, ()), _LOCK_FOR_SUBMIT, _HELD,
                         audit._FREE_HEAD, audit._ONE_HEAD, audit._combined((), one, LEASES_DURABLE),
                         audit._combined((), two, LEASES_DURABLE), audit._combined((_REVIEW_INSERT, _FIRST_REVIEW), one),
                         audit._combined((_REVIEW_INSERT, _SECOND_REVIEW), one)):
                pgfast.prepare(stmt, dialect)
        opened = [self.engine.connect() for _ in range(connections)]
        for conn in opened:
            conn.close()  # back to the pool, open

    # ------------------------------------------------------------------ push

    def push(self, data: pa.Table | Iterable[Sample], *, run_id: str, priority: int = 0, actor: str = "pipeline",
             batch_size: int = 2000) -> PushResult:
        """Queue de-identified samples once each; samples without a de-identification record are refused.

        The whole batch is validated first and stored in one transaction, so a push that fails
        (database error, interrupted connection) stores nothing and can simply be sent again.
        """
        check_push_args(run_id, priority)
        res = PushResult()
        samples: list[tuple[int, Sample]] = []
        rows = conform_table(data).to_pylist() if isinstance(data, pa.Table) else list(data)
        for i, row in enumerate(rows, 1):
            try:
                if isinstance(row, Sample):  # built in Python: model_copy(update=...) skips validation
                    s = row
                    check_id(s.id)
                else:
                    s = Sample.model_validate(row)
            except ValidationError as e:
                err = e.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                res.refusals.append(Refusal(i, _short_id(row), f"{loc}: {err['msg']}"))
                continue
            except ValueError as e:
                res.refusals.append(Refusal(i, None, f"id: {e}"))
                continue
            if s.deid is None:
                res.refusals.append(Refusal(i, s.id, "not de-identified (deid is None): only de-identified text "
                                                     "may enter the queue"))
                continue
            samples.append((i, s))
        res.refused = len(res.refusals)
        by_id = {s.id: s for _, s in samples}
        now = self.clock()
        with self.engine.begin() as conn:
            events: list[Event] = []
            seen: set[str] = set()  # ids inserted by this push: a repeat in the batch is already queued
            for start in range(0, len(samples), batch_size):
                batch = [s for _, s in samples[start:start + batch_size]]
                events += self._push_batch(conn, batch, by_id, run_id, priority, actor, res, now, seen)
            if events:
                audit.append(conn, events, at=now)
        if self._pg and res.inserted >= _ANALYZE_AFTER:
            # Reviewers pull right after a push; with stale statistics PostgreSQL sorts the whole pool
            # for every pull instead of reading the first rows of ix_queue_items_pick.
            with self.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE queue_items")
        return res

    def _push_batch(self, conn: Connection, batch: list[Sample], by_id: dict[str, Sample], run_id: str,
                    priority: int, actor: str, res: PushResult, now: float, seen: set[str]) -> list[Event]:
        """Insert one slice of a push inside the push's transaction; returns its audit events."""
        existing = self._existing(conn, [s.id for s in batch])
        parent_ids = {s.provenance.parent_id for s in batch if s.provenance.parent_id} - by_id.keys()
        stored_parents = self._sample_json(conn, parent_ids)
        kinds = {s.id: stratum_of(s).key for s in batch}
        held = self._held_strata(conn, set(kinds.values()), now)
        rows, events = [], []
        for s in batch:
            if s.id in existing or s.id in seen:
                res.already_queued += 1
                continue
            seen.add(s.id)
            pid = s.provenance.parent_id
            parent = None
            if pid in by_id:
                parent = _parent_view(by_id[pid])
            elif pid in stored_parents:
                parent = _parent_view(Sample.model_validate_json(stored_parents[pid]))
            status = "held" if kinds[s.id] in held else "open"
            sample_json = s.model_dump_json()
            rows.append({"id": s.id, "run_id": run_id, "priority": priority, "area": s.area.value,
                         "task": s.task.value, "label": s.label.value, "status": status, "reviews_done": 0,
                         "sample_json": sample_json, "parent_json": parent, "pushed_at": now,
                         "stratum": kinds[s.id], "test_model": is_test_model(s.provenance.model)})
            # The pushed text's digest (never the text): verify finds a sample edited in the table.
            shown: dict[str, Any] = {"run_id": run_id, "priority": priority, "sample_sha256": text_sha256(sample_json)}
            events.append(Event(actor, "push", s.id, None, shown | ({"status": "held", "stratum": kinds[s.id]}
                                                                    if status == "held" else {})))
        if rows:
            conn.execute(self._insert_ignore(), rows)
        res.inserted += len(rows)
        return events

    def _insert_ignore(self) -> Any:
        if self._pg:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(items).on_conflict_do_nothing(index_elements=["id"])

    @staticmethod
    def _existing(conn: Connection, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        ids = list(ids)
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            found.update(conn.execute(sa.select(items.c.id).where(items.c.id.in_(chunk))).scalars())
        return found

    @staticmethod
    def _sample_json(conn: Connection, ids: Iterable[str]) -> dict[str, str]:
        ids = list(ids)
        out: dict[str, str] = {}
        for start in range(0, len(ids), 900):
            q = sa.select(items.c.id, items.c.sample_json).where(items.c.id.in_(ids[start:start + 900]))
            out.update({r.id: r.sample_json for r in conn.execute(q)})
        return out

    def queued_ids(self, ids: Iterable[str]) -> set[str]:
        with self.engine.connect() as conn:
            return self._existing(conn, list(ids))

    # ------------------------------------------------------------------ users

    def add_user(self, name: str, role: str, *, actor: str = "admin") -> str:
        """Create a user and return their token; only its hash is stored, so it cannot be shown again."""
        if role not in ROLES:
            raise QueueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if not name.strip() or len(name) > 100:
            raise QueueError("user name must be 1-100 characters")
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self.engine.begin() as conn:
            if conn.execute(sa.select(users.c.name).where(users.c.name == name)).first():
                raise Conflict(f"user {name!r} already exists")
            token_hash = hash_token(token)
            conn.execute(users.insert().values(name=name, role=role, token_hash=token_hash, created_at=now))
            audit.append(conn, [Event(actor, "user", None, None, {"name": name, "role": role,
                                                                 "token": token_fingerprint(token_hash)})], at=now)
        return token

    def revoke_user(self, name: str, *, actor: str = "admin") -> int:
        """Revoke a user's token at once (every later request is 401); their leases go back to the pool.

        Returns how many leased items were released. The user row stays (its name is in the
        reviews and the log) and the name cannot be given to someone else.
        """
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name).with_for_update()).first()
            if row is None:
                raise NotFound(f"unknown user {name!r}")
            if row.revoked_at is not None:
                raise Conflict(f"user {name!r} is already revoked")
            conn.execute(users.update().where(users.c.name == name).values(revoked_at=now))
            held = conn.execute(sa.select(items.c.id).where(items.c.lease_owner == name, items.c.status != "final")
                                .order_by(items.c.id).with_for_update()).scalars().all()
            if held:
                conn.execute(items.update().where(items.c.id.in_(held)).values(**_NO_LEASE))
            audit.append(conn, [Event(actor, "revoke", None, {"name": name, "role": row.role},
                                      {"name": name, "revoked": True}),
                                *(Event(actor, "release", i, {"lease_owner": name}, {"lease_owner": None})
                                  for i in held)], at=now)
        return len(held)

    def authenticate(self, token: str) -> User | None:
        """The user holding this token, None for an unknown or revoked one (checked on every request)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users.c.name, users.c.role)
                               .where(users.c.token_hash == hash_token(token), users.c.revoked_at.is_(None))).first()
        return User(row.name, row.role) if row else None

    # ------------------------------------------------------------------ leases

    def pull(self, reviewer: str, size: int = 10, *, area: str | Sequence[str] | None = None,
             task: str | Sequence[str] | None = None, label: str | Sequence[str] | None = None) -> list[LeasedItem]:
        """Lease up to `size` open items this reviewer has not reviewed, highest priority first."""
        filters = {name: values for name, values in (("area", _as_list(area)), ("task", _as_list(task)),
                                                     ("label", _as_list(label))) if values}
        return self._lease(reviewer, size, filters, arbitration=False)

    def pull_arbitration(self, arbiter: str, size: int = 10) -> list[LeasedItem]:
        """Lease disputed items this arbiter did not review; they come with both reviews."""
        return self._lease(arbiter, size, {}, arbitration=True)

    def _lease(self, who: str, size: int, filters: dict[str, list[str]], *,
               arbitration: bool) -> list[LeasedItem]:
        if not 1 <= size <= 500:
            raise QueueError(f"batch size must be 1-500, got {size}")
        now = self.clock()
        expires = now + self.lease_seconds
        params = {"p_who": who, "p_now": now, "p_size": size, "p_cap": self.max_leased, "l_owner": who,
                  "l_started": now, "l_expires": expires, **{f"p_{name}": values for name, values in filters.items()}}
        rank = () if arbitration else self._rank_params(params)
        stmt = _lease_statement(self._pg, arbitration, tuple(sorted(filters)), rank, self.order.test_models_last)
        with self.engine.begin() as conn:
            if self._pg:  # pick, lock and lease in one statement; RETURNING has no order, so sort here
                rows = pgfast.execute(conn, stmt, params)  # its LIMIT is queue_lease_room(): cap minus held
                rows.sort(key=lambda r: (r.pick_rank, -r.priority, r.pushed_at, r.id))
            else:  # one writer at a time: nothing can take the rows between the statements
                params["p_size"] = min(size, self.max_leased - self._held(conn, who, now))
                rows = conn.execute(stmt, params).all() if params["p_size"] > 0 else []
                if rows:
                    conn.execute(items.update().where(items.c.id.in_([r.id for r in rows]))
                                 .values(lease_owner=who, lease_started=now, lease_expires=expires))
            if not rows:
                held = self._held(conn, who, now)
                if held >= self.max_leased:
                    raise Conflict(f"{who} holds {held} leased items, the most one person may hold "
                                   f"({self.max_leased}); submit or release some first")
                return []
            ids = [r.id for r in rows]
            events = [Event("system", "expire", r.id, {"lease_owner": r.old_owner, "lease_expires": r.old_expires},
                            {"lease_owner": None}) for r in rows if r.old_owner is not None]
            events += [Event(who, "lease", r.id, {"lease_owner": None},
                             {"lease_owner": who, "lease_expires": expires, "status": r.status}) for r in rows]
            found = self._reviews_of(conn, ids) if arbitration else {}
            audit.append(conn, events, at=now, durable=LEASES_DURABLE)
        return [LeasedItem(r.id, Sample.model_validate_json(r.sample_json),
                           json.loads(r.parent_json) if r.parent_json else None, r.status, expires,
                           found.get(r.id, [])) for r in rows]

    def _held(self, conn: Connection, who: str, now: float) -> int:
        """Unexpired leases `who` holds (what the cap counts)."""
        params = {"h_who": who, "h_now": now}
        found = pgfast.execute(conn, _HELD, params) if self._pg else conn.execute(_HELD, params).all()
        return int(found[0][0])

    def my_items(self, who: str) -> list[LeasedItem]:
        """The caller's unexpired leases (what the page lists after a reload)."""
        now = self.clock()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(items).where(items.c.lease_owner == who, items.c.lease_expires >= now,
                                                       items.c.status != "final")
                                .order_by(items.c.priority.desc(), items.c.pushed_at, items.c.id)).all()
            disputed = self._reviews_of(conn, [r.id for r in rows if r.status == "arbitration"])
        return [self._leased(r, disputed.get(r.id, [])) for r in rows]

    def get_leased(self, who: str, item_id: str) -> LeasedItem:
        """One item, only for the holder of its lease; reviews are included only in arbitration."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(items).where(items.c.id == item_id)).first()
            if row is None:
                raise NotFound(f"unknown item {item_id}")
            self._check_lease(row, who)
            found = self._reviews_of(conn, [item_id]) if row.status == "arbitration" else {}
        return self._leased(row, found.get(item_id, []))

    @staticmethod
    def _leased(row: Any, found: list[ReviewRecord]) -> LeasedItem:
        return LeasedItem(row.id, Sample.model_validate_json(row.sample_json),
                          json.loads(row.parent_json) if row.parent_json else None, row.status,
                          row.lease_expires, found)

    def _check_lease(self, row: Any, who: str) -> None:
        if row.status == "final":
            raise Conflict(f"item {row.id} is already final")
        if row.lease_owner != who:
            raise NotYours(f"item {row.id} is not leased to {who}")
        if row.lease_expires < self.clock():
            raise LeaseExpired(f"the lease of {who} on item {row.id} expired; pull again")

    def _lock(self, conn: Connection, item_id: str, *extra: Any) -> Any:
        row = conn.execute(sa.select(items, *extra).where(items.c.id == item_id).with_for_update(of=items)).first()
        if row is None:
            raise NotFound(f"unknown item {item_id}")
        return row

    @property
    def lease_limit_seconds(self) -> float:
        """The longest a lease may last from its pull, extensions included."""
        return self.max_lease_seconds if self.max_lease_seconds is not None else 4 * self.lease_seconds

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
                raise Conflict(f"the lease of {who} on item {item_id} already lasts the most a lease may "
                               f"({self.lease_limit_seconds:.0f} s from the pull); submit or release it")
            conn.execute(items.update().where(items.c.id == item_id).values(lease_expires=expires))
            audit.append(conn, [Event(who, "extend", item_id, {"lease_expires": row.lease_expires},
                                      {"lease_expires": expires})], at=now, durable=LEASES_DURABLE)
        return expires

    def release(self, who: str, item_id: str) -> None:
        """Give an item back to the pool unreviewed."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._lock(conn, item_id)
            if row.lease_owner != who:
                raise NotYours(f"item {item_id} is not leased to {who}")
            conn.execute(items.update().where(items.c.id == item_id)
                         .values(lease_owner=None, lease_started=None, lease_expires=None))
            audit.append(conn, [Event(who, "release", item_id, {"lease_owner": who}, {"lease_owner": None})], at=now,
                         durable=LEASES_DURABLE)

    def expire_leases(self) -> int:
        """Return every expired lease to the pool (pull also takes expired items directly)."""
        now = self.clock()
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(items.c.id, items.c.lease_owner, items.c.lease_expires)
                                .where(items.c.lease_owner.is_not(None), items.c.lease_expires < now)
                                .with_for_update(skip_locked=True)).all()
            if not rows:
                return 0
            conn.execute(items.update().where(items.c.id.in_([r.id for r in rows]))
                         .values(lease_owner=None, lease_started=None, lease_expires=None))
            audit.append(conn, [Event("system", "expire", r.id, {"lease_owner": r.lease_owner,
                                                                "lease_expires": r.lease_expires},
                                      {"lease_owner": None}) for r in rows], at=now, durable=LEASES_DURABLE)
        return len(rows)

    # ------------------------------------------------------------------ decisions

    def submit(self, who: str, item_id: str, decision: Decision) -> SubmitResult:
        """Record one independent review; the second one finalises the item or sends it to arbitration.

        A correction's text work (applying it, the diff against the first review, the final
        sample) grows with the text, so it is done before the write transaction opens, on an
        unlocked read; under the lock the item's reviews must still be the ones that work saw
        (they are, while the caller holds the lease; otherwise the submit is refused).
        """
        pre = self._prepare_correction(who, item_id, decision) if decision.decision == "correct" else None
        res = self._submit(who, item_id, decision, pre)
        self._judge_item(item_id)
        return res

    def _prepare_correction(self, who: str, item_id: str, decision: Decision) -> _Prepared:
        with self.engine.connect() as conn:
            row = conn.execute(_READ_FOR_SUBMIT, {"lock_id": item_id}).first()
        self._check_submit(row, who, item_id)
        sample = _LazySample(row.sample_json)
        _checked(item_id, decision, sample)
        payload = decision.model_dump_json(exclude_none=True)
        pre = _Prepared((row.reviews_done, row.first_payload), payload, json.loads(payload))
        if row.reviews_done:
            first = Decision.model_validate_json(row.first_payload)
            pre.agreed = first.decision == "correct" and agree(first, decision, sample.get(), self.similarity)
            if pre.agreed:
                merged = merge(first, decision)
                pre.outcome = outcome_of(merged)
                pre.final_json = self._final_json(merged, sample, item_id, [row.first_reviewer, who])
        return pre

    def _check_submit(self, row: Any, who: str, item_id: str) -> None:
        if row is None:
            raise NotFound(f"unknown item {item_id}")
        if who in (row.first_reviewer, row.second_reviewer):
            raise Conflict(f"{who} already reviewed item {item_id}")
        if row.status != "open":
            raise Conflict(f"item {item_id} is not awaiting review (status {row.status})")
        self._check_lease(row, who)

    def _submit(self, who: str, item_id: str, decision: Decision, pre: _Prepared | None) -> SubmitResult:
        now = self.clock()
        with self.engine.begin() as conn:
            found = (pgfast.execute(conn, _LOCK_FOR_SUBMIT, {"lock_id": item_id}) if self._pg
                     else conn.execute(_LOCK_FOR_SUBMIT, {"lock_id": item_id}).all())
            row = found[0] if found else None
            self._check_submit(row, who, item_id)
            sample = _LazySample(row.sample_json)  # parsed only when a correction needs it
            if pre is None:
                _checked(item_id, decision, sample)  # approve / reject: shape checks, no text work
                payload = decision.model_dump_json(exclude_none=True)
                shown = json.loads(payload)
            elif (row.reviews_done, row.first_payload) != pre.seen:
                raise Conflict(f"item {item_id} got another review during this submit; pull again")
            else:
                payload, shown = pre.payload, pre.shown
            review = {"r_item": item_id, "r_reviewer": who, "r_decision": decision.decision, "r_payload": payload,
                      "r_leased": row.lease_started or now, "r_at": now}
            if row.reviews_done == 0:
                status, update = "open", (_FIRST_REVIEW, {"u_id": item_id, "u_first": who})
            else:
                if pre is not None:
                    agreed, outcome, final_json = pre.agreed, pre.outcome, pre.final_json
                else:  # the same approve/reject as the first review, or not: no text is compared
                    first = Decision.model_validate_json(row.first_payload)
                    agreed = first.decision == decision.decision
                    outcome = outcome_of(decision)
                    final_json = sample.text  # approved or rejected: the pushed sample, byte for byte
                final = {"u_outcome": None, "u_final_json": None, "u_finalized": None}
                if agreed:
                    final = {"u_outcome": outcome, "u_finalized": now, "u_final_json": final_json}
                status = "final" if agreed else "arbitration"
                update = (_SECOND_REVIEW, {"u_id": item_id, "u_second": who, "u_agreed": agreed, "u_status": status,
                                           **final})
            audit.append(conn, [Event(who, "submit", item_id,
                                      {"status": row.status, "reviews_done": row.reviews_done},
                                      {"status": status, "review": shown})],
                         at=now, writes=[(_REVIEW_INSERT, review), update])
        return SubmitResult(item_id, status)

    @staticmethod
    def _final_json(decision: Decision, sample: _LazySample, item_id: str, deciders: list[str]) -> str:
        if decision.decision != "correct":
            return sample.text  # approved or rejected: the pushed sample, byte for byte
        return finalize_sample(decision, sample.get(), item_id=item_id, deciders=deciders).model_dump_json()

    def arbitrate(self, who: str, item_id: str, decision: Decision) -> SubmitResult:
        """The arbiter's decision is final; an arbiter never decides an item they reviewed.

        A correction is applied before the write transaction opens (its cost grows with the
        text); once an item awaits arbitration its reviewers, and so that result, cannot change.
        """
        pre: tuple[tuple[str, str], str] | None = None
        if decision.decision == "correct":
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(items).where(items.c.id == item_id)).first()
            self._check_arbitrate(row, who, item_id)
            sample = _LazySample(row.sample_json)
            _checked(item_id, decision, sample)
            deciders = [row.first_reviewer, row.second_reviewer, who]
            pre = ((row.first_reviewer, row.second_reviewer), self._final_json(decision, sample, item_id, deciders))
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._lock(conn, item_id)
            self._check_arbitrate(row, who, item_id)
            if pre is None:
                sample = _LazySample(row.sample_json)
                _checked(item_id, decision, sample)
                final_json = self._final_json(decision, sample, item_id, [])  # the pushed sample as it is
            elif (row.first_reviewer, row.second_reviewer) != pre[0]:
                raise Conflict(f"item {item_id} changed during the arbitration; try again")
            else:
                final_json = pre[1]
            payload = decision.model_dump_json(exclude_none=True)
            conn.execute(arbitrations.insert().values(item_id=item_id, arbiter=who, decision=decision.decision,
                                                      payload=payload, submitted_at=now))
            conn.execute(items.update().where(items.c.id == item_id).values(
                status="final", outcome=outcome_of(decision), final_json=final_json, finalized_at=now,
                lease_owner=None, lease_started=None, lease_expires=None))
            audit.append(conn, [Event(who, "arbitrate", item_id, {"status": "arbitration"},
                                      {"status": "final", "arbitration": json.loads(payload)})], at=now)
        self._judge_item(item_id)
        return SubmitResult(item_id, "final")

    def _check_arbitrate(self, row: Any, who: str, item_id: str) -> None:
        if row is None:
            raise NotFound(f"unknown item {item_id}")
        if who in (row.first_reviewer, row.second_reviewer):
            raise NotYours(f"{who} reviewed item {item_id} and may not arbitrate it")
        if row.status != "arbitration":
            raise Conflict(f"item {item_id} is not awaiting arbitration (status {row.status})")
        self._check_lease(row, who)

    # ------------------------------------------------------------------ results

    @staticmethod
    def _reviews_of(conn: Connection, ids: Sequence[str]) -> dict[str, list[ReviewRecord]]:
        out: dict[str, list[ReviewRecord]] = {}
        for start in range(0, len(ids), 900):
            q = (sa.select(reviews).where(reviews.c.item_id.in_(ids[start:start + 900]))
                 .order_by(reviews.c.submitted_at, reviews.c.id))
            for r in conn.execute(q):
                out.setdefault(r.item_id, []).append(_record(r.reviewer, r.decision, r.payload, r.submitted_at))
        return out

    def finalized(self, since: datetime | None = None) -> list[FinalItem]:
        """Every final item (finalised after `since`), oldest first, with its reviews and arbitration."""
        q = sa.select(items.c.id, items.c.run_id, items.c.outcome, items.c.final_json, items.c.finalized_at
                      ).where(items.c.status == "final")
        if since is not None:
            q = q.where(items.c.finalized_at > since.timestamp())
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(items.c.finalized_at, items.c.id)).all()
            ids = [r.id for r in rows]
            found = self._reviews_of(conn, ids)
            arb: dict[str, ReviewRecord] = {}
            for start in range(0, len(ids), 900):
                for a in conn.execute(sa.select(arbitrations).where(arbitrations.c.item_id.in_(ids[start:start + 900]))):
                    arb[a.item_id] = _record(a.arbiter, a.decision, a.payload, a.submitted_at)
        return [FinalItem(r.id, r.run_id, Sample.model_validate_json(r.final_json), r.outcome, r.outcome == "rejected",
                          found.get(r.id, []), arb.get(r.id), _ts(r.finalized_at)) for r in rows]

    def counts(self) -> dict[str, int]:
        """Items per status (open | arbitration | final)."""
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(items.c.status, sa.func.count()).group_by(items.c.status)).all())

    def stats(self) -> dict[str, Any]:
        # One snapshot for all queries, so every pair read has both of its reviews.
        opts = {"isolation_level": "REPEATABLE READ"} if self._pg else {}
        with self.engine.connect().execution_options(**opts) as conn:
            status = dict(conn.execute(sa.select(items.c.status, sa.func.count()).group_by(items.c.status)).all())
            outcome = dict(conn.execute(sa.select(items.c.outcome, sa.func.count()).where(items.c.status == "final")
                                        .group_by(items.c.outcome)).all())
            revs = [tuple(r) for r in conn.execute(sa.select(reviews.c.item_id, reviews.c.reviewer, reviews.c.decision,
                                                             reviews.c.leased_at, reviews.c.submitted_at))]
            pairs = [tuple(r) for r in conn.execute(
                sa.select(items.c.id, items.c.first_reviewer, items.c.second_reviewer, items.c.agreed)
                .where(items.c.second_reviewer.is_not(None)))]
            kinds = dict(conn.execute(sa.select(items.c.id, items.c.stratum)).all())
            usable = dict(conn.execute(sa.select(items.c.stratum, sa.func.count()).where(
                items.c.status == "final", items.c.outcome != "rejected").group_by(items.c.stratum)).all())
        return {"items": status, "outcomes": outcome, **compute(revs, pairs, self.idle_seconds),  # type: ignore[arg-type]
                "time": time_accounting(revs, kinds, usable, self.idle_seconds)}  # type: ignore[arg-type]

    def review_seconds(self) -> dict[str, float]:
        """Active review seconds per item (lease or the reviewer's previous submit to submit, idle capped)."""
        with self.engine.connect() as conn:
            revs = [tuple(r) for r in conn.execute(sa.select(reviews.c.item_id, reviews.c.reviewer, reviews.c.decision,
                                                             reviews.c.leased_at, reviews.c.submitted_at))]
        return seconds_per_item(revs, self.idle_seconds)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ strata

    def _held_strata(self, conn: Connection, keys: set[str], now: float) -> set[str]:
        """Record strata seen for the first time; return those of `keys` that are held."""
        if not keys:
            return set()
        ins = (pg_insert if self._pg else sqlite_insert)(strata).on_conflict_do_nothing(index_elements=["stratum"])
        conn.execute(ins, [{"stratum": k, "first_seen": now} for k in sorted(keys)])
        return set(conn.execute(sa.select(strata.c.stratum).where(
            strata.c.stratum.in_(sorted(keys)), strata.c.held_at.is_not(None))).scalars())

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
                    col = items.c[key]
                    approved[key] = dict(conn.execute(sa.select(col, sa.func.count()).where(
                        items.c.status == "final", items.c.outcome != "rejected").group_by(col)).all())
            deficits = self.order.deficits(approved)
            self._deficits = (now, deficits)
        for key, values in deficits.items():
            params[f"q_{key}"] = values
        return tuple(sorted(deficits))

    def _decisions(self, conn: Connection, stratum: str | None = None) -> dict[str, list[tuple[str, float]]]:
        """(decision, submitted_at) of every review and arbitration, by stratum (one stratum, if given)."""
        out: dict[str, list[tuple[str, float]]] = {}
        for t, who in ((reviews, reviews.c.item_id), (arbitrations, arbitrations.c.item_id)):
            q = sa.select(items.c.stratum, t.c.decision, t.c.submitted_at).join(items, items.c.id == who)
            if stratum is not None:
                q = q.where(items.c.stratum == stratum)
            for s, d, at in conn.execute(q):
                out.setdefault(s, []).append((d, at))
        return out

    def _judge_item(self, item_id: str) -> None:
        """After a decision: hold the item's stratum if the policy says so (nothing when no policy is set)."""
        if self.hold is None:
            return
        with self.engine.connect() as conn:
            key = conn.execute(sa.select(items.c.stratum).where(items.c.id == item_id)).scalar()
            row = conn.execute(sa.select(strata).where(strata.c.stratum == key)).first() if key else None
            if row is None:
                return
            if row.held_at is not None:
                stragglers = conn.execute(sa.select(sa.func.count()).select_from(items).where(
                    items.c.stratum == key, items.c.status == "open")).scalar()
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
            self._hold(key, {"decisions": len(found), "approved": approved, "upper": round(upper, 4),
                             "threshold": self.hold.threshold, "min_decisions": self.hold.min_decisions}, "system")

    def hold_stratum(self, stratum: str, *, actor: str) -> int:
        """Hold a stratum by hand (a maintainer); returns how many open items were held."""
        return self._hold(stratum, {"by_hand": True}, actor)

    def _hold(self, stratum: str, detail: dict[str, Any], actor: str, *, again: bool = False) -> int:
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(strata).where(strata.c.stratum == stratum).with_for_update()).first()
            if row is None:
                raise NotFound(f"unknown stratum {stratum!r}")
            if row.held_at is not None and not again:
                raise Conflict(f"stratum {stratum!r} is already held")
            if row.held_at is None:
                conn.execute(strata.update().where(strata.c.stratum == stratum).values(
                    held_at=now, hold_detail=json.dumps(detail, ensure_ascii=False, sort_keys=True)))
            # Items under an unexpired lease stay with their reviewer; the next decision sweeps them.
            ids = conn.execute(sa.select(items.c.id).where(
                items.c.stratum == stratum, items.c.status == "open",
                sa.or_(items.c.lease_owner.is_(None), items.c.lease_expires < now))
                .order_by(items.c.id).with_for_update()).scalars().all()
            for start in range(0, len(ids), 900):
                conn.execute(items.update().where(items.c.id.in_(ids[start:start + 900])).values(
                    status="held", **_NO_LEASE))
            events = [] if again else [Event(actor, "hold", None, {"stratum": stratum, "held": False},
                                             {"stratum": stratum, "held": True, "items": len(ids), **detail})]
            events += [Event(actor, "hold", i, {"status": "open"}, {"status": "held", "stratum": stratum})
                       for i in ids]
            if events:
                audit.append(conn, events, at=now)
        return len(ids)

    def release_stratum(self, stratum: str, *, actor: str) -> int:
        """A maintainer puts a held stratum's items back in the pool; it is judged afresh from now on."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(strata).where(strata.c.stratum == stratum).with_for_update()).first()
            if row is None:
                raise NotFound(f"unknown stratum {stratum!r}")
            if row.held_at is None:
                raise Conflict(f"stratum {stratum!r} is not held")
            conn.execute(strata.update().where(strata.c.stratum == stratum).values(
                held_at=None, released_at=now, released_by=actor))
            ids = conn.execute(sa.select(items.c.id).where(items.c.stratum == stratum, items.c.status == "held")
                               .order_by(items.c.id).with_for_update()).scalars().all()
            for start in range(0, len(ids), 900):
                conn.execute(items.update().where(items.c.id.in_(ids[start:start + 900])).values(status="open"))
            audit.append(conn, [Event(actor, "unhold", None, {"stratum": stratum, "held": True},
                                      {"stratum": stratum, "held": False, "items": len(ids)}),
                                *(Event(actor, "unhold", i, {"status": "held"}, {"status": "open"}) for i in ids)],
                         at=now)
        return len(ids)

    def strata_report(self) -> list[dict[str, Any]]:
        """Every stratum: items by status, decisions and approval (Wilson bounds), hold state, review minutes."""
        z = self.hold.z if self.hold else 1.96
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(strata).order_by(strata.c.stratum)).all()
            by_status: dict[str, dict[str, int]] = {}
            for s, st, n in conn.execute(sa.select(items.c.stratum, items.c.status, sa.func.count())
                                         .group_by(items.c.stratum, items.c.status)):
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
            out.append({"stratum": r.stratum, **Stratum.parse(r.stratum).__dict__, "items": by_status.get(r.stratum, {}),
                        "decisions": len(ds), "approved": approved,
                        "approval": round(approved / len(ds), 4) if ds else None,
                        "since_release": len(recent), "wilson_low": round(lo, 4), "wilson_high": round(hi, 4),
                        "held": r.held_at is not None, "held_items": by_status.get(r.stratum, {}).get("held", 0),
                        "held_at": r.held_at, "hold_detail": json.loads(r.hold_detail) if r.hold_detail else None,
                        "released_at": r.released_at, "released_by": r.released_by,
                        "review_minutes": t.get("minutes", 0.0), "mean_seconds": t.get("mean_seconds"),
                        "minutes_per_approved": t.get("minutes_per_approved")})
        return out

    # ------------------------------------------------------------------ audit

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
        for start in range(0, len(ids), 900):
            out.update(conn.execute(sa.select(items.c.id).where(
                items.c.id.in_(ids[start:start + 900]), items.c.status.not_in(_DECIDED),
                sa.func.coalesce(items.c.first_reviewer, "") != who)).scalars())
        return out


def _pick_rank(quota_keys: tuple[str, ...], test_models_last: bool) -> Any:
    """The pull order's leading key (lower first): test-model samples last, then items outside every unmet quota."""
    rank: Any = sa.literal(0)
    if test_models_last:
        rank = sa.case((items.c.test_model, 2), else_=0)
    if quota_keys:
        helps = sa.or_(*(items.c[k].in_(sa.bindparam(f"q_{k}", expanding=True)) for k in quota_keys))
        rank = rank + sa.case((helps, 0), else_=1)
    return rank


@functools.cache
def _lease_statement(pg: bool, arbitration: bool, filters: tuple[str, ...], quota_keys: tuple[str, ...] = (),
                     test_models_last: bool = True) -> Any:
    """The pull statement for one shape of request, built once; every value is a named parameter.

    PostgreSQL: pick, lock (SKIP LOCKED) and lease in one UPDATE .. FROM (SELECT ..) RETURNING.
    SQLite: the SELECT only; the caller updates the picked rows.
    """
    who = sa.bindparam("p_who")
    if arbitration:
        cond = [items.c.status == "arbitration", items.c.first_reviewer != who, items.c.second_reviewer != who]
    else:
        cond = [items.c.status == "open", sa.func.coalesce(items.c.first_reviewer, "") != who]
        cond += [items.c[name].in_(sa.bindparam(f"p_{name}", expanding=True)) for name in filters]
    now = sa.bindparam("p_now")
    size: Any = sa.bindparam("p_size", type_=sa.Integer)
    if pg:  # the cap minus what `who` holds, counted under a per-person lock (migration 0003)
        size = sa.func.queue_lease_room(who, now, sa.bindparam("p_cap", type_=sa.Integer), size, type_=sa.Integer)
    if arbitration:
        order: list[Any] = []
        rank: Any = sa.literal(0)
    else:  # with test models last and no quota this is ix_queue_items_pick's order: no sort of the pool
        rank = _pick_rank(quota_keys, test_models_last)
        order = [items.c.test_model] if test_models_last and not quota_keys else [rank] if quota_keys else []
    pick = (sa.select(items.c.id, items.c.lease_owner.label("old_owner"), items.c.lease_expires.label("old_expires"),
                      rank.label("pick_rank"))
            .where(*cond, sa.or_(items.c.lease_owner.is_(None), items.c.lease_expires < now))
            .order_by(*order, items.c.priority.desc(), items.c.pushed_at, items.c.id)
            .limit(size).with_for_update(skip_locked=True))
    shown = (items.c.status, items.c.priority, items.c.pushed_at, items.c.sample_json, items.c.parent_json)
    if not pg:
        return pick.add_columns(*shown)
    old = pick.subquery("old")
    return (items.update().where(items.c.id == old.c.id)
            .values(lease_owner=sa.bindparam("l_owner"), lease_started=sa.bindparam("l_started"),
                    lease_expires=sa.bindparam("l_expires"))
            .returning(items.c.id, *shown, old.c.old_owner, old.c.old_expires, old.c.pick_rank))


# Leases (pull, extend, release, expire) are reservations that expire anyway, not decisions, so their
# commits do not wait for the WAL flush on PostgreSQL: a server crash can forget the last few of them
# (each with its audit rows, one transaction, so the chain stays whole) and their holders pull again.
# What rests on a lease (a submit, an arbitration) commits durably, and that flush writes the WAL up
# to and including every earlier commit, so a durable decision never rests on a forgotten lease.
# Waiting for the flush was half the commits of a pull+submit cycle (bench/queue_bench.py).
LEASES_DURABLE = False
_DECIDED = ("arbitration", "final")  # statuses past the two reviews: nobody can review the item any more

_HELD = sa.select(sa.func.count()).select_from(items).where(
    items.c.lease_owner == sa.bindparam("h_who"), items.c.lease_expires >= sa.bindparam("h_now"),
    items.c.status != "final")

# Submit's statements, built once (named parameters) so a submit costs no statement construction.
_FIRST_PAYLOAD = (sa.select(reviews.c.payload).where(reviews.c.item_id == items.c.id)
                  .order_by(reviews.c.id).limit(1).scalar_subquery().label("first_payload"))
# The first review comes with the locked row, so the second review needs no extra query.
_LOCK_FOR_SUBMIT = (sa.select(items, _FIRST_PAYLOAD).where(items.c.id == sa.bindparam("lock_id"))
                    .with_for_update(of=items))
_REVIEW_INSERT = reviews.insert().values(
    item_id=sa.bindparam("r_item"), reviewer=sa.bindparam("r_reviewer"), decision=sa.bindparam("r_decision"),
    payload=sa.bindparam("r_payload"), leased_at=sa.bindparam("r_leased"), submitted_at=sa.bindparam("r_at"))
_NO_LEASE = {"lease_owner": None, "lease_started": None, "lease_expires": None}
_FIRST_REVIEW = items.update().where(items.c.id == sa.bindparam("u_id")).values(
    reviews_done=1, first_reviewer=sa.bindparam("u_first"), **_NO_LEASE)
_SECOND_REVIEW = items.update().where(items.c.id == sa.bindparam("u_id")).values(
    reviews_done=2, second_reviewer=sa.bindparam("u_second"), agreed=sa.bindparam("u_agreed"),
    status=sa.bindparam("u_status"), outcome=sa.bindparam("u_outcome"), final_json=sa.bindparam("u_final_json"),
    finalized_at=sa.bindparam("u_finalized"), **_NO_LEASE)


# The same row, unlocked: what a correction's work is computed from before the transaction opens.
_READ_FOR_SUBMIT = sa.select(items, _FIRST_PAYLOAD).where(items.c.id == sa.bindparam("lock_id"))


@dataclass
class _Prepared:
    """A correction's text work, done outside the transaction, and the item state it was done on."""

    seen: tuple[int, str | None]  # (reviews_done, first review payload)
    payload: str
    shown: dict[str, Any]
    agreed: bool = False
    outcome: str | None = None
    final_json: str | None = None


class _LazySample:
    """A stored sample's JSON, validated into a Sample only on first use (approvals never need it)."""

    def __init__(self, text: str):
        self.text = text
        self._sample: Sample | None = None

    def get(self) -> Sample:
        if self._sample is None:
            self._sample = Sample.model_validate_json(self.text)
        return self._sample


def _checked(item_id: str, decision: Decision, sample: _LazySample) -> None:
    try:
        check_shape(decision)
        if decision.decision == "correct":
            apply(decision, sample.get())
    except DecisionError as e:
        raise InvalidDecision(item_id, e.field, str(e).split(": ", 1)[-1]) from e
