"""The batch-stage convention every pipeline step follows.

A stage takes a table of samples (SAMPLE_SCHEMA) and returns the samples it
keeps plus the ones it rejects, each rejection with a reason code, and its
counts. Stages are plain functions over Arrow tables, testable without Ray; the
jobs compose them with Ray Data. Rejected samples are written beside the kept
ones, so nothing accepted into a run is lost silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from medaug.run import StageStats


@dataclass
class StageResult:
    kept: pa.Table
    rejected: pa.Table = field(default_factory=lambda: reject_table([], [], []))
    stats: StageStats = field(default_factory=lambda: StageStats("stage"))


def reject_table(ids: list[str], reasons: list[str], details: list[str]) -> pa.Table:
    """Rejections: sample id, reason code, human-readable detail (never personal data)."""
    return pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "reason": pa.array(reasons, pa.string()),
            "detail": pa.array(details, pa.string()),
        }
    )


def count_reasons(rejected: pa.Table) -> Counter[str]:
    return Counter(rejected.column("reason").to_pylist()) if rejected.num_rows else Counter()
