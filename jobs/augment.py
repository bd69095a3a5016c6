"""Augment job: existing SFT data → augmenters → de-identification → quality gates → dedup → review queue.

    medaug augment --config configs/augment-demo.yaml
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python -m jobs.augment --config ...

Inputs: seed-format / Alpaca JSON or JSONL, ShareGPT JSONL, Parquet, or a released
medaug dataset version folder. Bad records are reported with file, line and
field (and kept out); everything accepted is either in the output or in
`rejects/` with its reason. Rerunning with the same run id resumes after the
last finished stage.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from augmenters.pipeline import AugmentConfig
from jobs.config import ConfigError, LLMSection, RunSection, job_parser, load_config, run_overrides
from jobs.curate import CurateConfig, _done, _mark, curate_and_push, read_stage
from medaug.io import InputError, read_samples, write_jsonl, write_parquet
from medaug.run import RunFolder, StageStats, build_manifest, new_run_id, summary_table
from medaug.schema import conform_table, now_utc, samples_to_table


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


def _augment_batch(batch: pa.Table, config: AugmentConfig, rejects_dir: str | None = None) -> pa.Table:
    """Kept rows; rule rejections (paraphrases whose clinical facts changed) go to `rejects_dir`, named
    by the batch's content so a rerun rewrites the same file."""
    import hashlib

    import pyarrow.parquet as pq

    from augmenters.pipeline import augment_table

    res = augment_table(batch, config)
    if rejects_dir and res.rejected.num_rows:
        ids = batch.column("id").to_pylist() if batch.num_rows else []
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
        pq.write_table(res.rejected, Path(rejects_dir) / f"rules-{digest}.parquet")
    return res.kept


class AugmentWorker:
    """One engine replica running every configured augmenter, LLM ones included, over a shard of rows."""

    def __init__(self, llm: LLMSection, config: AugmentConfig):
        from medaug.llm.stage import LLMStage

        self.config = config
        self.stage = LLMStage(
            llm.engine,
            llm.sampling,
            llm.output_mode,
            max_retries=llm.max_retries,
            field_max_chars=llm.field_max_chars,
        )

    def warm(self) -> bool:
        _ = self.stage.engine
        return True

    def run_shard(self, shard: int, table: pa.Table) -> dict[str, Any]:
        from augmenters.pipeline import augment_table

        res = augment_table(table, self.config, self.stage)
        return {"kept": res.kept, "rejected": res.rejected, "stats": res.stats.to_dict()}


def _augment_with_llm(
    table: pa.Table, cfg: AugmentJobConfig, config: AugmentConfig, folder: RunFolder, log
) -> list[pa.Table]:
    """Shards of input rows on a pool of engine actors; a finished shard is not redone on resume."""
    import pyarrow.parquet as pq
    import ray

    from jobs.generate import _cluster_device, _replicas, prepare_model
    from jobs.pool import run_pool
    from medaug.llm.engine import engine_actor_options

    assert cfg.llm is not None
    prepare_model(cfg.llm)
    device = _cluster_device(cfg.llm)
    llm = cfg.llm.model_copy(update={"engine": cfg.llm.engine.model_copy(update={"device": device})})
    actor_cls = ray.remote(AugmentWorker).options(**engine_actor_options(llm.engine, device))
    size = cfg.run.shard_size
    shards = [(i, table.slice(s, size)) for i, s in enumerate(range(0, table.num_rows, size))]
    pending = [s for s in shards if not folder.shard_path("augment-llm", s[0]).exists()]
    log(
        f"[augment] LLM augmenters on {device}: {len(shards)} shards, {len(shards) - len(pending)} already done"
    )

    def on_result(idx: int, result: dict[str, Any]) -> None:
        if result["rejected"].num_rows:
            pq.write_table(result["rejected"], folder.stage_dir("rejects") / f"augment-llm-{idx:05d}.parquet")
        write_parquet(result["kept"], folder.shard_path("augment-llm", idx))
        log(
            f"[augment] shard {idx}: {result['stats']['rows_out']} out, {result['rejected'].num_rows} LLM rewrites rejected"
        )

    def on_give_up(idx: int, _payload: Any, reason: str) -> None:
        raise RuntimeError(
            f"augment shard {idx} failed for good: {reason}; rerun with the same run id to retry it"
        )

    run_pool(lambda: actor_cls.remote(llm, config), _replicas(llm, device), pending, method="run_shard",
             on_result=on_result, on_give_up=on_give_up, max_attempts=cfg.run.max_shard_attempts)  # fmt: skip
    return [conform_table(pq.read_table(p)) for p in folder.finished_shards("augment-llm")]


def augment(table: pa.Table, cfg: AugmentJobConfig, folder: RunFolder, run_id: str, log=print) -> StageStats:
    """Augment every input row (Ray Data map_batches, or engine actors for the LLM augmenters);
    refusals from the taxonomy are added once per run."""
    import ray

    from augmenters.refusals import make_refusals

    t0 = time.perf_counter()
    per_batch = cfg.augment.model_copy(update={"refusals": 0})
    # Derived candidates that failed the fact check were never accepted into the run: they go beside the
    # stage rejections, in rejects/augment/ (id = the parent's), not among them.
    rejects_dir = str(folder.stage_dir("rejects/augment"))
    if cfg.augment.uses_llm():
        parts = _augment_with_llm(table, cfg, per_batch, folder, log)
    elif table.num_rows > cfg.curate.batch_size and ray.is_initialized():
        ds = ray.data.from_arrow(table).repartition(max(1, table.num_rows // cfg.curate.batch_size))
        out = ds.map_batches(_augment_batch, fn_kwargs={"config": per_batch, "rejects_dir": rejects_dir}, batch_format="pyarrow",
                             batch_size=cfg.curate.batch_size)  # fmt: skip
        parts = [conform_table(ray.get(r)) for r in out.to_arrow_refs()]
    else:
        parts = [_augment_batch(table, per_batch, rejects_dir)]
    if cfg.augment.refusals:
        parts.append(samples_to_table(make_refusals(cfg.augment.refusals, cfg.augment.seed)))
    result = pa.concat_tables([p for p in parts if p.num_rows]) if any(p.num_rows for p in parts) else table
    result = _stamp_run(result, run_id)
    for i, start in enumerate(range(0, result.num_rows, cfg.curate.shard_rows)):
        write_parquet(result.slice(start, cfg.curate.shard_rows), folder.shard_path("augment", i))
    st = StageStats(
        "augment", rows_in=table.num_rows, rows_out=result.num_rows, seconds=time.perf_counter() - t0
    )
    import pyarrow.parquet as pq

    rejects = folder.path / "rejects"
    for p in sorted([*rejects.glob("augment-*.parquet"), *rejects.glob("augment/*.parquet")]):  # LLM, rules
        st.rejects.update(pq.read_table(p, columns=["reason"]).column("reason").to_pylist())
    labels = result.column("label").to_pylist()
    st.extra = {f"label_{k}": labels.count(k) for k in ("positive", "negative", "refusal")}
    _mark(folder, "augment", [st])
    log(f"[augment] {table.num_rows} in, {result.num_rows} out ({st.seconds:.1f}s)")
    return st


def _stamp_run(table: pa.Table, run_id: str) -> pa.Table:
    """Record the run in every sample's provenance where none is set (ids are content hashes and do not
    change). Columnar: a Python round trip over 200 k nested rows costs seconds."""
    import pyarrow.compute as pc

    table = conform_table(table)
    prov = table.column("provenance").combine_chunks()
    fields = [prov.field(i) for i in range(prov.type.num_fields)]
    at = prov.type.get_field_index("run_id")
    fields[at] = pc.fill_null(fields[at], run_id)
    stamped = pa.StructArray.from_arrays(fields, fields=list(prov.type))
    return table.set_column(table.schema.get_field_index("provenance"), "provenance", stamped)


def run_augment(cfg: AugmentJobConfig, log=print) -> dict[str, Any]:
    from medaug.ray_env import init_ray

    started = now_utc().isoformat()
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
    if (done := _done(folder, "augment")) is not None:
        aug_st = done[0]
        log("[augment] already done in an earlier attempt; reusing augment/")
    else:
        aug_st = augment(table, cfg, folder, run_id, log)
    stages = [
        read_st,
        aug_st,
        *curate_and_push(folder, read_stage(folder, "augment"), cfg.curate, run_id, log),
    ]
    total = StageStats(
        "total", rows_in=read_st.rows_in, rows_out=stages[-1].rows_out, seconds=time.perf_counter() - t0
    )
    manifest = build_manifest(
        run_id=run_id,
        job="augment",
        config=cfg.model_dump(mode="json"),
        stages=[*stages, total],
        started_at=started,
        outputs={
            "augmented": str(folder.path / "augment"),
            "curated": str(folder.path / "curated"),
            "rejects": str(folder.path / "rejects"),
            "queue": cfg.curate.queue.url if cfg.curate.queue.push else None,
        },
        previous=previous,
    )
    folder.write_manifest(manifest)
    return manifest


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
