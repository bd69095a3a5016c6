"""The augmenters' config and one function per augmenter; `augment_table` runs them all in one call.

The rule augmenters (lexicon paraphrase, rule negatives, refusals) need no model and are fast; the LLM
augmenters run only when the config asks for them and the caller hands in an LLM stage, and their
rejected rewrites come back as the result's rejections. The augment job runs the same functions as
one Stage per augmenter (augmenters/stages.py); `augment_table` is the library entry for the CLI,
the benches and tests, and the reference the stage chain is tested against.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from augmenters.negatives import negative_report, negative_rows
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


def config_lexicon(config: AugmentConfig) -> Lexicon:
    return cached_lexicon(tuple(str(p) for p in config.lexicons), config.core_lexicon)


def paraphrases(rows: list[dict[str, Any]], config: AugmentConfig, lexicon: Lexicon) -> Derived:
    """Lexicon paraphrases of `rows` (derived rows only) and the variants that failed their fact check."""
    d = Derived()
    if config.paraphrase and config.variants:
        rejects: list[tuple[str, str, str]] = []
        d.rows = paraphrase_rows(rows, lexicon, variants=config.variants, seed=config.seed,
                                 direction=config.direction, fields=config.fields, stats=d.counts,
                                 rejects=rejects)  # fmt: skip
        if rejects:
            d.rejected.append(reject_table(*(list(col) for col in zip(*rejects, strict=True))))
    return d


def negatives(rows: list[dict[str, Any]], config: AugmentConfig, lexicon: Lexicon) -> Derived:
    """Rule negatives of the positive rows; the quotas are per call (per batch in a job)."""
    d = Derived()
    if any(r > 0 for r in config.negative_ratios.values()):
        d.rows = negative_rows(rows, config.negative_ratios, lexicon, seed=config.seed, stats=d.counts)
        d.report = negative_report(d.counts, config.negative_ratios)
    return d


def llm_paraphrases(table: pa.Table, config: AugmentConfig, stage: LLMStage, lexicon: Lexicon) -> StageResult:
    from augmenters.llm_paraphrase import llm_paraphrase_table

    return llm_paraphrase_table(table, stage, lexicon, config.llm_paraphrase_modes)


def llm_negatives(table: pa.Table, config: AugmentConfig, stage: LLMStage) -> StageResult:
    from augmenters.llm_negatives import llm_negatives_table

    return llm_negatives_table(table, stage, config.llm_negative_ratios, config.seed)


def uses_llm_paraphrase(config: AugmentConfig) -> bool:
    return bool(config.llm_paraphrase_modes)


def uses_llm_negatives(config: AugmentConfig) -> bool:
    return any(r > 0 for r in config.llm_negative_ratios.values())


def refusals_table(config: AugmentConfig, redrawn: Counter | None = None) -> pa.Table:
    """`config.refusals` refusals; `redrawn` counts the pairings re-drawn (person mismatch, repetition)."""
    return samples_to_table(make_refusals(config.refusals, config.seed, redrawn))


def augment_table(table: pa.Table, config: AugmentConfig, llm_stage: LLMStage | None = None) -> StageResult:
    """Every augmenter the config asks for over every row, plus `config.refusals` refusals, in one call
    (the CLI, benches). The augment job runs the same functions as one Stage each (augmenters/stages.py)."""
    if config.uses_llm() and llm_stage is None:
        raise ValueError(
            "the config asks for LLM augmenters (llm_paraphrase_modes/llm_negative_ratios) but no LLM stage was given"
        )
    t0 = time.perf_counter()
    table = conform_table(table)
    rows = table.to_pylist()
    lexicon = config_lexicon(config)
    para, neg = paraphrases(rows, config, lexicon), negatives(rows, config, lexicon)
    counts = Counter(para.counts)
    counts.update(neg.counts)
    parts = [table, rows_to_table(para.rows + neg.rows)]
    rejected = para.rejected + neg.rejected
    if llm_stage is not None:
        llm = []
        if uses_llm_paraphrase(config):
            llm.append(llm_paraphrases(table, config, llm_stage, lexicon))
        if uses_llm_negatives(config):
            llm.append(llm_negatives(table, config, llm_stage))
        for res in llm:
            parts.append(res.kept)
            rejected.append(res.rejected)
            counts.update(res.stats.extra)
    if config.refusals:
        refusals = refusals_table(config)
        counts["refusals"] += refusals.num_rows
        parts.append(refusals)
    kept = pa.concat_tables(parts)
    stats = StageStats(
        "augment",
        rows_in=table.num_rows,
        rows_out=kept.num_rows,
        seconds=time.perf_counter() - t0,
        extra={**dict(sorted(counts.items())), **({"report": neg.report} if neg.report else {})},
    )
    stats.rejects.update(r for t in rejected for r in t.column("reason").to_pylist())
    rej = pa.concat_tables(rejected) if rejected else reject_table([], [], [])
    return StageResult(kept=kept, rejected=rej, stats=stats)


@dataclass
class Derived:
    """What one rule augmenter made from a batch: derived rows, rejected candidates, counts."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[pa.Table] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    report: list[str] = field(default_factory=list)
