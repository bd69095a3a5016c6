"""Strata and the pull order that puts test-model samples last.

- `queue_items.stratum` (source|error_type|model|area, see review_queue.strata) with an index
  (stratum, status): judging a stratum and holding its open items read only its rows.
- `queue_items.test_model`: the sample's model id carries the test-model mark (`medaug-test`).
- `ix_queue_items_pick` gains `test_model` after `status`, so the default pull order (test
  models last, then priority, then oldest) still reads the first rows of the index.
- `queue_strata`: one row per stratum; `held_at` while its items are held (status `held`).

Existing rows get their stratum and flag here, computed the way review_queue.strata did when
this migration was written (repeated on purpose: a migration must not change when that module does).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_PART = 60


def _part(v: object) -> str:
    s = (str(v) if v else "-").replace("|", "/").strip() or "-"
    return s[:_PART]


def _stratum(sample: dict) -> tuple[str, bool]:
    p = sample.get("provenance") or {}
    chain = p.get("augmentation") or []
    if chain:
        source = chain[-1].get("augmenter")
    elif p.get("template_id"):
        source = f"template:{p['template_id']}"
    else:
        source = p.get("source")
    model = (p.get("model") or "").rstrip("/")
    short = model.rsplit("/", 1)[-1] if model.startswith(("/", ".", "~")) else model
    key = "|".join((_part(source), _part(sample.get("error_type")), _part(short), _part(sample.get("area"))))
    return key, "medaug-test" in model


def upgrade() -> None:
    with op.batch_alter_table("queue_items") as batch:
        batch.add_column(sa.Column("stratum", sa.String(255)))
        batch.add_column(sa.Column("test_model", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "queue_strata",
        sa.Column("stratum", sa.String(255), primary_key=True),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("held_at", sa.Float),
        sa.Column("hold_detail", sa.Text),
        sa.Column("released_at", sa.Float),
        sa.Column("released_by", sa.String(100)),
    )
    bind = op.get_bind()
    items = sa.table(
        "queue_items",
        sa.column("id", sa.String),
        sa.column("sample_json", sa.Text),
        sa.column("pushed_at", sa.Float),
        sa.column("stratum", sa.String),
        sa.column("test_model", sa.Boolean),
    )
    seen: dict[str, float] = {}
    last = ""
    while True:  # in pages, so a large queue is never read into memory at once
        rows = bind.execute(
            sa.select(items.c.id, items.c.sample_json, items.c.pushed_at)
            .where(items.c.id > last)
            .order_by(items.c.id)
            .limit(2000)
        ).all()
        if not rows:
            break
        for r in rows:
            key, test = _stratum(json.loads(r.sample_json))
            seen[key] = min(seen.get(key, r.pushed_at), r.pushed_at)
            bind.execute(items.update().where(items.c.id == r.id).values(stratum=key, test_model=test))
        last = rows[-1].id
    if seen:
        strata = sa.table("queue_strata", sa.column("stratum", sa.String), sa.column("first_seen", sa.Float))
        op.bulk_insert(strata, [{"stratum": k, "first_seen": t} for k, t in sorted(seen.items())])
    op.drop_index("ix_queue_items_pick", "queue_items")
    op.create_index(
        "ix_queue_items_pick",
        "queue_items",
        ["status", "test_model", sa.text("priority DESC"), "pushed_at", "id"],
    )
    op.create_index("ix_queue_items_stratum", "queue_items", ["stratum", "status"])


def downgrade() -> None:
    op.drop_index("ix_queue_items_stratum", "queue_items")
    op.drop_index("ix_queue_items_pick", "queue_items")
    op.execute("UPDATE queue_items SET status = 'open' WHERE status = 'held'")
    with op.batch_alter_table("queue_items") as batch:
        batch.drop_column("test_model")
        batch.drop_column("stratum")
    op.create_index(
        "ix_queue_items_pick", "queue_items", ["status", sa.text("priority DESC"), "pushed_at", "id"]
    )
    op.drop_table("queue_strata")
