"""Queue hardening (issue 19): blind review for every role, token revocation, the lease cap, the keyed
audit hash, and verify checking the tables against the log; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import stat
import threading
from importlib import resources
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from queue_samples import make_samples
from typer.testing import CliRunner

from medaug.cli import app as cli
from review_queue import audit
from review_queue.audit import KEY_ENV, AuditKeyError, row_hash
from review_queue.db import (
    arbitrations,
    audit_head,
    audit_log,
    audit_meta,
    items,
    make_engine,
    reviews,
    users,
)
from review_queue.decisions import Decision
from review_queue.errors import Conflict, LeaseExpired
from review_queue.service import create_app
from review_queue.store import QueueStore, migrate

APPROVE = Decision(decision="approve")
SECRET = "第一位医生的秘密意见"


def _url(store: QueueStore) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _busy(store: QueueStore) -> list:
    """Two items final (one agreed, one arbitrated with a correction), one with one review; users too."""
    a, b, c = make_samples(3)
    store.push([a, b, c], run_id="r")
    store.add_user("ann", "reviewer")
    store.pull("ann", 3)
    store.extend("ann", a.id)
    store.submit("ann", a.id, APPROVE)
    store.submit("ann", b.id, Decision(decision="reject", reject_reason="unsafe", reject_text=SECRET))
    store.submit("ann", c.id, APPROVE)
    store.pull("bob", 3)
    store.submit("bob", a.id, APPROVE)
    store.submit("bob", b.id, APPROVE)
    store.release("bob", c.id)
    store.pull_arbitration("cat", 1)
    store.arbitrate("cat", b.id, Decision(decision="correct", output=b.output + "（仲裁修订）"))
    return [a, b, c]


# ------------------------------------------------------------------ 1. blind review for every role


def test_admin_reads_no_decision_of_an_item_it_can_still_review(store: QueueStore) -> None:
    a, b = make_samples(2)
    store.push([a, b], run_id="r")
    tok = {
        n: store.add_user(n, r) for n, r in (("ann", "reviewer"), ("root", "admin"), ("max", "maintainer"))
    }
    client = TestClient(create_app(store, sweep_seconds=None))
    client.post("/api/pull", json={"size": 2}, headers=_headers(tok["ann"]))
    for s in (a, b):
        r = client.post(
            f"/api/items/{s.id}/submit",
            headers=_headers(tok["ann"]),
            json={"decision": "reject", "reject_reason": "unsafe", "reject_text": SECRET},
        )
        assert r.status_code == 200
    export = client.get("/api/audit/export", headers=_headers(tok["root"]))
    assert export.status_code == 200
    rows = [json.loads(line) for line in export.text.splitlines()]
    assert SECRET not in export.text and "unsafe" not in export.text
    assert not {a.id, b.id} & {r["item_id"] for r in rows}  # not even who leased them
    assert rows[-1]["action"] == "export" and rows[-1]["after"]["blind_for"] == "root"
    assert SECRET in client.get("/api/audit/export", headers=_headers(tok["max"])).text  # may not review: all
    verify = client.get("/api/audit/verify", headers=_headers(tok["root"])).json()
    assert verify["ok"] and SECRET not in json.dumps(verify)

    (got,) = client.post("/api/pull", json={"size": 1}, headers=_headers(tok["root"])).json()["items"]
    assert got["reviews"] == []
    client.post(f"/api/items/{got['id']}/submit", json={"decision": "approve"}, headers=_headers(tok["root"]))
    rows = [
        json.loads(line)
        for line in client.get("/api/audit/export", headers=_headers(tok["root"])).text.splitlines()
    ]
    shown = {r["item_id"] for r in rows}
    other = b.id if got["id"] == a.id else a.id
    assert got["id"] in shown and other not in shown  # its own review is in; the other item is still blind
    assert any(r["action"] == "submit" and r["actor"] == "ann" and r["item_id"] == got["id"] for r in rows)


# ------------------------------------------------------------------ 2. token revocation


def test_revoked_token_gets_401_at_once_and_is_audited(store: QueueStore) -> None:
    store.push(make_samples(2), run_id="r")
    token = store.add_user("dr_wang", "reviewer")
    client = TestClient(create_app(store, sweep_seconds=None))
    assert client.get("/api/me", headers=_headers(token)).status_code == 200
    assert len(client.post("/api/pull", json={"size": 2}, headers=_headers(token)).json()["items"]) == 2
    r = CliRunner().invoke(
        cli, ["queue", "user", "revoke", "dr_wang", "--db", _url(store), "--actor", "it_admin"]
    )
    assert r.exit_code == 0, r.output
    assert "2 leased item(s)" in r.stdout
    for method, path in (("GET", "/api/me"), ("POST", "/api/pull"), ("GET", "/api/items")):
        assert client.request(method, path, json={"size": 1}, headers=_headers(token)).status_code == 401
    assert store.authenticate(token) is None
    assert len(store.pull("dr_li", 5)) == 2  # the revoked user's leases went back to the pool
    with store.engine.connect() as c:
        logged = c.execute(
            sa.select(audit_log.c.actor, audit_log.c.action).where(
                audit_log.c.action.in_(["revoke", "release"])
            )
        ).all()
    assert sorted(map(tuple, logged)) == [
        ("it_admin", "release"),
        ("it_admin", "release"),
        ("it_admin", "revoke"),
    ]
    again = CliRunner().invoke(cli, ["queue", "user", "revoke", "dr_wang", "--db", _url(store)])
    assert again.exit_code == 1 and "already revoked" in again.stderr
    assert store.audit_verify().ok


# ------------------------------------------------------------------ 3. lease cap


def test_pull_returns_at_most_the_cap_minus_what_is_held(store: QueueStore) -> None:
    store.push(make_samples(10), run_id="r")
    store.max_leased = 3
    first = store.pull("ann", 2)
    assert len(first) == 2
    assert len(store.pull("ann", 10)) == 1  # 3 - 2 held
    with pytest.raises(Conflict, match="holds 3 leased items"):
        store.pull("ann", 1)
    store.submit("ann", first[0].id, APPROVE)
    assert len(store.pull("ann", 10)) == 1
    assert len(store.pull("bob", 10)) == 3  # the cap is per person
    tok = store.add_user("ann2", "reviewer")
    client = TestClient(create_app(store, sweep_seconds=None))
    assert len(client.post("/api/pull", json={"size": 10}, headers=_headers(tok)).json()["items"]) == 3
    r = client.post("/api/pull", json={"size": 1}, headers=_headers(tok))
    assert r.status_code == 409 and "most one person may hold" in r.json()["detail"]


def test_concurrent_pulls_of_one_person_cannot_exceed_the_cap(store: QueueStore) -> None:
    store.push(make_samples(40), run_id="r")
    store.max_leased = 5
    got: list[str] = []
    lock = threading.Lock()

    def pull() -> None:
        for _ in range(3):
            try:
                leased = store.pull("ann", 4)
            except Conflict:
                continue
            with lock:
                got.extend(i.id for i in leased)

    threads = [threading.Thread(target=pull) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == 5 and len(set(got)) == 5
    assert len(store.my_items("ann")) == 5


def test_extend_cannot_grow_a_lease_beyond_the_maximum(store: QueueStore) -> None:
    (s,) = make_samples(1)
    store.push([s], run_id="r")
    now = [1_000_000.0]
    store.clock = lambda: now[0]
    store.max_lease_seconds = 100.0  # lease_seconds is 60 in the fixture
    store.pull("ann", 1)
    now[0] += 50
    assert store.extend("ann", s.id) == 1_000_100.0  # now + 60 would be 110 s after the pull
    now[0] += 40
    with pytest.raises(Conflict, match="most a lease may"):
        store.extend("ann", s.id)
    assert store.extend("ann", s.id, 5) == 1_000_095.0  # a shorter expiry is still allowed
    now[0] += 20
    with pytest.raises(LeaseExpired):
        store.submit("ann", s.id, APPROVE)  # the lease is over
    assert store.audit_verify().ok


# ------------------------------------------------------------------ 4. keyed audit hash


def _rehash(store: QueueStore, key: bytes | None, *, keyed_from: int | None = None) -> None:
    """What an attacker with write access but without the server key can do: recompute every hash."""
    with store.engine.begin() as c:
        rows = c.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all()
        prev: dict[int, str] = {}
        for r in rows:
            p = prev.get(r.chain, "0" * 64)
            h = row_hash(r.seq, r.at, r.actor, r.action, r.item_id, r.before, r.after, p, key)
            c.execute(audit_log.update().where(audit_log.c.seq == r.seq).values(prev_hash=p, hash=h))
            prev[r.chain] = h
        for chain, h in prev.items():
            c.execute(audit_head.update().where(audit_head.c.id == chain).values(hash=h))
        if keyed_from is not None:
            c.execute(audit_meta.update().values(keyed_from_seq=keyed_from))


def test_rewriting_a_row_and_rehashing_without_the_key_is_detected(store: QueueStore) -> None:
    _busy(store)
    assert store.audit_verify().ok
    with store.engine.begin() as c:
        c.execute(audit_log.update().where(audit_log.c.action == "arbitrate").values(actor="mallory"))
    for key, keyed_from in (
        (None, None),
        (b"a guessed key that is long enough to be used", None),
        (None, 10**9),
    ):  # plain SHA-256; another key; the marker moved past every row
        _rehash(store, key, keyed_from=keyed_from)
        problems = store.audit_verify().problems
        assert problems and any("re-hashed without the key" in p or "marker" in p for p in problems), problems
    assert any("marker does not match" in p for p in store.audit_verify().problems)


def test_a_wrong_key_writes_nothing(store: QueueStore) -> None:
    store.push(make_samples(1), run_id="r")
    other = QueueStore(make_engine(_url(store)), lease_seconds=60, audit_key="x" * 40)
    with pytest.raises(AuditKeyError, match="not the key this queue"):
        other.add_user("eve", "admin")
    other.close()
    with store.engine.connect() as c:
        assert c.execute(sa.select(users.c.name)).all() == []
    assert store.audit_verify().ok


def test_old_unkeyed_rows_stay_verifiable_and_cannot_be_rehashed(pg_url: str, tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path / 'old.db'}", pg_url):
        engine = make_engine(url)
        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("review_queue") / "migrations"))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002")
        store = QueueStore(engine, lease_seconds=60)
        prev = "0" * 64
        with engine.begin() as conn:  # rows as revision 0002 wrote them: plain SHA-256
            for seq in (1, 2):
                at = "2025-01-01T00:00:00.000000+00:00"
                h = row_hash(seq, at, "ann", "export", None, None, '{"n": 1}', prev)
                conn.execute(
                    audit_log.insert().values(
                        seq=seq,
                        at=at,
                        actor="ann",
                        action="export",
                        prev_hash=prev,
                        hash=h,
                        chain=1,
                        after='{"n": 1}',
                    )
                )
                prev = h
            conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=2, hash=prev))
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT setval('audit_log_seq', 3, false)")
        migrate(engine)
        store.add_user("bob", "reviewer")
        assert store.audit_verify().ok and store.audit_verify().rows == 3
        with engine.connect() as conn:
            assert conn.execute(sa.select(audit_meta.c.keyed_from_seq)).scalar_one() == 3
        with engine.begin() as conn:  # rewrite an old row; re-hash only the (unkeyed) old rows
            conn.execute(audit_log.update().where(audit_log.c.seq == 2).values(actor="mallory"))
        _rehash(store, None)
        problems = store.audit_verify().problems
        assert any(p.startswith("row 3:") for p in problems), problems  # the keyed row no longer matches
        store.close()


def test_no_key_postgres_refuses_and_sqlite_gets_a_demo_key_file(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(AuditKeyError, match=KEY_ENV):
        QueueStore.open(pg_url)
    r = CliRunner().invoke(cli, ["queue", "user", "add", "ann", "--role", "reviewer", "--db", pg_url])
    assert r.exit_code == 2 and f"{KEY_ENV} is not set" in r.stderr
    monkeypatch.setenv(KEY_ENV, "too short")
    with pytest.raises(AuditKeyError, match="at least 32"):
        QueueStore.open(pg_url)
    monkeypatch.delenv(KEY_ENV)

    db = tmp_path / "demo.db"
    with caplog.at_level(logging.WARNING, logger="review_queue.audit"):
        store = QueueStore.open(f"sqlite:///{db}")
    key_file = tmp_path / "demo.db.audit-key"
    assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert any("generated a demo audit key" in m for m in caplog.messages)
    _busy(store)
    store.close()
    again = QueueStore.open(f"sqlite:///{db}")  # a later process finds the same key
    assert again.audit_verify().ok
    _rehash(again, hashlib.sha256(b"not it").hexdigest().encode())
    assert not again.audit_verify().ok
    again.close()


# ------------------------------------------------------------------ 5. verify checks the tables


EDITS = [
    (
        "reviews payload",
        lambda c, ids: c.execute(
            reviews.update()
            .where(reviews.c.item_id == ids[1], reviews.c.reviewer == "ann")
            .values(payload='{"decision": "reject", "reject_reason": "other"}')
        ),
        "reviews row",
    ),
    (
        "reviews decision",
        lambda c, ids: c.execute(
            reviews.update()
            .where(reviews.c.item_id == ids[0], reviews.c.reviewer == "bob")
            .values(decision="reject")
        ),
        "decision",
    ),
    (
        "review deleted",
        lambda c, ids: c.execute(reviews.delete().where(reviews.c.item_id == ids[2])),
        "missing from the table",
    ),
    (
        "review inserted",
        lambda c, ids: c.execute(
            reviews.insert().values(
                item_id=ids[2],
                reviewer="mallory",
                decision="approve",
                payload='{"decision": "approve"}',
                leased_at=1.0,
                submitted_at=1.0,
            )
        ),
        "no submit of it",
    ),
    (
        "item final_json",
        lambda c, ids: c.execute(
            items.update().where(items.c.id == ids[0]).values(final_json='{"forged": true}')
        ),
        "final_json",
    ),
    (
        "item sample text",  # the answer a physician will see, rewritten in the table
        lambda c, ids: c.execute(
            items.update()
            .where(items.c.id == ids[2])
            .values(sample_json=sa.func.replace(items.c.sample_json, '"output":"', '"output":"保证治愈。'))
        ),
        "sample_json",
    ),
    (
        "item status",
        lambda c, ids: c.execute(items.update().where(items.c.id == ids[2]).values(status="final")),
        "status",
    ),
    (
        "item priority",
        lambda c, ids: c.execute(items.update().where(items.c.id == ids[2]).values(priority=99)),
        "priority",
    ),
    ("arbitration", lambda c, ids: c.execute(arbitrations.update().values(arbiter="mallory")), "arbiter"),
    (
        "user role",
        lambda c, ids: c.execute(users.update().where(users.c.name == "ann").values(role="admin")),
        "role",
    ),
    (
        "user inserted",
        lambda c, ids: c.execute(
            users.insert().values(name="mallory", role="admin", token_hash="f" * 64, created_at=1.0)
        ),
        "no audit row creates",
    ),
]


@pytest.mark.parametrize("name", [e[0] for e in EDITS])
def test_a_table_edit_without_a_log_row_fails_verify(store: QueueStore, name: str) -> None:
    ids = [s.id for s in _busy(store)]
    assert store.audit_verify().ok
    _, edit, needle = next(e for e in EDITS if e[0] == name)
    with store.engine.begin() as c:
        edit(c, ids)
    problems = store.audit_verify().problems
    assert any(needle in p for p in problems), problems
    assert not any(SECRET in p or "unsafe" in p for p in problems)  # names rows and fields, never decisions


def test_export_of_the_cli_is_whole(store: QueueStore, tmp_path: Path) -> None:
    _busy(store)
    out = tmp_path / "audit.jsonl"
    r = CliRunner().invoke(cli, ["queue", "audit", "export", "--out", str(out), "--db", _url(store)])
    assert r.exit_code == 0, r.output
    buf = io.StringIO()
    n = store.audit_export(buf, actor="max")
    assert n == len(out.read_text(encoding="utf-8").splitlines()) + 1 and SECRET in buf.getvalue()


def test_a_writer_finding_every_head_busy_starts_a_chain_instead_of_waiting(pg_url: str) -> None:
    from review_queue.audit import Event
    from review_queue.db import AUDIT_CHAINS

    store = QueueStore.open(pg_url)
    conns = [store.engine.connect() for _ in range(AUDIT_CHAINS + 1)]
    try:
        txs = [c.begin() for c in conns]
        for i, c in enumerate(conns):  # each holds a head until commit; the last one finds none free
            c.exec_driver_sql(
                "SET LOCAL statement_timeout = '10s'"
            )  # waiting for a head would fail, not hang
            audit.append(c, [Event(f"w{i}", "export", None, None, {"n": i})], at=1.0 + i)
        for t in reversed(txs):
            t.commit()
    finally:
        for c in conns:
            c.close()
    with store.engine.connect() as c:
        chains = c.execute(sa.select(audit_log.c.actor, audit_log.c.chain)).all()
        heads = c.execute(sa.select(sa.func.count()).select_from(audit_head)).scalar_one()
    assert {a: ch for a, ch in chains}[f"w{AUDIT_CHAINS}"] == AUDIT_CHAINS + 1 and heads == AUDIT_CHAINS + 1
    assert store.audit_verify().ok
    store.close()
