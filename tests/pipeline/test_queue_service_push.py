"""Pushing through the queue service over HTTP, including a service killed in the middle of a push."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from medaug.schema import Sample, samples_to_table
from review_queue.client import QueueClient
from review_queue.store import QueueStore


def _samples(n: int, tag: str = "") -> list[Sample]:
    return [
        Sample(
            instruction=f"第{i}号问题{tag}：孩子发烧怎么办？",
            output=f"第{i}号回答{tag}：多喝水，必要时就医。",
            deid=[],
        )
        for i in range(n)
    ]


@pytest.fixture
def service(tmp_path, queue_service):
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    store = QueueStore.open(db)
    tokens = {role: store.add_user(f"u-{role}", role) for role in ("maintainer", "reviewer")}
    store.close()
    return queue_service(db), tokens


def test_service_killed_mid_push_resumes_idempotently(service):
    svc, tokens = service
    samples = _samples(3000)
    client = QueueClient(svc.url, tokens["maintainer"], retry_s=90)
    result: dict = {}
    logs: list[str] = []

    def push() -> None:
        result["res"] = client.push(samples_to_table(samples), run_id="r1", batch_size=100, log=logs.append)

    t = threading.Thread(target=push)
    t.start()
    store = QueueStore.open(svc.db)
    deadline = time.time() + 60
    while sum(store.counts().values()) < 300 and time.time() < deadline:  # a few batches are in
        time.sleep(0.05)
    svc.kill()
    killed_at = sum(store.counts().values())
    assert 0 < killed_at < 3000, "the kill must land mid-push"
    time.sleep(1.0)
    svc.start()
    t.join(timeout=120)
    assert not t.is_alive()
    res = result["res"]
    assert any("retrying" in m for m in logs)
    assert res.refused == 0 and res.inserted + res.already_queued == 3000
    assert sum(store.counts().values()) == 3000  # every sample queued exactly once
    assert store.queued_ids(s.id for s in samples) == {s.id for s in samples}
    again = client.push(samples_to_table(samples), run_id="r1", batch_size=1000)
    assert again.inserted == 0 and again.already_queued == 3000
    store.close()
    client.close()


def test_push_endpoint_checks_role_and_validates_the_whole_batch(service):
    svc, tokens = service
    body = {"run_id": "r", "samples": [s.model_dump(mode="json") for s in _samples(3, "x")]}
    r = httpx.post(
        svc.url + "/api/push", json=body, headers={"Authorization": f"Bearer {tokens['reviewer']}"}
    )
    assert r.status_code == 403
    bad = dict(body, samples=body["samples"] + [{"instruction": "只有问题"}])
    r = httpx.post(
        svc.url + "/api/push", json=bad, headers={"Authorization": f"Bearer {tokens['maintainer']}"}
    )
    assert r.status_code == 422 and "output" in r.text
    store = QueueStore.open(svc.db)
    assert sum(store.counts().values()) == 0  # nothing partially applied
    undeid = dict(body, samples=[dict(body["samples"][0], deid=None)])
    r = httpx.post(
        svc.url + "/api/push", json=undeid, headers={"Authorization": f"Bearer {tokens['maintainer']}"}
    )
    assert (
        r.status_code == 200
        and r.json()["refused"] == 1
        and "de-identif" in r.json()["refusals"][0]["reason"]
    )
    store.close()


def test_augment_job_pushes_through_the_service(service, tmp_path, ray_local, shared_data, monkeypatch):
    from jobs.augment import AugmentJobConfig, run_augment

    svc, tokens = service
    monkeypatch.setenv("MEDAUG_TOKEN", tokens["maintainer"])
    cfg = AugmentJobConfig.model_validate(
        {
            "run": {"output_dir": str(tmp_path / "runs"), "run_id": "via-http"},
            "inputs": [str(shared_data / "medicalgpt_sft_sample" / "medical_sft_1K_format.jsonl")],
            "limit": 50,
            "curate": {"dedup_index": None, "queue": {"url": svc.url}},
        }
    )
    manifest = run_augment(cfg, log=lambda m: None)
    pushed = next(s for s in manifest["stages"] if s["name"] == "queue_push")
    store = QueueStore.open(svc.db)
    assert pushed["rows_out"] == sum(store.counts().values()) > 50
    store.close()
    monkeypatch.delenv("MEDAUG_TOKEN")
    cfg.run.run_id = "no-token"
    with pytest.raises(ValueError, match=r"set \$MEDAUG_TOKEN"):
        run_augment(cfg, log=lambda m: None)
