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
        ("389", "中等度热"),  # the dot left out
        ("体温不超过38.5", "低热"),  # a bound: below it
        ("发烧超过38.5度", "中等度热"),  # above it
        ("体温仍然降不到38.5度以下", "中等度热"),  # does not come down below it: above
        ("三十九度几", "高热"),
        ("体温39度", "高热"),  # 39 is high fever on the paediatric scale
        ("38.3", "低热"),
        ("快39", "中等度热"),  # almost 39: below it
        ("烧过38.5°", "中等度热"),
        ("烧38·5", "中等度热"),
        ("体温现在是三十九", "高热"),
    ],
)
def test_fever_grades(mention, grade):
    assert fever_grade(mention) == grade


@pytest.mark.parametrize(
    "text", ["36.5", "发烧39度还咳嗽", "血压150", "咳嗽", "体温", "4次大便", "34天一次大便"]
)
def test_not_a_pure_fever_mention(text):
    assert fever_grade(text) is None
