"""The Ray-distributed dedup gives exactly the local result (real local Ray, loopback only)."""

from __future__ import annotations

import csv
from pathlib import Path

from curation.dedup import DedupConfig, DedupIndex, dedup_table, run_dedup
from curation.dedup.distributed import RayEngine
from curation.dedup.stage import LocalEngine
from medaug.schema import Sample, samples_to_table

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
    # dedup_table picks Ray at ray_min_rows when Ray is up; the result is the same
    auto = dedup_table(table, cfg, index)
    assert auto.stats.extra["engine"] == "ray" and local.stats.extra["engine"] == "local"
    assert auto.rejected.to_pylist() == local.rejected.to_pylist()
    assert dedup_table(table.slice(0, 999), cfg, index).stats.extra["engine"] == "local"
