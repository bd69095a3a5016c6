"""Several audit chains on PostgreSQL: concurrent writers take different heads, and every chain is verified."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from review_queue import audit
from review_queue.audit import GENESIS, Event, row_hash
from review_queue.db import audit_log, make_engine
from review_queue.store import QueueStore, migrate


def _rows(store: QueueStore) -> list[sa.Row]:
    with store.engine.connect() as c:
        return c.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all()


def test_concurrent_writers_use_separate_chains_and_verify(pg_url: str) -> None:
    store = QueueStore.open(pg_url)
    try:
        with store.engine.connect() as c1, store.engine.connect() as c2:
            t1, t2 = c1.begin(), c2.begin()
            audit.append(c1, [Event("ann", "export", None, None, {"n": 1})], at=1.0)  # holds head 1
            audit.append(
                c2,
                [
                    Event("bob", "export", None, None, {"n": 2}),  # so this one takes head 2
                    Event("bob", "export", None, None, {"n": 3}),
                ],
                at=2.0,
            )
            t2.commit()
            t1.commit()
        rows = _rows(store)
        assert [(r.actor, r.chain) for r in rows] == [("ann", 1), ("bob", 2), ("bob", 2)]
        assert (
            rows[0].prev_hash == GENESIS
            and rows[1].prev_hash == GENESIS
            and rows[2].prev_hash == rows[1].hash
        )
        assert store.audit_verify().ok

        with store.engine.begin() as c:  # the newest row of chain 2 disappears: only its head can tell
            c.execute(audit_log.delete().where(audit_log.c.seq == rows[2].seq))
        problems = store.audit_verify().problems
        assert problems == [
            f"chain 2 ends at row {rows[1].seq} but the head records row {rows[2].seq} "
            "(newest rows deleted or head edited)"
        ]
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_log_written_before_the_chains_migration_still_verifies(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("review_queue") / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    prev = GENESIS
    with engine.begin() as conn:  # three rows the way revision 0001 wrote them: one chain, no chain column
        for seq in (1, 2, 3):
            h = row_hash(
                seq, "2025-01-01T00:00:00.000000+00:00", "ann", "export", None, None, '{"n": 1}', prev
            )
            conn.execute(
                sa.text(
                    "INSERT INTO audit_log VALUES (:s, '2025-01-01T00:00:00.000000+00:00', 'ann', "
                    "'export', NULL, NULL, '{\"n\": 1}', :p, :h)"
                ),
                {"s": seq, "p": prev, "h": h},
            )
            prev = h
        conn.execute(sa.text("UPDATE audit_head SET seq = 3, hash = :h WHERE id = 1"), {"h": prev})
    migrate(engine)
    store = QueueStore(engine)
    try:
        assert store.audit_verify().ok and store.audit_verify().rows == 3
        store.add_user("bob", "reviewer")  # appended after the old rows, seq 4
        rows = _rows(store)
        assert [r.seq for r in rows] == [1, 2, 3, 4] and rows[3].prev_hash == prev and rows[3].chain == 1
        assert store.audit_verify().ok
    finally:
        store.close()
