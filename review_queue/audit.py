"""Append-only, hash-chained audit log, keyed with a server secret.

Each row's hash covers its own content (including its global `seq`) and the hash of the
previous row of its chain, so editing a row breaks its hash and deleting one breaks its
chain (or its chain's head, for the newest rows). The hash is HMAC-SHA256 under the server
key (`MEDAUG_AUDIT_KEY`), so someone who can write the database but does not hold the key
cannot rewrite a row and re-hash the chain behind it. Rows written before the key (migration
0003) keep their plain SHA-256 hashes; `audit_meta` marks where keyed rows start and is itself
sealed with the key (see review_queue.db).

Where the key comes from (`key_for`): an explicit `use_key`, else `MEDAUG_AUDIT_KEY` (at least
32 characters; every process that writes or verifies one queue needs the same value). Without
it, a SQLite file database gets a generated key in `<database>.audit-key` (mode 0600) with a
loud warning: that keeps the embedded demo working with no setup, and whoever can read that
file can re-hash the log, so it is for demos only. PostgreSQL (a shared, served queue) refuses
to start without the variable.

There are several chains: a writer locks any unlocked head (`SKIP LOCKED`) as the last step of
its transaction, so writers on different heads commit in parallel instead of queueing behind
one lock until each commit's WAL flush. Rows of the same item are still in commit order by
`seq`, because the item's row lock orders those transactions and `seq` is drawn under the head
lock. `verify` also replays the log against `queue_items`, `reviews`, `arbitrations` and
`users` (review_queue.reconcile), so a table edited without a log row fails it too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import secrets
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from review_queue import audit_sql, pgfast
from review_queue.db import AUDIT_CHAINS
from review_queue.errors import QueueError

GENESIS = "0" * 64
KEY_ENV = "MEDAUG_AUDIT_KEY"
MIN_KEY_CHARS = 32
log = logging.getLogger(__name__)


class AuditKeyError(QueueError):
    """The audit key is missing, too short, or not the key this log was sealed with (a server setup error)."""

    status = 500


@dataclass
class _Key:
    secret: bytes
    keyed_from: int | None = None  # the marker's boundary, once checked against the secret


_KEYS: weakref.WeakKeyDictionary[Engine, _Key] = weakref.WeakKeyDictionary()
_WARNED: set[str] = set()


def use_key(engine: Engine, key: bytes | str) -> None:
    """Hash and verify this engine's audit rows with `key` (instead of the environment's)."""
    _KEYS[engine] = _Key(_checked_secret(key, "the audit key"))


def key_for(engine: Engine) -> bytes:
    """The engine's audit key: set by use_key, else from the environment (see the module docstring)."""
    entry = _KEYS.get(engine)
    if entry is None:
        entry = _KEYS.setdefault(engine, _Key(resolve_key(engine.url)))
    return entry.secret


def _checked_secret(key: bytes | str, what: str) -> bytes:
    raw = key.encode("utf-8") if isinstance(key, str) else key
    if len(raw.strip()) < MIN_KEY_CHARS:
        raise AuditKeyError(
            f"{what} must have at least {MIN_KEY_CHARS} characters, got {len(raw.strip())} "
            "(make one with: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return raw.strip()


def resolve_key(url: sa.URL) -> bytes:
    """MEDAUG_AUDIT_KEY; for SQLite without it, a generated key file beside the database (demo only)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return _checked_secret(env, KEY_ENV)
    if url.get_backend_name() != "sqlite":
        raise AuditKeyError(
            f"{KEY_ENV} is not set: a {url.get_backend_name()} queue's audit log is keyed with a "
            f"server secret. Set {KEY_ENV} (at least {MIN_KEY_CHARS} characters, e.g. "
            "python -c 'import secrets; print(secrets.token_hex(32))') to the same value for every "
            "process that serves, writes or verifies this queue"
        )
    database = url.database or ""
    if database in ("", ":memory:"):
        _warn(":memory:", f"{KEY_ENV} is not set: this in-memory queue's audit log uses a throwaway key")
        return secrets.token_hex(32).encode()
    path = f"{database}.audit-key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(path, encoding="utf-8") as f:
            secret = _checked_secret(f.read(), f"the audit key in {path}")
        _warn(
            path,
            f"{KEY_ENV} is not set: using the demo audit key in {path}. Anyone who can read that file can "
            f"re-hash this audit log; set {KEY_ENV} for real use",
        )
        return secret
    token = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    _warn(
        path,
        f"{KEY_ENV} is not set: generated a demo audit key in {path}. Anyone who can read that file can "
        f"re-hash this audit log; set {KEY_ENV} for real use (and keep that file with the database)",
    )
    return token.encode()


def _warn(where: str, message: str) -> None:
    if where not in _WARNED:  # once per process and key source, not on every store opened
        _WARNED.add(where)
        log.warning("WARNING: %s", message)


def marker_check(key: bytes, keyed_from: int) -> str:
    """The seal of the audit key marker (the same formula as migration 0003)."""
    return hmac.new(key, f"medaug-audit-marker:{keyed_from}".encode(), hashlib.sha256).hexdigest()


def _ensure_marker(conn: Connection) -> bytes:
    """The key, checked once per engine against the sealed marker before anything is hashed with it."""
    key = key_for(conn.engine)
    entry = _KEYS[conn.engine]
    if entry.keyed_from is None:
        row = conn.execute(audit_sql.AUDIT_MARKER).first()
        if row is None:
            raise AuditKeyError(
                "the audit log has no key marker (audit_meta): the schema predates migration 0003 "
                "or the marker was deleted; run `medaug queue audit verify`"
            )
        if not hmac.compare_digest(row.key_check, marker_check(key, int(row.keyed_from_seq))):
            raise AuditKeyError(
                f"the audit key ({KEY_ENV}) is not the key this queue's audit log was sealed with "
                "(or the marker was edited): nothing is written with it; run `medaug queue audit "
                "verify` with the right key"
            )
        entry.keyed_from = int(row.keyed_from_seq)
    return key


@dataclass(frozen=True)
class Event:
    actor: str
    action: (
        str  # push | lease | extend | release | expire | submit | arbitrate | export | user | revoke | merge
    )
    item_id: str | None = None
    before: Any = None
    after: Any = None


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def text_sha256(text: str) -> str:
    """A digest the log may hold in place of a text it must not carry (a pushed sample)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def row_hash(
    seq: int,
    at: str,
    actor: str,
    action: str,
    item_id: str | None,
    before: str | None,
    after: str | None,
    prev_hash: str,
    key: bytes | None = None,
) -> str:
    """HMAC-SHA256 under `key`; plain SHA-256 without one (rows written before the keyed hash)."""
    payload = json.dumps([seq, at, actor, action, item_id, before, after, prev_hash], ensure_ascii=False)
    if key is None:
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


Write = tuple[Any, dict[str, Any]]  # a statement with named bind parameters, and their values


def append(
    conn: Connection, events: list[Event], *, at: float, writes: Sequence[Write] = (), durable: bool = True
) -> None:
    """Append events inside the caller's transaction, after the caller's own `writes`.

    On PostgreSQL the writes, the audit rows and the head update go to the server as one
    statement (data-modifying CTEs), so the append and the writes cost two round trips. The
    writes' bind parameter names must be distinct from each other and from `audit_*`, `head_*`.
    `durable=False` (PostgreSQL): the commit does not wait for the WAL flush, for transactions
    a crash may forget as a whole (leases; see review_queue.leases.LEASES_DURABLE); the same statement sets it.
    """
    pg = conn.dialect.name == "postgresql"
    if not events or not pg:
        for stmt, params in writes:
            conn.execute(stmt, params)
        if not events:
            return
    key = _ensure_marker(conn)
    chain, prev, seqs = _lock_head(conn, len(events)) if pg else _lock_head_sqlite(conn, len(events))
    stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")
    rows = []
    for seq, ev in zip(seqs, events, strict=True):
        before, after = _dump(ev.before), _dump(ev.after)
        h = row_hash(seq, stamp, ev.actor, ev.action, ev.item_id, before, after, prev, key)
        rows.append((seq, stamp, ev.actor, ev.action, ev.item_id, before, after, prev, h, chain))
        prev = h
    head = {"head_id": chain, "head_seq": seqs[-1], "head_hash": prev}
    if not pg:
        conn.execute(
            audit_sql.AUDIT_INSERT, [dict(zip(audit_sql.AUDIT_FIELDS, r, strict=True)) for r in rows]
        )
        conn.execute(audit_sql.HEAD_UPDATE, head)
        return
    if (
        len(rows) <= audit_sql.AUDIT_VALUES_MAX
    ):  # scalar parameters: cheaper to send than ten one-element arrays
        params = {
            f"a{i}_{c}": v for i, r in enumerate(rows) for c, v in zip(audit_sql.AUDIT_FIELDS, r, strict=True)
        }
        insert = audit_sql.audit_values_insert(len(rows))
    else:
        params = {
            f"audit_{c}": list(col)
            for c, col in zip(audit_sql.AUDIT_FIELDS, zip(*rows, strict=True), strict=True)
        }
        insert = audit_sql.AUDIT_ARRAY_INSERT
    params |= head
    for _, p in writes:
        params |= p
    pgfast.execute(conn, audit_sql.with_writes(tuple(stmt for stmt, _ in writes), insert, durable), params)


# Chains only grow to the peak number of concurrent writers (at most MAX_CHAINS; audit_sql.NEW_HEAD starts
# one when every head is locked); verify reads whatever chains exist.
MAX_CHAINS = 256


def _lock_head(conn: Connection, n: int) -> tuple[int, str, list[int]]:
    rows = pgfast.execute(conn, audit_sql.FREE_HEAD, {"n": n})
    if not rows:
        rows = pgfast.execute(
            conn, audit_sql.NEW_HEAD, {"n": n, "genesis": GENESIS, "max_chains": MAX_CHAINS}
        )
    if (
        not rows
    ):  # a concurrent writer took that id, or the chains are at their maximum: wait for a random one
        rows = pgfast.execute(conn, audit_sql.ONE_HEAD, {"n": n, "id": random.randint(1, AUDIT_CHAINS)})
    row = rows[0]
    return int(row.id), row.hash, sorted(row.seqs)


def _lock_head_sqlite(conn: Connection, n: int) -> tuple[int, str, list[int]]:
    """SQLite has one writer at a time (BEGIN IMMEDIATE): chain 1, and seq follows the largest one."""
    row = conn.execute(audit_sql.SQLITE_HEAD).one()
    last = int(row[2])
    return 1, row.hash, list(range(last + 1, last + n + 1))


@dataclass
class VerifyResult:
    rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _iter_chunks(conn: Connection, chunk: int = 5000) -> Iterator[list[sa.Row[Any]]]:
    last = 0
    while True:
        batch = conn.execute(audit_sql.AUDIT_ROWS_AFTER, {"after": last, "chunk": chunk}).all()
        if not batch:
            return
        yield batch
        last = batch[-1].seq


def _iter_rows(engine: Engine) -> Iterator[sa.Row[Any]]:
    with engine.connect() as conn:
        for batch in _iter_chunks(conn):
            yield from batch


def verify(engine: Engine, *, max_problems: int = 100, tables: bool = True) -> VerifyResult:
    """Recompute every chain, then replay the log against the tables (`tables`); report up to max_problems.

    Reports every edited, deleted or reordered row, a moved or forged key marker, and every
    table row that the log does not account for. Messages name rows, items and users, never
    a decision, so reading them does not break blind review.
    """
    from review_queue.reconcile import Reconciler  # it reads Sample/Decision; the hot append path does not

    res = VerifyResult()
    key = key_for(engine)
    with engine.connect() as conn:
        marker = conn.execute(audit_sql.AUDIT_MARKER).first()
    keyed_from = 1
    if marker is None:
        res.problems.append("the audit key marker (audit_meta) is missing: every row is checked as keyed")
    else:
        keyed_from = int(marker.keyed_from_seq)
        if not hmac.compare_digest(marker.key_check, marker_check(key, keyed_from)):
            res.problems.append(
                f"the audit key marker does not match {KEY_ENV}: the wrong key, or the marker was "
                "edited (to pass rewritten rows off as unkeyed ones)"
            )
    replay = Reconciler() if tables else None
    last: dict[int, tuple[int, str]] = {}  # chain -> (seq, hash) of its newest row so far
    for r in _iter_rows(engine):
        res.rows += 1
        prev_seq, prev = last.get(r.chain, (0, GENESIS))
        if r.prev_hash != prev:
            where = f"row {prev_seq}" if prev_seq else "the start of the chain"
            res.problems.append(
                f"row {r.seq}: prev_hash does not match {where} of chain {r.chain}: rows between "
                "them are missing (deleted) or edited"
            )
        k = key if r.seq >= keyed_from else None
        if not hmac.compare_digest(
            row_hash(r.seq, r.at, r.actor, r.action, r.item_id, r.before, r.after, r.prev_hash, k), r.hash
        ):
            res.problems.append(
                f"row {r.seq}: content does not match its hash (edited, or re-hashed without the key)"
            )
        last[r.chain] = (r.seq, r.hash)
        if replay is not None:
            replay.feed(r)
        if len(res.problems) >= max_problems:
            return res
    with engine.connect() as conn:
        heads = {h.id: (int(h.seq), h.hash) for h in conn.execute(audit_sql.AUDIT_HEADS)}
    for chain in sorted(heads.keys() | last.keys()):
        end, want = last.get(chain, (0, GENESIS)), heads.get(chain)
        if want != end:
            recorded = "no head" if want is None else f"the head records row {want[0]}"
            res.problems.append(
                f"chain {chain} ends at row {end[0]} but {recorded} (newest rows deleted or head edited)"
            )
    if replay is not None:
        replay.check(engine, res.problems, max_problems)
    return res


def export_jsonl(
    engine: Engine, out: TextIO, *, hide: Callable[[Connection, set[str]], set[str]] | None = None
) -> int:
    """Write every row as one JSON object per line (before/after decoded); returns the rows written.

    `hide(conn, item_ids)` names the items whose rows are left out (blind review). It is asked after
    each chunk has been read: every item of the chunk exists by then, and an item only ever
    leaves the hidden set (the reader reviews it, or it stops being open), so asking later can
    only let through rows that are safe to show by then.
    """
    n = 0
    with engine.connect() as conn:
        for batch in _iter_chunks(conn):
            hidden = hide(conn, {r.item_id for r in batch if r.item_id is not None}) if hide else set()
            for r in batch:
                if r.item_id in hidden:
                    continue
                rec = dict(r._mapping)
                for key in ("before", "after"):
                    rec[key] = None if rec[key] is None else json.loads(rec[key])
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n += 1
    return n
