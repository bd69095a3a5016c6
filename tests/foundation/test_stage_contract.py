"""The Stage contract: one reject schema, requirements checked at build time, atomic writes."""

from __future__ import annotations

import json
import os
import pickle

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medaug.io import atomic_write, write_arrow
from medaug.run import RunFolder, StageStats
from medaug.runner import Runner
from medaug.schema import Sample, samples_to_table
from medaug.stage import (
    REJECT_SCHEMA,
    Cluster,
    MissingRequirement,
    Stage,
    StageResult,
    attach,
    reject_table,
)


def samples(n: int, prefix: str = "问") -> pa.Table:
    return samples_to_table(
        [
            Sample(instruction=f"{prefix}{i}：胸口疼怎么办？", output=f"答{i}：请及时就医，必要时拨打120。")
            for i in range(n)
        ]
    )


class NeedsMissing(Stage):
    name = "needs_missing"
    requires = (("medaug_no_such_package_xyz", "pip install medaug-no-such-package"),)


class DropOdd(Stage):
    """Keeps even rows, rejects odd ones."""

    name = "drop_odd"

    def process(self, table: pa.Table) -> StageResult:
        ids = table.column("id").to_pylist()
        keep = [i % 2 == 0 for i in range(len(ids))]
        odd = [x for x, k in zip(ids, keep, strict=True) if not k]
        rejected = reject_table(odd, ["odd"] * len(odd), ["odd row"] * len(odd))
        st = StageStats(self.name, rows_in=len(ids), rows_out=keep.count(True))
        st.rejects["odd"] = keep.count(False)
        return StageResult(table.filter(pa.array(keep)), rejected, st)


def test_requires_raises_with_the_install_hint_when_built():
    with pytest.raises(MissingRequirement, match="pip install medaug-no-such-package"):
        NeedsMissing()


def test_requires_is_checked_again_where_the_stage_is_unpickled():
    stage = DropOdd()
    assert isinstance(pickle.loads(pickle.dumps(stage)), DropOdd)
    blob = pickle.dumps(stage)
    DropOdd.requires = (("medaug_no_such_package_xyz", "pip install it"),)
    try:
        with pytest.raises(MissingRequirement):
            pickle.loads(blob)
    finally:
        DropOdd.requires = ()


def test_rejects_get_the_stage_and_the_sample_attached_by_id():
    table = samples(4)
    res = DropOdd().process(table)
    assert res.rejected.schema == REJECT_SCHEMA and res.rejected.column("stage").null_count == 2
    full = attach(res.rejected, "drop_odd", table)
    assert full.schema == REJECT_SCHEMA
    rows = full.to_pylist()
    assert [r["stage"] for r in rows] == ["drop_odd", "drop_odd"]
    by_id = {r["id"]: r for r in table.to_pylist()}
    for r in rows:
        assert r["sample"]["id"] == r["id"] and r["sample"]["instruction"] == by_id[r["id"]]["instruction"]


def test_a_rejection_of_an_unknown_id_keeps_a_null_sample_and_is_writable(tmp_path):
    full = attach(reject_table(["nope"], ["x"], [None]), "s", samples(2))
    assert full.to_pylist()[0]["sample"] is None and full.to_pylist()[0]["stage"] == "s"
    both = pa.concat_tables([full, attach(reject_table(["a"], ["y"], [None]), "s", None)])
    write_arrow(both, tmp_path / "r.parquet")  # null samples in a Parquet file (generation failures)
    assert pq.read_table(tmp_path / "r.parquet").to_pylist() == both.to_pylist()


def test_stats_merge_sums_counts_and_numeric_extras():
    a = StageStats("s", rows_in=3, rows_out=2, seconds=1.0, extra={"n": 1, "engine": "local"})
    a.rejects["x"] = 1
    b = StageStats("s", rows_in=5, rows_out=5, seconds=0.5, extra={"n": 2, "m": 4})
    m = StageStats.merged("s", [a, b])
    assert (m.rows_in, m.rows_out, m.seconds, dict(m.rejects)) == (8, 7, 1.5, {"x": 1})
    assert m.extra == {"n": 3, "engine": "local", "m": 4}


def test_atomic_write_leaves_the_old_file_on_error(tmp_path):
    target = tmp_path / "d" / "shard.parquet"
    write_arrow(pa.table({"a": [1]}), target)
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert pq.read_table(target).column("a").to_pylist() == [1]
    assert [p.name for p in target.parent.iterdir()] == ["shard.parquet"]


def test_atomic_write_names_the_file_on_a_disk_error(tmp_path):
    target = tmp_path / "full.parquet"
    (tmp_path / "full.tmp").symlink_to("/dev/full")
    with pytest.raises(OSError, match="full.parquet.*No space left"):
        write_arrow(pa.table({"a": list(range(1000))}), target, tmp=tmp_path / "full.tmp")
    assert not target.exists()


# ---------------------------------------------------------------- the runner


class Tagged(DropOdd):
    """DropOdd that records where it ran (process id) and counts its calls."""

    name = "tagged"
    calls = 0

    def process(self, table: pa.Table) -> StageResult:
        type(self).calls += 1
        res = super().process(table)
        res.stats.name = self.name
        res.stats.extra["pid"] = os.getpid()
        return res


class FirstTwo(Stage):
    """A global stage: sees every row at once and keeps the first two."""

    name = "first_two"
    mode = "global"

    def process(self, table: pa.Table) -> StageResult:
        kept = table.slice(0, 2)
        ids = table.column("id").to_pylist()[2:]
        st = StageStats(self.name, rows_in=table.num_rows, rows_out=kept.num_rows)
        st.rejects["beyond_two"] = len(ids)
        return StageResult(kept, reject_table(ids, ["beyond_two"] * len(ids), [None] * len(ids)), st)


class WithTail(DropOdd):
    name = "tail"

    def finish(self) -> StageResult | None:
        return StageResult(samples(1, prefix="尾"), stats=StageStats(self.name, rows_out=1))


def test_runner_writes_every_rejection_in_the_one_schema_with_its_sample(tmp_path):
    folder = RunFolder(tmp_path, "r1").prepare()
    table = samples(10)
    # shards of 3, 3, 3, 1 rows: the second row of each of the first three is rejected
    res = Runner(folder, [DropOdd(), FirstTwo()], batch_rows=3, log=lambda m: None).run(table)
    assert res.complete and res.output.num_rows == 2
    files = sorted((folder.path / "rejects").glob("*.parquet"))
    assert [p.name for p in files] == [f"drop_odd-{i:05d}.parquet" for i in range(3)] + [
        "first_two-00000.parquet"
    ]
    rejected = pa.concat_tables([pq.read_table(p) for p in files])
    assert rejected.schema == REJECT_SCHEMA
    by_id = {r["id"]: r for r in table.to_pylist()}
    rows = rejected.to_pylist()
    assert {r["stage"] for r in rows} == {"drop_odd", "first_two"}
    assert all(r["sample"]["output"] == by_id[r["id"]]["output"] for r in rows)
    kept_ids = set(res.output.column("id").to_pylist())
    assert kept_ids | {r["id"] for r in rows} == set(by_id) and not kept_ids & {r["id"] for r in rows}
    st = {s.name: s for s in res.stats}
    assert (st["drop_odd"].rows_in, st["drop_odd"].rows_out, st["drop_odd"].rejects["odd"]) == (10, 7, 3)
    assert (st["first_two"].rows_in, st["first_two"].rows_out) == (7, 2)


def test_resume_skips_done_shards_and_done_stages(tmp_path):
    folder = RunFolder(tmp_path, "r2").prepare()
    table = samples(9)
    Tagged.calls = 0
    first = Runner(folder, [Tagged(), FirstTwo()], batch_rows=3, log=lambda m: None).run(table)
    assert Tagged.calls == 3
    # an attempt killed after shard 0 of the first stage: its later shards and the next stage are gone
    for p in [folder.shard_path("tagged", 1), folder.shard_path("tagged", 2), folder.path / "tagged" / "done.json",
              folder.path / "first_two" / "done.json"]:  # fmt: skip
        p.unlink()
    Tagged.calls = 0
    again = Runner(folder, [Tagged(), FirstTwo()], batch_rows=3, log=lambda m: None).run(table)
    assert Tagged.calls == 2  # shard 0 was not redone
    assert again.output.column("id").to_pylist() == first.output.column("id").to_pylist()
    assert again.stats[0].to_dict() | {"seconds": 0} == first.stats[0].to_dict() | {"seconds": 0}
    Tagged.calls = 0
    Runner(folder, [Tagged(), FirstTwo()], batch_rows=3, log=lambda m: None).run(table)
    assert Tagged.calls == 0  # every stage done: nothing runs


def test_finish_rows_are_one_more_shard_added_once(tmp_path):
    folder = RunFolder(tmp_path, "r3").prepare()
    res = Runner(folder, [WithTail()], batch_rows=2, log=lambda m: None).run(samples(4))
    assert res.output.num_rows == 2 + 1 and len(folder.finished_shards("tail")) == 3
    assert res.stats[0].rows_out == 3


def test_an_actors_stage_without_a_cluster_runs_in_this_process(tmp_path):
    class Engine(Tagged):
        name = "engine"
        mode = "actors"
        warmed = 0

        def warm(self) -> None:
            type(self).warmed += 1

    folder = RunFolder(tmp_path, "r4").prepare()
    res = Runner(folder, [Engine()], batch_rows=2, log=lambda m: None).run(samples(4))
    assert Engine.warmed == 1 and res.stats[0].extra["pid"] == 2 * os.getpid()  # two shards, summed


def test_batch_stages_go_to_ray_data_on_a_cluster(tmp_path, ray_local):
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this file
    folder = RunFolder(tmp_path, "r5").prepare()
    runner = Runner(folder, [Tagged()], cluster=Cluster(ray=True), batch_rows=2, log=lambda m: None)
    res = runner.run(samples(6))
    pids = [
        StageStats.from_dict(json.loads(p.read_text())).extra["pid"]
        for p in sorted((folder.path / "tagged").glob("stats-*.json"))
    ]
    assert len(pids) == 3 and os.getpid() not in pids
    assert res.output.num_rows == 3 and len(list((folder.path / "rejects").glob("tagged-*.parquet"))) == 3


def test_max_shards_stops_the_run_and_a_rerun_goes_on(tmp_path):
    folder = RunFolder(tmp_path, "r6").prepare()
    table = samples(8)
    Tagged.calls = 0
    part = Runner(folder, [Tagged(), FirstTwo()], batch_rows=2, max_shards=3, log=lambda m: None).run(table)
    assert not part.complete and part.stopped_at == "tagged" and part.output is None
    assert Tagged.calls == 3 and len(folder.finished_shards("tagged")) == 3
    assert not (folder.path / "tagged" / "done.json").exists() and not (folder.path / "first_two").exists()
    assert part.stats[0].rows_in == 6  # the shards finished so far
    Tagged.calls = 0
    rest = Runner(folder, [Tagged(), FirstTwo()], batch_rows=2, log=lambda m: None).run(table)
    assert rest.complete and Tagged.calls == 1 and rest.stats[0].rows_in == 8
    whole = Runner(RunFolder(tmp_path, "r7").prepare(), [Tagged(), FirstTwo()], batch_rows=2,
                   log=lambda m: None).run(table)  # fmt: skip
    assert rest.output.column("id").to_pylist() == whole.output.column("id").to_pylist()


class DropSeen(Tagged):
    """A driver-side check over every earlier shard: drops rows whose output was kept in a shard before."""

    name = "drop_seen"

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def accept(self, result: StageResult) -> StageResult:
        outputs = result.kept.column("output").to_pylist()
        keep = [o not in self.seen for o in outputs]
        self.seen.update(outputs)
        ids = [i for i, k in zip(result.kept.column("id").to_pylist(), keep, strict=True) if not k]
        result.stats.rows_out -= len(ids)
        result.stats.rejects["seen"] += len(ids)
        rejected = pa.concat_tables(
            [result.rejected, reject_table(ids, ["seen"] * len(ids), [None] * len(ids))]
        )
        return StageResult(result.kept.filter(pa.array(keep)), rejected, result.stats)


def test_accept_runs_on_the_driver_before_each_shard_is_written(tmp_path):
    folder = RunFolder(tmp_path, "r8").prepare()
    # other questions with the same answers in the second shard: seen already
    table = pa.concat_tables([samples(2), samples(2, prefix="另")])
    res = Runner(folder, [DropSeen()], batch_rows=2, log=lambda m: None).run(table)
    assert res.output.num_rows == 1  # row 0 of shard 0; row 0 of shard 1 repeats its output
    shard1 = pq.read_table(folder.shard_path("drop_seen", 1))
    assert shard1.num_rows == 0  # what was written is what accept kept
    rejected = pq.read_table(folder.path / "rejects" / "drop_seen-00001.parquet").to_pylist()
    assert sorted(r["reason"] for r in rejected) == ["odd", "seen"]
    assert all(r["sample"] is not None and r["stage"] == "drop_seen" for r in rejected)
    assert res.stats[0].rejects == {"odd": 2, "seen": 1} and res.stats[0].rows_out == 1
