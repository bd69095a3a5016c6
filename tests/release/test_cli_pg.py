"""The maintainer's commands end to end, on the production store (PostgreSQL) and through `medaug`."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
from release_queue import fill_queue
from typer.testing import CliRunner

from medaug.cli import app
from review_queue import versions
from review_queue.store import QueueStore


def test_merge_diff_export_lineage_commands_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    store = QueueStore.open(pg_url)
    try:
        q = fill_queue(store, "甲")
        runner = CliRunner()
        root = tmp_path / "ds"
        common = ["--dataset", "cardio", "--root", str(root)]
        res = runner.invoke(app, ["merge", *common, "--db", pg_url, "--by", "maint"])
        assert res.exit_code == 0, res.output
        assert "cardio v1 (parent none)" in res.output and "+8 rows" in res.output
        again = runner.invoke(app, ["merge", *common, "--db", pg_url, "--by", "maint"])
        assert again.exit_code == 3 and "nothing new to merge" in again.output

        fill_queue(store, "乙")
        assert runner.invoke(app, ["merge", *common, "--db", pg_url]).exit_code == 0
        out = runner.invoke(app, ["diff", *common, "--version", "2", "--ids"])
        assert out.exit_code == 0 and "+8 added, -0 removed" in out.output
        assert sum(line.startswith("+ ") for line in out.output.splitlines()) == 8
        assert "positive" in out.output and "(+5)" in out.output

        exp = runner.invoke(app, ["export", *common, "--format", "hf", "--split", "label"])
        assert exp.exit_code == 0, exp.output
        ds = datasets.load_dataset("parquet", data_dir=str(root / "cardio" / "v2" / "exports" / "hf"))
        assert {k: len(v) for k, v in ds.items()} == {"positive": 10, "negative": 4, "refusal": 2}

        child = next(
            r
            for r in versions.read_rows(root / "cardio" / "v2").to_pylist()
            if r["instruction"] == "甲：胸口疼怎么办？"
        )
        lin = runner.invoke(app, ["lineage", *common, "--id", child["id"]])
        info = json.loads(lin.output)
        assert info["parent_id"] == q.samples["approve"].id and info["run_id"] == "run-甲"
        assert info["version"] == 1 and len(info["reviews"]) == 2

        bad = runner.invoke(app, ["export", *common, "--format", "csv"])
        assert bad.exit_code == 2 and "--format must be one of" in bad.output
        missing = runner.invoke(app, ["diff", *common, "--version", "9"])
        assert missing.exit_code == 2 and "no version 9" in missing.output
    finally:
        store.close()
