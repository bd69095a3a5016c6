"""The LLM stage: requests in, parsed fields or a recorded failure out — never a silent drop.

Shared by generation and by the LLM augmenters (paraphrase, negatives). Requests
are ordered so that prompts sharing a prefix run together (vLLM's prefix cache;
1.23× measured on an H100), every request gets its own seed derived from the
run seed and its key (so output does not depend on batch boundaries), and
unparseable answers are retried a bounded number of times with a new seed.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from medaug.llm.engine import Engine, EngineConfig, SamplingConfig, build_engine
from medaug.llm.output_format import (
    OutputMode,
    ParseError,
    format_instructions,
    json_schema,
    layout_regex,
    parse_output,
)

SAMPLE_FIELDS = ("instruction", "input", "output")


@dataclass(frozen=True)
class LLMRequest:
    key: str  # stable id of what is being generated (prompt id, parent sample id + purpose)
    system: str
    user: str
    fields: tuple[str, ...] = SAMPLE_FIELDS


@dataclass
class LLMOutcome:
    key: str
    fields: dict[str, str] | None  # None: failed, see error
    error: str | None
    attempts: int
    seed: int
    prompt_tokens: int
    output_tokens: int
    finish_reason: str | None
    raw: str = ""


@dataclass
class LLMStats:
    requests: int = 0
    parsed: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0


def request_seed(run_seed: int, key: str, attempt: int = 0) -> int:
    digest = hashlib.sha256(f"{run_seed}:{key}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class LLMStage:
    def __init__(
        self,
        engine_config: EngineConfig,
        sampling: SamplingConfig,
        output_mode: OutputMode = "delimited",
        *,
        max_retries: int = 2,
        field_max_chars: int = 600,
        group_by_prefix: bool = True,
        engine: Engine | None = None,
    ):
        self.engine_config = engine_config
        self.sampling = sampling
        self.output_mode = output_mode
        self.max_retries = max_retries
        self.field_max_chars = field_max_chars
        self.group_by_prefix = group_by_prefix
        self._engine = engine

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = build_engine(self.engine_config)
        return self._engine

    def messages(self, req: LLMRequest) -> list[dict[str, str]]:
        user = req.user + format_instructions(req.fields, self.output_mode)
        msgs = [{"role": "user", "content": user}]
        if req.system:
            msgs.insert(0, {"role": "system", "content": req.system})
        return msgs

    def run(self, requests: list[LLMRequest], stats: LLMStats | None = None) -> list[LLMOutcome]:
        """One outcome per request, in request order."""
        stats = stats if stats is not None else LLMStats()
        t0 = time.perf_counter()
        outcomes: dict[str, LLMOutcome] = {}
        pending = list(requests)
        if len({r.key for r in requests}) != len(requests):
            raise ValueError("LLM requests must have unique keys")
        for attempt in range(self.max_retries + 1):
            if not pending:
                break
            if attempt:
                stats.retries += len(pending)
            # Shared prefixes adjacent: vLLM reuses the cached KV blocks of the prefix.
            order = sorted(pending, key=lambda r: (r.system, r.user)) if self.group_by_prefix else pending
            completions = self._generate(order, attempt)
            still: list[LLMRequest] = []
            for req, (seed, comp) in zip(order, completions, strict=True):
                stats.prompt_tokens += comp.prompt_tokens
                stats.output_tokens += comp.output_tokens
                try:
                    values = parse_output(comp.text, req.fields, self.output_mode)
                    error = None
                except ParseError as e:
                    values, error = None, e.reason
                    if comp.finish_reason == "length":
                        error = f"{e.reason}+truncated"
                outcomes[req.key] = LLMOutcome(
                    key=req.key,
                    fields=values,
                    error=error,
                    attempts=attempt + 1,
                    seed=seed,
                    prompt_tokens=comp.prompt_tokens,
                    output_tokens=comp.output_tokens,
                    finish_reason=comp.finish_reason,
                    raw=comp.text if values is None else "",
                )
                if values is None:
                    still.append(req)
            pending = still
        stats.requests += len(requests)
        for o in outcomes.values():
            if o.fields is None:
                stats.failed[o.error or "unknown"] += 1
            else:
                stats.parsed += 1
        stats.seconds += time.perf_counter() - t0
        return [outcomes[r.key] for r in requests]

    def _generate(self, order: list[LLMRequest], attempt: int) -> list[tuple[int, Any]]:
        seeds = [request_seed(self.sampling.seed, r.key, attempt) for r in order]
        kwargs: dict[str, Any] = {}
        if self.output_mode == "json":
            fields = order[0].fields
            if any(r.fields != fields for r in order):
                return self._generate_mixed(order, seeds)
            kwargs["json_schema"] = json_schema(fields, self.field_max_chars)
        elif self.output_mode == "regex":
            fields = order[0].fields
            if any(r.fields != fields for r in order):
                return self._generate_mixed(order, seeds)
            kwargs["regex"] = layout_regex(fields, self.field_max_chars)
        comps = self.engine.generate([self.messages(r) for r in order], self.sampling, seeds, **kwargs)
        return list(zip(seeds, comps, strict=True))

    def _generate_mixed(self, order: list[LLMRequest], seeds: list[int]) -> list[tuple[int, Any]]:
        """Constrained modes need one schema per call: split by field set, keep order."""
        result: list[tuple[int, Any] | None] = [None] * len(order)
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, r in enumerate(order):
            groups.setdefault(r.fields, []).append(i)
        for fields, idx in groups.items():
            kw: dict[str, Any] = (
                {"json_schema": json_schema(fields, self.field_max_chars)}
                if self.output_mode == "json"
                else {"regex": layout_regex(fields, self.field_max_chars)}
            )
            comps = self.engine.generate(
                [self.messages(order[i]) for i in idx], self.sampling, [seeds[i] for i in idx], **kw
            )
            for i, c in zip(idx, comps, strict=True):
                result[i] = (seeds[i], c)
        return [r for r in result if r is not None]
