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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from curation.deid import digits
from curation.deid.digits import id_checksum, plausible_id
from curation.deid.lists import hospital_generic_words, hospital_names, place_names, stop_chars, surnames
from curation.deid.vocab import clinical_term_inside, is_word, not_a_name

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
__all__ = ["ENTITIES", "Recognizers", "Span", "id_checksum", "plausible_id", "resolve", "valid_resident_id"]


def valid_resident_id(text: str) -> bool:
    """An 18-character resident ID as written (spaces/dashes allowed): GB 11643 checksum, real birth date."""
    return plausible_id(re.sub(r"[\s\-]", "", text).translate(digits._TO_ASCII))


_MatchFn = Callable[[re.Match[str], str], Iterable[tuple[int, int]]]


@dataclass(frozen=True)
class Detector:
    entity: str
    pattern: re.Pattern[str]
    spans: _MatchFn  # match → zero or more (start, end); rejects what the pattern over-matched
    typed: bool = False  # spans yields (entity, start, end): one pattern serving several types
    # A cheap pattern (literal or character-class first, so `re` scans for it in C) that matches
    # inside every match of `pattern`, at most `reach` characters after that match's start. The
    # full pattern is then tried only near anchors, not at every character of the batch.
    anchor: re.Pattern[str] | None = None
    reach: int = 0

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """The matches `pattern.finditer(text)` gives, trying only positions an anchor allows."""
        if self.anchor is None:
            yield from self.pattern.finditer(text)
            return
        match = self.pattern.match
        pos = 0  # next position finditer would try
        for a in self.anchor.finditer(text):
            # A match starting at s has an anchor occurrence in [s, s + reach]; occurrences the
            # anchor's own finditer skipped lie inside `a`, so the window runs to a.end().
            s = max(pos, a.start() - self.reach)
            stop = a.end()
            while s < stop:
                m = match(text, s)
                if m is None:
                    s += 1
                    continue
                yield m
                s = pos = m.end() if m.end() > m.start() else m.end() + 1
            pos = max(pos, stop)


def _whole(m: re.Match[str], _text: str) -> Iterable[tuple[int, int]]:
    return ((m.start(), m.end()),)


def _group_v(m: re.Match[str], _text: str) -> Iterable[tuple[int, int]]:
    return ((m.start("v"), m.end("v")),)


def _starts(first_chars: str, alternatives: str) -> re.Pattern[str]:
    """An anchor for patterns whose matches start with one of `alternatives`.

    `re` scans for a pattern's first character in C only when that is a literal or a class;
    so the class comes first and the alternatives are checked from it, looking ahead from
    one character back: [的说](?<=(?=的家属|说).) matches where 的家属 or 说 starts.
    """
    return re.compile(f"[{first_chars}](?<=(?=(?:{alternatives})).)")


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
    """姓名：X, 签名：X: a form label, so the value is a name even when it is also a word (高明)."""
    pos = m.end()
    end = name_end(text, pos)
    if end is None:  # a name whose surname is not on the list: take 2-3 plain characters
        end = pos
        while end - pos < 3 and end < len(text) and _is_han(text[end]) and text[end] not in _NAME_STOP:
            end += 1
        if end - pos < 2:
            return ()
    if not_a_name(text, pos, end, strict=False):
        return ()
    return ((pos, end),)


def _cue_name(m: re.Match[str], text: str, *, strict: bool = True) -> Iterable[tuple[int, int]]:
    """患者王芳, 主治医生李建国说, 我叫张伟: a surname right after the cue, ending at a boundary."""
    pos = m.end()
    end = name_end(text, pos)
    if end is None:
        return ()
    cut = clinical_term_inside(text, pos + _surname_len(text, pos), end)
    if cut is not None:
        end = cut  # 患者孔秀癫痫…: the name ends where the disease begins
    if text[end - 1] not in "某XＸ×*＊" and cut is None:
        weak = strict and text[pos] in _WEAK_SURNAMES
        if weak and end - pos < 3:
            return ()
        at_boundary = end == len(text) or text[end] in _NAME_STOP or _NAME_BOUNDARY.match(text[end])
        if not at_boundary and (weak or end - pos < 3):
            return ()  # 患者应进行, 患儿通气: a word after the cue, not a name
        if not_a_name(text, pos, end, strict=strict):
            return ()  # 患者常见贫血, 患者白细胞增高: clinical text, not a name
        if strict and text[pos] in _WEAK_SURNAMES and is_word(text[pos + 1 : end]):
            return ()  # 患者应积极, 患儿从呼气: an adverb or preposition, then a word
    elif cut is not None and (
        end - pos <= _surname_len(text, pos) or not_a_name(text, pos, end, strict=strict)
    ):
        return ()
    return ((pos, end),)


def _intro_name(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
    """我叫/名叫/签名 X: the speaker says it is a name, so ordinary words are accepted (strict off)."""
    return _cue_name(m, text, strict=False)


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
    if end - start > slen and not_a_name(text, start, end):
        return ()  # 康复医生, 麻醉医生
    if text[start] in _WEAK_SURNAMES and is_word(text[start + slen : end]):
        return ()  # 那谢谢大夫
    return ((start, end),)


class _Span:
    """A stand-in match for callbacks written against (?P<v>…): the name span found by looking back."""

    def __init__(self, start: int, end: int):
        self._s, self._e = start, end

    def start(self, _g: str = "v") -> int:
        return self._s

    def end(self, _g: str = "v") -> int:
        return self._e


def _look_back(fn: Callable[..., Iterable[tuple[int, int]]], max_given: int, min_given: int = 0) -> _MatchFn:
    """Anchor on the literal context after a name (先生, 的家属, 说) and find the surname behind it.

    A pattern that starts with the surname alternation is tried at every character (slow);
    the context words are literals the regex engine finds fast. The name is the leftmost
    surname within reach, as the lazy (?P<v>surname…{0,2}?) pattern it replaces gave.
    """

    def spans(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
        end = m.start()
        for p in range(max(0, end - 2 - max_given), end - min_given):
            slen = _surname_len(text, p)
            if slen and p + slen + min_given <= end <= p + slen + max_given:
                if all(_is_han(c) for c in text[p:end]):
                    return fn(_Span(p, end), text)  # type: ignore[arg-type]
        return ()

    return spans


def _placeholder_name(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
    """张某某, 李X: a surname with a placeholder given name (not 宽×高×0.52, not 中段Xq22)."""
    pos = m.start()
    for slen in (2, 1):
        p = pos - slen
        if p >= 0 and _surname_len(text, p) == slen:
            before = text[p - 1] if p else ""
            if before in "×*＊" or (before.isascii() and before.isalpha()):
                return ()
            return ((p, m.end()),)
    return ()


def _context_name(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
    """A name known by what follows it (X的家属, X，男，45岁, X说): it must start at a word boundary."""
    start, end = m.start("v"), m.end("v")
    for s in (start, start + 1):
        slen = _surname_len(text, s)
        if not slen or end - s <= slen or end - s > slen + 2:
            continue
        before = text[s - 1] if s else ""
        if before and _is_han(before) and before not in _NAME_PRECEDERS and before not in "我者属":
            continue
        if any(c in _NAME_STOP for c in text[s + slen : end]) or text[s] in _WEAK_SURNAMES:
            continue
        if end - s - slen == 2 and is_word(text[s + slen : end]) and not_a_name(text, s, end + 2):
            continue
        if not_a_name(text, s, end):
            continue
        return ((s, end),)
    return ()


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


# A place not on the list, named by its suffix (平邑县, 神奈川县); the characters before the suffix must not
# be words for "this/all/local/level" (全市, 县级市, 本地区).
_PLACE_BY_SUFFIX = re.compile(rf"([{_HAN}]{{2,4}}?)(?:省|市|县|区|州|旗)")
_NOT_PLACE_CHARS = frozenset("当地全本该各此老家这那哪某外城乡镇村省市县区级里大小上下附近周边")
_NUMBERED = re.compile(r"(?:解放军|武警|部队|空军|海军|陆军|火箭军)[第]?[0-9０-９]{2,3}")
_LEADING_NOT_NAME = frozenset("送离应需须要立即马赶紧尽快及时再先也都还就等")


_HOSPITAL_SUFFIX_RE = (
    r"(?:妇幼保健院|卫生服务中心|卫生服务站|急救中心|医疗中心|医学中心|疗养院|保健院|保健所|卫生院"
    r"|卫生室|门诊部|诊所|医院)"
)
_HOSPITAL_SUFFIX = re.compile(_HOSPITAL_SUFFIX_RE + "$")


class _Hospitals:
    """Which text before a hospital suffix names a particular hospital.

    A listed hospital (the shipped gazetteer plus the user's) always does. Otherwise the
    words before the suffix need a place (北京, 平邑县) that the rest (第三人民, 大学附属…) follows,
    or a numbered military hospital (解放军455医院); 医院, 中医院, 送医院, 本地医院 and a bare
    人民医院 name none.
    """

    def __init__(self, extra: Iterable[str] = ()):
        self.names = frozenset(hospital_names()) | frozenset(n.strip() for n in extra if n.strip())
        self.lengths = sorted({len(n) for n in self.names}, reverse=True)
        self.places = place_names()
        self.place_lengths = sorted({len(p) for p in self.places}, reverse=True)

    def unsuffixed_detector(self) -> list[Detector]:
        """Listed names the suffix pattern cannot anchor on (浙大一院, 北医三院): matched as they are."""
        bare = sorted((n for n in self.names if not _HOSPITAL_SUFFIX.search(n)), key=len, reverse=True)
        if not bare:
            return []
        return [Detector("HOSPITAL", re.compile("|".join(map(re.escape, bare))), _whole)]

    def listed(self, text: str, end: int) -> int | None:
        for n in self.lengths:
            if n <= end and text[end - n : end] in self.names:
                return end - n
        return None

    def start(self, text: str, anchor: int, end: int) -> int | None:
        """Start of the hospital name whose suffix is text[anchor:end], or None if it names none."""
        listed = self.listed(text, end)
        if listed is not None:
            return listed
        start = _scan_left(text, anchor)
        inner = text.rfind("院", start, anchor)  # 三甲医院等一些医院: stop at the hospital before
        if inner >= 0:
            start = inner + 1
        while start < anchor and text[start] in _LEADING_NOT_NAME:
            start += 1
        prefix = text[start:anchor]
        if len(prefix) < 2 or prefix[-1] in "家个所间上" or any(w in prefix for w in _HOSPITAL_REJECT):
            return None
        if _all_generic(prefix):
            return None
        place = self._first_place(prefix)
        if place is not None:
            return start + place
        m = _NUMBERED.search(prefix)  # 解放军455医院
        return start + m.start() if m else None

    def _first_place(self, prefix: str) -> int | None:
        for i in range(len(prefix)):
            for n in self.place_lengths:
                if prefix[i : i + n] in self.places:
                    return i
        for m in _PLACE_BY_SUFFIX.finditer(prefix):
            if not any(c in _NOT_PLACE_CHARS for c in m.group(1)) and not _all_generic(m.group(1)):
                return m.start()
        return None


def _hospital_fn(hospitals: _Hospitals) -> _MatchFn:
    def spans(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
        start = hospitals.start(text, m.start(), m.end())
        return ((start, m.end()),) if start is not None else ()

    return spans


def _department_fn(hospitals: _Hospitals) -> _MatchFn:
    def spans(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
        """A department right after a hospital that names a particular hospital (北京协和医院心内科)."""
        start, end = m.start("v"), m.end("v")
        if any(c in _DEPT_STOP for c in text[start:end]):
            return ()
        if hospitals.start(text, m.start(), start) is None:
            return ()
        return ((start, end),)

    return spans


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


# ----------------------------------------------------------------------------- dates and ages


# A date is this person's when the sentence around it says so (a visit, an admission, a birth, a test);
# a date in a sentence about history or a publication is not personal data and is kept.
_PERSONAL_DATE = re.compile(
    r"入院|出院|住院|就诊|就医|看病|门诊|急诊|挂号|复诊|复查|检查|化验|抽血|体检|拍片|彩超|胃镜|肠镜|B超|CT|核磁|报告单"
    r"|出生|生于|生日|诞生|手术|术后|治疗|用药|服药|吃药|打针|输液|确诊|诊断|发病|起病|发作|发现|出现|开始|感冒|发烧|发热"
    r"|怀孕|末次月经|月经|分娩|生产|预产期|随访|就诊|来院|到院|住进|做了|查出|我|患者|患儿|病人|本人|孩子|宝宝|家人|老人"
)
_HISTORICAL_DATE = re.compile(
    r"年代|世纪|历史|发布|公布|颁布|印发|下发|通知|文件|规定|条例|杂志|期刊|学报|出版|发表|刊登|报道|新闻|指南|共识|版本|版《"
    r"|《|》|卫生部|卫健委|卫计委|国务院|政府|世界卫生组织|WHO|疫情|流行|全国|全球|非典|SARS|会议|大会|成立|创建|建院|始建|纪念|宣布|批准|上市"
)
_SENTENCE_END = re.compile(r"[。！？!?；;\n\x00]")
_DATE_WINDOW = 20


def _sentence_around(text: str, start: int, end: int) -> str:
    lo = max(0, start - _DATE_WINDOW)
    hi = min(len(text), end + _DATE_WINDOW)
    before = text[lo:start]
    cut = [m.end() for m in _SENTENCE_END.finditer(before)]
    after = text[end:hi]
    stop = _SENTENCE_END.search(after)
    return before[cut[-1] if cut else 0 :] + "\x01" + after[: stop.start() if stop else len(after)]


def _date(m: re.Match[str], text: str) -> Iterable[tuple[int, int]]:
    month = m.group("m") or m.group("m2") or m.group("m3")
    day = m.group("d") or m.group("d2") or m.group("d3")
    if month is not None and not 1 <= int(month) <= 12:
        return ()
    if day is not None and not 1 <= int(day) <= 31:
        return ()
    around = _sentence_around(text, m.start(), m.end())
    if _HISTORICAL_DATE.search(around) or not _PERSONAL_DATE.search(around):
        return ()
    return ((m.start(), m.end()),)


def _digit_run(m: re.Match[str], text: str) -> Iterable[tuple[str, int, int]]:
    start = m.start()
    if start and text[start - 1].isascii() and text[start - 1].isalpha():
        return [s for s in digits.run_spans(text, start, m.end()) if s[0] == "ID_CARD"]
    return digits.run_spans(text, start, m.end())


_D = digits.D
_LABEL_SEP = r"\s*[:：]\s*"
_FAMILY = "家属|女儿|儿子|妈妈|爸爸|母亲|父亲|妻子|丈夫|爱人|孩子|家人|亲属|孙子|孙女|老公|老婆|外孙|外孙女|儿媳|女婿"
_GIVEN = r"(?:(?![的了是在说和与])[\u4e00-\u9fff])"


def _detectors(hospitals: _Hospitals) -> list[Detector]:
    sn = _SURNAME_RE
    return [
        Detector(  # also ID_CARD
            "PHONE",
            re.compile(digits.RUN_PATTERN),
            _digit_run,
            typed=True,
            anchor=re.compile(digits.RUN_ANCHOR),
            reach=digits.RUN_REACH,
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
            # 患者：/医生：/家属： are speaker tags in dialogues (structure), so they are no label here.
            re.compile(
                r"(?:姓名|患者姓名|病人姓名|联系人|监护人|签名|签字|医师签名|主治医师|主治医生|经治医师|主管医师"
                r"|责任护士|记录者|记录人|报告医师|审核医师|报告人|审核人)" + _LABEL_SEP
            ),
            _label_name,
        ),
        Detector(
            "PERSON",
            # …，家属：X mid-text is a label; at the start of a text or line it is a speaker tag.
            re.compile(r"(?<=[^\n\x00])(?:患者|病人|家属|联系人)" + _LABEL_SEP + f"(?={sn})"),
            _cue_name,
            anchor=re.compile("患者|病人|家属|联系人"),
        ),
        Detector(
            "PERSON",
            re.compile(rf"(?:我叫|名叫|叫做|我姓|本人姓名|签名|签字)(?={sn})"),
            _intro_name,
        ),
        Detector(
            "PERSON",
            re.compile(
                rf"(?:患者|病人|患儿|病患|就诊者|伤者|产妇|孕妇|家属|丈夫|妻子|爱人|儿子|女儿|母亲|父亲|我是|本人是"
                rf"|主治医生|主治医师|主管医生|主管医师|管床医生|接诊医生|经治医生|主刀医生|值班医生|责任护士"
                rf"|医生|大夫|护士|主任|教授)(?={sn})"
            ),
            _cue_name,
        ),
        Detector(
            "PERSON",
            re.compile(
                rf"的(?:{_FAMILY})|[，,]\s*[男女](?:[，,、\s性]|[0-9０-９])|(?:今年)?[0-9０-９]{{1,3}}岁"
                rf"|说|告诉|表示|认为|签字|签名"
            ),
            _look_back(_context_name, 2, min_given=1),
            anchor=_starts(
                "的，,今0-9０-９说告表认签",
                rf"的(?:{_FAMILY})|[，,]\s*[男女]|今年|[0-9０-９]{{1,3}}岁|说|告诉|表示|认为|签字|签名",
            ),
        ),
        Detector(
            "PERSON",
            re.compile(r"(?:先生|女士|小姐|同志|阿姨|叔叔|医生|大夫|医师|主任|教授|护士长|护士|院长|老师)"),
            _look_back(_titled_name, 2),
        ),
        Detector(
            "PERSON",
            re.compile(r"(?:某某?|[XＸ×*＊]{1,2})(?![日天些种个次年月时处地位人物件样项A-Za-z0-9０-９.])"),
            _placeholder_name,
            anchor=re.compile("[某XＸ×*＊]"),
        ),
        Detector(
            "HOSPITAL",
            re.compile(_HOSPITAL_SUFFIX_RE),
            _hospital_fn(hospitals),
        ),
        *hospitals.unsuffixed_detector(),
        Detector(
            "DEPARTMENT",
            re.compile(
                rf"(?:医院|卫生院|保健院|医疗中心|医学中心)(?P<v>[{_HAN}]{{1,6}}?(?:科|病区|病房|门诊)|ICU|CCU|NICU|EICU)"
            ),
            _department_fn(hospitals),
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
            anchor=re.compile(rf"省|自治区|市(?=[{_HAN}]{{1,6}}?(?:区|县))"),
            reach=8,  # the head before 省/市 is at most 8 characters
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
            anchor=re.compile(
                r"(?:大街|大道|胡同|路|街|巷|弄|道)[0-9０-９]"
                r"|(?:小区|花园|公寓|新村|家园|大厦|苑)[0-9０-９一二三四五六七八九十]"
            ),
            reach=12,  # the head before the street or estate word is at most 12 characters
        ),
        Detector(
            "DATE",
            re.compile(
                rf"(?:(?<![0-9０-９])(?:19|20){_D}{{2}}\s*(?:年|[./\-])\s*(?P<m>{_D}{{1,2}})\s*(?:月|[./\-])\s*"
                rf"(?P<d>{_D}{{1,2}})\s*[日号]?|(?:19|20){_D}{{2}}年(?P<m2>{_D}{{1,2}})月"
                rf"(?:(?P<d2>{_D}{{1,2}})[日号])?|(?<![0-9０-９])(?P<m3>{_D}{{1,2}})月(?P<d3>{_D}{{1,2}})[日号])(?![0-9０-９])"
            ),
            _date,
            anchor=_starts("0-9０-９", rf"(?:19|20){_D}{{2}}\s*[年./\-]|{_D}{{1,2}}月"),
        ),
        Detector(
            "AGE",
            re.compile(
                r"(?<![0-9０-９.])(?:9\d|1[0-4]\d)\s*多?\s*(?:周岁|岁)"
                r"|(?:年龄|年纪|享年)\s*[:：]?\s*(?:9\d|1[0-4]\d)(?![0-9０-９.])(?:\s*(?:周岁|岁))?"
                r"|(?:九十[一二三四五六七八九]?|一百[零一二三四五六七八九十]{0,2})多?(?:周岁|岁)"
            ),
            _age,
            anchor=_starts("19九一年享", r"[19]\d|年龄|年纪|享年|九十|一百"),
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
    """All detectors for the enabled entity types; stateless after construction, safe to share.

    `hospitals` adds the user's own hospital names to the shipped gazetteer.
    """

    def __init__(self, entities: Iterable[str] | None = None, hospitals: Iterable[str] = ()):
        wanted = set(ENTITIES if entities is None else entities)
        unknown = wanted - set(ENTITIES)
        if unknown:
            raise ValueError(
                f"unknown entity type(s): {', '.join(sorted(unknown))}; known: {', '.join(ENTITIES)}"
            )
        self.entities = tuple(e for e in ENTITIES if e in wanted)
        self.wanted = frozenset(self.entities)
        self.detectors = [
            d
            for d in _detectors(_Hospitals(hospitals))
            if d.entity in wanted or (d.typed and wanted & {"PHONE", "ID_CARD"})
        ]

    def detect(self, text: str) -> list[Span]:
        return self.detect_many([text])[0]

    def spans_in(self, text: str) -> list[Span]:
        """Unresolved spans of one text, pattern by pattern (the naive path the benchmark compares with)."""
        out: list[Span] = []
        for det in self.detectors:
            for m in det.pattern.finditer(text):  # unanchored on purpose: the reference
                out.extend(self._typed(det, m, text))
        return out

    def _typed(self, det: Detector, m: re.Match[str], text: str) -> Iterable[Span]:
        if det.typed:
            return [sp for sp in det.spans(m, text) if sp[0] in self.wanted]  # type: ignore[misc]
        return [(det.entity, s, e) for s, e in det.spans(m, text)]

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
            for m in det.finditer(joined):
                for ent, s, e in self._typed(det, m, joined):
                    row = bisect_right(starts, s) - 1
                    base = starts[row]
                    found[row].append((ent, s - base, e - base))
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
