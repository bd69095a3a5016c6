"""The Ray-distributed dedup gives exactly the local result (real local Ray, loopback only)."""

from __future__ import annotations

import csv
from pathlib import Path

from curation.dedup import DedupConfig, DedupIndex, dedup_table, run_dedup
from curation.dedup.distributed import RayEngine
from curation.dedup.stage import LocalEngine
from curation.stages import DedupStage
from medaug.schema import Sample, samples_to_table
from medaug.stage import Cluster

TOYHOM = "toyhom_dialogue/样例_内科5000-6000.utf8.csv"


def test_ray_matches_local_and_is_picked_by_size(shared_data: Path, tmp_path: Path, ray_local: None) -> None:
    with open(shared_data / TOYHOM, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))[:3000]
    table = samples_to_table(
        [Sample(instruction=r["title"], input=r["ask"], output=r["answer"]) for r in rows]
    )
    index = DedupIndex(tmp_path / "idx")
    index.add(table.slice(0, 500), origin="queue")
    cfg = DedupConfig(ray_min_rows=1000)
    local = run_dedup(table, cfg, index, LocalEngine())
    remote = run_dedup(table, cfg, index, RayEngine(parts=3))
    assert remote.kept.column("id").to_pylist() == local.kept.column("id").to_pylist()
    assert remote.rejected.to_pylist() == local.rejected.to_pylist()
    assert local.stats.rejects["seen_in_queue"] >= 500  # the queued slice, and its copies later in the file
    # the caller's cluster picks Ray, from ray_min_rows rows on; the result is the same
    auto = dedup_table(table, cfg, index, cluster=Cluster(ray=True))
    assert auto.stats.extra["engine"] == "ray" and local.stats.extra["engine"] == "local"
    assert auto.rejected.to_pylist() == local.rejected.to_pylist()
    assert (
        dedup_table(table.slice(0, 999), cfg, index, cluster=Cluster(ray=True)).stats.extra["engine"]
        == "local"
    )
    # Ray being up is not a reason: without the cluster the caller joined, it runs here
    assert dedup_table(table, cfg, index).stats.extra["engine"] == "local"
    stage = DedupStage(cfg, index_path=tmp_path / "idx")
    assert stage.process(table).stats.extra["engine"] == "local"  # the runner did not say "cluster"
    stage.cluster = Cluster(ray=True)  # what the runner sets for a job that joined Ray
    on_ray = stage.process(table)
    assert on_ray.stats.extra["engine"] == "ray" and on_ray.rejected.to_pylist() == local.rejected.to_pylist()
