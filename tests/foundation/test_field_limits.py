"""One set of field limits, defined in the Sample schema and enforced at every entry: files, CLI, HTTP models."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from medaug.cli import app
from medaug.io import read_samples
from medaug.schema import (
    MAX_ID_CHARS,
    MAX_LIST_ITEMS,
    MAX_TEXT_CHARS,
    DeidEntity,
    Sample,
    check_id,
    samples_to_table,
)
from review_queue.decisions import Decision

OK = {"instruction": "胸口疼三天怎么办？", "output": "建议尽快就医，做心电图检查。"}


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


BAD = [
    ({"id": "x" * (MAX_ID_CHARS + 1)}, "id", "64"),
    ({"id": "CMeQA/123"}, "id", "'/'"),
    ({"id": "a b"}, "id", "' '"),
    ({"id": "病例1"}, "id", "'病'"),
    ({"instruction": "问\x00题"}, "instruction", "NUL"),
    ({"output": "答\ud800"}, "output", "unicode"),
    ({"input": "x" * (MAX_TEXT_CHARS + 1)}, "input", str(MAX_TEXT_CHARS)),
    ({"icd10": ["I10"] * (MAX_LIST_ITEMS + 1)}, "icd10", str(MAX_LIST_ITEMS)),
    ({"icd10": ["I" + "1" * 40]}, "icd10.0", "32"),
    (
        {"demographics": {"comorbidities": ["高血压"] * (MAX_LIST_ITEMS + 1)}},
        "demographics.comorbidities",
        "64",
    ),
    ({"deid": [{"entity": "PERSON", "count": 2**31}]}, "deid.0.count", "2147483647"),
    ({"provenance": {"run_id": "r" * 5000}}, "provenance.run_id", "4096"),
    ({"provenance": {"sampling_seed": 2**64}}, "provenance.sampling_seed", ""),
]


def test_file_records_over_a_limit_are_refused_with_line_and_field(tmp_path: Path) -> None:
    records = (
        [OK] + [{**OK, **change} for change, _, _ in BAD] + [{**OK, "instruction": "问" * MAX_TEXT_CHARS}]
    )
    p = tmp_path / "in.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")  # the surrogate as \ud800
    res = read_samples(p)
    assert len(res.samples) == 2  # the first and the last (exactly at the limit)
    got = {e.line: e for e in res.errors}
    for line, (_, field, needle) in enumerate(BAD, start=2):
        assert line in got, (line, field)
        assert got[line].field == field and needle in got[line].message, got[line]
        assert len(got[line].message) < 300  # the value is not echoed


def test_parquet_rows_get_the_same_checks(tmp_path: Path) -> None:
    good = Sample(**OK)
    table = samples_to_table([good, good.model_copy(update={"id": "z/" + "9" * 70})])
    pq.write_table(table, tmp_path / "s.parquet")
    res = read_samples(tmp_path / "s.parquet")
    assert [s.id for s in res.samples] == [good.id]
    assert [(e.line, e.field) for e in res.errors] == [(2, "id")]


def test_the_same_limits_in_the_schema_the_reader_and_decisions(tmp_path: Path) -> None:
    Sample(instruction="q" * MAX_TEXT_CHARS, output="a")
    with pytest.raises(ValidationError, match="instruction"):
        Sample(instruction="q" * (MAX_TEXT_CHARS + 1), output="a")
    Decision(decision="correct", output="a" * MAX_TEXT_CHARS)
    with pytest.raises(ValidationError, match="output"):
        Decision(decision="correct", output="a" * (MAX_TEXT_CHARS + 1))
    with pytest.raises(ValidationError, match="NUL"):
        Decision(decision="approve", comment="\x00")
    # a field the schema does not model (kept in `extra`) has the text limit too
    res = read_samples(_jsonl(tmp_path / "x.jsonl", [{**OK, "note": "n" * (MAX_TEXT_CHARS + 1)}]))
    assert res.errors[0].field == "note" and str(MAX_TEXT_CHARS) in res.errors[0].message
    assert check_id("run-1.a_b:c") == "run-1.a_b:c"
    for bad in ("", "a/b", "x" * 65, "a\x00"):
        with pytest.raises(ValueError):
            check_id(bad)
    assert DeidEntity(entity="PERSON", count=2**31 - 1).count == 2**31 - 1


def test_cli_entries_skip_bad_records_and_name_them(tmp_path: Path) -> None:
    runner = CliRunner()
    deid = [{"entity": "PERSON", "count": 1}]
    src = _jsonl(
        tmp_path / "in.jsonl",
        [
            {**OK, "deid": deid},
            {**OK, "id": "a/b", "deid": deid},
            {**OK, "instruction": "另一个问题？", "id": "i" * 80, "deid": deid},
        ],
    )
    db = f"sqlite:///{tmp_path / 'q.db'}"
    r = runner.invoke(app, ["queue", "push", str(src), "--run-id", "r", "--db", db])
    assert r.exit_code == 2
    assert f"{src}:2: id:" in r.stderr and f"{src}:3: id:" in r.stderr
    assert "inserted=1" in r.stdout
    r = runner.invoke(app, ["dedup", str(src), str(tmp_path / "kept.jsonl")])
    assert r.exit_code == 0 and f"{src}:2: id:" in r.stderr
    assert sum(1 for _ in (tmp_path / "kept.jsonl").open()) == 1


def test_arrow_schema_still_holds_every_limit_value() -> None:
    s = Sample(
        **OK,
        deid=[DeidEntity(entity="E", count=2**31 - 1)],
        provenance={"sampling_seed": 2**63 - 1, "run_id": "r" * 4096},
    )
    t = samples_to_table([s])
    assert t.column("deid").to_pylist()[0][0]["count"] == 2**31 - 1
    assert isinstance(t, pa.Table)
