"""The one entry point jobs call: originals in, originals plus derived samples out.

The rule augmenters (lexicon paraphrase, rule negatives, refusals) need no model and are fast; the LLM
augmenters run only when the config asks for them and the caller hands in the job's LLM stage (an engine
per Ray actor), and their rejected rewrites come back as the result's rejections.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from augmenters.negatives import negative_rows
from augmenters.paraphrase import PARAPHRASE_FIELDS, paraphrase_rows
from augmenters.refusals import make_refusals
from medaug.lexicon import DIRECTIONS, Lexicon, cached_lexicon
from medaug.run import StageStats
from medaug.schema import ErrorType, conform_table, rows_to_table, samples_to_table
from medaug.stage import StageResult, reject_table

if TYPE_CHECKING:
    from medaug.llm.stage import LLMStage

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
    llm_paraphrase_modes: tuple[str, ...] = Field(
        default=(), description="LLM rewrites per sample: patient_question, plain_answer, clinical_answer"
    )
    llm_negative_ratios: dict[ErrorType, float] = Field(
        default_factory=dict, description="per error type: probability of asking the LLM for that negative"
    )

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

    @field_validator("llm_paraphrase_modes")
    @classmethod
    def _modes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from augmenters.llm_paraphrase import MODES

        bad = [m for m in v if m not in MODES]
        if bad:
            raise ValueError(f"unknown mode(s) {bad}; known: {list(MODES)}")
        return v

    @field_validator("negative_ratios", "llm_negative_ratios")
    @classmethod
    def _ratios(cls, v: dict[ErrorType, float]) -> dict[ErrorType, float]:
        for et, r in v.items():
            if not 0.0 <= r <= 1.0:
                raise ValueError(f"{et.value} ratio must be within [0, 1], got {r}")
        return v

    def uses_llm(self) -> bool:
        return bool(self.llm_paraphrase_modes) or any(r > 0 for r in self.llm_negative_ratios.values())


def augment_table(table: pa.Table, config: AugmentConfig, llm_stage: LLMStage | None = None) -> StageResult:
    """Every augmenter the config asks for over every row, plus `config.refusals` refusals."""
    if config.uses_llm() and llm_stage is None:
        raise ValueError(
            "the config asks for LLM augmenters (llm_paraphrase_modes/llm_negative_ratios) but no LLM stage was given"
        )
    t0 = time.perf_counter()
    table = conform_table(table)
    rows = table.to_pylist()
    lexicon = cached_lexicon(tuple(str(p) for p in config.lexicons), config.core_lexicon)
    counts: Counter[str] = Counter()
    derived = []
    rule_rejects: list[tuple[str, str, str]] = []
    if config.paraphrase and config.variants:
        derived += paraphrase_rows(
            rows,
            lexicon,
            variants=config.variants,
            seed=config.seed,
            direction=config.direction,
            fields=config.fields,
            stats=counts,
            rejects=rule_rejects,
        )
    if any(r > 0 for r in config.negative_ratios.values()):
        derived += negative_rows(rows, config.negative_ratios, lexicon, seed=config.seed, stats=counts)
    parts = [table, rows_to_table(derived)]
    rejected: list[pa.Table] = []
    if rule_rejects:
        rejected.append(reject_table(*(list(col) for col in zip(*rule_rejects, strict=True))))
    if llm_stage is not None and config.uses_llm():
        for res in _llm_results(table, config, llm_stage, lexicon):
            parts.append(res.kept)
            rejected.append(res.rejected)
            counts.update(res.stats.extra)
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
    stats.rejects.update(r for t in rejected for r in t.column("reason").to_pylist())
    rej = pa.concat_tables(rejected) if rejected else reject_table([], [], [])
    return StageResult(kept=kept, rejected=rej, stats=stats)


def _llm_results(
    table: pa.Table, config: AugmentConfig, stage: LLMStage, lexicon: Lexicon
) -> list[StageResult]:
    from augmenters.llm_negatives import llm_negatives_table
    from augmenters.llm_paraphrase import llm_paraphrase_table

    results = []
    if config.llm_paraphrase_modes:
        results.append(llm_paraphrase_table(table, stage, lexicon, config.llm_paraphrase_modes))
    if any(r > 0 for r in config.llm_negative_ratios.values()):
        results.append(llm_negatives_table(table, stage, config.llm_negative_ratios, config.seed))
    return results
