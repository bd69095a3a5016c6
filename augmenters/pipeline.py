"""The one entry point jobs call: originals in, originals plus derived samples out.

Only the rule-based augmenters run here (fast, no model); the LLM augmenters need an engine and are
run by the job's LLM stage (augmenters.llm_paraphrase, augmenters.llm_negatives).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from augmenters.lexicon import DIRECTIONS, cached_lexicon
from augmenters.negatives import negative_rows
from augmenters.paraphrase import PARAPHRASE_FIELDS, paraphrase_rows
from augmenters.refusals import make_refusals
from medaug.run import StageStats
from medaug.schema import ErrorType, conform_table, rows_to_table, samples_to_table
from medaug.stage import StageResult

DEFAULT_NEGATIVE_RATIOS = {et: 0.2 for et in ErrorType if et != ErrorType.other}


class AugmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paraphrase: bool = True
    variants: int = Field(default=2, ge=0, le=20, description="lexicon paraphrases per sample (at most)")
    direction: str = "both"
    fields: tuple[str, ...] = PARAPHRASE_FIELDS
    negative_ratios: dict[ErrorType, float] = Field(
        default_factory=lambda: dict(DEFAULT_NEGATIVE_RATIOS),
        description="per error type: probability that a positive sample yields one negative of that type",
    )
    refusals: int = Field(default=0, ge=0, description="refusal samples added from the taxonomy")
    seed: int = 0
    lexicons: list[Path] = Field(
        default_factory=list, description="external lexicons, loaded before the core one"
    )
    core_lexicon: bool = True

    @field_validator("direction")
    @classmethod
    def _direction(cls, v: str) -> str:
        if v not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {v!r}")
        return v

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [f for f in v if f not in PARAPHRASE_FIELDS]
        if bad:
            raise ValueError(f"fields may only be {PARAPHRASE_FIELDS}, got {bad}")
        return v

    @field_validator("negative_ratios")
    @classmethod
    def _ratios(cls, v: dict[ErrorType, float]) -> dict[ErrorType, float]:
        for et, r in v.items():
            if not 0.0 <= r <= 1.0:
                raise ValueError(f"negative_ratios.{et.value} must be within [0, 1], got {r}")
        return v


def augment_table(table: pa.Table, config: AugmentConfig) -> StageResult:
    """Lexicon paraphrases and rule negatives of every row, plus `config.refusals` refusals."""
    t0 = time.perf_counter()
    table = conform_table(table)
    rows = table.to_pylist()
    lexicon = cached_lexicon(tuple(str(p) for p in config.lexicons), config.core_lexicon)
    counts: Counter[str] = Counter()
    derived = []
    if config.paraphrase and config.variants:
        derived += paraphrase_rows(
            rows,
            lexicon,
            variants=config.variants,
            seed=config.seed,
            direction=config.direction,
            fields=config.fields,
            stats=counts,
        )
    if any(r > 0 for r in config.negative_ratios.values()):
        derived += negative_rows(rows, config.negative_ratios, lexicon, seed=config.seed, stats=counts)
    parts = [table, rows_to_table(derived)]
    if config.refusals:
        refusals = make_refusals(config.refusals, config.seed)
        counts["refusals"] += len(refusals)
        parts.append(samples_to_table(refusals))
    kept = pa.concat_tables(parts)
    stats = StageStats(
        "augment",
        rows_in=table.num_rows,
        rows_out=kept.num_rows,
        seconds=time.perf_counter() - t0,
        extra=dict(sorted(counts.items())),
    )
    return StageResult(kept=kept, stats=stats)
