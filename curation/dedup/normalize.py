"""The text two samples are compared on.

Rule: instruction + input + output, all three. Two different answers to the same
question are both worth a physician's review, so the question side alone would be
too aggressive; the label is kept apart (only equal labels may merge).

Users wrap one question in different noise: 医生您好/你好/请问 in front, 谢谢/麻烦了 behind,
letters typed twice (疼疼, 吗吗吗). With `surface` on, the question fields (instruction,
input) lose those greetings and politeness fillers and repeated characters collapse to one
(digits excepted: 100 is not 10). The answer is left as it is. Whether two samples still
state the same clinical facts is checked on the raw texts (stage.py), not here.

Normalisation removes what does not change meaning for a reader: Unicode width
(NFKC), case, whitespace and punctuation, and optionally traditional vs simplified
script. Script folding is character-level from OpenCC's table via one `str.translate`
table (with the deletions), which is ~100x faster than OpenCC's phrase converter and enough for a dedup key.
"""

from __future__ import annotations

import hashlib
import re
import sys
import unicodedata
from functools import cache
from pathlib import Path

import numpy as np


def _dropped(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PSZ" or ch.isspace()


@cache
def _table(script: str) -> dict[int, str | None]:
    """One `str.translate` table doing per-character NFKC, script folding and the deletions.

    Calling `unicodedata.normalize` per text costs ~100 ns a character on Chinese text
    full of full-width punctuation; a translate table is ~4x faster, and the rare text
    whose NFKC needs more than one character at a time is caught by `is_normalized`.
    """
    t2s = _t2s_table() if script == "t2s" else {}
    table: dict[int, str | None] = {}
    for c in range(sys.maxunicode + 1):
        ch = chr(c)
        norm = unicodedata.normalize("NFKC", ch)  # before dropping: ㎏ is a symbol, its NFKC "kg" is not
        mapped = "".join(x for x in "".join(t2s.get(ord(y), y) for y in norm) if not _dropped(x))
        if mapped != ch:
            table[c] = mapped or None
    return table


def _t2s_table() -> dict[int, str]:
    import opencc

    path = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    table: dict[int, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        src, _, targets = line.partition("\t")
        if len(src) == 1 and targets:
            table[ord(src)] = targets.split()[0]
    return table


def normalize_for_dedup(text: str, script: str = "none") -> str:
    """NFKC, lower case, no whitespace/punctuation/symbols, optional traditional→simplified."""
    table = _table(script)
    out = text.translate(table).lower()
    if not unicodedata.is_normalized("NFKC", out):  # combining sequences, case folding leftovers
        out = unicodedata.normalize("NFKC", out).translate(table)
    return out


# In normalised text (no punctuation or spaces, lower case). Greetings may name the doctor.
_FILLERS = re.compile(
    r"(?:医生|大夫|老师|专家)?(?:你好|您好|早上好|下午好|晚上好)(?:医生|大夫|老师|专家)?"
    r"|(?:请问|想问|问|咨询|请教)(?:一下|下)(?:医生|大夫)?|请问|想问问|想咨询|打扰(?:一下|了|您了)?"
    r"|(?:非常|十分)?(?:谢谢|感谢|多谢)(?:你|您|医生|大夫)?(?:了|啦)?|麻烦(?:您|你)?了|拜托(?:了|您了)?"
    r"|在线等|急急急"
)
_REPEAT = re.compile(r"(\D)\1+")


def strip_surface_noise(normalized: str) -> str:
    """A normalised question without greetings, politeness fillers and repeated characters."""
    return _REPEAT.sub(r"\1", _FILLERS.sub("", normalized))


# The same fillers in raw text (facts are read from raw text): a filler and the punctuation after it, and a
# bare form of address (医生，) at the start of a field. Newlines are kept: they separate the fields.
_RAW_FILLERS = re.compile(
    rf"(?:{_FILLERS.pattern})[^\w\n]*|(?:^|(?<=\n))[^\w\n]*(?:医生|大夫|老师|专家)[^\w\n]+"
)
# characters whose repetition is a different number (11 is not 1, 一一 is read as a number)
_NUMERALS = frozenset("0123456789一二三四五六七八九十百千万两半几零〇")
_KEPT_MARKS = frozenset("%‰")  # units, not punctuation


def _is_mark(ch: str) -> bool:
    return ch.isspace() or (unicodedata.category(ch)[0] in "PZ" and ch not in _KEPT_MARKS)


def _noise(text: str, i: int, j: int) -> bool:
    """Whether text[i:j], a stretch the other text lacks, is typing noise: marks and spaces (none that
    stands between two digits: 2-3, 6.5, 130/80) and repeats of the character next to it (疼疼, 血血),
    never of a numeral."""
    rest = []
    for k in range(i, j):
        ch = text[k]
        between_digits = 0 < k < len(text) - 1 and text[k - 1].isdigit() and text[k + 1].isdigit()
        if not (_is_mark(ch) and not between_digits):
            rest.append(ch)
    if not rest:
        return True
    near = {text[i - 1] if i > 0 else "", text[j] if j < len(text) else ""}
    return len(set(rest)) == 1 and rest[0] in near and rest[0] not in _NUMERALS and not _is_mark(rest[0])


def noise_aligned(a: str, b: str) -> tuple[str, str]:
    """Two raw texts with user-surface noise taken out before their facts are compared: width (NFKC),
    greetings and politeness fillers, and where one text has marks, spaces or repeated characters that
    the other lacks at that place (aligned character by character), those. What both texts share is left
    as it is, so clause breaks they agree on still bound negation. Typos are not fixed here: the fact
    extractor's typo repair decides those (medaug.facts, typos=True), with its guards on negation, side,
    number and severity characters."""
    from rapidfuzz.distance import Indel

    a, b = (_RAW_FILLERS.sub("", unicodedata.normalize("NFKC", t)) for t in (a, b))
    if a == b:
        return a, b
    out_a: list[str] = []
    out_b: list[str] = []
    for op in Indel.opcodes(a, b):
        sa, sb = a[op.src_start : op.src_end], b[op.dest_start : op.dest_end]
        if op.tag == "equal" or not sa or not _noise(a, op.src_start, op.src_end):
            out_a.append(sa)
        if op.tag == "equal" or not sb or not _noise(b, op.dest_start, op.dest_end):
            out_b.append(sb)
    return "".join(out_a), "".join(out_b)


# negation characters (medaug.facts' cues start with one of these), and the poles of a finding
# (阳性/阴性)
_NEGATIONS = frozenset("不没无未非否别勿")
_POLES = frozenset("阴阳")
# question forms that negate nothing (是不是, 有没有, 能否, a clause-final 不 or 没: 能吃吗 / 能吃不),
# and 不同 (different), read without their negation character; Chinese numbers read as digits (三个月
# is 3个月, 二十 is 20, 三价 is no 七价), except in words where 一 counts nothing (一般, 一定, 一直...)
_NOT_NEGATION = re.compile(r"(\w)[不没]\1|([是能可与])否|不(同)|[不没](?=[\W_]|$)")
_NOT_NUMBER = re.compile(r"一(?=[般定直下些起样边身点旦切向再律时])|(?<=[统万唯])一")
_CN_NUMBER = re.compile("[〇零一二两三四五六七八九十百千万]+")
_DIGITS = re.compile(r"\d+(?:\.\d+)?")


def _guard_form(text: str) -> str:
    from medaug.facts import cn_number

    text = _NOT_NEGATION.sub(lambda m: m.group(1) or m.group(2) or m.group(3) or "", text)
    return _CN_NUMBER.sub(lambda m: cn_number(m.group()), _NOT_NUMBER.sub("", text))


def numbers_or_negation_differ(a: str, b: str) -> bool:
    """Whether the two texts hold different numbers (digits or Chinese numbers, read as digits) or a
    different count of negation characters or poles (阴性/阳性), whatever the fact
    extractor reads there (三价/七价 疫苗 and 二型糖尿病酮症酸中毒 hold no number fact; 能顺产吗 /
    不能顺产吗 no negated term). Counted, not aligned, so the same numbers in another order are no
    change; question forms (是不是, 能否, a clause-final 不) negate nothing."""
    a, b = _guard_form(a), _guard_form(b)
    if a == b:
        return False
    if sorted(_DIGITS.findall(a)) != sorted(_DIGITS.findall(b)):
        return True
    return any(a.count(c) != b.count(c) for c in _NEGATIONS | _POLES)


def compare_text(
    instruction: str, input: str, output: str, script: str = "none", surface: bool = False
) -> str:
    """The normalised text two samples are compared on; `surface` also strips the question's noise."""
    q = [normalize_for_dedup(p, script) for p in (instruction, input)]
    if surface:
        q = [strip_surface_noise(p) for p in q]
    # A separator that survives normalisation keeps "ab"+"c" apart from "a"+"bc".
    return "\x1e".join((*q, normalize_for_dedup(output, script)))


def exact_keys(texts: list[str], labels: list[str]) -> np.ndarray:
    """64-bit key of (label, normalised text): equal keys are exact duplicates."""
    out = np.empty(len(texts), dtype=np.uint64)
    for i, (t, lab) in enumerate(zip(texts, labels, strict=True)):
        out[i] = int.from_bytes(hashlib.blake2b(f"{lab}\x1f{t}".encode(), digest_size=8).digest(), "little")
    return out
