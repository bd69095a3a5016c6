"""Generation job: templates → prompts → vLLM on a Ray actor pool → Parquet shards + manifest.

    medaug generate --config configs/demo.yaml
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python -m jobs.generate --config configs/demo.yaml

The job is a declaration (`generate_stages`: the generation stage on engine actors, then
curation) run by medaug.runner over the run's saved plan. Rerunning with the same run id
resumes: a shard whose Parquet file exists is not redone, and each prompt belongs to exactly
one shard, so every prompt has one outcome (a sample, or a reject in rejects/generate/).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from generators.expand import PlanReport, PromptRow, novelty_text, plan
from generators.knowledge import Disease, load_comorbidities, load_knowledge
from generators.stages import PROMPT_SCHEMA, GenerateStage, prompt_to_dict, prompts_table
from generators.templates import Template, load_templates
from jobs.config import (
    ConfigError,
    EngineSetup,
    GenerateConfig,
    engine_setup,
    job_parser,
    load_config,
    run_overrides,
)
from jobs.curate import CURATED, curation_stages
from medaug.io import write_arrow, write_json, write_text
from medaug.run import RunFolder, StageStats, new_run_id, summary_table
from medaug.runner import Runner, read_rejects, read_stage, rejects_path
from medaug.schema import Area, Sex, Task
from medaug.stage import Cluster, Stage

STAGE = GenerateStage.name


def log(line: str) -> None:
    print(line, flush=True)


def generation_stage(
    cfg: GenerateConfig, setup: EngineSetup, run_id: str, job_id: str | None, **kwargs: Any
) -> GenerateStage:
    """The generation stage on the cluster's engine actors, a shard per `run.shard_size` prompts."""
    args = setup.stage_args() | ({"sampling": kwargs.pop("sampling")} if "sampling" in kwargs else {})
    gen = GenerateStage(args, run_id=run_id, job_id=job_id, **kwargs)
    gen.batch_rows, gen.actor_options, gen.replicas = cfg.run.shard_size, setup.actor_options, setup.replicas
    return gen


def generate_stages(
    cfg: GenerateConfig, setup: EngineSetup, run_id: str, job_id: str | None, novelty: Any = None
) -> list[Stage]:
    """Generation, then curation and the queue push (when the config has a curate section)."""
    gen = generation_stage(cfg, setup, run_id, job_id, novelty=novelty)
    return [gen, *(curation_stages(cfg.curate, run_id, log) if cfg.curate is not None else [])]


def seed_novelty(cfg: GenerateConfig, folder: RunFolder) -> Any:
    """A seeded run's output check, holding the samples of its finished shards (None without seeds)."""
    if cfg.quotas.seeded is None:
        return None
    from generators.seeded import SeedNovelty, load_seeds

    check = SeedNovelty(load_seeds(cfg.quotas.seeded.file), cfg.quotas.seeded.output_threshold)
    check.add_table(read_stage(folder, STAGE))
    return check


def run_generate(cfg: GenerateConfig, *, max_shards: int | None = None) -> dict[str, Any]:
    """Run (or resume) the generation job; returns the manifest."""
    import ray

    from medaug.ray_env import init_ray

    run_id = cfg.run.run_id or new_run_id("gen")
    folder = RunFolder(cfg.run.output_dir, run_id).prepare()
    previous = folder.load_manifest()
    templates = load_templates(cfg.templates)
    diseases = load_knowledge(cfg.knowledge)
    prompts, plan_report = plan_run(cfg, folder, previous, templates, diseases)
    log(f"[generate] run {run_id}: {len(prompts)} prompts, {cfg.run.shard_size} a shard")
    novelty = seed_novelty(cfg, folder)
    init_ray(cfg.run.ray_address)
    job_id = ray.get_runtime_context().get_job_id()
    setup = engine_setup(cfg.llm)
    log(f"[generate] {setup.replicas} engine replica(s) on {setup.device}, model {setup.llm.engine.model}")
    runner = Runner(folder, generate_stages(cfg, setup, run_id, job_id, novelty), cluster=Cluster(ray=True),
                    max_attempts=cfg.run.max_shard_attempts, max_shards=max_shards, log=log,
                    **({"batch_rows": cfg.curate.batch_size, "shard_rows": cfg.curate.shard_rows}
                       if cfg.curate is not None else {}))  # fmt: skip
    t0 = time.perf_counter()
    result = runner.run(prompts_table(prompts))
    wall = time.perf_counter() - t0
    stats = result.stats
    gen_done = result.stopped_at != STAGE  # every prompt has its outcome
    if cfg.curate is not None and not result.complete:
        log("[generate] not every shard is done: curation and queue push wait for a complete run")
    bias: dict[str, Any] = {}
    if cfg.bias.counterfactual_sex_swap and gen_done:
        bias["counterfactual"] = counterfactual_check(
            cfg, folder, prompts, templates, diseases, setup, job_id
        )
    if gen_done:
        # distinct diseases/templates/personas, near-duplicate rates, unmet quotas (generators/diversity.py)
        from generators.diversity import diversity_report

        outputs = read_stage(folder, STAGE).column("output").to_pylist()
        bias["diversity"] = diversity_report(
            plan_report, prompts, outputs, threshold=cfg.quotas.novelty.threshold
        )
    return finish_manifest(runner, cfg, previous, wall, len(prompts), stats, bias)


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
    write_text(str(index.path), marker)
    print(f"[generate] recorded {added} prompts in the prompt index {index.path}", flush=True)


def save_plan(
    folder: RunFolder, prompts: list[PromptRow], report: PlanReport, *, quotas: dict[str, Any]
) -> None:
    """<run>/plan/report.json and quotas.json, then prompts.parquet (last, atomically: its presence means saved)."""
    d = folder.path / PLAN_DIR
    d.mkdir(parents=True, exist_ok=True)
    (d / "indexed").unlink(missing_ok=True)  # a replaced plan is recorded in the prompt index again
    write_json(report.to_dict(), d / "report.json")
    write_json(quotas, d / "quotas.json")
    rows = [prompt_to_dict(p) | {"slots": json.dumps(p.slots, ensure_ascii=False)} for p in prompts]
    write_arrow(pa.Table.from_pylist(rows, schema=PLAN_SCHEMA), d / "prompts.parquet")


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


PLAN_SCHEMA = pa.schema([*PROMPT_SCHEMA, pa.field("slots", pa.large_string())])


def _plan_matches_finished(folder: RunFolder, prompts: list[PromptRow], size: int) -> bool:
    """Every finished shard's prompts (samples and rejects) are in the same shard of `prompts`."""
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
        rejects = rejects_path(folder, GenerateStage, i)  # id: the prompt id
        if rejects.exists():
            ids += pq.read_table(rejects, columns=["id"]).column("id").to_pylist()
        if not ids or not set(ids) <= planned:
            return False
    return True


def counterfactual_check(
    cfg: GenerateConfig,
    folder: RunFolder,
    prompts: list[PromptRow],
    templates: list[Template],
    diseases: list[Disease],
    setup: EngineSetup,
    job_id: str | None,
) -> dict[str, Any]:
    """Sex-swapped pairs through the same engine stage, greedily, as a run of their own in <run>/bias/
    (resumable like any stage); the report there too (generators/counterfactual.py)."""
    from generators import counterfactual as cf

    out_dir = folder.path / "bias"
    if (out_dir / cf.SUMMARY).exists():  # resumed run: already checked
        return json.loads((out_dir / cf.SUMMARY).read_text(encoding="utf-8"))
    pairs = cf.sex_swap_pairs(prompts, diseases, templates, cfg.bias.counterfactual_max_pairs)
    greedy = setup.llm.sampling.model_copy(update={"temperature": 0.0})
    stage = generation_stage(cfg, setup, folder.run_id, job_id, sampling=greedy)
    stage.name, stage.output, stage.rejects_dir = "counterfactual", "bias/samples", "bias/rejects"
    log(f"[generate] counterfactual sex swap: {len(pairs)} pairs")
    runner = Runner(
        folder, [stage], cluster=Cluster(ray=True), max_attempts=cfg.run.max_shard_attempts, log=log
    )
    runner.run(prompts_table([p for pair in pairs for p in pair]))
    table = read_stage(folder, stage.folder)
    ids = [p["prompt_id"] for p in table.column("provenance").to_pylist()]
    outputs: dict[str, str | None] = dict(zip(ids, table.column("output").to_pylist(), strict=True))
    rejected = read_rejects(folder, stage)
    failures = dict(
        zip(rejected.column("id").to_pylist(), rejected.column("reason").to_pylist(), strict=True)
    )
    records = cf.compare_pairs(pairs, outputs, diseases, failures)
    cf.print_mismatches(records)
    summary = cf.write_report(records, out_dir)
    log(f"[generate] counterfactual: {summary['same']} same, {summary['mismatches']} mismatches, "
        f"{summary['failed']} failed; {summary['path']}")  # fmt: skip
    return summary


def finish_manifest(
    runner: Runner,
    cfg: GenerateConfig,
    previous: dict[str, Any],
    wall: float,
    n_prompts: int,
    stats: list[StageStats],
    extra_outputs: dict[str, Any],
) -> dict[str, Any]:
    folder = runner.folder
    st = next(s for s in stats if s.name == STAGE)
    st.seconds = wall  # this attempt's wall time (the engine's own time is llm_seconds)
    if wall > 0:
        st.extra["prompts_per_s"] = round(st.rows_in / wall, 1)
        st.extra["output_tok_per_s"] = round(st.extra.get("output_tokens", 0) / wall, 1)
    if st.extra.get("llm_seconds"):
        st.extra["engine_output_tok_per_s"] = round(st.extra["output_tokens"] / st.extra["llm_seconds"], 1)
    shards_total = -(-n_prompts // cfg.run.shard_size)
    finished = len(folder.finished_shards(STAGE))
    outputs = {
        "samples": str(folder.path / STAGE),
        "rejects": str(folder.path / GenerateStage.rejects_dir),
        "shards_done": finished,
        "shards_total": shards_total,
        "prompts_total": n_prompts,
        "complete": finished == shards_total,
    }
    if cfg.curate is not None and len(stats) > 1:
        outputs["curated"] = str(folder.path / CURATED)
        outputs["queue"] = cfg.curate.queue.url if cfg.curate.queue.push else None
    outputs |= extra_outputs
    return runner.write_manifest(job="generate", config=cfg.model_dump(mode="json"), stats=stats,
                                 outputs=outputs, previous=previous)  # fmt: skip


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
