"""Deduplication: exact and near-duplicate, within a batch and across runs (see stage.py for the rules)."""

from curation.dedup.config import DedupConfig
from curation.dedup.index import DedupIndex
from curation.dedup.stage import dedup_table, run_dedup

__all__ = ["DedupConfig", "DedupIndex", "dedup_table", "run_dedup"]
