"""Fever mentions with a number graded into the clinical fever terms (whole-line normalisation only)."""

from __future__ import annotations

import pytest

from augmenters.temperature import fever_grade


@pytest.mark.parametrize(
    ("mention", "grade"),
    [
        ("烧到39.5", "高热"),
        ("38度多", "中等度热"),
        ("37度8", "低热"),
        ("三十八度八", "中等度热"),
        ("体温37.5左右", "低热"),
        ("发烧到40度了", "高热"),
        ("高烧39以上", "高热"),
        ("41.5℃", "超高热"),
    ],
)
def test_fever_grades(mention, grade):
    assert fever_grade(mention) == grade


@pytest.mark.parametrize("text", ["36.5", "发烧39度还咳嗽", "血压150", "咳嗽", "体温"])
def test_not_a_pure_fever_mention(text):
    assert fever_grade(text) is None
