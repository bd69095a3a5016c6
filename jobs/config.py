"""Job configuration: YAML files validated by pydantic, with errors that name the file and the field."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from generators.counterfactual import BiasConfig
from generators.expand import Quotas
from medaug.llm.engine import EngineConfig, SamplingConfig
from medaug.llm.output_format import OutputMode


class ConfigError(ValueError):
    pass


class LLMSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: EngineConfig
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    output_mode: OutputMode = "delimited"
    max_retries: int = Field(default=2, ge=0)
    field_max_chars: int = Field(default=600, ge=8)
    replicas: int | None = Field(
        default=None, ge=1, description="engine replicas; default: one per GPU group / per node"
    )
    build_tiny_if_missing: bool = Field(
        default=False,
        description="demo only: build the tiny test model at engine.model if absent (or an older medaug build)",
    )
    tiny_trained: bool = Field(
        default=True,
        description="demo only: train the tiny model briefly so it writes the 【field】 layout (jobs.tiny_train)",
    )


class RunSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output_dir: str = "runs"
    run_id: str | None = None
    seed: int = 0
    shard_size: int = Field(default=256, ge=1)
    ray_address: str | None = None
    max_shard_attempts: int = Field(default=3, ge=1)


class GenerateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job: Literal["generate"] = "generate"
    run: RunSection = Field(default_factory=RunSection)
    templates: str | None = None  # default: the shipped library
    knowledge: str | None = None  # default: the shipped knowledge table
    quotas: Quotas
    llm: LLMSection
    # the counterfactual sex-swap check (generators/counterfactual.py)
    bias: BiasConfig = Field(default_factory=BiasConfig)
    # jobs.curate.CurateConfig (de-id, quality gates, dedup, queue push), validated on load but imported
    # only when present: a generation-only host (e.g. a GPU node) needs none of curation's dependencies.
    curate: Any = None

    @field_validator("curate", mode="before")
    @classmethod
    def _curate(cls, v: Any) -> Any:
        if v is None:
            return None
        from jobs.curate import CurateConfig

        return v if isinstance(v, CurateConfig) else CurateConfig.model_validate(v)


# ---------------------------------------------------------------- engines, shared by every job with an LLM


def prepare_model(llm: LLMSection) -> None:
    """Build the demo model if asked; make a local model path absolute so every worker finds it."""
    from jobs.tiny_model import BUILD_RECORD, build_tiny_model

    folder = Path(llm.engine.model)
    if llm.build_tiny_if_missing and (
        not (folder / "config.json").exists() or (folder / BUILD_RECORD).exists()
    ):
        # A medaug build is rebuilt when its inputs changed (a no-op when they did not).
        print(f"[engine] tiny demo model at {llm.engine.model} (built or cached)", flush=True)
        build_tiny_model(llm.engine.model, train=llm.tiny_trained)
    if Path(llm.engine.model).exists():
        llm.engine.model = str(Path(llm.engine.model).resolve())


def cluster_device(llm: LLMSection) -> str:
    """Where the engine runs: as configured, else CUDA when the cluster has GPUs and the engine is vLLM
    (an OpenAI-compatible engine is an HTTP client: it runs on a CPU whatever the cluster holds)."""
    import ray

    if llm.engine.device != "auto":
        return llm.engine.device
    if llm.engine.kind != "vllm":
        return "cpu"
    return "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"


def engine_replicas(llm: LLMSection, device: str) -> int:
    import ray

    if llm.replicas:
        return llm.replicas
    if llm.engine.kind == "openai":
        return 1
    if device == "cuda":
        gpus = int(ray.cluster_resources().get("GPU", 0))
        return max(1, gpus // llm.engine.gpus_per_replica())
    # One per node that can run one: a head started with --num-cpus 0 (cluster.yaml) takes no replica.
    return max(1, sum(1 for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1))


@dataclass
class EngineSetup:
    """An LLM section resolved against the cluster: the engine (device set), actor options, replicas."""

    llm: LLMSection
    device: str
    actor_options: dict[str, Any]
    replicas: int

    def stage_args(self) -> dict[str, Any]:
        """The LLM stage's arguments (medaug.llm.stage.LLMStage)."""
        return {
            "engine_config": self.llm.engine,
            "sampling": self.llm.sampling,
            "output_mode": self.llm.output_mode,
            "max_retries": self.llm.max_retries,
            "field_max_chars": self.llm.field_max_chars,
        }


def engine_setup(llm: LLMSection) -> EngineSetup:
    """Prepare the model and resolve the engine on the joined cluster (call after init_ray)."""
    from medaug.llm.engine import engine_actor_options

    prepare_model(llm)
    device = cluster_device(llm)
    llm = llm.model_copy(update={"engine": llm.engine.model_copy(update={"device": device})})
    return EngineSetup(llm, device, engine_actor_options(llm.engine, device), engine_replicas(llm, device))


C = TypeVar("C", bound=BaseModel)


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: config file not found") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: broken YAML: {getattr(e, 'problem', None) or e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def validate(model: type[C], data: dict[str, Any], source: str) -> C:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msgs.append(f"{source}: {loc}: {err['msg']}")
        raise ConfigError("\n".join(msgs)) from e


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Apply a `--set a.b.c=value` override (value parsed as YAML)."""
    keys = dotted.split(".")
    cur = data
    for k in keys[:-1]:
        cur = cur.setdefault(k, {})
        if not isinstance(cur, dict):
            raise ConfigError(f"--set {dotted}: {k} is not a mapping")
    cur[keys[-1]] = value


def load_config(model: type[C], path: str | Path, overrides: list[str] | None = None) -> C:
    data = load_yaml(path)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        k, v = item.split("=", 1)
        set_dotted(data, k.strip(), yaml.safe_load(v))
    return validate(model, data, str(path))


def job_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The options every `python -m jobs.<name>` entry point takes."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True)
    parser.add_argument("--run-id")
    parser.add_argument("--output-dir")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value"
    )
    return parser


def run_overrides(overrides: list[str], run_id: str | None, output_dir: str | None) -> list[str]:
    """`--run-id` and `--output-dir` as the config overrides they stand for."""
    out = list(overrides)
    if run_id:
        out.append(f"run.run_id={run_id}")
    if output_dir:
        out.append(f"run.output_dir={output_dir}")
    return out
