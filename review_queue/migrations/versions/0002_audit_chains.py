"""Several audit chains, so concurrent writers do not queue behind one head-row lock until commit;
an index in the pull's order, so a pull reads the first free rows instead of sorting the pool.

Existing rows stay in chain 1 with their hashes unchanged; heads 2..N start at the
genesis hash. On PostgreSQL a sequence hands out the global order (seq) to writers of
different chains; SQLite has one writer and keeps using max(seq) + 1.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CHAINS = 32  # review_queue.db.AUDIT_CHAINS at the time of this migration


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("chain", sa.Integer, nullable=False, server_default="1"))
    head = sa.table(
        "audit_head",
        sa.column("id", sa.Integer),
        sa.column("seq", sa.BigInteger),
        sa.column("hash", sa.String),
    )
    op.bulk_insert(head, [{"id": i, "seq": 0, "hash": "0" * 64} for i in range(2, CHAINS + 1)])
    op.drop_index("ix_queue_items_pool", "queue_items")
    op.create_index(
        "ix_queue_items_pick", "queue_items", ["status", sa.text("priority DESC"), "pushed_at", "id"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE audit_log_seq")
        op.execute("SELECT setval('audit_log_seq', coalesce((SELECT max(seq) FROM audit_log), 0) + 1, false)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE audit_log_seq")
    op.drop_index("ix_queue_items_pick", "queue_items")
    op.create_index("ix_queue_items_pool", "queue_items", ["status", "priority", "pushed_at"])
    op.execute(f"DELETE FROM audit_head WHERE id BETWEEN 2 AND {CHAINS}")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("chain")
