"""Replay the audit log and compare what it says with the tables it describes.

The hash chain proves the log was not rewritten; this proves the tables were not edited
behind its back. Every change to `queue_items`, `reviews`, `arbitrations` and `users` is made
in the same transaction as its audit row, so replaying the log gives each row's expected
state: who pushed an item (run, priority), who holds its lease until when, every review's
reviewer and payload, the arbitration, the status, outcome and released sample, each user's
role, token fingerprint and revocation. A row the log does not account for, a row missing,
or a field that differs is a problem. Messages name the table, row and field, never a
decision or its text, so an auditor who can still review an item learns nothing from them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medaug.schema import Sample
from review_queue import audit_sql
from review_queue.audit import text_sha256
from review_queue.db import arbitrations, items, reviews, users
from review_queue.decisions import Decision, finalize_sample, merge, outcome_of

_TIME_SLACK = 1e-5  # audit times are ISO strings with microseconds; the tables keep epoch floats


@dataclass
class _Item:
    seq: int  # the push row
    run_id: Any
    priority: Any
    pushed_at: float
    sample_sha256: str | None = None  # None in push rows written before the digest was logged
    status: str = "open"
    lease_owner: str | None = None
    lease_started: float | None = None
    lease_expires: float | None = None
    reviewers: list[str] = field(default_factory=list)
    reviews: dict[str, tuple[dict[str, Any], float, float]] = field(
        default_factory=dict
    )  # payload, at, leased
    arbitration: tuple[str, dict[str, Any], float] | None = None
    finalized_at: float | None = None


@dataclass
class _User:
    role: str
    token: str | None  # sha256 of the stored token hash; None in rows written before it was logged
    revoked: bool = False


def final_json(decision: Decision, sample_json: str, item_id: str, deciders: list[str]) -> str:
    """The released sample of a final item: the pushed JSON byte for byte, or the correction applied."""
    if decision.decision != "correct":
        return sample_json
    return finalize_sample(
        decision, Sample.model_validate_json(sample_json), item_id=item_id, deciders=deciders
    ).model_dump_json()


def _epoch(at: str) -> float:
    return datetime.fromisoformat(at).timestamp()


def _near(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) <= _TIME_SLACK


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Reconciler:
    """Fed every audit row in seq order, then checks the tables (`check`)."""

    def __init__(self) -> None:
        self.items: dict[str, _Item] = {}
        self.users: dict[str, _User] = {}
        self.problems: list[str] = []

    def feed(self, row: Any) -> None:
        after, at, who = _json(row.after) or {}, _epoch(row.at), row.actor
        action, item_id = row.action, row.item_id
        if action == "user":
            self.users[after["name"]] = _User(after["role"], after.get("token"))
            return
        if action == "revoke":
            if after.get("name") in self.users:
                self.users[after["name"]].revoked = True
            return
        if item_id is None:
            return
        if action == "push":
            if item_id not in self.items:
                self.items[item_id] = _Item(
                    row.seq, after.get("run_id"), after.get("priority"), at, after.get("sample_sha256")
                )
            return
        it = self.items.get(item_id)
        if it is None:
            self.problems.append(f"audit row {row.seq}: {action} of item {item_id}, which was never pushed")
            return
        if action == "lease":
            it.lease_owner, it.lease_started, it.lease_expires = who, at, after.get("lease_expires")
        elif action == "extend":
            it.lease_expires = after.get("lease_expires")
        elif action in ("release", "expire"):
            it.lease_owner = it.lease_started = it.lease_expires = None
        elif action == "submit":
            leased = it.lease_started if it.lease_started is not None else at
            it.reviewers.append(who)
            it.reviews[who] = (after.get("review") or {}, at, leased)
            it.status = after.get("status", it.status)
            if it.status == "final":
                it.finalized_at = at
            it.lease_owner = it.lease_started = it.lease_expires = None
        elif action == "arbitrate":
            it.arbitration = (who, after.get("arbitration") or {}, at)
            it.status, it.finalized_at = "final", at
            it.lease_owner = it.lease_started = it.lease_expires = None
        elif isinstance(
            after.get("status"), str
        ):  # any other logged status change (e.g. held back, reopened)
            it.status = after["status"]

    def _problem(self, out: list[str], limit: int, message: str) -> bool:
        out.append(message)
        return len(out) >= limit

    def check(self, engine: Engine, out: list[str], limit: int) -> None:
        """Append a problem for every table row that differs from the replayed log (up to `limit` in `out`)."""
        for p in self.problems:
            if self._problem(out, limit, p):
                return
        with engine.connect() as conn:
            for check in (
                self._check_items,
                self._check_reviews,
                self._check_arbitrations,
                self._check_users,
            ):
                for message in check(conn):
                    if self._problem(out, limit, message):
                        return

    def _check_items(self, conn: sa.Connection) -> Any:
        seen: set[str] = set()
        for r in _paged(conn, items, items.c.id):
            seen.add(r.id)
            it = self.items.get(r.id)
            if it is None:
                yield f"queue_items row {r.id}: no push of it in the audit log (inserted outside the queue)"
                continue
            where = f"queue_items row {r.id}"
            wrong = [
                name
                for name, ok in (
                    ("run_id", r.run_id == it.run_id),
                    ("priority", r.priority == it.priority),
                    ("pushed_at", _near(r.pushed_at, it.pushed_at)),
                    ("sample_json", it.sample_sha256 in (None, text_sha256(r.sample_json or ""))),
                    ("status", r.status == it.status),
                    ("reviews_done", r.reviews_done == len(it.reviewers)),
                    ("first_reviewer", r.first_reviewer == (it.reviewers[0] if it.reviewers else None)),
                    (
                        "second_reviewer",
                        r.second_reviewer == (it.reviewers[1] if len(it.reviewers) > 1 else None),
                    ),
                    ("lease_owner", r.lease_owner == it.lease_owner),
                    ("lease_started", _near(r.lease_started, it.lease_started)),
                    ("lease_expires", _near(r.lease_expires, it.lease_expires)),
                    ("finalized_at", _near(r.finalized_at, it.finalized_at)),
                )
                if not ok
            ]
            if len(it.reviewers) > 1 and r.agreed != (it.arbitration is None and it.status == "final"):
                wrong.append("agreed")
            if it.status == "final":
                wrong += self._final_fields(r, it)
            elif r.outcome is not None or r.final_json is not None:
                wrong.append("outcome/final_json (set on an item that is not final)")
            if wrong:
                yield f"{where}: {', '.join(wrong)} not as the audit log has it (edited outside the queue)"
        for item_id in sorted(self.items.keys() - seen):
            yield (
                f"queue_items row {item_id}: pushed at audit row {self.items[item_id].seq} but missing from the "
                "table (deleted)"
            )

    @staticmethod
    def _final_fields(r: Any, it: _Item) -> list[str]:
        try:
            if it.arbitration is not None:
                who, payload, _ = it.arbitration
                decision, deciders = Decision.model_validate(payload), [*it.reviewers, who]
            else:
                first, second = (Decision.model_validate(it.reviews[w][0]) for w in it.reviewers[:2])
                decision, deciders = merge(first, second), it.reviewers[:2]
        except (ValueError, KeyError, IndexError):
            return ["final decision (the logged reviews do not make a valid decision)"]
        wrong = [] if r.outcome == outcome_of(decision) else ["outcome"]
        try:
            expected = final_json(decision, r.sample_json, r.id, deciders)
        except ValueError:
            return [*wrong, "sample_json (no longer a valid sample)"]
        if r.final_json != expected:
            wrong.append("final_json")
        return wrong

    def _check_reviews(self, conn: sa.Connection) -> Any:
        want = {(i, who): v for i, it in self.items.items() for who, v in it.reviews.items()}
        for r in _paged(conn, reviews, reviews.c.id):
            key = (r.item_id, r.reviewer)
            got = want.pop(key, None)
            where = f"reviews row {r.id} (item {r.item_id}, reviewer {r.reviewer})"
            if got is None:
                yield f"{where}: no submit of it in the audit log (inserted outside the queue)"
                continue
            payload, at, leased = got
            wrong = [
                name
                for name, ok in (
                    ("decision", r.decision == payload.get("decision")),
                    ("payload", _json(r.payload) == payload),
                    ("submitted_at", _near(r.submitted_at, at)),
                    ("leased_at", _near(r.leased_at, leased)),
                )
                if not ok
            ]
            if wrong:
                yield f"{where}: {', '.join(wrong)} not as the audit log has it (edited outside the queue)"
        for item_id, who in sorted(want):
            yield f"reviews: the review of item {item_id} by {who} is in the audit log but missing from the table"

    def _check_arbitrations(self, conn: sa.Connection) -> Any:
        want = {i: it.arbitration for i, it in self.items.items() if it.arbitration is not None}
        for r in _paged(conn, arbitrations, arbitrations.c.item_id):
            got = want.pop(r.item_id, None)
            where = f"arbitrations row {r.item_id}"
            if got is None:
                yield f"{where}: no arbitration of it in the audit log (inserted outside the queue)"
                continue
            who, payload, at = got
            wrong = [
                name
                for name, ok in (
                    ("arbiter", r.arbiter == who),
                    ("decision", r.decision == payload.get("decision")),
                    ("payload", _json(r.payload) == payload),
                    ("submitted_at", _near(r.submitted_at, at)),
                )
                if not ok
            ]
            if wrong:
                yield f"{where}: {', '.join(wrong)} not as the audit log has it (edited outside the queue)"
        for item_id in sorted(want):
            yield f"arbitrations: the arbitration of item {item_id} is in the audit log but missing from the table"

    def _check_users(self, conn: sa.Connection) -> Any:
        from review_queue.users import token_fingerprint

        want = dict(self.users)
        for r in _paged(conn, users, users.c.name):
            u = want.pop(r.name, None)
            where = f"users row {r.name}"
            if u is None:
                yield f"{where}: no audit row creates this user (inserted outside the queue)"
                continue
            wrong = [
                name
                for name, ok in (
                    ("role", r.role == u.role),
                    ("token_hash", u.token is None or token_fingerprint(r.token_hash) == u.token),
                    ("revoked_at", (r.revoked_at is not None) == u.revoked),
                )
                if not ok
            ]
            if wrong:
                yield f"{where}: {', '.join(wrong)} not as the audit log has it (edited outside the queue)"
        for name in sorted(want):
            yield f"users: {name} was created in the audit log but is missing from the table"


def _paged(conn: sa.Connection, table: sa.Table, key: sa.Column, chunk: int = 2000) -> Any:
    """Every row in key order, a chunk at a time (bounded memory on a big queue)."""
    last = None
    while True:
        q = audit_sql.table_page(table, key.name, last is not None)
        batch = conn.execute(q, {"chunk": chunk} | ({} if last is None else {"last": last})).all()
        if not batch:
            return
        yield from batch
        last = getattr(batch[-1], key.name)
