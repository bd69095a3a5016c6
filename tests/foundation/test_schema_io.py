"""The Sample schema and the JSONL/JSON/Parquet readers and writers."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from medaug.io import InputError, read_samples, write_parquet, write_samples_jsonl
from medaug.schema import (
    NEGATIVE_VERDICT,
    SAMPLE_SCHEMA,
    ErrorType,
    Label,
    Sample,
    sample_id,
    samples_to_table,
)


def test_id_is_stable_over_whitespace_and_width():
    a = sample_id("胸口疼怎么办？", "", "建议做ＣＴ  检查。")
    b = sample_id(" 胸口疼怎么办? ", "", "建议做CT 检查。")  # half-width forms, extra spaces
    assert a == b
    assert a != sample_id("胸口疼怎么办？", "", "建议做CT 检查。", Label.negative)


def test_negative_rules():
    s = Sample(
        instruction="q", output="wrong", label="negative", error_type="wrong_drug", reference_output="right"
    )
    assert s.verdict == NEGATIVE_VERDICT and s.error_type is ErrorType.wrong_drug
    with pytest.raises(ValidationError, match="needs error_type"):
        Sample(instruction="q", output="a", label="negative")
    with pytest.raises(ValidationError, match="only for negatives"):
        Sample(instruction="q", output="a", error_type="wrong_drug")


def test_icd10_shape_checked():
    Sample(instruction="q", output="a", icd10=["I21.3", "A01.003+G01*", "M81.9"])
    with pytest.raises(ValidationError, match="not an ICD-10 code"):
        Sample(instruction="q", output="a", icd10=["胸痛"])


def test_table_roundtrip_keeps_every_field(tmp_path):
    s = Sample(
        instruction="请解释该检验结果",
        input="空腹血糖:9.8 mmol/L",
        output="提示血糖控制不佳。",
        task="report_explanation",
        area="endocrine",
        icd10=["E11.9"],
        demographics={"age": 56, "sex": "male", "comorbidities": ["高血压"]},
        provenance={
            "template_id": "rep-lab",
            "seed_id": "endo-t2dm",
            "augmentation": [{"augmenter": "x", "detail": "{}"}],
        },
        deid=[{"entity": "PERSON", "count": 1}],
    )
    path = write_parquet([s], tmp_path / "a.parquet")
    assert pq.read_schema(path).equals(SAMPLE_SCHEMA)
    back = read_samples(path, strict=True).samples
    assert back == [s]


def test_jsonl_formats_and_bad_lines(tmp_path):
    p = tmp_path / "in.jsonl"
    lines = [
        json.dumps(
            {"input": "患者男性,56岁,持续胸痛2小时", "output": "高度怀疑急性心肌梗死"}, ensure_ascii=False
        ),  # seed format
        json.dumps(
            {"instruction": "请判断诊断", "input": "女性,68岁", "output": "脑卒中可能"}, ensure_ascii=False
        ),  # alpaca
        '{"instruction": "broken json"',
        json.dumps({"instruction": "缺少输出"}, ensure_ascii=False),
        json.dumps({"instruction": "x", "output": ""}, ensure_ascii=False),
        json.dumps(
            {"conversations": [{"from": "human", "value": "问"}, {"from": "gpt", "value": "答"}]},
            ensure_ascii=False,
        ),
        json.dumps({"instruction": 5, "output": "a"}),
    ]
    data = "\n".join(lines).encode() + b"\n" + b'{"instruction": "\xff\xfe", "output": "a"}\n'
    p.write_bytes(data)
    res = read_samples(p)
    assert [s.instruction for s in res.samples] == ["患者男性,56岁,持续胸痛2小时", "请判断诊断", "问"]
    where = {(e.line, e.field) for e in res.errors}
    assert (3, "record") in where  # malformed JSON
    assert (4, "output") in where  # missing
    assert (5, "output") in where  # empty
    assert (7, "instruction") in where  # wrong type
    assert (8, "record") in where  # invalid UTF-8
    assert all(str(p) in str(e) for e in res.errors)
    with pytest.raises(InputError, match=r"in\.jsonl:3"):
        read_samples(p, strict=True)


def test_alpaca_json_array_and_writer(tmp_path):
    src = tmp_path / "a.json"
    src.write_text(
        json.dumps([{"instruction": "问", "input": "", "output": "答"}], ensure_ascii=False), encoding="utf-8"
    )
    samples = read_samples(src, strict=True).samples
    out = write_samples_jsonl(samples, tmp_path / "o.jsonl", fmt="alpaca")
    assert json.loads(out.read_text(encoding="utf-8")) == {"instruction": "问", "input": "", "output": "答"}
    assert samples_to_table(samples).num_rows == 1


def test_huge_field_refused(tmp_path):
    p = tmp_path / "big.jsonl"
    p.write_text(json.dumps({"instruction": "a" * 200_000, "output": "b"}) + "\n", encoding="utf-8")
    res = read_samples(p)
    assert not res.samples and res.errors[0].field == "instruction" and "limit" in res.errors[0].message


def test_table_with_null_nested_columns_reads_back():
    import pyarrow as pa

    from medaug.schema import conform_table, table_to_samples

    t = conform_table(pa.table({"id": ["x"], "instruction": ["问"], "input": [""], "output": ["答"], "task": ["other"],
                                "label": ["positive"], "area": ["general"]}))  # fmt: skip
    [s] = table_to_samples(t)
    assert s.icd10 == [] and s.demographics.age is None and s.provenance.augmentation == [] and s.deid is None


def test_alpaca_writer_renders_a_negative_as_a_critique_never_as_an_answer(tmp_path):
    """The file commands' alpaca format and the release export share one rendering (medaug/alpaca.py)."""
    from medaug.alpaca import CRITIQUE_INSTRUCTION
    from medaug.schema import ErrorType, Label

    wrong = "可以自行服用抗生素，不必就医。"
    neg = Sample(
        instruction="胸口疼了半小时，出冷汗，怎么办？",
        input="",
        output=wrong,
        label=Label.negative,
        verdict="此回答不正确",
        error_type=ErrorType.missing_referral,
        reference_output="请立即拨打120急救电话。",
    )
    pos = Sample(instruction="拉肚子怎么办？", input="", output="注意补液。")
    out = write_samples_jsonl([neg, pos], tmp_path / "o.jsonl", fmt="alpaca")
    rec_neg, rec_pos = (json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())
    assert rec_neg["instruction"] == CRITIQUE_INSTRUCTION
    assert wrong in rec_neg["input"] and wrong not in rec_neg["output"]
    assert rec_neg["output"].startswith("此回答不正确") and "遗漏紧急就医建议" in rec_neg["output"]
    assert "请立即拨打120急救电话。" in rec_neg["output"]
    assert rec_pos == {"instruction": "拉肚子怎么办？", "input": "", "output": "注意补液。"}
