"""Curation and queue push, shared by the generate and augment jobs: a declaration run by medaug.runner.

    samples ─► de-identify ─► quality gates ─► dedup (run + queue + releases) ─► review queue

De-identification and the quality gates are per-batch stages (Ray Data on a cluster), dedup is
global; the runner writes every stage's shards, rejections (with reasons) and done marker into the
run folder, so a rerun with the same run id picks up after the last finished shard. The push
(review_queue.push_stage) is the last stage, idempotent, and runs again on every attempt: a killed
push simply pushes again, and the queue ignores ids it already holds.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from curation.dedup.config import DedupConfig
from curation.deid.config import DeidConfig
from curation.quality import QualityConfig
from curation.stages import DedupStage, DeidStage, QualityStage
from medaug.run import DEFAULT_QUEUE_URL
from medaug.stage import Stage
from review_queue.push_stage import QueuePushStage

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


def curation_stages(cfg: CurateConfig, run_id: str, log=print) -> list[Stage]:
    """De-identify, gate, dedup (output `curated/`), then push to the review queue."""
    deid, quality = DeidStage(cfg.deid), QualityStage(cfg.quality)
    deid.batch_rows = quality.batch_rows = cfg.batch_size
    dedup = DedupStage(cfg.dedup, cfg.dedup_index)
    dedup.output = CURATED
    q = cfg.queue
    push = QueuePushStage(q.url, enabled=q.push, priority=q.priority, token_env=q.token_env,
                          retry_s=q.retry_s, run_id=run_id, open_index=dedup.open_index, log=log)  # fmt: skip
    return [deid, quality, dedup, push]
