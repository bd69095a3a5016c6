"""The one runner: a job hands it its stages and its input; it executes them and accounts for every row.

    input ─► conform ─► stage 1 ─► stage 2 ─► ... ─► conform ─► output
                        │ shards: <run>/<stage>/shard-NNNNN.parquet (+ stats-NNNNN.json)
                        │ rejects: <run>/<rejects_dir>/<stage>-NNNNN.parquet (REJECT_SCHEMA)
                        └ done:    <run>/<stage>/done.json (the stage's merged stats)

Where a stage runs follows from its mode and the cluster the job joined (medaug.stage.Cluster):
batch stages go to Ray Data when there is a cluster and more than one shard to do, else run in
this process; actors stages go to an actor pool (medaug.pool) on a cluster, else run here; global
stages run on the driver over the whole stage input. Every write is atomic and a shard's samples
are written last, so "the shard file exists" means "the shard is finished": a rerun with the same
run id skips finished shards and finished stages (except a stage that acts outside the run
folder, Stage.always_run: the queue push, which is idempotent).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medaug.io import write_arrow, write_json
from medaug.run import RunFolder, StageStats, build_manifest, summary_table
from medaug.schema import SAMPLE_SCHEMA, conform_table, now_utc
from medaug.stage import LOCAL, REJECT_SCHEMA, Cluster, Stage, StageResult, attach, reject_table

Log = Callable[[str], None]
DONE = "done.json"


@dataclass
class RunResult:
    stats: list[StageStats]
    complete: bool  # every stage finished every shard
    output: pa.Table | None = None  # the last stage's kept rows (None when incomplete)
    stopped_at: str | None = None  # the stage with unfinished shards


@dataclass
class Runner:
    folder: RunFolder
    stages: list[Stage]
    cluster: Cluster = LOCAL
    batch_rows: int = 4096  # rows per shard of batch and actors stages (a stage may say otherwise)
    shard_rows: int = 50_000  # rows per output shard of a global stage
    max_attempts: int = 3  # actors: tries per shard before it is given up
    # batch/actors shards this attempt may run, all stages together; the stage that reaches it stops
    # the run there (incomplete: a rerun with the same run id goes on)
    max_shards: int | None = None
    log: Log = print
    started_at: str = field(default_factory=lambda: now_utc().isoformat())
    _shards_run: int = field(default=0, init=False)

    def run(self, table: pa.Table | None) -> RunResult:
        """Run every stage over `table`; a finished stage (done marker) is read back, not redone."""
        if self.stages and self.stages[0].takes_samples and table is not None:
            table = conform_table(table)  # once on entry
        stats: list[StageStats] = []
        previous: Stage | None = None
        for stage in self.stages:
            stage.cluster = self.cluster
            done = self.folder.path / stage.folder / DONE
            if done.exists() and not stage.always_run:
                stats.append(StageStats.from_dict(json.loads(done.read_text(encoding="utf-8"))))
                self.log(f"[{stage.name}] already done in an earlier attempt; reusing {stage.folder}/")
                table, previous = None, stage
                continue
            if table is None:
                table = self.read(previous.folder) if previous is not None else SAMPLE_SCHEMA.empty_table()
            table, st, complete = self._run_stage(stage, table)
            previous = stage
            stats.append(st)
            if not complete:
                return RunResult(stats, complete=False, stopped_at=stage.name)
            write_json(st.to_dict(), done)
        if table is None:
            table = self.read(self.stages[-1].folder) if self.stages else SAMPLE_SCHEMA.empty_table()
        if self.stages and self.stages[-1].emits_samples:
            table = conform_table(table)  # once on exit
        return RunResult(stats, complete=True, output=table)

    def read(self, stage: str) -> pa.Table:
        return read_stage(self.folder, stage)

    # ------------------------------------------------------------------ one stage

    def _run_stage(self, stage: Stage, table: pa.Table) -> tuple[pa.Table, StageStats, bool]:
        t0 = time.perf_counter()
        if stage.mode == "global":
            parts = self._global(stage, table)
            complete = True
        else:
            rows = stage.batch_rows or self.batch_rows
            shards = {i: table.slice(s, rows) for i, s in enumerate(range(0, table.num_rows, rows))}
            parts = {i: None for i in shards if self._done(stage, i)}
            pending = [(i, t) for i, t in shards.items() if i not in parts]
            self.log(
                f"[{stage.name}] {table.num_rows} rows in {len(shards)} shards, {len(parts)} already done"
            )
            if self.max_shards is not None:
                pending = pending[: max(0, self.max_shards - self._shards_run)]
                self._shards_run += len(pending)
            results: dict[int, pa.Table] = {}

            def on_result(idx: int, res: StageResult) -> None:
                res = stage.accept(res)
                results[idx] = self._write_shard(stage, idx, res, shards[idx])
                self.log(
                    f"[{stage.name}] shard {idx} ({len(parts) + len(results)}/{len(shards)}): "
                    f"{res.stats.rows_in} in, {res.kept.num_rows} out, {res.rejected.num_rows} rejected"
                )

            self._dispatch(stage, pending, on_result)
            parts.update(results)
            complete = len(parts) == len(shards)
            if complete:
                tail = len(shards)  # the rows a stage adds once per run (refusals) are one more shard
                if not self._done(stage, tail) and (extra := stage.finish()) is not None:
                    parts[tail] = self._write_shard(stage, tail, extra, None)
        st = self._stats(stage, parts)
        st.seconds = time.perf_counter() - t0
        if complete:
            stage.summarize(st)
        if not complete:
            return table, st, False
        kept = [
            t if t is not None else pq.read_table(self.folder.shard_path(stage.folder, i))
            for i, t in sorted(parts.items())
        ]
        out = pa.concat_tables(kept) if kept else table.schema.empty_table()
        self.log(f"[{stage.name}] {st.rows_in} in, {out.num_rows} out ({st.seconds:.1f}s)")
        return out, st, True

    def _global(self, stage: Stage, table: pa.Table) -> dict[int, pa.Table | None]:
        d = self.folder.stage_dir(stage.folder)
        for stale in [*d.glob("shard-*.parquet"), *d.glob("stats-*.json")]:
            stale.unlink()  # an attempt that stopped part-way through writing the output
        res = stage.process(table)
        self._write_rejects(stage, 0, res.rejected, table)
        write_json(res.stats.to_dict(), d / "stats-00000.json")
        kept = res.kept
        if kept.schema != SAMPLE_SCHEMA and stage.emits_samples:
            kept = conform_table(kept)
        parts: dict[int, pa.Table | None] = {}
        for i, start in enumerate(range(0, max(kept.num_rows, 1), self.shard_rows)):
            parts[i] = kept.slice(start, self.shard_rows)
            write_arrow(parts[i], self.folder.shard_path(stage.folder, i))
        return parts

    def _dispatch(
        self, stage: Stage, pending: list[tuple[int, pa.Table]], on_result: Callable[[int, StageResult], None]
    ) -> None:
        if not pending:
            return
        if stage.mode == "actors" and self.cluster.ray:
            self._pool(stage, pending, on_result)
        elif stage.mode == "batch" and self.cluster.ray and len(pending) > 1:
            _ray_data(stage, pending, on_result)
        else:
            if stage.mode == "actors":
                stage.warm()
            for idx, t in pending:
                on_result(idx, stage.process(t))

    def _pool(
        self, stage: Stage, pending: list[tuple[int, pa.Table]], on_result: Callable[[int, StageResult], None]
    ) -> None:
        import ray

        from medaug.pool import run_pool

        actor_cls = ray.remote(StageActor).options(**stage.actor_options)

        def on_give_up(idx: int, t: pa.Table, reason: str) -> None:
            if stage.on_give_up == "raise":
                raise RuntimeError(
                    f"{stage.name} shard {idx} failed for good: {reason}; rerun with the same run id to retry it"
                )
            self.log(f"[{stage.name}] shard {idx} failed for good: {reason}")
            ids = t.column(stage.id_column).to_pylist()
            self._write_rejects(stage, idx, reject_table(ids, [reason] * len(ids), [None] * len(ids)), t)
            # no samples shard: a rerun with the same run id retries this shard

        self.log(f"[{stage.name}] {stage.replicas} actor(s), {len(pending)} shards")
        run_pool(lambda: actor_cls.remote(stage), stage.replicas, pending, method="run_shard",
                 on_result=on_result, on_give_up=on_give_up, max_attempts=self.max_attempts)  # fmt: skip

    # ------------------------------------------------------------------ files

    def _done(self, stage: Stage, idx: int) -> bool:
        return self.folder.shard_path(stage.folder, idx).exists()

    def _write_rejects(self, stage: Stage, idx: int, rejected: pa.Table, source: pa.Table | None) -> None:
        path = rejects_path(self.folder, stage, idx)
        if rejected.num_rows:
            write_arrow(attach(rejected, stage.name, source if stage.takes_samples else None), path)
        else:
            path.unlink(missing_ok=True)  # an earlier attempt's, of a shard given up then

    def _write_shard(self, stage: Stage, idx: int, res: StageResult, source: pa.Table | None) -> pa.Table:
        """Rejects, then stats, then the samples (last: their file marks the shard done)."""
        self._write_rejects(stage, idx, res.rejected, source)
        write_json(res.stats.to_dict(), self.folder.stage_dir(stage.folder) / f"stats-{idx:05d}.json")
        kept = res.kept
        if kept.schema != SAMPLE_SCHEMA and stage.emits_samples:
            kept = conform_table(kept)  # a stage that built its rows in another column order
        path = self.folder.shard_path(stage.folder, idx)
        # a fixed temporary name (one writer per run: the driver): the disk-full fault test puts /dev/full there
        write_arrow(kept, path, tmp=path.with_suffix(".tmp"))
        return kept

    def _stats(self, stage: Stage, parts: dict[int, Any]) -> StageStats:
        """The stage's stats: every finished shard's, this attempt's and earlier ones'."""
        d = self.folder.path / stage.folder
        found = []
        for i in sorted(parts):
            p = d / f"stats-{i:05d}.json"
            if p.exists():
                found.append(StageStats.from_dict(json.loads(p.read_text(encoding="utf-8"))))
        return StageStats.merged(stage.name, found)

    # ------------------------------------------------------------------ the end of a job

    def summary(self, stats: list[StageStats], title: str) -> str:
        return summary_table(stats, title=title)

    def write_manifest(
        self,
        *,
        job: str,
        config: dict[str, Any],
        stats: list[StageStats],
        outputs: dict[str, Any],
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        manifest = build_manifest(
            run_id=self.folder.run_id,
            job=job,
            config=config,
            stages=stats,
            started_at=self.started_at,
            outputs=outputs,
            previous=previous,
        )
        self.folder.write_manifest(manifest)
        return manifest


def rejects_path(folder: RunFolder, stage: Stage | type[Stage], idx: int) -> Path:
    return folder.path / stage.rejects_dir / f"{stage.name}-{idx:05d}.parquet"


def read_rejects(folder: RunFolder, stage: Stage | type[Stage]) -> pa.Table:
    """Every reject file a stage wrote in the run (finished shards and shards given up), REJECT_SCHEMA."""
    d = folder.path / stage.rejects_dir
    files = sorted(d.glob(f"{stage.name}-*.parquet")) if d.exists() else []
    tables = [pq.read_table(p).cast(REJECT_SCHEMA) for p in files]
    return pa.concat_tables(tables) if tables else REJECT_SCHEMA.empty_table()


def read_stage(folder: RunFolder, stage: str) -> pa.Table:
    """A stage folder's finished shards, in order, as one sample table."""
    shards = folder.finished_shards(stage)
    if not shards:
        return SAMPLE_SCHEMA.empty_table()
    tables = [pq.read_table(p) for p in shards]
    if any(t.schema != SAMPLE_SCHEMA for t in tables):  # shards of an older medaug version
        tables = [conform_table(t) for t in tables]
    return pa.concat_tables(tables)


class StageActor:
    """A Stage inside a Ray actor: its engine starts once (`warm`), then it takes shard after shard."""

    def __init__(self, stage: Stage):
        self.stage = stage

    def warm(self) -> bool:
        self.stage.warm()
        return True

    def run_shard(self, idx: int, table: pa.Table) -> StageResult:
        return self.stage.process(table)


# ------------------------------------------------------------------ Ray Data

_SHARD = "_medaug_shard"


def _ray_data(
    stage: Stage, pending: list[tuple[int, pa.Table]], on_result: Callable[[int, StageResult], None]
) -> None:
    """Pending shards as the blocks of a Ray dataset; each batch's result comes back as one row
    (Arrow IPC bytes), so kept rows, rejects and stats travel together and each shard is written
    by the driver as soon as its rows are all back."""
    import ray

    sizes = {i: t.num_rows for i, t in pending}
    refs = [ray.put(t.append_column(_SHARD, pa.array([i] * t.num_rows, pa.int64()))) for i, t in pending]
    ds = ray.data.from_arrow_refs(refs).map_batches(
        _process_encoded, fn_kwargs={"stage": stage}, batch_format="pyarrow", batch_size=None
    )
    partial: dict[int, list[StageResult]] = {}
    got: dict[int, int] = {}
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        for row in batch.to_pylist():
            idx = row["shard"]
            partial.setdefault(idx, []).append(_decode(row))
            got[idx] = got.get(idx, 0) + row["rows"]
            if got[idx] == sizes[idx]:  # a block Ray Data split in two comes back in two rows
                on_result(idx, _combine(stage, partial.pop(idx)))


def _process_encoded(batch: pa.Table, stage: Stage) -> pa.Table:
    out = []
    shard = batch.column(_SHARD).to_numpy()
    for idx in sorted(set(shard.tolist())):
        part = batch.filter(pa.array(shard == idx)).drop_columns([_SHARD])
        res = stage.process(part)
        out.append(
            {
                "shard": idx,
                "rows": part.num_rows,
                "kept": _ipc(res.kept),
                "rejected": _ipc(res.rejected),
                "stats": json.dumps(res.stats.to_dict(), ensure_ascii=False),
            }
        )
    schema = pa.schema(
        [("shard", pa.int64()), ("rows", pa.int64()), ("kept", pa.large_binary()),
         ("rejected", pa.large_binary()), ("stats", pa.string())]
    )  # fmt: skip
    return pa.Table.from_pylist(out, schema=schema)


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def _decode(row: dict[str, Any]) -> StageResult:
    return StageResult(
        kept=pa.ipc.open_stream(row["kept"]).read_all(),
        rejected=pa.ipc.open_stream(row["rejected"]).read_all(),
        stats=StageStats.from_dict(json.loads(row["stats"])),
    )


def _combine(stage: Stage, parts: list[StageResult]) -> StageResult:
    if len(parts) == 1:
        return parts[0]
    return StageResult(
        kept=pa.concat_tables([p.kept for p in parts]),
        rejected=pa.concat_tables([p.rejected.cast(REJECT_SCHEMA) for p in parts]),
        stats=StageStats.merged(stage.name, [p.stats for p in parts]),
    )
