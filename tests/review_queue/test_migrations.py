"""The Alembic migrations build exactly the tables that review_queue.db declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from review_queue.db import AUDIT_CHAINS, audit_head, metadata
from review_queue.store import QueueStore


def test_migrated_schema_matches_the_declared_tables(store: QueueStore) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"version_table": "queue_alembic_version"}),
                                metadata)
        heads = conn.execute(audit_head.select().order_by(audit_head.c.id)).all()
    assert diff == []
    assert [h.id for h in heads] == list(range(1, AUDIT_CHAINS + 1)) and {h.seq for h in heads} == {0}
