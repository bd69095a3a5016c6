"""Chinese PII recognizers: compiled patterns plus the checks a regex alone cannot make.

No NLP model is available for Chinese here (see PLATFORM.md), so detection is
rule-based: checksums (GB 11643), cue words (姓名：, 患者, 先生/医生), suffixes
(医院, 路…号) scanned leftwards to a stop character, and team-written lists.
`detect_many` runs every pattern once over a whole batch joined by a separator
that no pattern can cross, which is what makes the stage fast: the per-call
overhead of Python's `re` is paid per batch, not per field.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from curation.deid.lists import hospital_generic_words, stop_chars, surnames

# Span: (entity, start, end) in Python str indices, as presidio expects.
Span = tuple[str, int, int]

ENTITIES = (
    "ID_CARD",
    "MEDICAL_RECORD",
    "EMAIL",
    "PHONE",
    "PERSON",
    "HOSPITAL",
    "DEPARTMENT",
    "ADDRESS",
    "DATE",
    "AGE",
)
# Where spans of different types overlap, the earlier type here wins.
PRIORITY = {e: i for i, e in enumerate(ENTITIES)}
# Same-type spans that touch are one entity (a street follows its district; a department its hospital).
_MERGE_TOUCHING = {"ADDRESS"}

SEPARATOR = "\n\x00\n"  # \x00 is neither a word, digit nor space character: no pattern crosses it

_HAN = "\u4e00-\u9fff"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_checksum(first17: str) -> str:
    """GB 11643 check character for the first 17 digits of a resident ID number."""
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def valid_resident_id(text: str) -> bool:
    digits = re.sub(r"[\s-]", "", text).upper().replace("×", "X").replace("Ｘ", "X")
    if len(digits) != 18 or not digits[:17].isdigit():
        return False
    digits = digits[:17].translate(_FULLWIDTH_DIGITS) + digits[17].translate(_FULLWIDTH_DIGITS)
    month, day = int(digits[10:12]), int(digits[12:14])
    return 1 <= month <= 12 and 1 <= day <= 31 and id_checksum(digits[:17]) == digits[17]


_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")

_MatchFn = Callable[[re.Match[str], str], Iterable[tuple[int, int]]]


@dataclass(frozen=True)
class Detector:
    entity: str
    pattern: re.Pattern[str]
    spans: _MatchFn  # match → zero or more (start, end); rejects what the pattern over-matched


def _whole(m: re.Match[str], _text: str) -> Iterable[tuple[int, int]]:
    return ((m.start(), m.end()),)


def _group_v(m: re.Match[str], _text: str) -> Iterable[tuple[int, int]]:
    return ((m.start("v"), m.end("v")),)


# ----------------------------------------------------------------------------- names

_SURNAME_RE = "(?:" + "|".join(surnames()) + ")"
_NAME_STOP = stop_chars()["name_stop"]
_PLACE_STOP = stop_chars()["place_stop"]
_WEAK_SURNAMES = stop_chars()["weak_surnames"]
_NAME_PRECEDERS = stop_chars()["name_preceders"]
_NOT_NAMES = stop_chars()["not_names"]
_HOSPITAL_REJECT = tuple(stop_chars()["hospital_reject"])
# A name after a cue ends at punctuation, a stop character or the text's end: 患者应进行 is not a name.
_NAME_BOUNDARY = re.compile(r"[^\u4e00-\u9fff]")
# Surnames that are far more often a function word in front of a name (向张医生 = "to Dr Zhang").
_FUNCTION_SURNAMES = frozenset("向于和从同经由将在为与及把被让叫给对是也")
_PLACEHOLDER_GIVEN = re.compile(r"某某?|[XＸ×*＊]{1,2}")


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def _surname_len(text: str, pos: int) -> int:
    two = text[pos : pos + 2]
    if len(two) == 2 and two in _COMPOUND_SURNAMES:
        return 2
    return 1 if text[pos : pos + 1] in _SINGLE_SURNAMES else 0


_COMPOUND_SURNAMES = frozenset(s for s in surnames() if len(s) == 2)
_SINGLE_SURNAMES = frozenset(s for s in surnames() if len(s) == 1)


def name_end(text: str, pos: int, *, min_given: int = 1) -> int | None:
    """End of a personal name starting at `pos`: a surname then up to two given-name characters.

    Given-name characters stop at a stop character, so 患者王芳头痛 yields 王芳, not 王芳头.
    """
    slen = _surname_len(text, pos)
    if not slen:
        return None
    end = pos + slen
    ph = _PLACEHOLDER_GIVEN.match(text, end)
    if ph:
        return ph.end()
    given = 0
    while given < 2 and end < len(text) and _is_han(text[end]) and text[end] not in _NAME_STOP:
        end += 1
        given += 1
    return end if given >= min_given else None


def _label_name(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
    pos = m.end()
    end = name_end(text, pos)
    if end is None:  # a name whose surname is not on the list: take 2-3 plain characters
        end = pos
        while end - pos < 3 and end < len(text) and _is_han(text[end]) and text[end] not in _NAME_STOP:
            end += 1
        if end - pos < 2:
            return ()
    return ((pos, end),)


def _cue_name(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
    pos = m.end()
    end = name_end(text, pos)
    if end is None:
        return ()
    if text[end - 1] not in "某XＸ×*＊":
        weak = text[pos] in _WEAK_SURNAMES
        if weak and end - pos < 3:
            return ()
        at_boundary = end == len(text) or text[end] in _NAME_STOP or _NAME_BOUNDARY.match(text[end])
        if not at_boundary and (weak or end - pos < 3):
            return ()  # 患者应进行, 患儿通气: a word after the cue, not a name
    return ((pos, end),)


def _titled_name(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
    """张先生 / 王建国主任: the name before the title; the title itself is kept (it is not identifying)."""
    start, end = m.start("v"), m.end("v")
    if end - start >= 2 and text[start] in _FUNCTION_SURNAMES and _surname_len(text, start + 1):
        start += 1
    slen = _surname_len(text, start)
    if not slen or any(c in _NAME_STOP for c in text[start + slen : end]) or text[start:end] in _NOT_NAMES:
        return ()
    if end - start == slen and text[start] in _WEAK_SURNAMES:
        return ()  # 那医生
    before = text[start - 1] if start else ""
    if before and _is_han(before) and before not in _NAME_PRECEDERS:
        if end - start == slen or before + text[start] in _NOT_NAMES or text[start] in _WEAK_SURNAMES:
            return ()  # 检查医生, 时候医生: the end of a word, not a surname
    return ((start, end),)


# ----------------------------------------------------------------------------- places

_PLACE_CHARS = re.compile(rf"[{_HAN}A-Za-z0-9０-９（）()·]")
_GENERIC = hospital_generic_words()
_MAX_GENERIC = max(len(w) for w in _GENERIC)


def _scan_left(text: str, anchor: int, limit: int = 24) -> int:
    """Start of a place name ending at `anchor`: extend left over name characters up to a stop character."""
    start = anchor
    while start > 0 and anchor - start < limit:
        ch = text[start - 1]
        if ch in _PLACE_STOP or not _PLACE_CHARS.match(ch):
            break
        start -= 1
    return start


def _all_generic(prefix: str) -> bool:
    """True if the words before 医院 only describe a kind of hospital (当地三甲, 附近的儿童…)."""
    ok = [True] + [False] * len(prefix)
    for i in range(len(prefix)):
        if ok[i]:
            for j in range(i + 1, min(len(prefix), i + _MAX_GENERIC) + 1):
                if prefix[i:j] in _GENERIC:
                    ok[j] = True
    return ok[len(prefix)]


def _hospital(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
    start = _scan_left(text, m.start())
    return ((start, m.end()),) if _names_a_hospital(text[start : m.start()]) else ()


def _names_a_hospital(prefix: str) -> bool:
    """False for 当地医院, 哪家医院, 最好的肝病医院, 四五家医院: they name no particular hospital."""
    if len(prefix) < 2 or prefix[-1] in "家个所间上" or any(w in prefix for w in _HOSPITAL_REJECT):
        return False
    return not _all_generic(prefix)


def _trimmed(m: re.Match[str], text: str, *, min_first: int = 2) -> Iterable[tuple[int, int]]:
    """A lazily over-long left part (the regex starts at the leftmost position): cut at the last stop char."""
    start, head_end = m.start(), m.end("head")
    cut = start
    for i in range(start, head_end):
        if text[i] in _PLACE_STOP:
            cut = i + 1
    if head_end - cut < min_first:
        return ()
    return ((cut, m.end()),)


def _street(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
    return _trimmed(m, text, min_first=1)


_DEPT_STOP = frozenset("的了是在去到看找就我你他她过和与及或")


def _department_after_hospital(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
    """A department right after a hospital that names a particular hospital (北京协和医院心内科)."""
    start, end = m.start("v"), m.end("v")
    if any(c in _DEPT_STOP for c in text[start:end]):
        return ()
    if not _names_a_hospital(text[_scan_left(text, m.start()) : m.start()]):
        return ()
    return ((start, end),)


# ----------------------------------------------------------------------------- dates and ages


def _date(m: re.Match[str], _text: str) -> Iterable[tuple[int, int]]:
    month = m.group("m") or m.group("m2")
    day = m.group("d") or m.group("d2")
    if month is not None and not 1 <= int(month) <= 12:
        return ()
    if day is not None and not 1 <= int(day) <= 31:
        return ()
    return ((m.start(), m.end()),)


def _id_card(m: re.Match[str], _text: str) -> Iterable[tuple[int, int]]:
    return ((m.start(), m.end()),) if valid_resident_id(m.group()) else ()


_SEP = r"[ \-]?"
_D = r"[0-9０-９]"
_LABEL_SEP = r"\s*[:：]\s*"


def _detectors() -> list[Detector]:
    sn = _SURNAME_RE
    return [
        Detector(
            "ID_CARD",
            re.compile(
                rf"(?<![0-9０-９A-Za-z]){_D}{{6}}(?:{_SEP}{_D}){{11}}{_SEP}[0-9０-９XxＸ×](?![0-9０-９A-Za-z])"
            ),
            _id_card,
        ),
        Detector(
            "PHONE",
            re.compile(
                rf"(?<![0-9０-９])(?:(?:\+|00)?86{_SEP})?1[3-9]{_D}(?:{_SEP}{_D}){{8}}(?![0-9０-９])"
                rf"|(?<![0-9０-９])(?:[(（]0{_D}{{2,3}}[)）]|0{_D}{{2,3}})[ \-]?[2-9]{_D}{{2,3}}[ \-]?{_D}{{4}}"
                rf"(?:(?:转|-|ext\.?)\s?{_D}{{1,5}})?(?![0-9０-９])"
            ),
            _whole,
        ),
        Detector(
            "EMAIL",
            re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
            _whole,
        ),
        Detector(
            "MEDICAL_RECORD",
            re.compile(
                r"(?:病案号|病历号|住院号|门诊号|就诊号|就诊卡号|诊疗卡号|医保卡号|社保卡号|医保号|登记号|检查号"
                r"|影像号|病理号|标本号|住院病案号|病人ID|患者ID|ID号)\s*[:：为是]?\s*"
                r"(?P<v>[A-Za-z0-9０-９](?:[ \-]?[A-Za-z0-9０-９]){2,24})"
            ),
            _group_v,
        ),
        Detector(
            "PERSON",
            re.compile(
                r"(?:姓名|患者姓名|病人姓名|联系人|家属|监护人|签名|医师签名|主治医师|主治医生|经治医师|主管医师"
                r"|责任护士|记录者|记录人|报告医师|审核医师|患者|病人)" + _LABEL_SEP
            ),
            _label_name,
        ),
        Detector(
            "PERSON",
            re.compile(
                rf"(?:患者|病人|患儿|病患|就诊者|伤者|产妇|孕妇|家属|丈夫|妻子|爱人|儿子|女儿|母亲|父亲)(?={sn})"
            ),
            _cue_name,
        ),
        Detector(
            "PERSON",
            re.compile(
                rf"(?P<v>{sn}[{_HAN}]{{0,2}}?)(?:先生|女士|小姐|医生|大夫|医师|主任|教授|护士长|护士|院长|老师)"
            ),
            _titled_name,
        ),
        Detector(
            "PERSON",
            re.compile(rf"{sn}(?:某某?|[XＸ×*＊]{{1,2}})(?![日天些种个次年月时处地位人物件样项])"),
            _whole,
        ),
        Detector(
            "HOSPITAL",
            re.compile(
                r"(?:妇幼保健院|卫生服务中心|卫生服务站|急救中心|医疗中心|医学中心|疗养院|保健院|保健所|卫生院"
                r"|卫生室|门诊部|诊所|医院)"
            ),
            _hospital,
        ),
        Detector(
            "DEPARTMENT",
            re.compile(
                rf"(?:医院|卫生院|保健院|医疗中心|医学中心)(?P<v>[{_HAN}]{{1,6}}?(?:科|病区|病房|门诊)|ICU|CCU|NICU|EICU)"
            ),
            _department_after_hospital,
        ),
        Detector(
            "DEPARTMENT",
            re.compile(rf"(?:科室|科别|就诊科室){_LABEL_SEP}(?P<v>[{_HAN}]{{1,8}})"),
            _group_v,
        ),
        Detector(
            "ADDRESS",
            re.compile(
                r"(?:家庭住址|现住址|通讯地址|户籍地址|户籍所在地|户籍地|居住地|住址|地址|家住|现住(?!院)|居住于|居住在|籍贯)"
                r"\s*[:：]?\s*(?P<v>[^\s，,。；;！!？?、)）/／|｜\x00]{2,40})"
            ),
            _group_v,
        ),
        Detector(
            "ADDRESS",
            re.compile(
                rf"(?P<head>[{_HAN}]{{2,8}}?)(?:省|自治区)(?:[{_HAN}]{{2,8}}?(?:市|州|盟|地区))"
                rf"(?:[{_HAN}]{{1,8}}?(?:区|县|市|旗))?"
                rf"|(?P<head2>[{_HAN}]{{2,8}}?)市[{_HAN}]{{1,6}}?(?:区|县)"
            ),
            lambda m, t: _trimmed(m, t) if m.group("head") else _trimmed_head2(m, t),
        ),
        Detector(
            "ADDRESS",
            re.compile(
                rf"(?P<head>[{_HAN}A-Za-z0-9]{{1,12}}?)(?:大街|大道|胡同|路|街|巷|弄|道)[0-9０-９]+(?:号|弄)"
                rf"(?:院|楼)?(?:[0-9０-９一二三四五六七八九十]+(?:号楼|栋|幢|座|单元|层|楼|室|号|户)){{0,4}}"
                rf"|(?P<head3>[{_HAN}A-Za-z0-9]{{1,12}}?)(?:小区|花园|公寓|新村|家园|大厦|苑)[0-9０-９一二三四五六七八九十]+"
                rf"(?:号楼|栋|幢|座|号)(?:[0-9０-９]+单元)?(?:[0-9０-９]+(?:室|号|层))?"
            ),
            lambda m, t: _street(m, t) if m.group("head") else _trimmed_head3(m, t),
        ),
        Detector(
            "DATE",
            re.compile(
                rf"(?<![0-9０-９])(?:(?:19|20){_D}{{2}}\s*(?:年|[./\-])\s*(?P<m>{_D}{{1,2}})\s*(?:月|[./\-])\s*"
                rf"(?P<d>{_D}{{1,2}})\s*[日号]?|(?:19|20){_D}{{2}}年(?P<m2>{_D}{{1,2}})月"
                rf"(?:(?P<d2>{_D}{{1,2}})[日号])?|{_D}{{1,2}}月{_D}{{1,2}}[日号])(?![0-9０-９])"
            ),
            _date,
        ),
        Detector(
            "AGE",
            re.compile(
                r"(?<![0-9０-９.])(?:9\d|1[0-4]\d)\s*多?\s*(?:周岁|岁)"
                r"|(?:年龄|年纪|享年)\s*[:：]?\s*(?:9\d|1[0-4]\d)(?![0-9０-９.])(?:\s*(?:周岁|岁))?"
                r"|(?:九十[一二三四五六七八九]?|一百[零一二三四五六七八九十]{0,2})多?(?:周岁|岁)"
            ),
            _age,
        ),
    ]


def _trimmed_head2(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
    return _trim_at(m, text, "head2", 2)


def _trimmed_head3(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
    return _trim_at(m, text, "head3", 1)


def _trim_at(m: re.Match[str], text: str, group: str, min_first: int) -> Iterable[tuple[int, int]]:
    start, head_end = m.start(group), m.end(group)
    cut = start
    for i in range(start, head_end):
        if text[i] in _PLACE_STOP:
            cut = i + 1
    return () if head_end - cut < min_first else ((cut, m.end()),)


_AGE_LABEL = re.compile(r"(?:年龄|年纪|享年)\s*[:：]?\s*")


def _age(m: re.Match[str], _text: str) -> Iterable[tuple[int, int]]:
    label = _AGE_LABEL.match(m.group())
    return ((m.start() + (label.end() if label else 0), m.end()),)


# ----------------------------------------------------------------------------- engine


class Recognizers:
    """All detectors for the enabled entity types; stateless after construction, safe to share."""

    def __init__(self, entities: Iterable[str] | None = None):
        wanted = set(ENTITIES if entities is None else entities)
        unknown = wanted - set(ENTITIES)
        if unknown:
            raise ValueError(
                f"unknown entity type(s): {', '.join(sorted(unknown))}; known: {', '.join(ENTITIES)}"
            )
        self.entities = tuple(e for e in ENTITIES if e in wanted)
        self.detectors = [d for d in _detectors() if d.entity in wanted]

    def detect(self, text: str) -> list[Span]:
        return self.detect_many([text])[0]

    def detect_many(self, texts: Sequence[str | None]) -> list[list[Span]]:
        """Spans per text, overlaps resolved; one pass of each pattern over the whole batch."""
        starts: list[int] = []
        pos = 0
        for t in texts:
            starts.append(pos)
            pos += len(t or "") + len(SEPARATOR)
        joined = SEPARATOR.join(t or "" for t in texts)
        found: list[list[Span]] = [[] for _ in texts]
        for det in self.detectors:
            for m in det.pattern.finditer(joined):
                for s, e in det.spans(m, joined):
                    row = bisect_right(starts, s) - 1
                    base = starts[row]
                    found[row].append((det.entity, s - base, e - base))
        return [resolve(spans) if spans else spans for spans in found]


def resolve(spans: list[Span]) -> list[Span]:
    """Merge same-type overlaps, then keep the higher-priority (then longer) span where types overlap."""
    spans.sort(key=lambda s: (s[1], -s[2]))
    merged: list[Span] = []
    for ent, s, e in spans:
        for i in range(len(merged) - 1, -1, -1):
            me, ms, mend = merged[i]
            if me == ent and (s < mend or (s == mend and ent in _MERGE_TOUCHING)):
                merged[i] = (ent, ms, max(mend, e))
                break
        else:
            merged.append((ent, s, e))
    merged.sort(key=lambda x: (PRIORITY[x[0]], x[1] - x[2]))
    kept: list[Span] = []
    for sp in merged:
        if all(sp[2] <= k[1] or sp[1] >= k[2] for k in kept):
            kept.append(sp)
    kept.sort(key=lambda x: x[1])
    return kept
