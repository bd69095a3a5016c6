"""The evidence beside a candidate: the word diff against its parent, the change its augmenter made
(a negative's error type, span and reason; a paraphrase's mappings), the facts, the checks, and the
nearest neighbours in the queue and in released versions. Samples come from the real augmenters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from derived_samples import cousin, derived, release
from fastapi.testclient import TestClient

from medaug.schema import NEGATIVE_VERDICT, Area
from review_queue.service import create_app
from review_queue.store import QueueStore


def _evidence_of(store: QueueStore, root: Path | None) -> dict[str, dict[str, Any]]:
    client = TestClient(create_app(store, sweep_seconds=None, releases=root))
    auth = {"Authorization": f"Bearer {store.add_user('dan', 'reviewer')}"}
    got = client.post("/api/pull", json={"size": 10}, headers=auth).json()["items"]
    out = {}
    for it in got:
        r = client.get(f"/api/items/{it['id']}/evidence", headers=auth)
        assert r.status_code == 200, r.text
        out[it["id"]] = r.json()
    return out


def _runs(diff: list[list[str]], op: str) -> list[str]:
    return [text for o, text in diff if o == op]


def test_negative_and_paraphrase_evidence_against_the_queued_parent(
    store: QueueStore, tmp_path: Path
) -> None:
    seed, neg, para = derived()
    root = tmp_path / "datasets"
    release(store, [seed, cousin()], root)  # the parent and a near copy are released (v1)
    store.push([neg, para], run_id="aug")  # their parent is found in the queue
    ev = _evidence_of(store, root)
    assert set(ev) == {neg.id, para.id}

    n = ev[neg.id]
    assert n["parent_source"] == "queue" and n["parent"]["output"] == seed.output
    assert _runs(n["diff"]["output"], "-") == ["川崎病"] and _runs(n["diff"]["output"], "+") == ["猩红热"]
    assert all(op == "=" for op, _ in n["diff"]["instruction"])  # the question is unchanged
    ch = n["change"]
    assert ch["kind"] == "negative" and ch["error_type"] == "wrong_diagnosis"
    assert (ch["before"], ch["after"]) == ("川崎病", "猩红热") and ch["verdict"] == NEGATIVE_VERDICT
    assert "川崎病" in ch["reason"] and "猩红热" in ch["reason"]  # why the answer is wrong
    out_facts = n["facts"]["fields"]["output"]
    assert "川崎病" in {f["term"] for f in out_facts["parent"]} - {f["term"] for f in out_facts["candidate"]}
    assert "猩红热" in {f["term"] for f in out_facts["candidate"]}
    checks = {c["name"]: c for c in n["checks"]}
    assert checks["facts"]["status"] == "pass" and "恰好一处" in checks["facts"]["detail"]
    assert checks["deid"]["status"] == "pass" and "test_model" not in checks
    # the parent is shown beside, not as a neighbour; the released cousin is still in the queue too
    assert {x["id"] for x in n["neighbours"]} == {para.id, "cousin-1"}
    assert [(x["dataset"], x["version"], x["id"]) for x in n["released"]] == [("peds", 1, "cousin-1")]
    assert 0.9 < n["released"][0]["similarity"] < 1.0

    p = ev[para.id]
    assert p["parent_source"] == "queue" and p["change"]["kind"] == "paraphrase"
    assert _runs(p["diff"]["instruction"], "-") == ["发烧", "眼睛发红"]
    assert _runs(p["diff"]["instruction"], "+") == ["发热", "结膜充血"]
    assert all(op == "=" for op, _ in p["diff"]["output"])
    maps = [(m["field"], m["from"], m["to"], m["relation"]) for m in p["change"]["mappings"]]
    assert maps == [
        ("instruction", "发烧", "发热", "exact"),
        ("instruction", "眼睛发红", "结膜充血", "exact"),
    ]
    checks = {c["name"]: c for c in p["checks"]}
    assert checks["facts"]["status"] == "pass" and "specificity" not in checks  # same facts, exact mappings
    assert p["facts"]["fields"]["instruction"]["changes"] == []


def test_parent_rebuilt_from_provenance_when_not_queued(store: QueueStore) -> None:
    seed, neg, para = derived()
    store.push([neg, para], run_id="aug")  # no parent in the queue, no releases
    ev = _evidence_of(store, None)
    n, p = ev[neg.id], ev[para.id]
    assert n["parent_source"] == "provenance" and n["parent"]["output"] == seed.output  # its reference answer
    assert _runs(n["diff"]["output"], "+") == ["猩红热"]
    assert p["parent_source"] == "provenance" and p["parent"]["instruction"] == seed.instruction  # undone
    assert _runs(p["diff"]["instruction"], "+") == ["发热", "结膜充血"]
    assert n["released"] == [] and p["released"] == []


def test_a_flagged_paraphrase_shows_what_changed(store: QueueStore) -> None:
    """A paraphrase that changed a fact, or mapped a term to a wider one, is flagged, not passed."""
    import json

    seed, _, para = derived()
    bad_detail = json.loads(para.provenance.augmentation[-1].detail)
    bad_detail["substitutions"][1]["relation"] = "broader"
    step = para.provenance.augmentation[-1].model_copy(update={"detail": json.dumps(bad_detail)})
    bad = para.model_copy(
        update={
            "id": "para-bad",
            "output": para.output.replace("川崎病", "猩红热"),
            "provenance": para.provenance.model_copy(update={"augmentation": [step]}),
        }
    )
    store.push([seed], run_id="seed")
    store.push([bad], run_id="aug")
    ev = _evidence_of(store, None)["para-bad"]
    checks = {c["name"]: c for c in ev["checks"]}
    assert checks["facts"]["status"] == "flag" and "川崎病" in checks["facts"]["detail"]
    assert (
        checks["specificity"]["status"] == "flag" and "眼睛发红→结膜充血" in checks["specificity"]["detail"]
    )


def test_released_neighbours_follow_the_latest_version(store: QueueStore, tmp_path: Path) -> None:
    from review_queue.evidence import Released

    seed, _, _ = derived()
    root = tmp_path / "datasets"
    other_area = cousin().model_copy(update={"id": "cousin-onco", "area": Area.oncology})
    release(store, [cousin(), other_area], root)
    rel = Released(root)
    assert [(n["id"], n["version"]) for n in rel.neighbours(seed, set())] == [
        ("cousin-1", 1)
    ]  # same area only
    second = cousin().model_copy(update={"id": "cousin-2", "instruction": seed.instruction + "急"})
    release(store, [second], root)  # v2 holds v1's rows and its own
    got = rel.neighbours(seed, set())
    assert {n["id"] for n in got} == {"cousin-1", "cousin-2"} and {n["version"] for n in got} == {2}
    assert got == sorted(got, key=lambda n: -n["similarity"])
