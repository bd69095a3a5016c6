"""Augment job: existing SFT data → augmenters → de-identification → quality gates → dedup → review queue.

    medaug augment --config configs/augment-demo.yaml
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python -m jobs.augment --config ...

Inputs: seed-format / Alpaca JSON or JSONL, ShareGPT JSONL, Parquet, or a released
medaug dataset version folder. Bad records are reported with file, line and
field (and kept out); everything accepted is either in the output or in
`rejects/` with its reason. The job is a declaration (`augment_stages`) run by
medaug.runner; rerunning with the same run id resumes after the last finished shard.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from augmenters.pipeline import AugmentConfig
from augmenters.stages import AugmenterStage, augmenter_stages
from jobs.config import (
    ConfigError,
    LLMSection,
    RunSection,
    engine_setup,
    job_parser,
    load_config,
    run_overrides,
)
from jobs.curate import CURATED, CurateConfig, curation_stages
from medaug.io import InputError, read_samples, write_jsonl
from medaug.run import RunFolder, StageStats, new_run_id, summary_table
from medaug.runner import Runner
from medaug.schema import samples_to_table
from medaug.stage import Cluster, Stage


class AugmentJobConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job: Literal["augment"] = "augment"
    run: RunSection = Field(default_factory=RunSection)
    inputs: list[str] = Field(
        min_length=1, description="files (.jsonl/.json/.parquet) or dataset version folders"
    )
    limit: int | None = Field(default=None, ge=1, description="read at most this many valid records in total")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    llm: LLMSection | None = Field(
        default=None, description="engine for the LLM augmenters (llm_paraphrase_modes, llm_negative_ratios)"
    )
    curate: CurateConfig = Field(default_factory=CurateConfig)


def _input_files(spec: str) -> list[Path]:
    p = Path(spec)
    if p.is_dir():  # a released dataset version (data/*.parquet) or a folder of shards
        files = sorted((p / "data").glob("*.parquet")) or sorted(p.glob("*.parquet"))
        if not files:
            raise InputError(f"{p}: folder holds no Parquet shards")
        return files
    if not p.exists():
        raise InputError(f"{p}: no such input file")
    return [p]


def read_inputs(cfg: AugmentJobConfig, folder: RunFolder, log=print) -> tuple[pa.Table, StageStats]:
    st = StageStats("read")
    t0 = time.perf_counter()
    tables, errors = [], []
    budget = cfg.limit
    for spec in cfg.inputs:
        for path in _input_files(spec):
            res = read_samples(path)
            st.rows_in += len(res.samples) + len({(e.path, e.line) for e in res.errors})
            samples = res.samples if budget is None else res.samples[:budget]
            if budget is not None:
                budget -= len(samples)
            tables.append(samples_to_table(samples))
            errors += res.errors
            for e in res.errors:
                st.rejects[f"bad_record:{e.field.split('.')[0]}"] += 1
            log(f"[read] {path}: {len(res.samples)} samples, {len(res.errors)} bad records")
            if budget == 0:
                break
    if errors:
        write_jsonl(({"path": e.path, "line": e.line, "field": e.field, "message": e.message} for e in errors),
                    folder.path / "input_errors.jsonl")  # fmt: skip
        for e in errors[:5]:
            log(f"[read] bad record: {e}")
        if len(errors) > 5:
            log(f"[read] ... {len(errors) - 5} more in {folder.path / 'input_errors.jsonl'}")
    table = pa.concat_tables(tables) if tables else samples_to_table([])
    st.rows_out = table.num_rows
    st.seconds = time.perf_counter() - t0
    return table, st


def augment_stages(cfg: AugmentJobConfig, run_id: str, log=print) -> list[Stage]:
    """One stage per augmenter the config enables (rule ones per batch, LLM ones on engine actors),
    then curation and the queue push."""
    llm = None
    if cfg.augment.uses_llm():
        assert cfg.llm is not None
        setup = engine_setup(cfg.llm)
        llm = setup.stage_args()
        log(f"[augment] LLM augmenters on {setup.device}, {setup.replicas} engine replica(s)")
    stages = augmenter_stages(cfg.augment, run_id, llm)
    for stage in stages:
        if stage.mode == "actors":
            stage.batch_rows = cfg.run.shard_size
            stage.actor_options, stage.replicas = setup.actor_options, setup.replicas
        else:
            stage.batch_rows = cfg.curate.batch_size
    return [*stages, *curation_stages(cfg.curate, run_id, log)]


def run_augment(cfg: AugmentJobConfig, log=print) -> dict[str, Any]:
    from medaug.ray_env import init_ray

    run_id = cfg.run.run_id or new_run_id("aug")
    folder = RunFolder(cfg.run.output_dir, run_id).prepare()
    previous = folder.load_manifest()
    init_ray(cfg.run.ray_address)
    if cfg.augment.uses_llm() and cfg.llm is None:
        raise ConfigError(
            "augment.llm_paraphrase_modes/llm_negative_ratios need an `llm` section (engine, sampling)"
        )
    t0 = time.perf_counter()
    table, read_st = read_inputs(cfg, folder, log)
    runner = Runner(folder, augment_stages(cfg, run_id, log), cluster=Cluster(ray=True),
                    batch_rows=cfg.curate.batch_size, shard_rows=cfg.curate.shard_rows,
                    max_attempts=cfg.run.max_shard_attempts, log=log)  # fmt: skip
    result = runner.run(table)
    augmented = [s for s in runner.stages if isinstance(s, AugmenterStage)][-1]
    stages = [read_st, *result.stats]
    total = StageStats(
        "total", rows_in=read_st.rows_in, rows_out=stages[-1].rows_out, seconds=time.perf_counter() - t0
    )
    outputs = {
        "augmented": str(folder.path / augmented.folder),
        "curated": str(folder.path / CURATED),
        "rejects": str(folder.path / "rejects"),
        "queue": cfg.curate.queue.url if cfg.curate.queue.push else None,
    }
    return runner.write_manifest(job="augment", config=cfg.model_dump(mode="json"), stats=[*stages, total],
                                 outputs=outputs, previous=previous)  # fmt: skip


def print_summary(manifest: dict[str, Any]) -> None:
    stages = [StageStats.from_dict(s) for s in manifest["stages"]]
    print(summary_table(stages, title=f"medaug {manifest['job']} — run {manifest['run_id']}"))
    for k, v in manifest["outputs"].items():
        if v:
            print(f"{k}: {v}")


def cli_entry(config: str, run_id: str | None, output_dir: str | None, overrides: list[str]) -> int:
    overrides = run_overrides(overrides, run_id, output_dir)
    try:
        cfg = load_config(AugmentJobConfig, config, overrides)
        manifest = run_augment(cfg)
    except (ConfigError, InputError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # an engine that cannot start, a shard that keeps failing
        print(f"error: {e}", file=sys.stderr)
        return 1
    print_summary(manifest)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("python -m jobs.augment", __doc__.splitlines()[0])
    args = parser.parse_args(argv)
    return cli_entry(args.config, args.run_id, args.output_dir, args.set)


if __name__ == "__main__":
    sys.exit(main())
