"""Parsing what the LLM wrote, in each output mode."""

from __future__ import annotations

import re

import pytest

from medaug.llm.output_format import ParseError, json_schema, layout_regex, parse_output

F = ("instruction", "input", "output")


def test_delimited_parses_and_keeps_empty_input():
    text = "【instruction】胸口疼怎么办？\n【input】\n【output】建议尽快就医。"
    assert parse_output(text, F, "delimited") == {
        "instruction": "胸口疼怎么办？",
        "input": "",
        "output": "建议尽快就医。",
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("随便写的内容", "no_headers"),
        ("【instruction】问\n【input】", "missing_field"),
        ("【instruction】问\n【input】\n【output】  ", "empty_field"),
        ("【instruction】a【instruction】b【input】【output】c", "repeated_field"),
    ],
)
def test_delimited_failures_have_reasons(text, reason):
    with pytest.raises(ParseError) as e:
        parse_output(text, F, "delimited")
    assert e.value.reason == reason


def test_json_mode():
    assert parse_output('xx{"instruction":"问","input":"","output":"答"}', F, "json")["output"] == "答"
    with pytest.raises(ParseError, match="bad_json"):
        parse_output('{"instruction": 问}', F, "json")
    with pytest.raises(ParseError, match="no_json"):
        parse_output('{"instruction": "问", ', F, "json")


def test_regex_matches_the_delimited_layout():
    rx = re.compile(layout_regex(F, 20))
    assert rx.fullmatch("【instruction】问\n【input】\n【output】答")
    assert not rx.fullmatch("【instruction】\n【input】\n【output】答")  # instruction may not be empty
    schema = json_schema(F, 20)
    assert schema["properties"]["input"]["minLength"] == 0 and schema["required"] == list(F)
