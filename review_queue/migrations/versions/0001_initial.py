"""Initial queue tables: items, reviews, arbitrations, users, hash-chained audit log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_items",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("area", sa.String(32), nullable=False),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16)),
        sa.Column("agreed", sa.Boolean),
        sa.Column("reviews_done", sa.Integer, nullable=False),
        sa.Column("first_reviewer", sa.String(100)),
        sa.Column("second_reviewer", sa.String(100)),
        sa.Column("lease_owner", sa.String(100)),
        sa.Column("lease_started", sa.Float),
        sa.Column("lease_expires", sa.Float),
        sa.Column("sample_json", sa.Text, nullable=False),
        sa.Column("parent_json", sa.Text),
        sa.Column("final_json", sa.Text),
        sa.Column("pushed_at", sa.Float, nullable=False),
        sa.Column("finalized_at", sa.Float),
    )
    op.create_index("ix_queue_items_pool", "queue_items", ["status", "priority", "pushed_at"])
    op.create_index("ix_queue_items_finalized", "queue_items", ["finalized_at"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(64), sa.ForeignKey("queue_items.id"), nullable=False),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("leased_at", sa.Float, nullable=False),
        sa.Column("submitted_at", sa.Float, nullable=False),
        sa.UniqueConstraint("item_id", "reviewer", name="uq_reviews_item_reviewer"),
    )
    op.create_table(
        "arbitrations",
        sa.Column("item_id", sa.String(64), sa.ForeignKey("queue_items.id"), primary_key=True),
        sa.Column("arbiter", sa.String(100), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("submitted_at", sa.Float, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("item_id", sa.String(64)),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": "0" * 64}])


def downgrade() -> None:
    for name in ("audit_head", "audit_log", "users", "arbitrations", "reviews", "queue_items"):
        op.drop_table(name)
