"""Store behaviour on both databases: push, leases, two blind reviews, agreement, arbitration, results."""

from __future__ import annotations

import time

import pytest
from queue_samples import make_samples

from medaug.schema import Label, samples_to_table
from review_queue.decisions import Decision
from review_queue.errors import Conflict, InvalidDecision, LeaseExpired, NotFound, NotYours
from review_queue.store import QueueStore

APPROVE = Decision(decision="approve")


def test_push_is_idempotent_and_refuses_unredacted(store: QueueStore) -> None:
    good = make_samples(30)
    raw = make_samples(3, prefix="未脱敏", deid=False)
    res = store.push(samples_to_table(good + raw), run_id="r1", priority=2)
    assert (res.inserted, res.already_queued, res.refused) == (30, 0, 3)
    assert all("deid" in r.reason for r in res.refusals)
    assert [r.row for r in res.refusals] == [31, 32, 33]
    again = store.push(good, run_id="r1")
    assert (again.inserted, again.already_queued) == (0, 30)
    assert store.queued_ids([s.id for s in good + raw]) == {s.id for s in good}
    assert store.stats()["items"] == {"open": 30}


def test_parent_text_is_stored_beside_the_candidate(store: QueueStore) -> None:
    parent, child = make_samples(2)
    child = child.model_copy(
        update={"provenance": child.provenance.model_copy(update={"parent_id": parent.id})}
    )
    store.push([parent, child], run_id="r")
    late = make_samples(1, start=50)[0]
    late = late.model_copy(update={"provenance": late.provenance.model_copy(update={"parent_id": parent.id})})
    store.push([late], run_id="r2")
    got = {i.id: i for i in store.pull("ann", 10)}
    assert got[child.id].parent["instruction"] == parent.instruction
    assert got[late.id].parent["output"] == parent.output
    assert got[parent.id].parent is None


def test_two_independent_reviewers_then_final(store: QueueStore) -> None:
    samples = make_samples(4)
    store.push(samples, run_id="r")
    a_items = store.pull("ann", 4)
    assert len(a_items) == 4
    assert store.pull("bob", 4) == []  # all leased to ann: never two leases at once
    for it in a_items:
        store.submit("ann", it.id, APPROVE)
    assert store.pull("ann", 4) == []  # ann never gets the same item twice
    b_items = store.pull("bob", 4)
    assert {i.id for i in b_items} == {s.id for s in samples}
    assert all(i.reviews == [] for i in b_items)  # blind: bob sees no decision of ann's
    for it in b_items:
        assert store.submit("bob", it.id, APPROVE).status == "final"
    final = store.finalized()
    assert {f.item_id for f in final} == {s.id for s in samples}
    f = final[0]
    assert f.outcome == "approved" and not f.rejected and f.arbitration is None and f.run_id == "r"
    assert sorted(r.reviewer for r in f.reviews) == ["ann", "bob"]
    assert f.sample.id == f.item_id


def test_similar_corrections_agree_and_merge(store: QueueStore) -> None:
    s = make_samples(1)[0]
    store.push([s], run_id="r")
    fixed = s.output.replace("尽快", "立即")
    store.pull("ann", 1)
    store.submit("ann", s.id, Decision(decision="correct", output=fixed, icd10=["I20.0"], comment="措辞"))
    store.pull("bob", 1)
    res = store.submit("bob", s.id, Decision(decision="correct", output=fixed + "。", icd10=["I25.1"]))
    assert res.status == "final"
    (f,) = store.finalized()
    assert f.outcome == "corrected"
    assert f.sample.output == fixed and f.sample.icd10 == ["I20.0", "I25.1"]
    assert f.sample.id != s.id  # corrected content gets its own content id ...
    assert s.id in f.sample.provenance.augmentation[-1].detail  # ... and points back to the queue item
    assert f.reviews[0].comment == "措辞"


def test_disagreement_goes_to_an_arbiter_who_did_not_review(store: QueueStore) -> None:
    s = make_samples(1)[0]
    store.push([s], run_id="r")
    store.pull("ann", 1)
    store.submit("ann", s.id, APPROVE)
    store.pull("bob", 1)
    reject = Decision(decision="reject", reject_reason="factually_wrong", reject_text="剂量错误")
    assert store.submit("bob", s.id, reject).status == "arbitration"
    assert store.pull_arbitration("ann", 5) == [] and store.pull_arbitration("bob", 5) == []
    (item,) = store.pull_arbitration("cat", 5)
    assert sorted(r.decision for r in item.reviews) == ["approve", "reject"]
    with pytest.raises(NotYours):
        store.arbitrate("ann", s.id, APPROVE)
    store.arbitrate("cat", s.id, reject)
    (f,) = store.finalized()
    assert f.rejected and f.outcome == "rejected" and f.arbitration.reviewer == "cat"
    st = store.stats()
    assert st["pairs"][0]["reviewers"] == ("ann", "bob") and st["pairs"][0]["agreement_rate"] == 0.0


def test_negative_label_is_confirmed_or_corrected(store: QueueStore) -> None:
    neg = next(s for s in make_samples(5) if s.label == Label.negative)
    store.push([neg], run_id="r")
    store.pull("ann", 1)
    with pytest.raises(InvalidDecision, match="error_type"):
        store.submit("ann", neg.id, Decision(decision="correct", label="positive", error_type="wrong_dose"))
    store.submit("ann", neg.id, Decision(decision="correct", error_type="wrong_dose"))
    store.pull("bob", 1)
    store.submit("bob", neg.id, Decision(decision="correct", error_type="wrong_dose"))
    (f,) = store.finalized()
    assert f.sample.label == Label.negative and f.sample.error_type == "wrong_dose"


def test_bad_decisions_change_nothing(store: QueueStore) -> None:
    s = make_samples(1)[0]
    store.push([s], run_id="r")
    with pytest.raises(NotFound):
        store.submit("ann", "nope", APPROVE)
    with pytest.raises(NotYours):
        store.submit("ann", s.id, APPROVE)  # not leased
    store.pull("ann", 1)
    for bad, field in (
        (Decision(decision="reject"), "reject_reason"),
        (Decision(decision="approve", output="x"), "output"),
        (Decision(decision="correct", output=s.output), "decision"),
        (Decision(decision="correct", output="  "), "output"),
    ):
        with pytest.raises(InvalidDecision) as e:
            store.submit("ann", s.id, bad)
        assert e.value.field == field
    assert store.get_leased("ann", s.id).status == "open"
    store.submit("ann", s.id, APPROVE)
    with pytest.raises(Conflict):
        store.submit("ann", s.id, APPROVE)
    assert store.stats()["reviewers"][0]["reviews"] == 1


def test_lease_expiry_extend_release(tmp_path, pg_url) -> None:
    for url in (f"sqlite:///{tmp_path / 'q.db'}", pg_url):
        now = [time.time()]  # a clock the test moves: a loaded machine must not expire a lease early
        store = QueueStore.open(url, lease_seconds=1.0, clock=lambda now=now: now[0])
        a, b = make_samples(2)
        store.push([a, b], run_id="r")
        assert len(store.pull("ann", 2)) == 2
        store.extend("ann", a.id, 1.0)
        store.release("ann", b.id)
        assert [i.id for i in store.pull("bob", 2)] == [b.id]  # released one is back; a is still leased
        now[0] += 1.2
        with pytest.raises(LeaseExpired):
            store.submit("ann", a.id, APPROVE)
        with pytest.raises(LeaseExpired):
            store.extend("ann", a.id)
        assert store.my_items("ann") == []
        assert sorted(i.id for i in store.pull("cat", 2)) == sorted(
            [a.id, b.id]
        )  # both expired leases returned to the pool
        actions = [e for e in _audit_actions(store) if e[0] == "expire"]
        assert sorted(x[1] for x in actions) == sorted([a.id, b.id])
        store.close()


def _audit_actions(store: QueueStore) -> list[tuple[str, str]]:
    import io
    import json

    buf = io.StringIO()
    store.audit_export(buf, actor="test")
    return [(r["action"], r["item_id"]) for r in map(json.loads, buf.getvalue().splitlines())]
