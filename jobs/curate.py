"""Curation and queue push, shared by the generate and augment jobs: a declaration run by medaug.runner.

    samples ─► de-identify ─► quality gates ─► dedup (run + queue + releases) ─► review queue

De-identification and the quality gates are per-batch stages (Ray Data on a cluster), dedup is
global; the runner writes every stage's shards, rejections (with reasons) and done marker into the
run folder, so a rerun with the same run id picks up after the last finished shard. The push is
one idempotent call on the driver: a killed push simply pushes again (the queue ignores ids it
already holds).
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from curation.dedup.config import DedupConfig
from curation.deid.config import DeidConfig
from curation.quality import QualityConfig
from curation.stages import DedupStage, DeidStage, QualityStage
from medaug.run import DEFAULT_QUEUE_URL, RunFolder, StageStats
from medaug.runner import Runner, read_stage
from medaug.stage import Cluster, Stage

CURATED = "curated"  # the folder of the curated samples (the dedup stage's output)


class QueueSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        default=DEFAULT_QUEUE_URL,
        description="a database URL (sqlite:///…, postgresql+psycopg://…) or a queue service (http://host:port)",
    )
    push: bool = True
    priority: int = 0
    token_env: str = Field(
        default="MEDAUG_TOKEN", description="env var holding a maintainer token (http urls)"
    )
    retry_s: float = Field(
        default=120.0, ge=0, description="how long to keep retrying an unreachable service"
    )


class CurateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    deid: DeidConfig = Field(default_factory=DeidConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    dedup_index: str | None = Field(
        default="var/dedup-index", description="persistent cross-run index; null: run only"
    )
    queue: QueueSection = Field(default_factory=QueueSection)
    batch_size: int = Field(default=4096, ge=1)
    shard_rows: int = Field(default=50_000, ge=1, description="rows per curated output shard")


def curation_stages(cfg: CurateConfig) -> list[Stage]:
    deid, quality = DeidStage(cfg.deid), QualityStage(cfg.quality)
    deid.batch_rows = quality.batch_rows = cfg.batch_size
    dedup = DedupStage(cfg.dedup, cfg.dedup_index)
    dedup.output = CURATED
    return [deid, quality, dedup]


def curate(
    folder: RunFolder, table: pa.Table, cfg: CurateConfig, cluster: Cluster, log=print
) -> list[StageStats]:
    """De-identify, gate and dedup `table`; writes `curated/` shards and `rejects/`. Resumable."""
    runner = Runner(folder, curation_stages(cfg), cluster=cluster, batch_rows=cfg.batch_size,
                    shard_rows=cfg.shard_rows, log=log)  # fmt: skip
    return runner.run(table).stats


def open_index(cfg: CurateConfig):
    return DedupStage(cfg.dedup, cfg.dedup_index).open_index()


def push(folder: RunFolder, cfg: CurateConfig, run_id: str, log=print) -> StageStats:
    """Push curated samples into the review queue, then record them in the dedup index. Idempotent."""
    from review_queue.store import QueueStore

    table = read_stage(folder, CURATED)
    st = StageStats("queue_push", rows_in=table.num_rows)
    if not cfg.queue.push:
        st.extra["skipped"] = "queue.push is false"
        return st
    t0 = time.perf_counter()
    if cfg.queue.url.startswith(("http://", "https://")):
        res = _push_http(table, cfg, run_id, log)
    else:
        _ensure_sqlite_parent(cfg.queue.url)
        store = QueueStore.open(cfg.queue.url)
        try:
            res = store.push(table, run_id=run_id, priority=cfg.queue.priority)
        finally:
            store.close()
    st.rows_out = res.inserted
    st.extra.update({"inserted": res.inserted, "already_queued": res.already_queued})
    if res.refused:
        st.rejects.update(r.reason.split(" (")[0] for r in res.refusals)
    index = open_index(cfg)
    if index is not None:
        index.add(table, origin="queue")
    st.seconds = time.perf_counter() - t0
    log(
        f"[push] {res.inserted} queued, {res.already_queued} already queued, {res.refused} refused ({st.seconds:.1f}s)"
    )
    return st


def _push_http(table: pa.Table, cfg: CurateConfig, run_id: str, log):
    import os

    from review_queue.client import QueueClient

    token = os.environ.get(cfg.queue.token_env)
    if not token:
        raise ValueError(
            f"queue.url is a service ({cfg.queue.url}): set ${cfg.queue.token_env} to a maintainer token"
        )
    client = QueueClient(cfg.queue.url, token, retry_s=cfg.queue.retry_s)
    try:
        return client.push(table, run_id=run_id, priority=cfg.queue.priority, log=log)
    finally:
        client.close()


def _ensure_sqlite_parent(url: str) -> None:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    elif url.startswith("sqlite:////"):
        Path("/" + url.removeprefix("sqlite:////")).parent.mkdir(parents=True, exist_ok=True)


def curate_and_push(
    folder: RunFolder, table: pa.Table, cfg: CurateConfig, run_id: str, cluster: Cluster, log=print
) -> list[StageStats]:
    stats = curate(folder, table, cfg, cluster, log)
    stats.append(push(folder, cfg, run_id, log))
    return stats
