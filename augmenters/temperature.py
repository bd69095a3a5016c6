"""Fever mentions with a number (烧到39.5, 38度多, 三十八度八) graded into the clinical fever terms.

Used only when a whole line is such a mention (term normalisation); inside running text the number is
protected and kept, because the grade alone loses information.
"""

from __future__ import annotations

import re

_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN = "零〇一二两三四五六七八九十"
# 38.5 / 38度5 / 38度多 / 三十八度八 / 39以上
_TEMP = re.compile(
    rf"(?P<int>\d{{2}}|[{_CN}]{{2,3}})(?:(?:\.|点|度)(?P<frac>\d|[{_CN}])|度?(?P<more>多))?(?:度|℃|°C)?(?P<dir>以上|以下)?"
)
# What may surround the number in a pure fever mention.
_FILLER = re.compile(
    r"发烧|发热|高烧|低烧|体温|温度|最高|一直|反复|持续|左右|上下|之间|大概|大约|降到|烧到|升到|到了|达到|"
    r"[烧热度到至降升是了的有在~\-—～、，,\s℃C°多]"
)
GRADES = ((38.0, "低热"), (39.0, "中等度热"), (41.0, "高热"), (99.0, "超高热"))


def _cn_number(s: str) -> int | None:
    if s.isdigit():
        return int(s)
    if "十" in s:
        tens, _, ones = s.partition("十")
        t = _DIGITS.get(tens, 1) if tens else 1
        o = _DIGITS.get(ones, 0) if ones else 0
        return t * 10 + o
    return None


def _value(m: re.Match[str]) -> float | None:
    whole = _cn_number(m.group("int"))
    if whole is None:
        return None
    value = float(whole)
    frac = m.group("frac")
    if frac:
        value += (int(frac) if frac.isdigit() else _DIGITS.get(frac, 0)) / 10
    elif m.group("more"):
        value += 0.5
    if m.group("dir") == "以上":
        value += 0.05
    return value


def temperature(text: str) -> float | None:
    """The highest body temperature (°C) of a line that is only a temperature mention, else None."""
    values = [v for m in _TEMP.finditer(text) if (v := _value(m)) is not None and 35.0 <= v <= 43.0]
    if not values or _FILLER.sub("", _TEMP.sub("", text)):
        return None
    return max(values)


def fever_grade(text: str) -> str | None:
    """低热 / 中等度热 / 高热 / 超高热 for a line that is only a body-temperature mention, else None."""
    top = temperature(text)
    if top is None or top < 37.3:
        return None
    return next(name for limit, name in GRADES if top <= limit)
