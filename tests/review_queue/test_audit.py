"""The audit chain: every action recorded, any edit or deletion detected, by the API and the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import sqlalchemy as sa
from queue_samples import make_samples
from typer.testing import CliRunner

from medaug.cli import app
from review_queue.db import audit_log
from review_queue.decisions import Decision
from review_queue.store import QueueStore


def _busy_store(store: QueueStore) -> list[dict]:
    a, b = make_samples(2)
    store.push([a, b], run_id="r")
    store.pull("ann", 2)
    store.extend("ann", a.id)
    store.release("ann", b.id)
    store.submit("ann", a.id, Decision(decision="approve"))
    store.pull("bob", 2)
    store.submit("bob", a.id, Decision(decision="reject", reject_reason="duplicate"))
    store.pull_arbitration("cat", 1)
    store.arbitrate("cat", a.id, Decision(decision="approve"))
    buf = io.StringIO()
    store.audit_export(buf, actor="max")
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_every_action_is_chained(store: QueueStore) -> None:
    rows = _busy_store(store)
    assert [r["action"] for r in rows] == [
        "push",
        "push",
        "lease",
        "lease",
        "extend",
        "release",
        "submit",
        "lease",
        "lease",
        "submit",
        "lease",
        "arbitrate",
        "export",
    ]
    assert [r["seq"] for r in rows] == list(range(1, 14))
    assert all(r["prev_hash"] == p["hash"] for p, r in zip(rows, rows[1:], strict=False))
    sub = rows[9]
    assert (
        sub["actor"] == "bob"
        and sub["before"]["reviews_done"] == 1
        and sub["after"]["status"] == "arbitration"
    )
    assert store.audit_verify().ok


def test_edits_and_deletions_are_detected(store: QueueStore) -> None:
    _busy_store(store)
    with store.engine.begin() as c:
        c.execute(audit_log.update().where(audit_log.c.seq == 7).values(actor="mallory"))
    res = store.audit_verify()
    assert not res.ok and any("row 7" in p and "edited" in p for p in res.problems)
    with store.engine.begin() as c:
        c.execute(audit_log.delete().where(audit_log.c.seq == 7))
    res = store.audit_verify()
    assert any(
        p.startswith("row 8: prev_hash does not match row 6 of chain 1") and "missing (deleted)" in p
        for p in res.problems
    )


def test_deleting_the_newest_rows_is_detected(store: QueueStore) -> None:
    _busy_store(store)
    with store.engine.begin() as c:
        last = c.execute(sa.select(sa.func.max(audit_log.c.seq))).scalar_one()
        c.execute(audit_log.delete().where(audit_log.c.seq == last))
    assert any("head records" in p for p in store.audit_verify().problems)


def test_cli_user_add_push_verify_export(tmp_path: Path) -> None:
    from medaug.io import write_parquet

    db = f"sqlite:///{tmp_path / 'q.db'}"
    runner = CliRunner()
    r = runner.invoke(app, ["queue", "user", "add", "dr_li", "--role", "reviewer", "--db", db])
    assert r.exit_code == 0 and len(r.stdout.strip()) >= 40
    store = QueueStore.open(db)
    assert store.authenticate(r.stdout.strip()).name == "dr_li"
    assert r.stdout.strip() not in (tmp_path / "q.db").read_bytes().decode(
        "latin-1"
    )  # only the hash is stored
    shard = write_parquet(
        make_samples(5) + make_samples(1, prefix="未脱敏", deid=False), tmp_path / "s.parquet"
    )
    r = runner.invoke(app, ["queue", "push", str(shard), "--run-id", "run7", "--db", db])
    assert r.exit_code == 2 and "inserted=5" in r.stdout and "not de-identified" in r.stderr
    r = runner.invoke(app, ["queue", "audit", "verify", "--db", db])
    assert r.exit_code == 0 and "ok=True" in r.stdout
    out = tmp_path / "audit.jsonl"
    r = runner.invoke(app, ["queue", "audit", "export", "--out", str(out), "--db", db])
    assert r.exit_code == 0 and len(out.read_text().splitlines()) == 7
    with store.engine.begin() as c:
        c.execute(audit_log.update().where(audit_log.c.seq == 3).values(after='{"run_id": "forged"}'))
    r = runner.invoke(app, ["queue", "audit", "verify", "--db", db])
    assert r.exit_code == 1 and "row 3" in r.stderr
