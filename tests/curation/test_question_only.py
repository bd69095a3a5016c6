"""Question-only records (patient questions, no answer) through deid, dedup and check; SFT reads stay strict."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medaug.cli import app
from medaug.io import read_samples

runner = CliRunner()

# Written for this test: patient questions, one exact duplicate in other widths/spacing, one near-duplicate.
QUESTIONS = [
    {"input": "医生您好，我叫王芳，最近三天胸口疼，活动后加重，需要做什么检查？"},
    {"input": "医生您好，我叫王芳，最近三天胸口疼，活动后加重，需要做什么检查?  "},  # exact after NFKC/space
    {"input": "医生您好，我叫王芳，最近三天胸口疼，活动以后加重，需要做什么检查？"},  # near-duplicate
    {"input": "孩子发烧到39度，吃了退烧药还是不退，要去医院吗？", "output": ""},
    {"input": "高血压患者可以长期吃阿司匹林吗？有什么副作用？"},
]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_deid_then_dedup_a_file_of_patient_questions(tmp_path: Path) -> None:
    src = _write(tmp_path / "questions.jsonl", QUESTIONS)
    clean = tmp_path / "clean.jsonl"
    r = runner.invoke(app, ["deid", str(src), str(clean), "-f", "input"])
    assert r.exit_code == 0, r.output
    assert "王芳" not in clean.read_text(encoding="utf-8")

    kept = tmp_path / "kept.jsonl"
    r = runner.invoke(app, ["dedup", str(clean), str(kept)])
    assert r.exit_code == 0, r.output
    assert "skipped bad record" not in r.stderr
    rows = [json.loads(line) for line in kept.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 and all(row["output"] == "" for row in rows)
    assert {row["instruction"][:6] for row in rows} == {"医生您好，我", "孩子发烧到3", "高血压患者可"}
    dups = [json.loads(line) for line in (tmp_path / "kept.jsonl.duplicates.jsonl").open(encoding="utf-8")]
    assert len(dups) == 2

    # Parquet out as well, and the kept file is still not an SFT file: strict readers refuse it.
    r = runner.invoke(app, ["dedup", str(clean), str(tmp_path / "kept.parquet")])
    assert r.exit_code == 0, r.output
    strict = read_samples(tmp_path / "kept.parquet")
    assert not strict.samples and {e.field for e in strict.errors} == {"output"}
    assert len(read_samples(tmp_path / "kept.parquet", require_output=False).samples) == 3


def test_check_question_only_runs_the_question_gates(tmp_path: Path) -> None:
    records = [
        QUESTIONS[3],
        {"instruction": QUESTIONS[4]["input"], "output": "  "},
        {"instruction": "疼"},
        {"instruction": "头\x07痛怎么办呀医生？"},
    ]
    src = _write(tmp_path / "q.jsonl", records)
    r = runner.invoke(app, ["check", str(src), "--json"])  # as SFT samples: unreadable
    assert r.exit_code == 1 and json.loads(r.stdout)["unreadable"] == 4
    r = runner.invoke(app, ["check", str(src), "--question-only", "--json"])
    report = json.loads(r.stdout)
    assert (report["samples"], report["unreadable"], report["kept"]) == (4, 0, 2), report
    assert report["by_reason"] == {"too_short:instruction": 1, "format": 1}
    assert r.exit_code == 1  # some questions failed their gates


def test_sft_readers_stay_strict(tmp_path: Path) -> None:
    src = _write(
        tmp_path / "sft.jsonl", QUESTIONS[3:] + [{"conversations": [{"from": "human", "value": "问"}]}]
    )
    res = read_samples(src)
    assert not res.samples and [(e.line, e.field) for e in res.errors] == [
        (1, "output"),
        (2, "output"),
        (3, "conversations"),
    ]
    loose = read_samples(src, require_output=False)
    assert [s.output for s in loose.samples] == ["", "", ""] and not loose.errors
