"""Quality gates: each reason code, the ICD-10 list loader on both shared layouts, and the stage contract."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from curation.quality import QualityConfig, quality_gate
from curation.quality_icd10 import Icd10ListError, load_icd10_list
from medaug.schema import Label, Sample, samples_to_table

GOOD_OUT = "建议低盐饮食，规律服用降压药，定期监测血压。"


def s(instruction: str = "高血压应该怎么治疗？", output: str = GOOD_OUT, **kw: object) -> Sample:
    return Sample(instruction=instruction, output=output, **kw)


def reasons(samples: list[Sample], config: QualityConfig | None = None) -> list[str | None]:
    table = samples_to_table(samples)
    res = quality_gate(table, config)
    by_id = dict(
        zip(res.rejected.column("id").to_pylist(), res.rejected.column("reason").to_pylist(), strict=True)
    )
    assert res.kept.num_rows + res.rejected.num_rows == table.num_rows  # nothing lost
    return [by_id.get(x.id) for x in samples]


def test_good_sample_passes() -> None:
    assert reasons([s(icd10=["I10"])]) == [None]


def test_banned_phrases_only_in_positives_and_through_spacing() -> None:
    pos = s(output="坚持服用本药，保证 治愈，无需复查。")
    neg = s(output="坚持服用本药，保证治愈，无需复查。", label=Label.negative, error_type="overclaiming")
    fullwidth = s(output="本方法治愈率１００％，请放心使用。")
    assert reasons([pos, neg, fullwidth]) == ["banned_phrase", None, "banned_phrase"]


def test_banned_phrase_detail_names_the_phrase_and_list_is_configurable() -> None:
    res = quality_gate(samples_to_table([s(output="这是祖传秘方，吃了就好。")]))
    assert res.rejected.column("detail").to_pylist() == ["banned_phrase (祖传秘方/秘方)"]
    cfg = QualityConfig(banned_phrases_file=None, banned_phrases=["立即停药"])
    assert reasons([s(output="这是祖传秘方，吃了就好。"), s(output="请立即停药并观察。")], cfg) == [
        None,
        "banned_phrase",
    ]


def test_length_bounds_per_field() -> None:
    cfg = QualityConfig(lengths={"output": (10, 30), "input": (0, 5)})
    got = reasons(
        [s(output="多喝水，多休息。"), s(output="很" * 31), s(input="这是一段过长的输入"), s()], cfg
    )
    assert got == ["too_short:output", "too_long:output", "too_long:input", None]


def test_chinese_ratio_counts_letters_not_digits() -> None:
    english = s(instruction="How to treat hypertension?", output="Lower salt intake and take medicine daily.")
    doses = s(output="氨氯地平5mg，每日1次，血压目标130/80mmHg以下。")
    assert reasons([english, doses]) == ["low_chinese_ratio", None]


def test_empty_and_echoed_outputs() -> None:
    table = samples_to_table(
        [s(), s(output="高血压应该怎么治疗？"), s(input="血压160/100，头晕", output="血压160/100，头晕")]
    )
    blank = table.set_column(table.schema.get_field_index("output"), "output", pa.array(["  ", "x", "y"]))
    assert quality_gate(blank).rejected.column("reason").to_pylist()[0] == "empty_output"
    assert reasons(
        [s(output="高血压应该怎么治疗？"), s(input="血压160/100，头晕", output="血压160/100，头晕")]
    ) == [
        "echoed_output",
        "echoed_output",
    ]
    longer = s(instruction="请解释：高血压患者需要长期服药吗？", output="高血压患者需要长期服药吗")
    assert reasons([longer]) == ["echoed_output"]  # the output only repeats part of the prompt


def test_format_checks_name_the_check() -> None:
    slot = s(instruction="请描述{disease}的典型症状")
    bad_json = s(output='{"诊断": "高血压", "建议": 低盐}')
    good_json = s(output='{"诊断": "高血压", "建议": "低盐饮食，规律服药"}')
    control = s(output="建议低盐饮食\x07，规律服药。")
    res = quality_gate(samples_to_table([slot, bad_json, good_json, control]))
    details = dict(
        zip(res.rejected.column("id").to_pylist(), res.rejected.column("detail").to_pylist(), strict=True)
    )
    assert details == {
        slot.id: "format:unfilled_template_slot",
        bad_json.id: "format:invalid_json",
        control.id: "format:control_characters",
    }
    assert set(res.rejected.column("reason").to_pylist()) == {"format"}


def test_format_checks_enum_values_in_raw_tables() -> None:
    table = samples_to_table([s(), s(output="另一条完整的回答内容，请规律服药。")])
    table = table.set_column(
        table.schema.get_field_index("label"), "label", pa.array(["positive", "neutral"])
    )
    assert quality_gate(table).rejected.column("reason").to_pylist() == ["format"]


def test_icd10_shape_without_list_and_against_lists(shared_data: Path) -> None:
    codes = ["I10", "I21.0", "A01.003+G01*", "U99.9"]
    samples = [s(output=f"{GOOD_OUT}（{i}）", icd10=[c]) for i, c in enumerate(codes)]  # distinct ids
    table = samples_to_table(samples)
    raw = table.set_column(
        table.schema.get_field_index("icd10"), "icd10", pa.array([["I10"], ["10I"], [], None])
    )
    assert quality_gate(raw).rejected.column("detail").to_pylist() == ["invalid_icd10 (10I)"]
    beijing = shared_data / "chip_cdn" / "ICD-10北京临床版v601.csv"
    categories = shared_data / "icd10_cn" / "disease.csv"
    assert reasons(samples, QualityConfig(icd10_list=beijing, icd10_match="exact")) == [
        None,
        None,
        None,
        "invalid_icd10",
    ]
    assert reasons(samples, QualityConfig(icd10_list=categories)) == [None, None, None, "invalid_icd10"]
    # exact match against a category-only list rejects the 4-character codes
    assert reasons(samples, QualityConfig(icd10_list=categories, icd10_match="exact")) == [
        None,
        "invalid_icd10",
        "invalid_icd10",
        "invalid_icd10",
    ]


def test_icd10_loader_reads_both_layouts(shared_data: Path) -> None:
    beijing = load_icd10_list(shared_data / "chip_cdn" / "ICD-10北京临床版v601.csv")
    cn = load_icd10_list(shared_data / "icd10_cn" / "disease.csv")
    assert len(beijing.codes) > 30000 and "A00.001" in beijing.codes
    assert len(beijing.skipped_lines) <= 5  # a stray "N,N" row in the real list is skipped, not fatal
    assert len(cn.codes) > 1500 and all(len(c.rstrip("+*")) == 3 for c in cn.codes)
    assert "A17+" in cn.codes and "A17" in cn.codes
    assert "I10" in cn.categories and "I10.001" not in cn.codes  # a Beijing code is valid in cn by category


def test_icd10_loader_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "codes.csv"
    bad.write_text("icd_code,name\nA00,霍乱\n" + "".join(f"code{i},x\n" for i in range(8)), encoding="utf-8")
    with pytest.raises(Icd10ListError, match=r"codes\.csv:3"):
        load_icd10_list(bad)
    with pytest.raises(Icd10ListError, match="not found"):
        load_icd10_list(tmp_path / "missing.csv")


def test_first_reason_wins_and_detail_lists_all() -> None:
    res = quality_gate(samples_to_table([s(instruction="What?", output="Guaranteed cure 保证治愈")]))
    assert res.rejected.column("reason").to_pylist() == ["low_chinese_ratio"]
    assert res.rejected.column("detail").to_pylist() == ["low_chinese_ratio, banned_phrase (保证治愈)"]
    assert res.stats.rejects == {"low_chinese_ratio": 1}


def test_config_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="not a text field"):
        QualityConfig(lengths={"answer": (1, 2)})
    with pytest.raises(ValueError, match="min <= max"):
        QualityConfig(lengths={"output": (5, 2)})


@pytest.mark.parametrize(
    "output",
    [
        "建议行胸腔镜下肺癌根治术，术后定期复查。",
        "早期发现的肿瘤具备根治性切除的机会。",
        "长期不规范用药会导致无法完全治愈，需要坚持治疗。",
        "目前医学上不能保证治愈，但可以控制症状。",
        "乙肝没有所谓的特效药，请遵医嘱抗病毒治疗。",
    ],
)
def test_procedures_and_negated_statements_are_no_promises(output: str) -> None:
    assert reasons([s(output=output)]) == [None]


@pytest.mark.parametrize(
    "output", ["坚持吃这个药保证治愈。", "我们医院包治各种胃病。", "这个疗法一定能根治，不再复发。"]
)
def test_promises_are_still_banned(output: str) -> None:
    assert reasons([s(output=output)]) == ["banned_phrase"]


def test_one_word_answers_rejected_by_default() -> None:
    outs = ["是。", "不会", "阿莫西林", " 高血压！", "多喝水，多休息。", GOOD_OUT]
    assert reasons([s(output=o) for o in outs]) == ["one_word_answer"] * 4 + [None, None]
    detail = quality_gate(samples_to_table([s(output="是")])).rejected.column("detail").to_pylist()
    assert detail == ["one_word_answer, too_short:output"]


def test_one_word_answer_policy_is_configurable() -> None:
    yes, term = s(output="是。"), s(output="高血压")
    diagnosis = s("上腹痛伴反酸，最可能的诊断？", "急性胃炎", task="diagnostic_reasoning")
    qa = s("上腹痛伴反酸是什么病？", "急性胃炎", task="medical_qa")
    # allowed everywhere: kept, and the output's minimum length no longer rejects it
    assert reasons([yes, term, diagnosis], QualityConfig(one_word_answers="allow")) == [None, None, None]
    # allowed for one task only
    per_task = QualityConfig(one_word_answer_tasks=["diagnostic_reasoning"])
    assert reasons([diagnosis, qa, yes], per_task) == [None, "one_word_answer", "one_word_answer"]
    # what counts as one word: at most one_word_max_chars characters
    assert reasons([term, s(output="阿莫西林")], QualityConfig(one_word_max_chars=2)) == [
        "too_short:output",
        None,
    ]
    # an empty output is still empty, whatever the policy
    blank = samples_to_table([s()])
    blank = blank.set_column(blank.schema.get_field_index("output"), "output", pa.array(["。"]))
    assert quality_gate(blank, QualityConfig(one_word_answers="allow")).rejected.num_rows == 1
    with pytest.raises(ValueError):
        QualityConfig(one_word_answers="sometimes")
