"""Curation and queue push, shared by the generate and augment jobs.

    samples ─► de-identify ─► quality gates ─► dedup (run + queue + releases) ─► review queue

De-identification and the quality gates are per-batch and run with Ray Data
`map_batches`; dedup is global (it runs its own Ray tasks for large inputs);
the push is one idempotent call on the driver. Every stage writes its output
and its rejections (with reasons) into the run folder, and a `done.json` marker,
so a rerun with the same run id picks up after the last finished stage and a
killed push simply pushes again (the queue ignores ids it already holds).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from curation.dedup.config import DedupConfig
from curation.deid.config import DeidConfig
from curation.quality import QualityConfig
from medaug.io import write_parquet
from medaug.run import DEFAULT_QUEUE_URL, RunFolder, StageStats
from medaug.schema import SAMPLE_SCHEMA, conform_table, empty_table

REASON_COLS = [("_stage", pa.string()), ("_reason", pa.string()), ("_detail", pa.string())]
TAGGED_SCHEMA = pa.schema(list(SAMPLE_SCHEMA) + [pa.field(n, t) for n, t in REASON_COLS])


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


def _tag(table: pa.Table, stage: str, reasons: list[str | None], details: list[str | None]) -> pa.Table:
    """Sample rows plus _stage/_reason/_detail columns (null reason = kept)."""
    table = conform_table(table)
    stages = [stage if r else None for r in reasons]
    for (name, typ), values in zip(REASON_COLS, (stages, reasons, details), strict=True):
        table = table.append_column(name, pa.array(values, typ))
    return table


def deid_and_gate(batch: pa.Table, deid: DeidConfig, quality: QualityConfig) -> pa.Table:
    """One batch through de-identification and the quality gates; rejected rows stay, tagged with their reason."""
    from curation.deid.stage import deidentify_table
    from curation.quality import quality_gate

    clean = deidentify_table(conform_table(batch), deid).kept
    gated = quality_gate(clean, quality)
    kept = _tag(gated.kept, "quality", [None] * gated.kept.num_rows, [None] * gated.kept.num_rows)
    if not gated.rejected.num_rows:
        return kept
    rej_ids = gated.rejected.column("id").to_pylist()
    reason = dict(zip(rej_ids, gated.rejected.column("reason").to_pylist(), strict=True))
    detail = dict(zip(rej_ids, gated.rejected.column("detail").to_pylist(), strict=True))
    mask = pc.is_in(clean.column("id"), value_set=pa.array(rej_ids, pa.string()))
    rejected = clean.filter(mask)
    ids = rejected.column("id").to_pylist()
    tagged = _tag(rejected, "quality", [reason[i] for i in ids], [detail[i] for i in ids])
    return pa.concat_tables([kept, tagged])


def _map_deid_quality(table: pa.Table, cfg: CurateConfig) -> pa.Table:
    import ray

    if not ray.is_initialized() or table.num_rows <= cfg.batch_size:
        return deid_and_gate(table, cfg.deid, cfg.quality)
    ds = ray.data.from_arrow(table).repartition(max(1, table.num_rows // cfg.batch_size))
    out = ds.map_batches(
        deid_and_gate,
        fn_kwargs={"deid": cfg.deid, "quality": cfg.quality},
        batch_format="pyarrow",
        batch_size=cfg.batch_size,
        zero_copy_batch=True,
    )
    parts = [ray.get(r) for r in out.to_arrow_refs()]
    parts = [p.cast(TAGGED_SCHEMA) if p.schema != TAGGED_SCHEMA else p for p in parts if p.num_rows]
    return pa.concat_tables(parts) if parts else TAGGED_SCHEMA.empty_table()


def _split(tagged: pa.Table) -> tuple[pa.Table, pa.Table]:
    rejected_mask = pc.is_valid(tagged.column("_reason"))
    kept = tagged.filter(pc.invert(rejected_mask)).drop_columns([n for n, _ in REASON_COLS])
    rejected = tagged.filter(rejected_mask)
    return conform_table(kept), rejected


def _stats(name: str, rows_in: int, rejected: pa.Table, seconds: float) -> StageStats:
    st = StageStats(name, rows_in=rows_in, rows_out=rows_in - rejected.num_rows, seconds=seconds)
    if rejected.num_rows:
        st.rejects.update(rejected.column("_reason").to_pylist())
    return st


def _write_rejects(folder: RunFolder, name: str, rejected: pa.Table) -> None:
    if rejected.num_rows:
        pq.write_table(rejected, folder.stage_dir("rejects") / f"{name}.parquet")


def _done(folder: RunFolder, stage: str) -> list[StageStats] | None:
    marker = folder.path / stage / "done.json"
    if not marker.exists():
        return None
    return [StageStats.from_dict(d) for d in json.loads(marker.read_text(encoding="utf-8"))]


def _mark(folder: RunFolder, stage: str, stats: list[StageStats]) -> None:
    marker = folder.stage_dir(stage) / "done.json"
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps([s.to_dict() for s in stats], ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(marker)


def read_stage(folder: RunFolder, stage: str) -> pa.Table:
    shards = folder.finished_shards(stage)
    if not shards:
        return empty_table()
    return pa.concat_tables([conform_table(pq.read_table(p)) for p in shards])


def open_index(cfg: CurateConfig):
    if not cfg.dedup_index:
        return None
    from curation.dedup.index import DedupIndex

    return DedupIndex(cfg.dedup_index, cfg.dedup)


def curate(folder: RunFolder, table: pa.Table, cfg: CurateConfig, log=print) -> list[StageStats]:
    """De-identify, gate and dedup `table`; writes `curated/` shards and `rejects/`. Resumable."""
    if (done := _done(folder, "curated")) is not None:
        log("[curate] already done in an earlier attempt; reusing curated/")
        return done
    from curation.dedup.stage import dedup_table

    t0 = time.perf_counter()
    tagged = _map_deid_quality(table, cfg)
    kept, rejected = _split(tagged)
    t1 = time.perf_counter()
    # De-identification rejects nothing; it and the gates run in the same Ray tasks, timed together.
    deid_st = StageStats("deid", rows_in=table.num_rows, rows_out=table.num_rows, seconds=t1 - t0)
    entity_counts: dict[str, int] = {}
    for recs in tagged.column("deid").to_pylist():
        for rec in recs or []:
            entity_counts[rec["entity"]] = entity_counts.get(rec["entity"], 0) + rec["count"]
    deid_st.extra = {f"removed_{k}": v for k, v in sorted(entity_counts.items())}
    quality_st = _stats("quality", table.num_rows, rejected, 0.0)
    quality_st.extra["seconds_in"] = "deid"
    _write_rejects(folder, "quality", rejected)
    log(f"[curate] de-identified {table.num_rows}, quality kept {kept.num_rows} ({t1 - t0:.1f}s)")

    index = open_index(cfg)
    result = dedup_table(kept, cfg.dedup, index)
    t2 = time.perf_counter()
    dedup_st = StageStats("dedup", rows_in=kept.num_rows, rows_out=result.kept.num_rows, seconds=t2 - t1)
    dedup_st.rejects = result.stats.rejects.copy()
    if result.rejected.num_rows:
        pq.write_table(result.rejected, folder.stage_dir("rejects") / "dedup.parquet")
    log(f"[curate] dedup kept {result.kept.num_rows} of {kept.num_rows} ({t2 - t1:.1f}s)")

    out = result.kept
    for i, start in enumerate(range(0, out.num_rows, cfg.shard_rows)):
        write_parquet(out.slice(start, cfg.shard_rows), folder.shard_path("curated", i))
    stats = [deid_st, quality_st, dedup_st]
    _mark(folder, "curated", stats)
    return stats


def push(folder: RunFolder, cfg: CurateConfig, run_id: str, log=print) -> StageStats:
    """Push curated samples into the review queue, then record them in the dedup index. Idempotent."""
    from review_queue.store import QueueStore

    table = read_stage(folder, "curated")
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
    folder: RunFolder, table: pa.Table, cfg: CurateConfig, run_id: str, log=print
) -> list[StageStats]:
    stats = curate(folder, table, cfg, log)
    stats.append(push(folder, cfg, run_id, log))
    return stats
