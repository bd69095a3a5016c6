"""Dedup settings, validated once so that a bad value fails before any work starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SCRIPT_CHOICES = ("none", "t2s")


@dataclass(frozen=True)
class DedupConfig:
    """What counts as a duplicate, and how hard we look.

    threshold: rapidfuzz `Levenshtein.normalized_similarity` on the normalised
      instruction+input+output at or above which two samples of the same label merge.
    shingle: character n-gram size for MinHash (3 keeps random-pair Jaccard of Chinese
      text near zero, so LSH buckets stay small).
    bands x rows: LSH banding; with 3-grams a pair at Levenshtein similarity 0.85 has a
      Jaccard of at least ~0.4 in the worst case (scattered edits) and far more for real edits;
      24 bands of 3 rows catch Jaccard 0.5 with p≈0.96 and 0.6 with p≈0.9995.
    script: "t2s" folds traditional to simplified characters before comparing.
    max_bucket: buckets larger than this (template boilerplate) are compared along a sliding
      window over length-sorted members instead of all pairs, which bounds the work.
    ray_min_rows: inputs at least this large run as Ray tasks when the job runs on a cluster (Cluster.ray).
    surface: strip greetings, politeness fillers and repeated characters from the question
      before comparing (normalize.py); indexes built without it keep comparing without it.
    typos: a pair below the threshold still merges when at most this many typos (OSA edits: a
      substituted, added, dropped or two swapped characters) tell them apart and
      the shorter text has at least typo_chars characters per allowed typo (3 typos need 15
      characters): a short question with a typo falls below any ratio threshold.
    check_facts: never merge two samples whose clinical facts differ (medaug.facts: negation,
      numbers, drugs, doses...), checked on the raw texts of pairs that passed the similarity,
      and only for the pairs that decide which sample is kept (cluster.py).
    workers: threads for the edit distances (rapidfuzz; -1 = every core); Ray tasks use 1.
    fact_workers: forked processes that check the facts of many verified pairs at once (not
      inside Ray; at most one per core); 1 checks them in this process.
    """

    threshold: float = 0.85
    shingle: int = 3
    bands: int = 24
    rows: int = 3
    script: str = "none"
    seed: int = 1
    max_bucket: int = 64
    window: int = 16
    chunk_rows: int = 20_000
    ray_min_rows: int = 200_000
    surface: bool = True
    typos: int = 3
    typo_chars: int = 5
    check_facts: bool = True
    workers: int = -1
    fact_workers: int = 2

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"dedup threshold must be in (0, 1], got {self.threshold}")
        if self.typos < 0:
            raise ValueError(f"dedup typos must be >= 0, got {self.typos}")
        for name in (
            "shingle",
            "bands",
            "rows",
            "max_bucket",
            "window",
            "chunk_rows",
            "ray_min_rows",
            "typo_chars",
            "fact_workers",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"dedup {name} must be >= 1, got {getattr(self, name)}")
        if self.workers == 0 or self.workers < -1:
            raise ValueError(f"dedup workers must be -1 (every core) or >= 1, got {self.workers}")
        if self.shingle > 3:
            raise ValueError(f"dedup shingle must be 1..3 (packed into 64 bits), got {self.shingle}")
        if self.script not in SCRIPT_CHOICES:
            raise ValueError(f"dedup script must be one of {SCRIPT_CHOICES}, got {self.script!r}")

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
