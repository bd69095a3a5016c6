"""Generation job: templates → prompts → vLLM on a Ray actor pool → Parquet shards + manifest.

    medaug generate --config configs/demo.yaml
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python -m jobs.generate --config configs/demo.yaml

Rerunning with the same run id resumes: a shard whose Parquet file exists is not
redone, and each prompt belongs to exactly one shard, so no sample appears twice.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from generators.expand import PlanReport, PromptRow, novelty_text, plan
from generators.knowledge import Disease, load_comorbidities, load_knowledge
from generators.templates import Template, load_templates
from generators.worker import FAILURE_SCHEMA, GenerationWorker, prompt_to_dict
from jobs.config import ConfigError, GenerateConfig, LLMSection, job_parser, load_config, run_overrides
from medaug.io import write_parquet
from medaug.run import RunFolder, StageStats, build_manifest, new_run_id, summary_table
from medaug.schema import Area, Sex, Task, now_utc

STAGE = "generate"


def _atomic_failures(rows: list[dict[str, Any]], path: Path) -> None:
    import os

    import pyarrow.parquet as pq

    tmp = path.with_suffix(".tmp")
    try:
        pq.write_table(pa.Table.from_pylist(rows, schema=FAILURE_SCHEMA), tmp)
        os.replace(tmp, path)
    except OSError as e:  # pyarrow's message names no file: say which one (disk full, folder gone)
        raise OSError(f"cannot write {path}: {e}") from e


def prepare_model(llm: LLMSection) -> None:
    """Build the demo model if asked; make a local model path absolute so every worker finds it."""
    from jobs.tiny_model import BUILD_RECORD, build_tiny_model

    folder = Path(llm.engine.model)
    if llm.build_tiny_if_missing and (
        not (folder / "config.json").exists() or (folder / BUILD_RECORD).exists()
    ):
        # A medaug build is rebuilt when its inputs changed (a no-op when they did not).
        print(f"[generate] tiny demo model at {llm.engine.model} (built or cached)", flush=True)
        build_tiny_model(llm.engine.model, train=llm.tiny_trained)
    if Path(llm.engine.model).exists():
        llm.engine.model = str(Path(llm.engine.model).resolve())


def _replicas(llm: LLMSection, device: str) -> int:
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


def _cluster_device(llm: LLMSection) -> str:
    import ray

    if llm.engine.device != "auto":
        return llm.engine.device
    return "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"


def make_actor_factory(llm: LLMSection, device: str, run_id: str, job_id: str | None):
    import ray

    from medaug.llm.engine import engine_actor_options

    engine = llm.engine.model_copy(update={"device": device})
    actor_cls = ray.remote(GenerationWorker).options(**engine_actor_options(engine, device))

    def make() -> Any:
        return actor_cls.remote(
            engine,
            llm.sampling,
            llm.output_mode,
            max_retries=llm.max_retries,
            field_max_chars=llm.field_max_chars,
            run_id=run_id,
            job_id=job_id,
        )

    return make


def run_generate(cfg: GenerateConfig, *, max_shards: int | None = None) -> dict[str, Any]:
    """Run (or resume) the generation job; returns the manifest."""
    import ray

    from medaug.ray_env import init_ray

    started = now_utc().isoformat()
    run_id = cfg.run.run_id or new_run_id("gen")
    folder = RunFolder(cfg.run.output_dir, run_id).prepare()
    previous = folder.load_manifest()
    templates = load_templates(cfg.templates)
    diseases = load_knowledge(cfg.knowledge)
    prompts, plan_report = plan_run(cfg, folder, previous, templates, diseases)
    size = cfg.run.shard_size
    shards = [
        (i, [prompt_to_dict(p) for p in prompts[s : s + size]])
        for i, s in enumerate(range(0, len(prompts), size))
    ]
    done = {int(p.stem.split("-")[1]) for p in folder.finished_shards(STAGE)}
    seed_check = None
    if cfg.quotas.seeded is not None:  # samples too similar to a seed or an earlier sample are dropped
        from generators.seeded import SeedNovelty, load_seeds
        from jobs.curate import read_stage

        seed_check = SeedNovelty(load_seeds(cfg.quotas.seeded.file), cfg.quotas.seeded.output_threshold)
        seed_check.add_table(read_stage(folder, STAGE))
    pending = [s for s in shards if s[0] not in done]
    if max_shards is not None:
        pending = pending[:max_shards]
    print(
        f"[generate] run {run_id}: {len(prompts)} prompts in {len(shards)} shards; "
        f"{len(done)} already done, {len(pending)} to run",
        flush=True,
    )

    prepare_model(cfg.llm)
    init_ray(cfg.run.ray_address)
    job_id = ray.get_runtime_context().get_job_id()
    device = _cluster_device(cfg.llm)
    n_replicas = _replicas(cfg.llm, device)
    stats_path = folder.stage_dir(STAGE) / "shard-stats.jsonl"
    t0 = time.perf_counter()
    completed = 0

    def on_result(idx: int, result: dict[str, Any]) -> None:
        nonlocal completed
        if seed_check is not None:
            result["samples"], dropped = seed_check.apply(result["samples"])
            result["failures"] = result["failures"] + dropped
            result["stats"]["samples"] = result["samples"].num_rows
            for f in dropped:
                result["stats"]["failed"][f["reason"]] = result["stats"]["failed"].get(f["reason"], 0) + 1
        _atomic_failures(result["failures"], folder.stage_dir(STAGE) / f"failures-{idx:05d}.parquet")
        with open(stats_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"shard": idx, **result["stats"]}) + "\n")
        try:
            write_parquet(result["samples"], folder.shard_path(STAGE, idx))  # last: marks the shard done
        except OSError as e:
            raise OSError(f"cannot write {folder.shard_path(STAGE, idx)}: {e}") from e
        completed += 1
        st = result["stats"]
        tps = st["output_tokens"] / st["llm_seconds"] if st["llm_seconds"] else 0.0
        print(
            f"[generate] shard {idx} done ({completed}/{len(pending)}): {st['samples']} samples, "
            f"{len(result['failures'])} failures, {tps:.0f} output tok/s",
            flush=True,
        )

    def on_give_up(idx: int, rows: list[dict[str, Any]], reason: str) -> None:
        print(f"[generate] shard {idx} failed for good: {reason}", file=sys.stderr, flush=True)
        _atomic_failures(
            [
                {k: r[k] for k in ("prompt_id", "template_id", "seed_id")}
                | {"reason": reason, "attempts": 0, "raw": ""}
                for r in rows
            ],
            folder.stage_dir(STAGE) / f"failures-{idx:05d}.parquet",
        )
        # No samples shard: a rerun with the same run id retries this shard.

    from jobs.pool import run_pool

    print(f"[generate] {n_replicas} engine replica(s) on {device}, model {cfg.llm.engine.model}", flush=True)
    run_pool(
        make_actor_factory(cfg.llm, device, run_id, job_id),
        n_replicas,
        pending,
        method="run_shard",
        on_result=on_result,
        on_give_up=on_give_up,
        max_attempts=cfg.run.max_shard_attempts,
    )
    wall = time.perf_counter() - t0
    extra_stages: list[StageStats] = []
    complete = len(folder.finished_shards(STAGE)) == len(shards)
    if cfg.curate is not None and complete:
        from jobs.curate import curate_and_push, read_stage

        extra_stages = curate_and_push(folder, read_stage(folder, STAGE), cfg.curate, run_id)
    elif cfg.curate is not None:
        print(
            "[generate] not every shard is done: curation and queue push wait for a complete run", flush=True
        )
    bias: dict[str, Any] = {}
    if cfg.bias.counterfactual_sex_swap and complete:
        factory = make_actor_factory(_greedy(cfg.llm), device, run_id, job_id)
        bias["counterfactual"] = counterfactual_check(
            cfg, folder, prompts, templates, diseases, factory, n_replicas
        )
    if (
        complete
    ):  # distinct diseases/templates/personas, near-duplicate rates, unmet quotas (generators/diversity.py)
        from generators.diversity import diversity_report
        from jobs.curate import read_stage

        outputs = read_stage(folder, STAGE).column("output").to_pylist()
        bias["diversity"] = diversity_report(
            plan_report, prompts, outputs, threshold=cfg.quotas.novelty.threshold
        )
    return finish_manifest(
        folder, cfg, started, previous, wall, len(prompts), len(shards), extra_stages, bias
    )


# ---------------------------------------------------------------- the run's plan

PLAN_DIR = "plan"
PLAN_ORIGIN = "plan:{run_id}"  # origin of a run's prompts in the prompt index


def plan_run(
    cfg: GenerateConfig,
    folder: RunFolder,
    previous: dict[str, Any],
    templates: list[Template],
    diseases: list[Disease],
) -> tuple[list[PromptRow], PlanReport]:
    """The run's prompts: those its first attempt saved in <run>/plan/, else a new plan, saved there.

    Saved, because a resume must run the same prompts even when the prompt index has grown since (other
    runs recorded theirs) or medaug's expander changed. A new plan stays away from every prompt in the
    prompt index (quotas.novelty.index) and is then recorded there, so the next run plans new prompts.
    """
    saved = load_plan(folder)
    new_quotas = cfg.model_dump(mode="json")["quotas"]
    # the quotas the saved plan was made with (a first attempt that failed before its manifest was written
    # has only these), else those of the manifest (a run started before plans were saved)
    quotas_file = folder.path / PLAN_DIR / "quotas.json"
    if saved is not None and quotas_file.exists():
        old_quotas = json.loads(quotas_file.read_text(encoding="utf-8"))
    else:
        old_quotas = previous.get("config", {}).get("quotas") if previous else None
    changes = quota_changes(old_quotas, new_quotas) if old_quotas is not None else []
    if changes and saved is not None and all(c.startswith("added ") for c in changes):
        # settings of a newer medaug version: the saved plan is the run's plan whatever they say
        print(
            f"[generate] run {folder.run_id}: {'; '.join(changes)}; the run keeps its saved plan", flush=True
        )
    elif changes:
        fresh = _new_plan(cfg, templates, diseases)
        if not _plan_matches_finished(folder, fresh[0], cfg.run.shard_size):
            what = "; ".join(c.split(" ", 1)[1] for c in changes)
            raise ConfigError(
                f"run {folder.run_id} exists with different quotas: {what}. Its finished shards hold prompts of "
                "the run's own plan and this config plans other prompts, so resuming would mix two plans. Start "
                "a new run (another --run-id, or none for a fresh id), or resume with the run's quotas (in "
                f"{quotas_file if quotas_file.exists() else folder.manifest_path}) and the medaug version that "
                "started it."
            )
        print(f"[generate] run {folder.run_id}: quotas differ ({'; '.join(changes)}), but the new plan has the "
              "same prompts in every finished shard: resuming with it", flush=True)  # fmt: skip
        save_plan(folder, *fresh, quotas=new_quotas)
        saved = fresh
    if saved is not None:
        prompts, report = saved
        print(f"[generate] run {folder.run_id}: the plan saved in {folder.path / PLAN_DIR}", flush=True)
    else:
        prompts, report = _new_plan(cfg, templates, diseases)
        save_plan(folder, prompts, report, quotas=new_quotas)
    _record_plan(cfg, folder, prompts)
    return prompts, report


def quota_changes(old: Any, new: Any, path: str = "quotas") -> list[str]:
    """What differs between the run's quotas and this config's, one line each ("added|removed|changed path: ...")."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            p = f"{path}.{k}"
            if k not in old:
                out.append(f"added {p}: not in the run's quotas (a setting this medaug version added), "
                           f"{json.dumps(new[k], ensure_ascii=False)} here")  # fmt: skip
            elif k not in new:
                out.append(
                    f"removed {p}: {json.dumps(old[k], ensure_ascii=False)} in the run, not in this config"
                )
            else:
                out += quota_changes(old[k], new[k], p)
        return out
    if old == new:
        return []
    return [
        f"changed {path}: {json.dumps(old, ensure_ascii=False)} in the run, {json.dumps(new, ensure_ascii=False)} here"
    ]


def _prompt_index(cfg: GenerateConfig) -> Any:
    path = cfg.quotas.novelty.index
    if not path or not cfg.quotas.novelty.enabled:
        return None
    if (
        cfg.curate is not None
        and cfg.curate.dedup_index
        and Path(cfg.curate.dedup_index).resolve() == Path(path).resolve()
    ):
        # prompt-only entries in the samples' index would make curation drop samples with short outputs
        raise ConfigError(
            f"quotas.novelty.index and curate.dedup_index are both {path}: the prompt index needs a folder of its own"
        )
    from curation.dedup import DedupIndex

    return DedupIndex(path)


def _new_plan(
    cfg: GenerateConfig, templates: list[Template], diseases: list[Disease]
) -> tuple[list[PromptRow], PlanReport]:
    index = _prompt_index(cfg)
    if index is not None:
        print(
            f"[generate] planning away from {len(index)} prompts in the prompt index {index.path}", flush=True
        )
    return plan(templates, diseases, load_comorbidities(cfg.knowledge), cfg.quotas, cfg.run.seed, index=index)


def _record_plan(cfg: GenerateConfig, folder: RunFolder, prompts: list[PromptRow]) -> None:
    """The plan's prompts into the prompt index, as question-only samples (once: a marker file says it is done)."""
    index = _prompt_index(cfg)
    marker = folder.path / PLAN_DIR / "indexed"
    if index is None or marker.exists():
        return
    n = len(prompts)
    table = pa.table({
        "id": [p.prompt_id for p in prompts], "instruction": [novelty_text(p) for p in prompts],
        "input": [""] * n, "output": [""] * n, "label": ["positive"] * n,
        "task": [p.task.value for p in prompts], "area": [p.area.value for p in prompts],
    })  # fmt: skip
    added = index.add(table, origin=PLAN_ORIGIN.format(run_id=folder.run_id))
    marker.write_text(str(index.path), encoding="utf-8")
    print(f"[generate] recorded {added} prompts in the prompt index {index.path}", flush=True)


def save_plan(
    folder: RunFolder, prompts: list[PromptRow], report: PlanReport, *, quotas: dict[str, Any]
) -> None:
    """<run>/plan/report.json and quotas.json, then prompts.parquet (last, atomically: its presence means saved)."""
    import os

    import pyarrow.parquet as pq

    d = folder.path / PLAN_DIR
    d.mkdir(parents=True, exist_ok=True)
    (d / "indexed").unlink(missing_ok=True)  # a replaced plan is recorded in the prompt index again
    (d / "report.json").write_text(json.dumps(report.to_dict(), ensure_ascii=False), encoding="utf-8")
    (d / "quotas.json").write_text(json.dumps(quotas, ensure_ascii=False), encoding="utf-8")
    rows = [prompt_to_dict(p) | {"slots": json.dumps(p.slots, ensure_ascii=False)} for p in prompts]
    tmp = d / "prompts.parquet.tmp"
    pq.write_table(pa.Table.from_pylist(rows, schema=PLAN_SCHEMA), tmp, compression="zstd")
    os.replace(tmp, d / "prompts.parquet")


def load_plan(folder: RunFolder) -> tuple[list[PromptRow], PlanReport] | None:
    import pyarrow.parquet as pq

    d = folder.path / PLAN_DIR
    if not (d / "prompts.parquet").exists():
        return None
    report = PlanReport.from_dict(json.loads((d / "report.json").read_text(encoding="utf-8")))
    prompts = [
        PromptRow(
            **(
                r
                | {
                    "task": Task(r["task"]),
                    "area": Area(r["area"]),
                    "sex": Sex(r["sex"]),
                    "slots": json.loads(r["slots"]),
                }
            )
        )  # fmt: skip
        for r in pq.read_table(d / "prompts.parquet").to_pylist()
    ]
    return prompts, report


PLAN_SCHEMA = pa.schema([
    ("prompt_id", pa.string()), ("template_id", pa.string()), ("seed_id", pa.string()), ("task", pa.string()),
    ("area", pa.string()), ("icd10", pa.list_(pa.string())), ("age", pa.int32()), ("sex", pa.string()),
    ("comorbidities", pa.list_(pa.string())), ("system", pa.large_string()), ("user", pa.large_string()),
    ("slots", pa.large_string()),
])  # fmt: skip


def _plan_matches_finished(folder: RunFolder, prompts: list[PromptRow], size: int) -> bool:
    """Every finished shard's prompts (samples and recorded failures) are in the same shard of `prompts`."""
    import pyarrow.parquet as pq

    finished = folder.finished_shards(STAGE)
    if not finished:
        return True
    for path in finished:
        i = int(path.stem.split("-")[1])
        planned = {p.prompt_id for p in prompts[i * size : (i + 1) * size]}
        ids = [
            p["prompt_id"]
            for p in pq.read_table(path, columns=["provenance"]).column("provenance").to_pylist()
        ]
        fail = folder.stage_dir(STAGE) / f"failures-{i:05d}.parquet"
        if fail.exists():
            ids += pq.read_table(fail, columns=["prompt_id"]).column("prompt_id").to_pylist()
        if not ids or not set(ids) <= planned:
            return False
    return True


def _greedy(llm: LLMSection) -> LLMSection:
    return llm.model_copy(update={"sampling": llm.sampling.model_copy(update={"temperature": 0.0})})


def counterfactual_check(
    cfg: GenerateConfig,
    folder: RunFolder,
    prompts: list[PromptRow],
    templates: list[Template],
    diseases: list[Disease],
    factory: Callable[[], Any],
    n_replicas: int,
) -> dict[str, Any]:
    """Sex-swapped pairs through the same engine pool, greedily; report in <run>/bias/ (generators/counterfactual.py)."""
    from generators import counterfactual as cf
    from jobs.pool import run_pool

    out_dir = folder.path / "bias"
    if (out_dir / cf.SUMMARY).exists():  # resumed run: already checked
        return json.loads((out_dir / cf.SUMMARY).read_text(encoding="utf-8"))
    pairs = cf.sex_swap_pairs(prompts, diseases, templates, cfg.bias.counterfactual_max_pairs)
    rows = [prompt_to_dict(p) for pair in pairs for p in pair]
    size = cfg.run.shard_size
    outputs: dict[str, str | None] = {}
    failures: dict[str, str] = {}

    def on_result(_: int, result: dict[str, Any]) -> None:
        table = result["samples"]
        ids = [p["prompt_id"] for p in table.column("provenance").to_pylist()]
        outputs.update(zip(ids, table.column("output").to_pylist(), strict=True))
        failures.update({f["prompt_id"]: f["reason"] for f in result["failures"]})

    def on_give_up(_: int, rows: list[dict[str, Any]], reason: str) -> None:
        failures.update({r["prompt_id"]: reason for r in rows})

    print(f"[generate] counterfactual sex swap: {len(pairs)} pairs", flush=True)
    run_pool(factory, n_replicas, [(i, rows[s : s + size]) for i, s in enumerate(range(0, len(rows), size))],
             method="run_shard", on_result=on_result, on_give_up=on_give_up,
             max_attempts=cfg.run.max_shard_attempts)  # fmt: skip
    records = cf.compare_pairs(pairs, outputs, diseases, failures)
    cf.print_mismatches(records)
    summary = cf.write_report(records, out_dir)
    print(f"[generate] counterfactual: {summary['same']} same, {summary['mismatches']} mismatches, "
          f"{summary['failed']} failed; {summary['path']}", flush=True)  # fmt: skip
    return summary


def collect_stats(folder: RunFolder) -> StageStats:
    """Counts over every finished shard (this attempt and earlier ones), from the per-shard stats log."""
    st = StageStats(STAGE)
    finished = {int(p.stem.split("-")[1]) for p in folder.finished_shards(STAGE)}
    stats_path = folder.path / STAGE / "shard-stats.jsonl"
    seen: set[int] = set()
    if stats_path.exists():
        for line in stats_path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec["shard"] in finished and rec["shard"] not in seen:
                seen.add(rec["shard"])
                st.rows_in += rec["prompts"]
                st.rows_out += rec["samples"]
                st.rejects.update(rec["failed"])
                for k in ("prompt_tokens", "output_tokens", "retries"):
                    st.extra[k] = st.extra.get(k, 0) + rec[k]
                st.extra["llm_seconds"] = st.extra.get("llm_seconds", 0.0) + rec["llm_seconds"]
    return st


def finish_manifest(
    folder: RunFolder,
    cfg: GenerateConfig,
    started: str,
    previous: dict[str, Any],
    wall: float,
    n_prompts: int,
    n_shards: int,
    extra_stages: list[StageStats] | None = None,
    extra_outputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    st = collect_stats(folder)
    st.seconds = wall
    finished = len(folder.finished_shards(STAGE))
    if wall > 0:
        st.extra["prompts_per_s"] = round(st.rows_in / wall, 1) if finished else 0.0
        st.extra["output_tok_per_s"] = round(st.extra.get("output_tokens", 0) / wall, 1)
    if st.extra.get("llm_seconds"):
        st.extra["engine_output_tok_per_s"] = round(st.extra["output_tokens"] / st.extra["llm_seconds"], 1)
    outputs = {
        "samples": str(folder.path / STAGE),
        "shards_done": finished,
        "shards_total": n_shards,
        "prompts_total": n_prompts,
        "complete": finished == n_shards,
    }
    if cfg.curate is not None and extra_stages:
        outputs["curated"] = str(folder.path / "curated")
        outputs["queue"] = cfg.curate.queue.url if cfg.curate.queue.push else None
    outputs |= extra_outputs or {}
    manifest = build_manifest(
        run_id=folder.run_id,
        job="generate",
        config=cfg.model_dump(mode="json"),
        stages=[st, *(extra_stages or [])],
        started_at=started,
        outputs=outputs,
        previous=previous,
    )
    folder.write_manifest(manifest)
    return manifest


def print_summary(manifest: dict[str, Any]) -> None:
    stages = [StageStats.from_dict(s) for s in manifest["stages"]]
    print(summary_table(stages, title=f"medaug {manifest['job']} — run {manifest['run_id']}"))
    out = manifest["outputs"]
    print(f"output: {out['samples']}  ({out['shards_done']}/{out['shards_total']} shards)")
    print(f"manifest: {Path(out['samples']).parent / 'manifest.json'}")
    if not out["complete"]:
        print(f"incomplete: rerun with --run-id {manifest['run_id']} to finish the remaining shards")
    if out.get("diversity"):
        from generators.diversity import format_report

        print(format_report(out["diversity"]))


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("python -m jobs.generate", __doc__.splitlines()[0])
    parser.add_argument("--max-shards", type=int, help="stop after this many shards (resume later)")
    args = parser.parse_args(argv)
    return cli_entry(args.config, args.run_id, args.output_dir, args.set, args.max_shards)


def cli_entry(
    config: str, run_id: str | None, output_dir: str | None, overrides: list[str], max_shards: int | None
) -> int:
    overrides = run_overrides(overrides, run_id, output_dir)
    try:
        cfg = load_config(GenerateConfig, config, overrides)
        manifest = run_generate(cfg, max_shards=max_shards)
    except (ConfigError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # engine start failures surface from the actors as RuntimeError subclasses
        print(f"error: {e}", file=sys.stderr)
        return 1
    print_summary(manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
