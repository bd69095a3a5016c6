"""Many reviewers at once on PostgreSQL: no double lease, no lost or duplicated decision, all items final."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections import Counter, defaultdict

import httpx
import sqlalchemy as sa
from queue_samples import make_samples
from queue_server import serving

from review_queue.db import arbitrations, reviews
from review_queue.decisions import Decision
from review_queue.store import QueueStore

CLOSERS = {"submit", "release", "expire", "arbitrate"}


def _decision(reviewer: str, item: str) -> Decision:
    h = hashlib.sha256(f"{reviewer}/{item}".encode()).digest()[0]
    if h < 40:
        return Decision(decision="reject", reject_reason="low_quality")
    return Decision(decision="approve")


def _run_threads(n: int, target, *args) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrap(i: int) -> None:
        try:
            target(i, *args)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return errors


def _open_left(store: QueueStore, status: str) -> int:
    return store.counts().get(status, 0)


def _check_final_state(
    store: QueueStore, n_items: int, submitted: list[tuple[str, str]], arbitrated: list[str]
) -> None:
    assert store.stats()["items"] == {"final": n_items}
    with store.engine.connect() as c:
        rows = c.execute(sa.select(reviews.c.item_id, reviews.c.reviewer)).all()
        arb = c.execute(sa.select(arbitrations.c.item_id, arbitrations.c.arbiter)).all()
    assert sorted(map(tuple, rows)) == sorted(submitted)  # nothing lost, nothing duplicated
    per_item = defaultdict(set)
    for item, who in rows:
        per_item[item].add(who)
    assert len(per_item) == n_items and all(len(v) == 2 for v in per_item.values())
    assert sorted(a.item_id for a in arb) == sorted(arbitrated)
    assert all(a.arbiter not in per_item[a.item_id] for a in arb)
    final = store.finalized()
    assert len(final) == n_items and all(len(f.reviews) == 2 for f in final)
    # The audit log is in commit order: per item, each lease must be closed before the next one starts.
    buf = io.StringIO()
    store.audit_export(buf, actor="test")
    holder: dict[str, str | None] = {}
    for ev in map(json.loads, buf.getvalue().splitlines()):
        item = ev["item_id"]
        if ev["action"] == "lease":
            assert holder.get(item) is None, (
                f"item {item} leased to {ev['actor']} while held by {holder[item]}"
            )
            holder[item] = ev["actor"]
        elif ev["action"] in CLOSERS:
            if ev["action"] != "expire":
                assert holder.get(item) == ev["actor"], f"{ev['action']} on {item} by non-holder"
            holder[item] = None
    assert store.audit_verify().ok


def test_64_reviewers_on_postgres(pg_url: str) -> None:
    store = QueueStore.open(pg_url, lease_seconds=120)
    n_items = 240
    store.push(make_samples(n_items), run_id="conc")
    submitted: list[tuple[str, str]] = []
    arbitrated: list[str] = []
    lock = threading.Lock()

    def reviewer(i: int) -> None:
        me = f"r{i:02d}"
        while True:
            got = store.pull(me, 2)
            if not got:
                if _open_left(store, "open") == 0:
                    return
                time.sleep(0.02)
                continue
            for it in got:
                store.submit(me, it.id, _decision(me, it.id))
                with lock:
                    submitted.append((it.id, me))

    def arbiter(i: int) -> None:
        me = f"arb{i}"
        while True:
            got = store.pull_arbitration(me, 3)
            if not got:
                if _open_left(store, "arbitration") == 0:
                    return
                time.sleep(0.02)
                continue
            for it in got:
                assert me not in {r.reviewer for r in it.reviews} and len(it.reviews) == 2
                store.arbitrate(me, it.id, Decision(decision="approve"))
                with lock:
                    arbitrated.append(it.id)

    assert _run_threads(64, reviewer) == []
    assert _open_left(store, "arbitration") > 0  # the decisions above do disagree sometimes
    assert _run_threads(4, arbiter) == []
    _check_final_state(store, n_items, submitted, arbitrated)
    kinds = Counter(f.outcome for f in store.finalized())
    assert kinds["approved"] + kinds["rejected"] == n_items
    store.close()


def test_reviewers_over_http(pg_url: str) -> None:
    store = QueueStore.open(pg_url, lease_seconds=120)
    n_items = 40
    store.push(make_samples(n_items), run_id="http")
    tokens = [store.add_user(f"h{i}", "reviewer") for i in range(8)]
    arb_token = store.add_user("boss", "arbiter")
    submitted: list[tuple[str, str]] = []
    lock = threading.Lock()

    with serving(store) as url:

        def reviewer(i: int) -> None:
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {tokens[i]}"}, timeout=60
            ) as c:
                while True:
                    items = c.post("/api/pull", json={"size": 3}).raise_for_status().json()["items"]
                    if not items:
                        if _open_left(store, "open") == 0:
                            return
                        time.sleep(0.05)
                        continue
                    for it in items:
                        body = _decision(f"h{i}", it["id"]).model_dump(exclude_none=True)
                        c.post(f"/api/items/{it['id']}/submit", json=body).raise_for_status()
                        with lock:
                            submitted.append((it["id"], f"h{i}"))

        assert _run_threads(8, reviewer) == []
        arbitrated = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {arb_token}"}, timeout=60) as c:
            while items := c.post("/api/arbitration/pull", json={"size": 10}).json()["items"]:
                for it in items:
                    c.post(
                        f"/api/items/{it['id']}/arbitrate", json={"decision": "approve"}
                    ).raise_for_status()
                    arbitrated.append(it["id"])
    _check_final_state(store, n_items, submitted, arbitrated)
    store.close()
