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
# 38.5 / 38度5 / 385 (the dot left out) / 38度多 / 38点多 / 三十九度几 / 三十八度八 / 39以上
_TEMP = re.compile(
    rf"(?:(?<!\d)(?P<int3>3[4-9]|4[0-4])(?P<frac3>\d)(?!\d)|(?P<int>\d{{2}}|[{_CN}]{{2,3}})"
    rf"(?:(?:[.．·°]|点|度)(?P<frac>\d|[{_CN}])|(?:度|点)?(?P<more>多|几))?)(?:度|℃|°C|°)?"
)
# Which side of the value the mention lies on: 不超过38.5 is below it, 超过38.5 / 降不到38.5以下 above.
_BELOW = re.compile(
    r"不超过|没有超过|没超过|没上过|不超|不到|不足|不大于|不高于|低于|小于|以下|以内|之内|快|将近|接近"
)
_ABOVE = re.compile(r"降不到|退不到|超过|大于|高于|高达|以上|之上|过")
# What may surround the number in a pure fever mention.
_FILLER = re.compile(
    r"发烧|发热|高烧|低烧|体温|温度|最高|一直|反复|持续|左右|上下|之间|大概|大约|降到|烧到|升到|到了|达到|"
    r"上升到|升高|仍然|还是|总是|只有|一烧|就是|不超过|没有超过|没超过|不超|不到|不足|低于|小于|以下|以内|"
    r"之内|降不到|退不到|超过|大于|高于|高达|以上|及|没上过|不大于|不高于|将近|接近|之上|现在|如果|时候|这个|"
    r"肛温|腋温|口温|额温|耳温|"
    r"[烧热度到至降升是了的有在~\-—～、，,\s℃C°·多几点又再就却可低高快过]"
)
# Graded on the scale common in Chinese paediatric practice, which the IMCS-21 train labels follow:
# 低热 below 38.5 ℃, 中等度热 38.5-38.9, 高热 39-40.9, 超高热 from 41.
GRADES = ((38.45, "低热"), (38.95, "中等度热"), (40.95, "高热"), (99.0, "超高热"))
LOW, HIGH = 34.0, 44.9  # body temperatures a mention can name


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
    if m.group("int3"):
        return int(m.group("int3")) + int(m.group("frac3")) / 10
    whole = _cn_number(m.group("int"))
    if whole is None:
        return None
    value = float(whole)
    frac = m.group("frac")
    if frac:
        value += (int(frac) if frac.isdigit() else _DIGITS.get(frac, 0)) / 10
    elif m.group("more"):
        value += 0.5
    return value


def temperature(text: str) -> float | None:
    """The highest body temperature (°C) of a line that is only a temperature mention, else None; a bound
    (不超过38.5, 超过38.5) is nudged 0.05 to the side the mention lies on."""
    values = [v for m in _TEMP.finditer(text) if (v := _value(m)) is not None and LOW <= v <= HIGH]
    if not values or _FILLER.sub("", _TEMP.sub("", text)):
        return None
    if _ABOVE.search(text) and not (_BELOW.search(text) and not re.search("降不到|退不到", text)):
        return max(values) + 0.05
    if _BELOW.search(text):
        return max(values) - 0.05
    return max(values)


def fever_grade(text: str) -> str | None:
    """低热 / 中等度热 / 高热 / 超高热 for a line that is only a body-temperature mention, else None."""
    top = temperature(text)
    if top is None or top < 37.3:
        return None
    return next(name for limit, name in GRADES if top <= limit)
