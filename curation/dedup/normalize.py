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
