"""`medaug deid` and `medaug check` through the real typer app."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medaug.cli import app

runner = CliRunner()


def test_deid_text_lines_one_output_line_per_input_line(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("患者王芳头痛三天，电话138-1234-5678\n\n高血压怎么治疗？\n", encoding="utf-8")
    dst = tmp_path / "out.txt"
    res = runner.invoke(app, ["deid", str(src), str(dst)])
    assert res.exit_code == 0, res.output
    assert dst.read_text(encoding="utf-8").split("\n") == [
        "患者〈姓名〉头痛三天，电话〈电话〉",
        "",
        "高血压怎么治疗？",
        "",
    ]


def test_deid_jsonl_field_from_stdin_to_stdout_with_operator() -> None:
    lines = [
        json.dumps({"q": "住院号：ZY123456，92岁", "a": "保持"}, ensure_ascii=False),
        json.dumps({"q": None}),
    ]
    res = runner.invoke(
        app, ["deid", "-", "-", "--field", "q", "--operator", "MEDICAL_RECORD=mask"], input="\n".join(lines)
    )
    assert res.exit_code == 0, res.output
    out = [json.loads(x) for x in res.stdout.splitlines()]
    assert out[0]["q"] == "住院号：********，90岁以上" and out[0]["a"] == "保持"
    assert out[0]["deid"] == [{"entity": "AGE", "count": 1}, {"entity": "MEDICAL_RECORD", "count": 1}]
    assert out[1] == {"q": None, "deid": []}


def test_deid_bad_line_names_file_line_field_and_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"q": "患者王芳"}\n{"q": 5}\n', encoding="utf-8")
    dst = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["deid", str(src), str(dst), "-f", "q"])
    assert res.exit_code == 1
    assert f"{src}:2: field 'q': must be a string" in res.output
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]


def test_deid_config_file_and_bad_operator(tmp_path: Path) -> None:
    cfg = tmp_path / "deid.yaml"
    cfg.write_text(
        "deid:\n  salt: a-fixed-salt-of-32-bytes-length!\n  operators:\n    PERSON: {operator: hash}\n"
    )
    res = runner.invoke(app, ["deid", "-", "-", "--config", str(cfg)], input="患者王芳头痛\n姓名：王芳\n")
    assert res.exit_code == 0, res.output
    first, second = res.stdout.splitlines()
    token = first.removeprefix("患者").removesuffix("头痛")
    assert token.startswith("〈姓名:") and second == f"姓名：{token}"
    res = runner.invoke(app, ["deid", "-", "-", "--operator", "PERSON=shift"], input="x\n")
    assert res.exit_code == 2 and "only applies" in res.output


def test_check_reports_rejections_by_reason(tmp_path: Path) -> None:
    src = tmp_path / "samples.jsonl"
    rows = [
        {"instruction": "高血压应该怎么治疗？", "output": "建议低盐饮食，规律服用降压药。"},
        {"instruction": "高血压应该怎么治疗？", "output": "吃我们的药保证治愈。"},
        {"instruction": "胸痛怎么办？", "output": "好"},
    ]
    src.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{broken\n", encoding="utf-8"
    )
    rejected = tmp_path / "rejected.jsonl"
    kept = tmp_path / "kept.parquet"
    res = runner.invoke(app, ["check", str(src), "--rejected", str(rejected), "--kept", str(kept)])
    assert res.exit_code == 1
    assert "3 samples, 1 kept, 2 rejected" in res.output
    assert f"unreadable {src}:4: record: malformed JSON" in res.output
    assert "banned_phrase" in res.output and "one_word_answer" in res.output
    assert sorted(json.loads(x)["reason"] for x in rejected.read_text(encoding="utf-8").splitlines()) == [
        "banned_phrase",
        "one_word_answer",
    ]
    import pyarrow.parquet as pq

    assert pq.read_table(kept).num_rows == 1


def test_check_json_report_from_stdin_with_icd10_list(shared_data: Path) -> None:
    rows = [
        {"instruction": "高血压应该怎么治疗？", "output": "建议低盐饮食，规律服用降压药。", "icd10": ["I10"]},
        {
            "instruction": "高血压应该怎么治疗呢？",
            "output": "建议低盐饮食，规律服用降压药物。",
            "icd10": ["U99"],
        },
    ]
    res = runner.invoke(
        app,
        ["check", "-", "--json", "--icd10-list", str(shared_data / "icd10_cn" / "disease.csv")],
        input="\n".join(json.dumps(r, ensure_ascii=False) for r in rows),
    )
    assert res.exit_code == 1
    report = json.loads(res.stdout)
    assert report["kept"] == 1 and report["by_reason"] == {"invalid_icd10": 1}


def test_check_all_good_exits_zero(tmp_path: Path) -> None:
    src = tmp_path / "ok.jsonl"
    src.write_text(
        json.dumps({"instruction": "高血压应该怎么治疗？", "output": "建议低盐饮食，规律服药。"}),
        encoding="utf-8",
    )
    res = runner.invoke(app, ["check", str(src)])
    assert res.exit_code == 0 and "1 kept, 0 rejected" in res.output
