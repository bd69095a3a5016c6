"""The one Alpaca rendering of a sample, used by every writer (the `alpaca` JSONL format of the file
commands and the release exports), so a negative is never written as an answer to imitate anywhere.

A negative (a plausible wrong answer) becomes a critique sample, the seed article's 此回答不正确: the
question and the wrong answer go in the input, the verdict, the error type and (when known) the
correct answer are what the model learns to say.
"""

from __future__ import annotations

from typing import Any

from medaug.schema import ErrorType, Label

ERROR_TYPES_ZH: dict[str, str] = {
    ErrorType.wrong_diagnosis: "诊断错误",
    ErrorType.wrong_drug: "用药错误或用药禁忌",
    ErrorType.wrong_dose: "剂量错误",
    ErrorType.contradicts_findings: "与检查结果矛盾",
    ErrorType.missing_referral: "遗漏紧急就医建议",
    ErrorType.overclaiming: "夸大疗效或承诺治愈",
    ErrorType.other: "其他错误",
}
CRITIQUE_INSTRUCTION = "请判断下面这个医学回答是否正确，如不正确请指出错误类型并给出正确的回答。"


def prompt_of(row: dict[str, Any]) -> str:
    """One user turn from instruction + input (ShareGPT has no separate input field)."""
    return f"{row['instruction']}\n{row['input']}" if row["input"] else row["instruction"]


def critique_view(row: dict[str, Any]) -> dict[str, Any]:
    """A negative as a sample that teaches recognising the error; other fields are kept."""
    error = ERROR_TYPES_ZH.get(row.get("error_type") or ErrorType.other, ERROR_TYPES_ZH[ErrorType.other])
    answer = f"{row.get('verdict') or '此回答不正确'}。错误类型：{error}。"
    if row.get("reference_output"):
        answer += f"\n正确的回答：{row['reference_output']}"
    return {
        **row,
        "instruction": CRITIQUE_INSTRUCTION,
        "input": f"问题：{prompt_of(row)}\n回答：{row['output']}",
        "output": answer,
    }


def training_view(row: dict[str, Any]) -> dict[str, Any]:
    """What a model is trained on for this row: negatives as critiques, everything else as it is."""
    return critique_view(row) if row.get("label") == Label.negative else row


def alpaca_record(row: dict[str, Any]) -> dict[str, str]:
    """instruction / input / output, the seed article's format."""
    view = training_view(row)
    return {"instruction": view["instruction"], "input": view["input"], "output": view["output"]}
