"""Identifiers inside digit runs: resident IDs, mobiles and landlines wherever a run puts them.

A regex with digit lookarounds misses an identifier written straight into other
digits (身份证号码为4201021973070477262015年…, 电话153-6967-35372019年…), and a
shape-only landline rule misses locals that start with 0 or 1 after a phone cue.
So one pattern finds whole digit runs (digits split by spaces, dashes, dots or
brackets, half- or full-width), and this module reads each run: 18-digit windows
that pass the GB 11643 checksum and hold a plausible birth date are IDs wherever
they sit; 1[3-9]x + 8 digits and 0 + area code + 7–8 digits are phones where they
start or end a group of the run; after a phone cue (电话, 手机, Tel …) anything
phone-shaped is a phone, valid-looking or not. A trailing year that a date starts
(…35372019年7月) is peeled off first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# GB/T 2260 province codes (first two digits of a resident ID).
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82 91".split()
)
_TO_ASCII = str.maketrans("０１２３４５６７８９ＸｘxＸ×", "0123456789XXXXX")

D = "[0-9０-９]"
_GROUP_SEP = r"(?:[ \-.－—–‐·\u3000]|[)）][ \-]?)"
# A run of at least 7 digits (shorter ones hold no identifier): optional country code, optional opening bracket, digits in groups (X too: an ID's check character).
RUN_PATTERN = rf"(?:(?:\+|＋|00)86[ \-]?)?[(（]?{D}(?:{_GROUP_SEP}?[(（]?(?:{D}|[XxＸ×](?![A-Za-z]))){{6,}}"
# Every run holds a digit followed by six more digit slots, each at most three separator or bracket
# characters on; that digit is at most RUN_REACH characters into the run (after +86 and a bracket).
RUN_ANCHOR = rf"{D}(?:[ \-.－—–‐·\u3000)）(（]{{0,3}}(?:{D}|[XxＸ×])){{6}}"
RUN_REACH = 6
# Phone cues: what comes right after them is a phone if it is phone-shaped (7–13 digits).
_PHONE_CUE = re.compile(
    r"(?:电话|手机|座机|固话|联系方式|联系号码|联系|热线|传真|微信|tel|phone|mobile|call|拨打|致电|打)"
    r"(?:号码|号)?[\s:：是为]*$",
    re.IGNORECASE,
)
_CUE_LOOKBACK = 14


def id_checksum(first17: str) -> str:
    """GB 11643 check character for the first 17 digits of a resident ID number."""
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def plausible_id(digits: str) -> bool:
    """18 characters: province code, a real birth date in 1900–2039, and the GB 11643 check character."""
    if len(digits) != 18 or not digits[:17].isdigit() or digits[:2] not in _PROVINCES:
        return False
    try:
        born = date(int(digits[6:10]), int(digits[10:12]), int(digits[12:14]))
    except ValueError:
        return False
    return 1900 <= born.year <= 2039 and id_checksum(digits[:17]) == digits[17]


def _mobile_at(d: str, i: int) -> bool:
    return len(d) - i >= 11 and d[i] == "1" and d[i + 1] in "3456789" and d[i : i + 11].isdigit()


def _shape(text: str, start: int, end: int) -> tuple[str, list[int], list[int], bool]:
    """The run's digits (ASCII, X for a check character), their text positions, group starts, brackets seen."""
    digits: list[str] = []
    pos: list[int] = []
    groups: list[int] = []
    bracket = False
    prev_digit = False
    for k in range(start, end):
        ch = text[k]
        a = ch.translate(_TO_ASCII)
        if a.isdigit() or a == "X":
            if not prev_digit:
                groups.append(len(digits))
            digits.append(a)
            pos.append(k)
            prev_digit = True
        else:
            bracket |= ch in "()（）"
            prev_digit = False
    return "".join(digits), pos, groups, bracket


def phone_cue_before(text: str, start: int) -> bool:
    return _PHONE_CUE.search(text, max(0, start - _CUE_LOOKBACK), start) is not None


_COUNTRY = re.compile(r"(?:\+|＋|00)86[ \-]?")


def run_spans(text: str, start: int, end: int) -> Iterator[tuple[str, int, int]]:
    """(entity, start, end) of every resident ID and phone inside the run text[start:end]."""
    d, pos, groups, bracket = _shape(text, start, end)
    n = len(d)
    if n < 7:
        return
    if end < len(text) and text[end] == "年" and n > 4 and d[-4:-2] in ("19", "20"):
        n -= 4  # …35372019年7月: the last four digits are a year that starts a date
    taken = [False] * n
    country = _COUNTRY.match(text, start)
    skip = sum(c.isdigit() for c in country.group()) if country else 0
    for k in range(min(skip, n)):
        taken[k] = True
    if n >= 18:  # IDs first: they are validated, so they are trusted anywhere in the run
        i = skip
        while i + 18 <= n:
            if plausible_id(d[i : i + 18]):
                yield "ID_CARD", pos[i], pos[i + 17] + 1
                for k in range(i, i + 18):
                    taken[k] = True
                i += 18
            else:
                i += 1
    cue = phone_cue_before(text, start)
    for lo, hi in _free_segments(taken):
        first = lo == skip
        lead = start if first and text[start] in "+＋0(（" else pos[lo]
        yield from _phones(d, pos, groups, lo, hi, cue and first, bracket, lead)


def _free_segments(taken: list[bool]) -> Iterator[tuple[int, int]]:
    i, n = 0, len(taken)
    while i < n:
        if taken[i]:
            i += 1
            continue
        j = i
        while j < n and not taken[j]:
            j += 1
        yield i, j
        i = j


def _phones(
    d: str, pos: list[int], groups: list[int], lo: int, hi: int, cue: bool, bracket: bool, lead: int
) -> Iterator[tuple[str, int, int]]:
    """Phones in the digits d[lo:hi]; after a cue the whole phone-shaped segment is one phone."""
    n = hi - lo
    if n < 7:
        return
    if cue and n <= 13 and d[lo:hi].isdigit():
        yield "PHONE", lead, pos[hi - 1] + 1
        return
    bounds = {g for g in groups if lo <= g < hi} | {lo}
    ends = bounds | {hi}
    # Candidates scored by how well they stand as written: both ends on group boundaries beats one.
    cands: list[tuple[int, int, int]] = []
    for i in range(lo, hi - 9):
        if i + 11 <= hi and _mobile_at(d, i):
            score = (i in bounds) + (i + 11 in ends)
            if score:
                cands.append((score, i, i + 11))
        if i in bounds:
            length = _landline_len(d, i, hi, groups, bracket)
            if length:
                cands.append((2, i, i + length))
    cands.sort(key=lambda c: (-c[0], c[1]))
    chosen: list[tuple[int, int]] = []
    for _, i, j in cands:
        if all(j <= a or i >= b for a, b in chosen):
            chosen.append((i, j))
    for i, j in sorted(chosen):
        yield "PHONE", (lead if i == lo else pos[i]), pos[j - 1] + 1
    if cue and not chosen and d[lo:hi].isdigit():  # the cue says phone: a long shaped run is masked whole
        yield "PHONE", lead, pos[hi - 1] + 1


def _landline_len(d: str, i: int, hi: int, groups: list[int], bracket: bool) -> int:
    """Length of a landline (0 + area code + 7–8 digit local) written as one at i, or 0.

    It must stand as written: the area code its own group (021-…, (021)…), or the landline the
    whole group, so that a 0 inside an unrelated long number does not start one.
    """
    if d[i] != "0":
        return 0
    if d[i + 1 : i + 3] == "10" or d[i + 1 : i + 2] == "2":  # 3-digit area codes have 8-digit locals
        lengths, area = (11,), 3
    elif d[i + 1 : i + 2] in tuple("3456789"):
        lengths, area = (12, 11), 4
    else:
        return 0
    for length in lengths:
        j = i + length
        if j > hi or not d[i:j].isdigit():
            continue
        inner = [g for g in groups if i < g < j]
        if inner and (inner[0] - i == area or bracket) and (j == hi or j in groups):
            return length
        if not inner and (j == hi or j in groups):
            return length
    return 0
