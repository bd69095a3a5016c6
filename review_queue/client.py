"""Pushing samples to a queue service over HTTP, for cluster jobs that should not hold database credentials.

The service's push is idempotent on sample id, so the client simply retries a
batch until the service answers: a service that dies mid-push (or a network
blip) costs time, never a duplicate or a lost sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pyarrow as pa

from medaug.schema import conform_table
from review_queue.store import PushResult, Refusal


class QueueUnavailable(RuntimeError):
    pass


class QueueClient:
    def __init__(self, url: str, token: str, *, timeout_s: float = 60.0, retry_s: float = 120.0):
        self.url = url.rstrip("/")
        self.retry_s = retry_s
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s
        )

    def close(self) -> None:
        self.http.close()

    def _post(self, path: str, body: dict, log: Callable[[str], None]) -> dict:
        deadline = time.monotonic() + self.retry_s
        wait = 0.5
        while True:
            try:
                r = self.http.post(path, json=body)
                if r.status_code < 500:
                    if r.status_code >= 400:
                        raise ValueError(
                            f"{self.url}{path} refused the push ({r.status_code}): {r.text[:500]}"
                        )
                    return r.json()
                problem = f"{r.status_code}: {r.text[:200]}"
            except httpx.TransportError as e:
                problem = f"{type(e).__name__}: {e}"
            if time.monotonic() > deadline:
                raise QueueUnavailable(
                    f"queue service {self.url} unavailable for {self.retry_s:.0f} s: {problem}"
                )
            log(f"[push] queue service not answering ({problem}); retrying in {wait:.1f}s")
            time.sleep(wait)
            wait = min(wait * 2, 8.0)

    def push(
        self,
        table: pa.Table,
        *,
        run_id: str,
        priority: int = 0,
        batch_size: int = 1000,
        log: Callable[[str], None] = print,
    ) -> PushResult:
        table = conform_table(table)
        total = PushResult()
        for start in range(0, table.num_rows, batch_size):
            rows = table.slice(start, batch_size).to_pylist()
            body = {"run_id": run_id, "priority": priority, "samples": [_jsonable(r) for r in rows]}
            res = self._post("/api/push", body, log)
            total.inserted += res["inserted"]
            total.already_queued += res["already_queued"]
            total.refused += res["refused"]
            total.refusals += [
                Refusal(r["row"] + start, r["id"], r["reason"]) for r in res.get("refusals", [])
            ]
        return total


def _jsonable(row: dict) -> dict:
    created = (row.get("provenance") or {}).get("created_at")
    if created is not None:
        row["provenance"]["created_at"] = created.isoformat()
    return row
