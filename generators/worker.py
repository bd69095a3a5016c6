"""One engine replica's work: a shard of expanded prompts in, samples and recorded failures out.

A plain class, so tests can drive it without Ray; jobs wrap it in a Ray actor
(one per GPU group, or one per node on the CPU build).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict
from typing import Any

import pyarrow as pa
from pydantic import ValidationError

from generators.expand import PromptRow
from medaug.llm.engine import Engine, EngineConfig, SamplingConfig
from medaug.llm.output_format import OutputMode
from medaug.llm.stage import LLMOutcome, LLMRequest, LLMStage, LLMStats
from medaug.schema import Demographics, Label, Provenance, Sample, now_utc, samples_to_table, sampling_json

FAILURE_SCHEMA = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("template_id", pa.string()),
        ("seed_id", pa.string()),
        ("reason", pa.string()),
        ("attempts", pa.int32()),
        ("raw", pa.string()),
    ]
)


def prompt_to_dict(row: PromptRow) -> dict[str, Any]:
    d = asdict(row)
    d["task"], d["area"], d["sex"] = row.task.value, row.area.value, row.sex.value
    return d


class GenerationWorker:
    def __init__(
        self,
        engine_config: EngineConfig,
        sampling: SamplingConfig,
        output_mode: OutputMode,
        *,
        max_retries: int,
        field_max_chars: int,
        run_id: str,
        job_id: str | None,
        engine: Engine | None = None,
    ):
        self.stage = LLMStage(
            engine_config,
            sampling,
            output_mode,
            max_retries=max_retries,
            field_max_chars=field_max_chars,
            engine=engine,
        )
        self.sampling = sampling
        self.run_id = run_id
        self.job_id = job_id
        self.model = engine_config.model

    def warm(self) -> bool:
        """Start the engine now, so a bad model path fails before any shard is handed out."""
        _ = self.stage.engine
        return True

    def run_shard(self, shard: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
        stats = LLMStats()
        t0 = time.perf_counter()
        requests = [LLMRequest(r["prompt_id"], r["system"], r["user"]) for r in rows]
        try:
            outcomes = self.stage.run(requests, stats)
        except Exception as e:  # an engine crash on this batch: record it, keep the run going
            reason = f"engine_error: {type(e).__name__}: {str(e)[:200]}"
            failures = [self._failure(r, reason, 0, traceback.format_exc()[-500:]) for r in rows]
            return {
                "shard": shard,
                "samples": samples_to_table([]),
                "failures": failures,
                "stats": _stats(stats, t0, 0),
            }
        samples: list[Sample] = []
        failures: list[dict[str, Any]] = []
        for row, out in zip(rows, outcomes, strict=True):
            if out.fields is None:
                failures.append(self._failure(row, out.error or "unknown", out.attempts, out.raw[:500]))
                continue
            try:
                samples.append(self._sample(row, out))
            except ValidationError as e:
                failures.append(
                    self._failure(row, f"invalid_sample: {e.errors()[0]['msg']}", out.attempts, "")
                )
        return {
            "shard": shard,
            "samples": samples_to_table(samples),
            "failures": failures,
            "stats": _stats(stats, t0, len(samples)),
        }

    def _sample(self, row: dict[str, Any], out: LLMOutcome) -> Sample:
        assert out.fields is not None
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
                model=self.model,
                sampling_params=sampling_json(
                    {**self.sampling.to_dict(), "output_mode": self.stage.output_mode}
                ),
                sampling_seed=out.seed,
                job_id=self.job_id,
                run_id=self.run_id,
                created_at=now_utc(),
            ),
        )

    @staticmethod
    def _failure(row: dict[str, Any], reason: str, attempts: int, raw: str) -> dict[str, Any]:
        return {
            "prompt_id": row["prompt_id"],
            "template_id": row["template_id"],
            "seed_id": row["seed_id"],
            "reason": reason,
            "attempts": attempts,
            "raw": raw,
        }


def _stats(stats: LLMStats, t0: float, n_samples: int) -> dict[str, Any]:
    return {
        "prompts": stats.requests,
        "parsed": stats.parsed,
        "samples": n_samples,
        "retries": stats.retries,
        "prompt_tokens": stats.prompt_tokens,
        "output_tokens": stats.output_tokens,
        "llm_seconds": stats.seconds,
        "seconds": time.perf_counter() - t0,
        "failed": dict(stats.failed),
    }
