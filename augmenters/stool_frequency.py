"""Stool-frequency mentions (三四天一次大便, 一天五六次, 一周拉一次) graded into 便秘 or 腹泻.

The usual clinical definitions: stools three or more days apart are constipation (fewer than three a
week), three or more stools a day are diarrhoea. Used only when a whole line is such a mention (term
normalisation); inside running text the count is kept, because the grade alone loses it. Anything in
between (两天一次, 一天两次) is not graded.
"""

from __future__ import annotations

import re

_N = r"[0-9０-９]+|[一二两三四五六七八九十几好]+"
_DIGIT = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_STOOL = re.compile(r"大便|排便|解便|便便|粑粑|屎|拉|解|排|便")
_URINE = re.compile(r"小便|尿")
# N天(才)一次 / 隔N天 / 一周一次: the days between stools.
_INTERVAL = re.compile(
    rf"(?:隔|每)?(?P<n>{_N})?(?:个)?(?P<unit>天|日|周|星期|礼拜)(?:或更长时间)?(?:多)?(?:才|左右)?"
    r"(?:拉|排|解|大便|排便|解大便|拉大便|拉粑粑|排一次便)?[一1](?:次|回)"
)
# 一天N次 / N次大便 / 拉了N次: stools a day (a count without a day is taken as a day's).
_PER_DAY = re.compile(rf"(?P<n>{_N})(?:多)?(?:次|回)")


def _number(s: str | None, unit_default: int = 1) -> int | None:
    """The smallest number a Chinese or Arabic count names: 三四 → 3, 34 (three or four) → 3, 几/好几 → 3."""
    if not s:
        return unit_default
    if s.isdigit():
        if len(s) == 2 and s[0] < s[1] and s[0] != "1":  # 34, 35: a range, not thirty-four
            return int(s[0])
        return int(s)
    if "几" in s or "好" in s:
        return 3
    if s.startswith("十"):
        return 10 + _DIGIT.get(s[1:2], 0)
    if "十" in s:
        tens, _, ones = s.partition("十")
        return _DIGIT.get(tens[-1], 1) * 10 + _DIGIT.get(ones[:1], 0)
    return _DIGIT.get(s[0])


def stool_grade(text: str) -> str | None:
    """便秘 / 腹泻 for a line that is only a stool-frequency mention, else None."""
    text = text.replace("差不多", "")
    if not _STOOL.search(text) or _URINE.search(text) or "不" in text or "没" in text:
        return None
    m = _INTERVAL.search(text)
    if m:
        n = _number(m.group("n"))
        if n is None:
            return None
        days = n * (7 if m.group("unit") in ("周", "星期", "礼拜") else 1)
        return "便秘" if days >= 3 else None
    m = _PER_DAY.search(text)
    if m is None or "几" in m.group("n"):  # 大便几次 says nothing about how many
        return None
    before = text[: m.start()]
    one_day = re.search(r"(?:一|每|1|今|昨|当|白)(?:天|日)", before)
    other_span = re.search(r"(?:天|日|周|星期|礼拜)", before) and not one_day
    if other_span:  # 三天拉了4次 is not a day's count
        return None
    n = _number(m.group("n"))
    return "腹泻" if n is not None and n >= 3 else None
