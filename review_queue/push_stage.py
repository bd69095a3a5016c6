"""The queue push as the last Stage of a curating job: curated samples into the review queue.

A global stage on the driver, so the runner accounts for it like any other: its output folder
`pushed/` holds the samples now in the queue (new or already there), `rejects/queue_push-*.parquet`
the samples the queue refused with its reason. The push is idempotent (the queue ignores ids it
already holds) and runs on every attempt (Stage.always_run): a push killed half-way simply pushes
again on the rerun, and a rerun of a finished run reports every sample as already queued. After the push the samples go into the persistent dedup index, so a
later run is deduplicated against what physicians already have.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from medaug.run import StageStats
from medaug.stage import Stage, StageResult, reject_table
from review_queue.db import ensure_sqlite_parent
from review_queue.records import PushResult

Log = Callable[[str], None]


class QueuePushStage(Stage):
    name = "queue_push"
    mode = "global"
    output = "pushed"
    always_run = True  # the queue may have changed since the last attempt (restored, another URL)

    def __init__(
        self,
        url: str,
        *,
        enabled: bool = True,
        priority: int = 0,
        token_env: str = "MEDAUG_TOKEN",
        retry_s: float = 120.0,
        run_id: str,
        open_index: Callable[[], Any] = lambda: None,
        log: Log = print,
    ):
        self.url, self.enabled, self.priority = url, enabled, priority
        self.token_env, self.retry_s, self.run_id = token_env, retry_s, run_id
        self.open_index, self.log = open_index, log

    def process(self, table: pa.Table) -> StageResult:
        st = StageStats(self.name, rows_in=table.num_rows)
        if not self.enabled:
            st.extra["skipped"] = "queue.push is false"
            return StageResult(table.slice(0, 0), stats=st)
        t0 = time.perf_counter()
        res = self._push_http(table) if self.url.startswith(("http://", "https://")) else self._push_db(table)
        refused_ids = [r.id for r in res.refusals]
        codes = [r.reason.split(" (")[0] for r in res.refusals]
        rejected = reject_table(refused_ids, codes, [r.reason for r in res.refusals])
        kept = table.filter(pc.invert(pc.is_in(table.column("id"), pa.array(refused_ids, pa.string()))))
        st.rows_out = res.inserted
        st.extra.update({"inserted": res.inserted, "already_queued": res.already_queued})
        st.rejects.update(codes)
        index = self.open_index()
        if index is not None:
            index.add(kept, origin="queue")
        st.seconds = time.perf_counter() - t0
        self.log(
            f"[push] {res.inserted} queued, {res.already_queued} already queued, {res.refused} refused "
            f"({st.seconds:.1f}s)"
        )
        return StageResult(kept, rejected, st)

    def _push_db(self, table: pa.Table) -> PushResult:
        from review_queue.store import QueueStore

        ensure_sqlite_parent(self.url)
        store = QueueStore.open(self.url)
        try:
            return store.push(table, run_id=self.run_id, priority=self.priority)
        finally:
            store.close()

    def _push_http(self, table: pa.Table) -> PushResult:
        from review_queue.client import QueueClient

        token = os.environ.get(self.token_env)
        if not token:
            raise ValueError(
                f"queue.url is a service ({self.url}): set ${self.token_env} to a maintainer token"
            )
        client = QueueClient(self.url, token, retry_s=self.retry_s)
        try:
            return client.push(table, run_id=self.run_id, priority=self.priority, log=self.log)
        finally:
            client.close()
