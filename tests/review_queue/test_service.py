"""HTTP service: role checks on every endpoint, blind review, clear 4xx errors, hostile text stored as text."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from queue_samples import make_samples

from review_queue.service import create_app
from review_queue.store import QueueStore

HOSTILE = [
    "'); DROP TABLE queue_items; --",
    "<script>window.__pwned=1</script>",
    "<img src=x onerror=alert(1)>",
    '" OR 1=1 --',
    "{{7*7}} ${7*7}",
]


@pytest.fixture
def client(store: QueueStore) -> TestClient:
    return TestClient(create_app(store))


def _tokens(store: QueueStore) -> dict[str, dict[str, str]]:
    names = {"ann": "reviewer", "bob": "reviewer", "cat": "arbiter", "max": "maintainer", "root": "admin"}
    return {n: {"Authorization": f"Bearer {store.add_user(n, r)}"} for n, r in names.items()}


ENDPOINTS = [
    ("POST", "/api/pull", {"size": 1}, {"reviewer", "arbiter", "admin"}),
    ("GET", "/api/items", None, {"reviewer", "arbiter", "admin"}),
    ("POST", "/api/arbitration/pull", {"size": 1}, {"arbiter", "admin"}),
    ("GET", "/api/stats", None, {"maintainer", "admin"}),
    ("GET", "/api/audit/verify", None, {"maintainer", "admin"}),
    ("GET", "/api/audit/export", None, {"maintainer", "admin"}),
]


def test_every_endpoint_checks_the_role(client: TestClient, store: QueueStore) -> None:
    tok = _tokens(store)
    roles = {"ann": "reviewer", "cat": "arbiter", "max": "maintainer", "root": "admin"}
    for method, path, body, allowed in ENDPOINTS:
        assert client.request(method, path, json=body).status_code == 401
        assert (
            client.request(method, path, json=body, headers={"Authorization": "Bearer forged"}).status_code
            == 401
        )
        for who, role in roles.items():
            r = client.request(method, path, json=body, headers=tok[who])
            assert r.status_code == (200 if role in allowed else 403), (path, role, r.text)
    for path in (
        "/api/items/x/submit",
        "/api/items/x/arbitrate",
        "/api/items/x/extend",
        "/api/items/x/release",
    ):
        r = client.post(path, json={"decision": "approve"}, headers=tok["max"])
        assert r.status_code == 403
    assert (
        client.post("/api/items/x/arbitrate", json={"decision": "approve"}, headers=tok["ann"]).status_code
        == 403
    )


def test_blind_review_and_lease_ownership(client: TestClient, store: QueueStore) -> None:
    tok = _tokens(store)
    (s,) = make_samples(1)
    store.push([s], run_id="r")
    (item,) = client.post("/api/pull", json={"size": 5}, headers=tok["ann"]).json()["items"]
    assert client.get(f"/api/items/{s.id}", headers=tok["bob"]).status_code == 403  # not bob's lease
    r = client.post(
        f"/api/items/{s.id}/submit",
        json={"decision": "reject", "reject_reason": "unsafe", "reject_text": "秘密意见"},
        headers=tok["ann"],
    )
    assert r.json() == {"id": s.id, "status": "open"}
    got = client.post("/api/pull", json={"size": 5}, headers=tok["bob"])
    assert "秘密意见" not in got.text and "unsafe" not in got.text and got.json()["items"][0]["reviews"] == []
    assert "秘密意见" not in client.get(f"/api/items/{s.id}", headers=tok["bob"]).text
    assert (
        client.post(f"/api/items/{s.id}/submit", json={"decision": "approve"}, headers=tok["bob"]).json()[
            "status"
        ]
        == "arbitration"
    )
    (arb,) = client.post("/api/arbitration/pull", json={"size": 5}, headers=tok["cat"]).json()["items"]
    assert {r["reviewer"]: r["decision"] for r in arb["reviews"]} == {"ann": "reject", "bob": "approve"}
    assert (
        client.post(f"/api/items/{s.id}/arbitrate", json={"decision": "approve"}, headers=tok["cat"]).json()[
            "status"
        ]
        == "final"
    )
    assert item["sample"]["instruction"] == s.instruction


def test_clear_errors_and_nothing_partially_applied(client: TestClient, store: QueueStore) -> None:
    tok = _tokens(store)
    a, b = make_samples(2)
    store.push([a, b], run_id="r")
    client.post("/api/pull", json={"size": 2}, headers=tok["ann"])
    cases = [
        ("/api/items/nope/submit", {"decision": "approve"}, 404, "nope"),
        (f"/api/items/{a.id}/submit", {"decision": "maybe"}, 422, "decision"),
        (f"/api/items/{a.id}/submit", {"decision": "approve", "sneaky": 1}, 422, "sneaky"),
        (f"/api/items/{a.id}/submit", {"decision": "correct", "icd10": ["not a code"]}, 422, "ICD-10"),
        (f"/api/items/{a.id}/submit", {"decision": "reject"}, 422, "reject_reason"),
        (f"/api/items/{a.id}/submit", {"decision": "correct", "output": ""}, 422, "output"),
        ("/api/pull", {"size": 0}, 422, "size"),
        ("/api/pull", {"size": 1, "area": ["mars"]}, 422, "area"),
    ]
    for path, body, code, needle in cases:
        r = client.post(path, json=body, headers=tok["ann"])
        assert r.status_code == code, (path, body, r.text)
        assert needle in r.text
    r = client.post(
        f"/api/items/{a.id}/submit",
        content=b"{not json",
        headers=tok["ann"] | {"Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert store.stats()["reviewers"] == []  # no failed request left a review behind
    assert (
        client.post(f"/api/items/{a.id}/submit", json={"decision": "approve"}, headers=tok["ann"]).status_code
        == 200
    )
    assert (
        client.post(f"/api/items/{a.id}/submit", json={"decision": "approve"}, headers=tok["ann"]).status_code
        == 409
    )
    assert store.audit_verify().ok


def test_hostile_text_is_stored_and_returned_verbatim(client: TestClient, store: QueueStore) -> None:
    tok = _tokens(store)
    samples = [
        s.model_copy(
            update={"instruction": h + s.instruction, "input": h, "output": s.output + h, "id": f"h{i}"}
        )
        for i, (s, h) in enumerate(zip(make_samples(len(HOSTILE)), HOSTILE, strict=True))
    ]
    assert store.push(samples, run_id=HOSTILE[0]).inserted == len(HOSTILE)
    items = {
        i["id"]: i for i in client.post("/api/pull", json={"size": 10}, headers=tok["ann"]).json()["items"]
    }
    for s in samples:
        got = items[s.id]["sample"]
        assert (got["instruction"], got["input"], got["output"]) == (s.instruction, s.input, s.output)
        body = {"decision": "correct", "output": HOSTILE[1] + "更正", "comment": HOSTILE[0]}
        assert client.post(f"/api/items/{s.id}/submit", json=body, headers=tok["ann"]).status_code == 200
    client.post("/api/pull", json={"size": 10}, headers=tok["bob"])
    for s in samples:
        body = {
            "decision": "reject",
            "reject_reason": "other",
            "reject_text": HOSTILE[3],
            "comment": HOSTILE[4],
        }
        client.post(f"/api/items/{s.id}/submit", json=body, headers=tok["bob"])
    arb = client.post("/api/arbitration/pull", json={"size": 10}, headers=tok["cat"]).json()["items"]
    texts = {json.dumps(r["payload"], ensure_ascii=False) for i in arb for r in i["reviews"]}
    assert any(HOSTILE[0] in t and HOSTILE[1] in t for t in texts) and any(HOSTILE[3] in t for t in texts)
    export = client.get("/api/audit/export", headers=tok["max"]).text
    assert HOSTILE[4] in export and HOSTILE[0] in export
    assert store.stats()["items"] == {"arbitration": len(HOSTILE)}  # tables intact
