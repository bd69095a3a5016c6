"""Every SQL statement of the queue, by name.

The rest of review_queue is the logic around these: it picks a statement here and runs it with
named parameters, and builds no SQL of its own (tests/review_queue/test_sql.py checks both that
and that every statement here is used). Statements are SQLAlchemy Core, built once at import
time with named bind parameters, so each compiles once and PostgreSQL prepares it
(review_queue.pgfast). IN-lists are expanding parameters; callers pass at most `IN_CHUNK`
values at a time (SQLite's limit on bound variables).

SQLite and PostgreSQL. The statements are the same for both except where a function below takes
`pg`: the INSERT .. ON CONFLICT DO NOTHING of each dialect, and the pull, which on PostgreSQL
picks, locks (SKIP LOCKED) and leases in one statement. `FOR UPDATE` is not rendered on SQLite,
where every write transaction is `BEGIN IMMEDIATE` (one writer at a time). The audit log's
statements are in review_queue.audit_sql, under the same rule. The Alembic migrations keep their
own DDL (a migration must not change when this module does).
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from review_queue.db import arbitrations, items, reviews, strata, users

IN_CHUNK = 900  # values per expanding IN parameter


def _ids(name: str = "ids") -> Any:
    return sa.bindparam(name, expanding=True)


_NO_LEASE = {"lease_owner": None, "lease_started": None, "lease_expires": None}
_DECIDED = ("arbitration", "final")  # statuses past the two reviews: nobody can review the item any more

# ------------------------------------------------------------------ connections (review_queue.db)

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=60000",
)
SQLITE_BEGIN = "BEGIN IMMEDIATE"  # every SQLite transaction takes the write lock at its start

# ------------------------------------------------------------------ push


def _insert(pg: bool) -> Any:
    return postgresql.insert if pg else sqlite.insert


@functools.cache
def push_items(pg: bool) -> Any:
    """Insert queue rows (executemany), skipping ids already queued."""
    return _insert(pg)(items).on_conflict_do_nothing(index_elements=["id"])


@functools.cache
def record_strata(pg: bool) -> Any:
    """Insert strata rows (stratum, first_seen), skipping those already seen."""
    return _insert(pg)(strata).on_conflict_do_nothing(index_elements=["stratum"])


QUEUED_IDS = sa.select(items.c.id).where(items.c.id.in_(_ids()))
SAMPLE_JSON_OF = sa.select(items.c.id, items.c.sample_json).where(items.c.id.in_(_ids()))
HELD_AMONG = sa.select(strata.c.stratum).where(
    strata.c.stratum.in_(_ids("keys")), strata.c.held_at.is_not(None)
)
# Reviewers pull right after a push; with stale statistics PostgreSQL sorts the whole pool for every
# pull instead of reading the first rows of ix_queue_items_pick.
ANALYZE_ITEMS = sa.text("ANALYZE queue_items")

# ------------------------------------------------------------------ users

USER_NAMED = sa.select(users.c.name).where(users.c.name == sa.bindparam("name"))
ADD_USER = users.insert()  # name, role, token_hash, created_at
LOCK_USER = sa.select(users).where(users.c.name == sa.bindparam("name")).with_for_update()
REVOKE_USER = (
    users.update().where(users.c.name == sa.bindparam("u_name")).values(revoked_at=sa.bindparam("u_at"))
)
TOKEN_USER = sa.select(users.c.name, users.c.role).where(
    users.c.token_hash == sa.bindparam("token_hash"), users.c.revoked_at.is_(None)
)
LOCK_LEASES_OF = (
    sa.select(items.c.id)
    .where(items.c.lease_owner == sa.bindparam("owner"), items.c.status != "final")
    .order_by(items.c.id)
    .with_for_update()
)

# ------------------------------------------------------------------ leases


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
def lease_statement(
    pg: bool,
    arbitration: bool,
    filters: tuple[str, ...],
    quota_keys: tuple[str, ...] = (),
    test_models_last: bool = True,
) -> Any:
    """The pull statement for one shape of request, built once; every value is a named parameter.

    PostgreSQL: pick, lock (SKIP LOCKED) and lease in one UPDATE .. FROM (SELECT ..) RETURNING.
    SQLite: the SELECT only; the caller leases the picked rows with `LEASE_PICKED`.
    """
    who = sa.bindparam("p_who")
    if arbitration:
        cond = [
            items.c.status == "arbitration",
            items.c.first_reviewer != who,
            items.c.second_reviewer != who,
        ]
    else:
        cond = [items.c.status == "open", sa.func.coalesce(items.c.first_reviewer, "") != who]
        cond += [items.c[name].in_(sa.bindparam(f"p_{name}", expanding=True)) for name in filters]
    now = sa.bindparam("p_now")
    size: Any = sa.bindparam("p_size", type_=sa.Integer)
    if pg:  # the cap minus what `who` holds, counted under a per-person lock (migration 0003)
        size = sa.func.queue_lease_room(
            who, now, sa.bindparam("p_cap", type_=sa.Integer), size, type_=sa.Integer
        )
    if arbitration:
        order: list[Any] = []
        rank: Any = sa.literal(0)
    else:  # with test models last and no quota this is ix_queue_items_pick's order: no sort of the pool
        rank = _pick_rank(quota_keys, test_models_last)
        order = [items.c.test_model] if test_models_last and not quota_keys else [rank] if quota_keys else []
    pick = (
        sa.select(
            items.c.id,
            items.c.lease_owner.label("old_owner"),
            items.c.lease_expires.label("old_expires"),
            rank.label("pick_rank"),
        )
        .where(*cond, sa.or_(items.c.lease_owner.is_(None), items.c.lease_expires < now))
        .order_by(*order, items.c.priority.desc(), items.c.pushed_at, items.c.id)
        .limit(size)
        .with_for_update(skip_locked=True)
    )
    shown = (items.c.status, items.c.priority, items.c.pushed_at, items.c.sample_json, items.c.parent_json)
    if not pg:
        return pick.add_columns(*shown)
    old = pick.subquery("old")
    return (
        items.update()
        .where(items.c.id == old.c.id)
        .values(
            lease_owner=sa.bindparam("l_owner"),
            lease_started=sa.bindparam("l_started"),
            lease_expires=sa.bindparam("l_expires"),
        )
        .returning(items.c.id, *shown, old.c.old_owner, old.c.old_expires, old.c.pick_rank)
    )


@functools.cache
def approved_by(key: str) -> Any:
    """Approved or corrected final items per value of one column (a pull quota's key)."""
    col = items.c[key]
    return (
        sa.select(col, sa.func.count())
        .where(items.c.status == "final", items.c.outcome != "rejected")
        .group_by(col)
    )


LEASE_PICKED = (
    items.update()
    .where(items.c.id.in_(_ids()))
    .values(
        lease_owner=sa.bindparam("l_owner"),
        lease_started=sa.bindparam("l_started"),
        lease_expires=sa.bindparam("l_expires"),
    )
)
HELD_LEASES = (
    sa.select(sa.func.count())
    .select_from(items)
    .where(
        items.c.lease_owner == sa.bindparam("h_who"),
        items.c.lease_expires >= sa.bindparam("h_now"),
        items.c.status != "final",
    )
)
MY_LEASES = (
    sa.select(items)
    .where(
        items.c.lease_owner == sa.bindparam("who"),
        items.c.lease_expires >= sa.bindparam("now"),
        items.c.status != "final",
    )
    .order_by(items.c.priority.desc(), items.c.pushed_at, items.c.id)
)
ITEM = sa.select(items).where(items.c.id == sa.bindparam("id"))
LOCK_ITEM = ITEM.with_for_update(of=items)
EXTEND_LEASE = (
    items.update().where(items.c.id == sa.bindparam("e_id")).values(lease_expires=sa.bindparam("e_expires"))
)
END_LEASES = items.update().where(items.c.id.in_(_ids())).values(**_NO_LEASE)
LOCK_EXPIRED_LEASES = (
    sa.select(items.c.id, items.c.lease_owner, items.c.lease_expires)
    .where(items.c.lease_owner.is_not(None), items.c.lease_expires < sa.bindparam("now"))
    .with_for_update(skip_locked=True)
)

# ------------------------------------------------------------------ reviews and arbitrations

_FIRST_PAYLOAD = (
    sa.select(reviews.c.payload)
    .where(reviews.c.item_id == items.c.id)
    .order_by(reviews.c.id)
    .limit(1)
    .scalar_subquery()
    .label("first_payload")
)
# The first review comes with the item's row, so the second review needs no extra query.
READ_FOR_SUBMIT = sa.select(items, _FIRST_PAYLOAD).where(items.c.id == sa.bindparam("lock_id"))
LOCK_FOR_SUBMIT = READ_FOR_SUBMIT.with_for_update(of=items)
REVIEW_INSERT = reviews.insert().values(
    item_id=sa.bindparam("r_item"),
    reviewer=sa.bindparam("r_reviewer"),
    decision=sa.bindparam("r_decision"),
    payload=sa.bindparam("r_payload"),
    leased_at=sa.bindparam("r_leased"),
    submitted_at=sa.bindparam("r_at"),
)
FIRST_REVIEW = (
    items.update()
    .where(items.c.id == sa.bindparam("u_id"))
    .values(reviews_done=1, first_reviewer=sa.bindparam("u_first"), **_NO_LEASE)
)
SECOND_REVIEW = (
    items.update()
    .where(items.c.id == sa.bindparam("u_id"))
    .values(
        reviews_done=2,
        second_reviewer=sa.bindparam("u_second"),
        agreed=sa.bindparam("u_agreed"),
        status=sa.bindparam("u_status"),
        outcome=sa.bindparam("u_outcome"),
        final_json=sa.bindparam("u_final_json"),
        finalized_at=sa.bindparam("u_finalized"),
        **_NO_LEASE,
    )
)
ARBITRATION_INSERT = arbitrations.insert()  # item_id, arbiter, decision, payload, submitted_at
ARBITRATED = (
    items.update()
    .where(items.c.id == sa.bindparam("f_id"))
    .values(
        status="final",
        outcome=sa.bindparam("f_outcome"),
        final_json=sa.bindparam("f_final_json"),
        finalized_at=sa.bindparam("f_at"),
        **_NO_LEASE,
    )
)

# ------------------------------------------------------------------ results

REVIEWS_OF = (
    sa.select(reviews).where(reviews.c.item_id.in_(_ids())).order_by(reviews.c.submitted_at, reviews.c.id)
)
ARBITRATIONS_OF = sa.select(arbitrations).where(arbitrations.c.item_id.in_(_ids()))
_FINAL = sa.select(
    items.c.id, items.c.run_id, items.c.outcome, items.c.final_json, items.c.finalized_at
).where(items.c.status == "final")
FINAL_ITEMS = _FINAL.order_by(items.c.finalized_at, items.c.id)
FINAL_ITEMS_SINCE = _FINAL.where(items.c.finalized_at > sa.bindparam("since")).order_by(
    items.c.finalized_at, items.c.id
)
ITEMS_BY_STATUS = sa.select(items.c.status, sa.func.count()).group_by(items.c.status)
FINAL_BY_OUTCOME = (
    sa.select(items.c.outcome, sa.func.count()).where(items.c.status == "final").group_by(items.c.outcome)
)
REVIEW_TIMES = sa.select(
    reviews.c.item_id, reviews.c.reviewer, reviews.c.decision, reviews.c.leased_at, reviews.c.submitted_at
)
REVIEW_PAIRS = sa.select(items.c.id, items.c.first_reviewer, items.c.second_reviewer, items.c.agreed).where(
    items.c.second_reviewer.is_not(None)
)
ITEM_STRATA = sa.select(items.c.id, items.c.stratum)
USABLE_BY_STRATUM = approved_by("stratum")
# Of some ids, the items `who` could still review: not yet past review, and not reviewed by them.
REVIEWABLE_BY = sa.select(items.c.id).where(
    items.c.id.in_(_ids()),
    items.c.status.not_in(_DECIDED),
    sa.func.coalesce(items.c.first_reviewer, "") != sa.bindparam("who"),
)

# ------------------------------------------------------------------ strata


def _decisions(t: sa.Table, one: bool) -> Any:
    q = sa.select(items.c.stratum, t.c.decision, t.c.submitted_at).join(items, items.c.id == t.c.item_id)
    return q.where(items.c.stratum == sa.bindparam("stratum")) if one else q


# (stratum, decision, submitted_at) of every review and of every arbitration; and of one stratum's
STRATA_DECISIONS = (_decisions(reviews, False), _decisions(arbitrations, False))
STRATUM_DECISIONS = (_decisions(reviews, True), _decisions(arbitrations, True))
STRATUM_OF_ITEM = sa.select(items.c.stratum).where(items.c.id == sa.bindparam("id"))
STRATUM = sa.select(strata).where(strata.c.stratum == sa.bindparam("stratum"))
LOCK_STRATUM = STRATUM.with_for_update()
OPEN_IN_STRATUM = (
    sa.select(sa.func.count())
    .select_from(items)
    .where(items.c.stratum == sa.bindparam("stratum"), items.c.status == "open")
)
HOLD_STRATUM = (
    strata.update()
    .where(strata.c.stratum == sa.bindparam("s_key"))
    .values(held_at=sa.bindparam("s_at"), hold_detail=sa.bindparam("s_detail"))
)
UNHOLD_STRATUM = (
    strata.update()
    .where(strata.c.stratum == sa.bindparam("s_key"))
    .values(held_at=None, released_at=sa.bindparam("s_at"), released_by=sa.bindparam("s_by"))
)
# Items under an unexpired lease stay with their reviewer; the next decision sweeps them.
LOCK_HOLDABLE = (
    sa.select(items.c.id)
    .where(
        items.c.stratum == sa.bindparam("stratum"),
        items.c.status == "open",
        sa.or_(items.c.lease_owner.is_(None), items.c.lease_expires < sa.bindparam("now")),
    )
    .order_by(items.c.id)
    .with_for_update()
)
LOCK_HELD = (
    sa.select(items.c.id)
    .where(items.c.stratum == sa.bindparam("stratum"), items.c.status == "held")
    .order_by(items.c.id)
    .with_for_update()
)
HOLD_ITEMS = items.update().where(items.c.id.in_(_ids())).values(status="held", **_NO_LEASE)
REOPEN_ITEMS = items.update().where(items.c.id.in_(_ids())).values(status="open")
ALL_STRATA = sa.select(strata).order_by(strata.c.stratum)
ITEMS_BY_STRATUM_STATUS = sa.select(items.c.stratum, items.c.status, sa.func.count()).group_by(
    items.c.stratum, items.c.status
)

# ------------------------------------------------------------------ evidence

NEIGHBOUR_CANDIDATES = (
    sa.select(items.c.id, items.c.status, items.c.sample_json)
    .where(
        items.c.area == sa.bindparam("area"),
        items.c.task == sa.bindparam("task"),
        items.c.id != sa.bindparam("id"),
    )
    .order_by(items.c.pushed_at.desc())
    .limit(sa.bindparam("pool", type_=sa.Integer))
)
