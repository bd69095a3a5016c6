"""Keyed audit hash, token revocation, an index for the per-reviewer lease cap.

- `audit_meta`: one row marking where the keyed hash starts. Rows already in the log keep their
  plain SHA-256 hashes and stay verifiable; every row from `keyed_from_seq` on is HMAC-SHA256
  with the server key (MEDAUG_AUDIT_KEY). `key_check` = HMAC(key, "medaug-audit-marker:<seq>")
  seals the boundary, so it needs the key: `review_queue.store.migrate` passes it in
  `config.attributes["audit_key"]` (the formula is repeated here on purpose: a migration must not
  change when review_queue.audit does).
- `users.revoked_at`: a revoked token stops authenticating at once.
- `ix_queue_items_lease_owner`: counts a reviewer's current leases without scanning the pool.
- PostgreSQL: `queue_lease_room(who, now, cap, want)`, the pull's LIMIT: it takes a per-person
  advisory lock, then counts that person's unexpired leases. It is VOLATILE, so in READ
  COMMITTED its count sees every pull of the same person that committed before the lock was
  granted, and two concurrent pulls cannot together exceed the cap.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

import hashlib
import hmac

import sqlalchemy as sa
from alembic import context, op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    key = context.config.attributes.get("audit_key")
    if not isinstance(key, bytes) or not key:
        raise RuntimeError(
            "migration 0003 seals the audit key marker and needs the audit key: run it through "
            "review_queue.store.migrate (MEDAUG_AUDIT_KEY)"
        )
    op.create_table(
        "audit_meta",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("keyed_from_seq", sa.BigInteger, nullable=False),
        sa.Column("key_check", sa.String(64), nullable=False),
    )
    start = int(
        op.get_bind().execute(sa.text("SELECT coalesce(max(seq), 0) + 1 FROM audit_log")).scalar_one()
    )
    check = hmac.new(key, f"medaug-audit-marker:{start}".encode(), hashlib.sha256).hexdigest()
    meta = sa.table(
        "audit_meta",
        sa.column("id", sa.Integer),
        sa.column("keyed_from_seq", sa.BigInteger),
        sa.column("key_check", sa.String),
    )
    op.bulk_insert(meta, [{"id": 1, "keyed_from_seq": start, "key_check": check}])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("revoked_at", sa.Float))
    op.create_index("ix_queue_items_lease_owner", "queue_items", ["lease_owner"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(LEASE_ROOM)


LEASE_ROOM = """
CREATE FUNCTION queue_lease_room(who text, now double precision, cap integer, want integer) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE held integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('medaug-lease:' || who, 0));
    SELECT count(*) INTO held FROM queue_items
     WHERE lease_owner = who AND lease_expires >= now AND status <> 'final';
    RETURN greatest(0, least(want, cap - held));
END $$
"""


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION queue_lease_room(text, double precision, integer, integer)")
    op.drop_index("ix_queue_items_lease_owner", "queue_items")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("revoked_at")
    op.drop_table("audit_meta")
