"""The service under hostile input, on SQLite and PostgreSQL: field limits, all-or-nothing pushes,
4xx (never 500) for bad values, nothing echoed back, path ids, body cap, security headers, and no
text-length work inside a write transaction."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from queue_samples import make_samples

import review_queue.store as store_module
import review_queue.submit as submit_module
from medaug.schema import MAX_ID_CHARS, MAX_TEXT_CHARS
from review_queue.decisions import Decision
from review_queue.service import create_app
from review_queue.store import QueueStore

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def client(store: QueueStore) -> TestClient:
    return TestClient(create_app(store, sweep_seconds=None), raise_server_exceptions=False)


def _tok(store: QueueStore, name: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.add_user(name, role)}"}


def _body(samples: list[Any], **kw: Any) -> dict[str, Any]:
    rows = [s.model_dump(mode="json") if hasattr(s, "model_dump") else s for s in samples]
    return {"run_id": "r", "samples": rows, **kw}


def _count(store: QueueStore) -> int:
    return sum(store.counts().values())


def test_push_fields_are_checked_against_the_schema_limits(client: TestClient, store: QueueStore) -> None:
    tok = _tok(store, "max", "maintainer")
    good = [s.model_dump(mode="json") for s in make_samples(3)]
    cases = [
        ({"id": "x" * 80}, "id", "64"),
        ({"id": "runs/a"}, "id", "'/'"),
        ({"id": "a\x00b"}, "id", "position 1"),
        ({"instruction": "问" * (MAX_TEXT_CHARS + 1)}, "instruction", str(MAX_TEXT_CHARS)),
        ({"output": "答\x00"}, "output", "NUL"),
        ({"icd10": ["I10"] * 65}, "icd10", "64"),
    ]
    for change, field, needle in cases:
        rows = [good[0], good[1], {**good[2], **change}]
        r = client.post("/api/push", json={"run_id": "r", "samples": rows}, headers=tok)
        assert r.status_code == 422, (change.keys(), r.text[:300])
        (err,) = r.json()["detail"]
        assert err["loc"][:4] == ["body", "samples", 2, field], err  # the record index and the field
        assert needle in err["msg"], err
        assert len(r.content) < 2000  # the oversized value is not echoed
    ok = {**good[2], "instruction": "问" * MAX_TEXT_CHARS}  # the limit itself is accepted
    r = client.post("/api/push", json={"run_id": "r", "samples": [ok]}, headers=tok)
    assert r.status_code == 200 and r.json()["inserted"] == 1
    assert _count(store) == 1  # no refused batch stored anything


@pytest.mark.parametrize(
    "change",
    [
        {"priority": 2**63},
        {"priority": 2**31},
        {"priority": -(2**31) - 1},
        {"run_id": "r\x00"},
        {"run_id": ""},
        {"run_id": "r" * 201},
    ],
)
def test_push_arguments_out_of_column_range_are_4xx(
    client: TestClient, store: QueueStore, change: dict[str, Any]
) -> None:
    tok = _tok(store, "max", "maintainer")
    r = client.post("/api/push", json=_body(make_samples(2)) | change, headers=tok)
    assert r.status_code == 422, r.text[:300]
    assert r.json()["detail"][0]["loc"] == ["body", next(iter(change))]
    assert _count(store) == 0
    edge = client.post("/api/push", json=_body(make_samples(1), priority=2**31 - 1), headers=tok)
    assert edge.status_code == 200 and edge.json()["inserted"] == 1


def test_issue_push_with_a_long_id_late_in_the_batch_stores_nothing(
    client: TestClient, store: QueueStore
) -> None:
    tok = _tok(store, "max", "maintainer")
    rows = [s.model_dump(mode="json") for s in make_samples(2500)]
    rows[2300]["id"] = "i" * 80
    r = client.post("/api/push", json={"run_id": "r", "samples": rows}, headers=tok)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][:4] == ["body", "samples", 2300, "id"]
    assert _count(store) == 0


def test_push_that_fails_in_the_database_stores_nothing(store: QueueStore) -> None:
    """A failure at row 2,301 (after the old 2,000-row commit) leaves the queue as it was."""
    samples = make_samples(2500)
    poison = samples[2300].id
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER poison BEFORE INSERT ON queue_items WHEN NEW.id = '{poison}' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.id = '{poison}' THEN RAISE EXCEPTION 'poisoned row'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON queue_items FOR EACH ROW EXECUTE FUNCTION poison()"
            )
    with pytest.raises(sa.exc.DBAPIError, match="poisoned row"):
        store.push(samples, run_id="r")
    assert _count(store) == 0
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'push'")).scalar() == 0
    assert store.audit_verify().ok


def test_store_push_refuses_python_built_samples_with_bad_ids_or_priority(store: QueueStore) -> None:
    a, b = make_samples(2)
    bad = b.model_copy(update={"id": "has/slash"})  # model_copy skips validation
    res = store.push([a, bad], run_id="r")
    assert (
        (res.inserted, res.refused) == (1, 1) and res.refusals[0].row == 2 and "'/'" in res.refusals[0].reason
    )
    for priority in (2**31, 2**63):
        with pytest.raises(store_module.QueueError, match="priority"):
            store.push([b], run_id="r", priority=priority)
    with pytest.raises(store_module.QueueError, match="run_id"):
        store.push([b], run_id="r\x00")


RAW_BODIES = [
    ("/api/push", '{"run_id": "r", "priority": NaN, "samples": []}', "priority"),
    ("/api/push", '{"run_id": "r", "priority": Infinity, "samples": []}', "priority"),
    ("/api/push", '{"run_id": "\\ud800", "samples": []}', "run_id"),
    ("/api/pull", '{"size": NaN}', "size"),
    ("/api/pull", '{"size": 1, "\\udcff": 1}', "unicode"),
    ("/api/pull", '{"size": 1, "' + "k" * 100_000 + '": 1}', "characters"),
    ("/api/pull", '{"size": ' + "9" * 5000 + "}", "parsing the body"),
    ("/api/pull", "{not json", "JSON"),
]


@pytest.mark.parametrize(("path", "raw", "needle"), RAW_BODIES)
def test_unserialisable_or_huge_bad_bodies_are_4xx_without_echo(
    client: TestClient, store: QueueStore, path: str, raw: str, needle: str
) -> None:
    tok = _tok(store, "root", "admin")
    r = client.post(path, content=raw.encode("utf-8", "surrogatepass"), headers=tok | JSON)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert needle in r.text
    assert len(r.content) < 2000 and "k" * 200 not in r.text


def test_decision_bodies_keep_the_sample_limits(client: TestClient, store: QueueStore) -> None:
    (s,) = make_samples(1)
    store.push([s], run_id="r")
    tok = _tok(store, "ann", "reviewer")
    client.post("/api/pull", json={"size": 1}, headers=tok)
    cases = [
        ({"decision": "correct", "output": "改" * (MAX_TEXT_CHARS + 1)}, "output"),
        ({"decision": "correct", "output": "改\x00"}, "output"),
        ({"decision": "reject", "reject_reason": "other", "comment": "x\x00"}, "comment"),
        ({"decision": "reject", "reject_reason": "other", "reject_text": "r" * 10_001}, "reject_text"),
    ]
    for body, field in cases:
        r = client.post(f"/api/items/{s.id}/submit", json=body, headers=tok)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", field], r.text[:300]
        assert len(r.content) < 2000
    raw = '{"decision": "reject", "reject_reason": "other", "comment": "\\ud800"}'
    r = client.post(f"/api/items/{s.id}/submit", content=raw, headers=tok | JSON)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "comment"]
    r = client.post(f"/api/items/{s.id}/extend", content='{"seconds": NaN}', headers=tok | JSON)
    assert r.status_code == 422
    assert store.counts() == {"open": 1} and store.stats()["reviewers"] == []


def test_path_ids_nul_long_and_legacy_slash(client: TestClient, store: QueueStore) -> None:
    tok = _tok(store, "ann", "reviewer")
    for bad in ("%00", "a%00b", "x" * (MAX_ID_CHARS + 1)):
        for method, suffix, body in (
            ("GET", "", None),
            ("POST", "/submit", {"decision": "approve"}),
            ("POST", "/extend", {}),
            ("POST", "/release", None),
        ):
            r = client.request(method, f"/api/items/{bad}{suffix}", json=body, headers=tok)
            assert r.status_code == 422 and "item_id" in r.text, (bad, suffix, r.text[:200])
    # An item queued with a '/' in its id before ids were validated can still be reviewed and released.
    a, b = make_samples(2)
    store.push([a, b], run_id="r")
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE queue_items SET id = :new WHERE id = :old"), {"new": "old/1", "old": a.id}
        )
        conn.execute(
            sa.text("UPDATE queue_items SET id = :new WHERE id = :old"), {"new": "old/2", "old": b.id}
        )
    got = {i["id"] for i in client.post("/api/pull", json={"size": 5}, headers=tok).json()["items"]}
    assert got == {"old/1", "old/2"}
    assert client.get("/api/items/old/1", headers=tok).json()["id"] == "old/1"
    assert client.post("/api/items/old%2F1/extend", json={}, headers=tok).status_code == 200
    r = client.post("/api/items/old/1/submit", json={"decision": "approve"}, headers=tok)
    assert r.json() == {"id": "old/1", "status": "open"}
    assert client.post("/api/items/old/2/release", headers=tok).json() == {"id": "old/2", "released": True}
    assert client.get("/api/items", headers=tok).json()["items"] == []  # nothing left leased


def test_request_body_size_cap(store: QueueStore) -> None:
    client = TestClient(create_app(store, sweep_seconds=None, max_body_bytes=20_000))
    tok = _tok(store, "max", "maintainer")
    body = json.dumps(_body(make_samples(100))).encode()
    assert len(body) > 20_000
    r = client.post("/api/push", content=body, headers=tok | JSON)
    assert r.status_code == 413 and "20000 bytes" in r.text

    def chunks():  # no Content-Length: the cap applies while the body streams in
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    r = client.post("/api/push", content=chunks(), headers=tok | JSON)
    assert r.status_code == 413
    assert _count(store) == 0
    small = json.dumps(_body(make_samples(3))).encode()
    assert client.post("/api/push", content=small, headers=tok | JSON).json()["inserted"] == 3


def test_security_headers_on_page_static_and_api(client: TestClient, store: QueueStore) -> None:
    tok = _tok(store, "ann", "reviewer")
    for path, headers in (
        ("/", {}),
        ("/static/app.js", {}),
        ("/api/me", tok),
        ("/api/me", {}),
        ("/api/items/nope", tok),
    ):
        r = client.get(path, headers=headers)
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        if path.startswith("/api/"):
            assert r.headers["cache-control"] == "no-store", path
    assert "no-store" not in client.get("/static/app.css").headers.get("cache-control", "")


def _track_transactions(store: QueueStore) -> set[int]:
    open_tx: set[int] = set()
    sa.event.listen(store.engine, "begin", lambda conn: open_tx.add(id(conn)))
    sa.event.listen(store.engine, "commit", lambda conn: open_tx.discard(id(conn)))
    sa.event.listen(store.engine, "rollback", lambda conn: open_tx.discard(id(conn)))
    return open_tx


def test_correction_text_work_runs_outside_the_write_transaction(
    store: QueueStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apply (validation), agree (the Levenshtein diff) and finalize_sample never run inside a transaction."""
    open_tx = _track_transactions(store)
    calls: list[tuple[str, int]] = []
    for name in ("apply", "agree", "finalize_sample"):
        real = getattr(submit_module, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            calls.append((_name, len(open_tx)))
            return _real(*args, **kw)

        monkeypatch.setattr(submit_module, name, spy)
    a, b = make_samples(2)
    store.push([a, b], run_id="r")
    fix = Decision(decision="correct", output=a.output + "（已更正）")
    store.pull("ann", 2)
    store.submit("ann", a.id, fix)
    store.submit("ann", b.id, fix.model_copy(update={"output": b.output + "（更正甲）"}))
    store.pull("bob", 2)
    assert store.submit("bob", a.id, fix).status == "final"  # agreeing corrections: diff + final sample
    assert (
        store.submit(
            "bob", b.id, Decision(decision="correct", output="完全不同的回答内容，用于制造分歧。")
        ).status
        == "arbitration"
    )
    store.pull_arbitration("cat", 1)
    assert (
        store.arbitrate("cat", b.id, Decision(decision="correct", output=b.output + "（仲裁）")).status
        == "final"
    )
    assert {n for n, _ in calls} == {"apply", "agree", "finalize_sample"}
    assert all(depth == 0 for _, depth in calls), calls
    final = {f.item_id: f for f in store.finalized()}
    assert final[a.id].sample.output == a.output + "（已更正）" and final[b.id].sample.output.endswith(
        "（仲裁）"
    )
    assert store.audit_verify().ok
