"""`medaug dedup` end to end on the real Toyhom sample, which holds real duplicate questions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from typer.testing import CliRunner

from curation.dedup.normalize import compare_text
from medaug.cli import app

TOYHOM = "toyhom_dialogue/样例_内科5000-6000.utf8.csv"


def _write_toyhom_jsonl(shared_data: Path, dest: Path) -> int:
    with open(shared_data / TOYHOM, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(dest, "w", encoding="utf-8") as out:
        for r in rows:
            rec = {
                "instruction": r["title"],
                "input": r["ask"],
                "output": r["answer"],
                "department": r["department"],
            }
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return len(rows)


def test_toyhom_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    src = tmp_path / "toyhom.jsonl"
    n = _write_toyhom_jsonl(shared_data, src)
    out, report = tmp_path / "kept.parquet", tmp_path / "dups.jsonl"
    res = CliRunner().invoke(app, ["dedup", str(src), str(out), "--report", str(report)])
    assert res.exit_code == 0, res.output
    kept = pq.read_table(out)
    dups = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    assert kept.num_rows + len(dups) == n  # nothing lost
    reasons = {d["reason"] for d in dups}
    assert reasons == {"duplicate_exact", "near_duplicate"}
    kept_ids = set(kept.column("id").to_pylist())
    for d in dups:
        assert d["detail"].split()[0] in kept_ids  # every drop names a sample that was kept

    # what is kept is duplicate-free by the exact all-pairs measure: no two kept texts of the
    # same label reach the threshold (this is the recall check, on real data)
    texts = [
        compare_text(a, b, c)
        for a, b, c in zip(
            *(kept.column(k).to_pylist() for k in ("instruction", "input", "output")), strict=True
        )
    ]
    assert len(set(texts)) == len(texts)
    sims = process.cdist(
        texts,
        texts,
        scorer=Levenshtein.normalized_similarity,
        score_cutoff=0.85,
        workers=-1,
        dtype=np.float32,
    )
    np.fill_diagonal(sims, 0)
    assert not (sims >= 0.85).any()
    # and every near-duplicate drop is real: its similarity to the kept one reaches the threshold
    for d in dups:
        if d["reason"] == "near_duplicate":
            assert float(d["detail"].split("score=")[1]) >= 0.85


def test_cli_bad_records_are_named_and_the_rest_processed(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    good = {"instruction": "头痛怎么办？", "output": "注意休息，持续不缓解请就医。"}
    src.write_text(
        json.dumps(good, ensure_ascii=False)
        + "\n{broken\n"
        + json.dumps({"output": "只有回答，没有问题"}, ensure_ascii=False)
        + "\n"
        + json.dumps(good, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "kept.jsonl"
    res = CliRunner().invoke(app, ["dedup", str(src), str(out)])
    assert res.exit_code == 0, res.output
    assert f"{src}:2: record: malformed JSON" in res.output
    # a record without an output is a question-only record (kept); one without an instruction is not
    assert f"{src}:3: instruction: missing" in res.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1
    (dup,) = [json.loads(x) for x in (tmp_path / "kept.jsonl.duplicates.jsonl").read_text().splitlines()]
    assert dup["reason"] == "duplicate_exact"


def test_cli_index_across_runs_and_bad_options(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps(
            {"instruction": "头痛怎么办？", "output": "注意休息，持续不缓解请就医。"}, ensure_ascii=False
        )
        + "\n",
        encoding="utf-8",
    )
    idx = tmp_path / "idx"
    runner = CliRunner()
    first = runner.invoke(
        app, ["dedup", str(src), str(tmp_path / "a.parquet"), "--index", str(idx), "--record-as", "queue"]
    )
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["dedup", str(src), str(tmp_path / "b.parquet"), "--index", str(idx)])
    assert second.exit_code == 0, second.output
    assert pq.read_table(tmp_path / "b.parquet").num_rows == 0
    assert "seen_in_queue" in (tmp_path / "b.parquet.duplicates.jsonl").read_text()
    bad = runner.invoke(app, ["dedup", str(src), str(tmp_path / "c.csv")])
    assert bad.exit_code != 0 and "must end in .parquet or .jsonl" in bad.output
    bad = runner.invoke(app, ["dedup", str(src), str(tmp_path / "c.jsonl"), "--threshold", "2"])
    assert bad.exit_code == 2 and "threshold must be in (0, 1]" in bad.output
