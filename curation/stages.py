"""The curation steps as Stages (medaug.stage): de-identification, quality gates, dedup.

Each wraps the step's own function (curation.deid.stage, curation.quality, curation.dedup.stage);
the functions stay usable on their own, and these classes add what the runner needs to know: a
name, how the step runs and which packages it needs.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from curation.dedup.config import DedupConfig
from curation.deid.config import DeidConfig
from curation.quality import QualityConfig
from medaug.stage import Stage, StageResult


class DeidStage(Stage):
    """Rewrites personal data in the text fields; rejects nothing (a sample keeps its id)."""

    name = "deid"
    mode = "batch"
    requires = (("presidio_anonymizer", "pip install presidio-anonymizer"),)

    def __init__(self, config: DeidConfig | None = None):
        self.config = config or DeidConfig()

    def process(self, table: pa.Table) -> StageResult:
        from curation.deid.stage import deidentify_table

        return deidentify_table(table, self.config)


class QualityStage(Stage):
    """The annotation rules (format, length, Chinese ratio, banned promises, ICD-10), vectorised."""

    name = "quality"
    mode = "batch"
    requires = (("polars", "pip install polars"),)

    def __init__(self, config: QualityConfig | None = None):
        self.config = config or QualityConfig()

    def process(self, table: pa.Table) -> StageResult:
        from curation.quality import quality_gate

        return quality_gate(table, self.config)


class DedupStage(Stage):
    """Exact and near-duplicate removal within the run and against the index (queued, released):
    global, because a duplicate may sit in any other shard. On a cluster, inputs of at least
    `ray_min_rows` rows run their heavy steps as Ray tasks."""

    name = "dedup"
    mode = "global"
    requires = (
        ("datasketch", "pip install datasketch"),
        ("rapidfuzz", "pip install rapidfuzz"),
    )

    def __init__(self, config: DedupConfig | None = None, index_path: str | Path | None = None):
        self.config = config or DedupConfig()
        self.index_path = index_path

    def open_index(self):
        if not self.index_path:
            return None
        from curation.dedup.index import DedupIndex

        return DedupIndex(self.index_path, self.config)

    def process(self, table: pa.Table) -> StageResult:
        """Where it runs follows the cluster the runner set (self.cluster), not a global Ray check."""
        from curation.dedup.stage import pick_engine, run_dedup

        engine = pick_engine(table.num_rows, self.config, self.cluster)
        return run_dedup(table, self.config, self.open_index(), engine)
