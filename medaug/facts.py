"""Clinical facts of a text, and what changed between two texts: the one check every derived sample passes
(lexicon and LLM paraphrases, negatives, dedup decisions) before it is kept.

API (stable; other stages code against it):

    extract_facts(text) -> FactSet          the facts of `text`
    fact_changes(a, b) -> list[FactChange]  [] when b states the same clinical facts as a
    FactExtractor(words)                    an extractor over another vocabulary (e.g. with user lexicons):
                                            .extract(text), .changes(a, b); default_extractor() is the one
                                            extract_facts uses
    segmenter().boundaries(text)            word boundaries (jieba, vocabulary as user dictionary)

A Fact has a kind (symptom, finding, disease, procedure, history, drug, number, duration, frequency), the
canonical term (every exact synonym in the lexicons maps to one term: 胸口疼 and 胸痛 are the same fact;
a narrower or broader wording is a different fact), negated, laterality (left/right/bilateral), body site,
severity (mild/moderate/severe), quality (colour: 清/黄 ...), value + unit for numbers and durations, and
the span it was read from. Two facts are the same when everything but the span and surface agree.

A FactChange names the kind and what changed (lost, added, negation, laterality, site, severity, quality)
with the fact before and after; `.code` (e.g. `symptom_negation`, `drug_lost`) is the reason code callers
record. Facts are read clause by clause (a negation's scope ends at a clause break or a contrast word), and
clauses are cached, so checking a paraphrase against its parent re-reads only the clauses that changed.

Vocabulary: the shipped lexicon (medaug/data/core_lexicon.tsv: symptoms, findings, diseases,
procedures, with their exact variants), the drug list (medaug/data/drugs.tsv), the knowledge table
(generators/data/knowledge.yaml: diseases, clinical symptoms, drugs), the review queue's ICD-10 list
(review_queue/icd10_common.tsv) and medaug/data/fact_words.tsv (body sites, protected compounds). Matching
is word-aware: a vocabulary hit that cuts a word of the jieba segmentation is not a fact (很困难 holds no
很困). Unknown body-site + pain/itch/swelling wordings (左下腹疼) become generic facts (site 下腹, 痛).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cache, lru_cache
from pathlib import Path

import ahocorasick

ROOT = Path(__file__).resolve().parents[1]
FACT_WORDS = Path(__file__).parent / "data" / "fact_words.tsv"
DRUGS_TSV = ROOT / "medaug" / "data" / "drugs.tsv"
KNOWLEDGE_YAML = ROOT / "generators" / "data" / "knowledge.yaml"
ICD_TSV = ROOT / "review_queue" / "icd10_common.tsv"

TERM_KINDS = ("symptom", "finding", "disease", "procedure", "history", "drug")
# "site": a side + body site that no term fact carries (左眼红肿, 右手腕骨折 with no lexicon term), so a
# left/right swap is a change even where the vocabulary knows nothing else of the sentence.
FACT_KINDS = (*TERM_KINDS, "number", "duration", "frequency", "site")
CHANGES = ("lost", "added", "negation", "laterality", "site", "severity", "quality", "value")

# Negation cues, as whole words of the segmentation (不 inside 不舒服 / 不想吃饭 is no cue).
NEGATION_CUES = frozenset(
    "没有 没 无 未 不 否认 未见 未闻及 未及 并非 不是 非 从未 从不 从没 从来没有 别 勿 无明显 不伴 并无 "
    "没什么 没啥 未再 不再 排除 除外".split()
)
# A clause is the reach of a negation; contrast words end it inside a clause.
# ASCII "." ends a clause unless it is a decimal point (38.5); so does "…", and a space between two Chinese
# characters (头疼 发烧: patients type spaces where a comma would go).
# Not inside a weight-based daily dose: 2mg/(kg·d), 2mg/(kg.d) is one quantity (audit seed 48213).
CLAUSE_BREAK = re.compile(
    r"(?:[，,。．！？!?；;：:\n\r\t【】\[\]“”\"…]|(?<!/)[（(]|(?<!kg[·.•*][d天日])[）)]"
    r"|(?<!\d)(?<!kg)\.|(?<!kg)\.(?!\d)"
    r"|(?<=[\u4e00-\u9fff])[ \u3000]+(?=[\u4e00-\u9fff]))+"
)
CONTRAST = ("但是", "但", "却", "然而", "可是", "不过", "而是")
LATERALITY = {
    "左侧": "left", "左边": "left", "左": "left", "右侧": "right", "右边": "right", "右": "right",
    "双侧": "bilateral", "两侧": "bilateral", "双": "bilateral", "两边": "bilateral", "单侧": "unilateral",
    "一侧": "unilateral",
}  # fmt: skip
SEVERITY = {
    "有点儿": "mild", "有点": "mild", "有些": "mild", "稍微": "mild", "稍": "mild", "轻微": "mild",
    "轻度": "mild", "略": "mild", "一点": "mild", "微微": "mild", "明显": "moderate", "中度": "moderate",
    "较": "moderate", "比较": "moderate", "剧烈": "severe", "严重": "severe", "重度": "severe",
    "非常": "severe", "特别": "severe", "很": "severe", "极": "severe", "十分": "severe", "厉害": "severe",
    "得厉害": "severe", "得很": "severe", "得要命": "severe", "剧": "severe",
}  # fmt: skip
FREQUENCY = {
    "一直": "persistent", "持续": "persistent", "不停": "persistent", "不断": "persistent",
    "总是": "often", "老是": "often", "经常": "often", "常常": "often", "时常": "often", "频繁": "often",
    "天天": "often", "每天": "often", "每日": "often", "整天": "often", "偶尔": "sometimes",
    "有时": "sometimes", "有时候": "sometimes", "时不时": "sometimes", "间断": "sometimes",
    "间断性": "sometimes", "阵发性": "sometimes", "一阵阵": "sometimes", "一阵一阵": "sometimes",
    "反复": "recurrent", "反反复复": "recurrent", "再次": "recurrent", "夜间": "night", "晚上": "night",
}  # fmt: skip
QUALITY = {"清": "clear", "黄": "yellow", "白": "white", "绿": "green", "红": "red", "黑": "black",
           "脓": "purulent", "血": "bloody", "褐": "brown", "灰": "grey"}  # fmt: skip
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}  # fmt: skip
_CN_NUM = "零〇一二两三四五六七八九十百千万半几数俩"
_DURATION_UNITS = {
    "秒": "second", "秒钟": "second", "分钟": "minute", "分": "minute", "小时": "hour", "个小时": "hour",
    "钟头": "hour", "个钟头": "hour", "天": "day", "日": "day", "晚": "night", "夜": "night", "周": "week",
    "星期": "week", "个星期": "week", "礼拜": "week", "个礼拜": "week", "月": "month", "个月": "month",
    "年": "year", "岁": "age_year", "个多月": "month", "多月": "month",
}  # fmt: skip
_UNITS = {
    "mg": "mg", "毫克": "mg", "g": "g", "克": "g", "kg": "kg", "千克": "kg", "公斤": "kg", "斤": "jin",
    "μg": "ug", "ug": "ug", "mcg": "ug", "微克": "ug", "ml": "ml", "mL": "ml", "毫升": "ml", "l": "l", "L": "l",
    "升": "l", "iu": "iu", "IU": "iu", "国际单位": "iu", "u": "u", "U": "u", "单位": "u", "mmol/l": "mmol/l",
    "mmol/L": "mmol/l", "μmol/L": "umol/l", "umol/L": "umol/l", "mmhg": "mmhg", "mmHg": "mmhg",
    "毫米汞柱": "mmhg", "kpa": "kpa", "kPa": "kpa", "bpm": "/min", "次/分": "/min", "次/分钟": "/min",
    "cm": "cm", "厘米": "cm", "公分": "cm", "mm": "mm", "毫米": "mm", "%": "%", "℃": "c", "°C": "c",
    "度": "c", "片": "tablet", "粒": "capsule", "支": "unit", "袋": "sachet", "滴": "drop", "喷": "puff",
    "揿": "puff", "贴": "patch", "次": "times", "周岁": "age_year", "岁": "age_year", "个": "count",
}  # fmt: skip
# Side cues for site facts: the laterality words, and 两 before a site (两腿, 两眼; 两天 has no site).
_SIDE_CUES = dict(sorted({**LATERALITY, "两": "bilateral"}.items(), key=lambda kv: -len(kv[0])))
_SIDE_CHARS = re.compile("[左右双两单一]")
_NUM = rf"(?:\d+(?:\.\d+)?|[{_CN_NUM}]+)"
_DUR_ALT = "|".join(sorted(map(re.escape, _DURATION_UNITS), key=len, reverse=True))
_UNIT_ALT = "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True))
_APPROX = r"(?:多|余|来|左右|上下|以上|以内|许)?"
_QUANTITY = re.compile(
    rf"(?P<code>(?<![A-Za-z])[A-Z]\d{{2}}(?:\.[0-9A-Za-z]{{1,4}})?)"
    rf"|(?P<num>{_NUM}(?:\s*[-~～到至]\s*{_NUM})?)\s*(?P<approx1>多|余|来)?\s*"
    rf"(?:(?P<dur>{_DUR_ALT})|(?P<unit>{_UNIT_ALT})(?:\s*/\s*(?:\(\s*(?P<perday>kg\s*[·.•*]\s*(?:d|天|日))\s*\)|(?P<per>kg/d|d|次|天|日|kg|h)))?)?(?P<approx2>{_APPROX})",
)
# Generic pain/itch/swelling of a body site with no lexicon term (左下腹疼 → site 下腹, 痛).
_HEADS = {"疼痛": "痛", "疼": "痛", "痛": "痛", "酸痛": "酸痛", "胀痛": "胀痛", "刺痛": "刺痛", "绞痛": "绞痛",
          "隐痛": "隐痛", "不适": "不适", "不舒服": "不适", "难受": "不适", "痒": "痒", "瘙痒": "痒",
          "肿": "肿", "肿胀": "肿", "麻": "麻", "麻木": "麻", "发麻": "麻", "胀": "胀", "发胀": "胀",
          "酸": "酸", "发酸": "酸", "出血": "出血", "流血": "出血"}  # fmt: skip

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fact:
    kind: str
    term: str  # canonical: exact synonyms share it
    negated: bool = False
    laterality: str = ""
    site: str = ""
    severity: str = ""
    quality: str = ""
    value: str = ""
    unit: str = ""
    span: tuple[int, int] = field(default=(0, 0), compare=False)
    surface: str = field(default="", compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.term)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["span"] = list(self.span)
        return {k: v for k, v in d.items() if v not in ("", False) or k in ("kind", "term")}


class FactSet(tuple[Fact, ...]):
    """The facts of one text, in text order."""

    def of_kind(self, *kinds: str) -> list[Fact]:
        return [f for f in self if f.kind in kinds]

    def terms(self, *kinds: str) -> set[str]:
        return {f.term for f in self if not kinds or f.kind in kinds}

    def to_list(self) -> list[dict[str, object]]:
        return [f.to_dict() for f in self]


@dataclass(frozen=True)
class FactChange:
    kind: str
    change: str  # lost / added / negation / laterality / site / severity / quality / value
    before: Fact | None
    after: Fact | None

    @property
    def code(self) -> str:
        return f"{self.kind}_{self.change}"

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "before": self.before.to_dict() if self.before else None,
            "after": self.after.to_dict() if self.after else None,
        }

    def __str__(self) -> str:
        b = self.before.surface or self.before.term if self.before else "∅"
        a = self.after.surface or self.after.term if self.after else "∅"
        return f"{self.code}: {b} → {a}"


@dataclass(frozen=True)
class Word:
    surface: str
    kind: str  # a TERM_KIND, "site", or "protect" (a compound that only blocks matches inside it)
    term: str  # canonical


MAX_USER_WORD = 4  # longest vocabulary wording added to the segmenter's dictionary
MAX_WORD = 5  # longest dictionary word looked at when checking whether a word spans an offset
WINDOW = 8  # characters of context either side when a span's edges must be segmented


class Segmenter:
    """jieba (HMM off: fast and deterministic) with a vocabulary as its user dictionary. One per vocabulary
    (`segmenter(words)`), so how a text is cut never depends on which other lexicons the process loaded
    earlier. Thread-safe for adding words."""

    def __init__(self, words: Iterable[str] = ()) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._tk = jieba.Tokenizer()
        self._tk.initialize()
        self._known: set[str] = set()
        self._lock = threading.Lock()
        self._cache = lru_cache(maxsize=1 << 17)(self._tokens)
        self._crossed = lru_cache(maxsize=1 << 18)(self._crossed_uncached)
        self.add_words(words)

    def add_words(self, words: Iterable[str]) -> None:
        # Words, not phrases: a long wording (肿瘤引起的疼) in the dictionary would outweigh the words it
        # is made of and let a match end inside 疼痛.
        new = [w for w in words if w and w not in self._known and 2 <= len(w) <= MAX_USER_WORD]
        if not new:
            return
        with self._lock:
            for w in new:
                self._known.add(w)
                # A word the dictionary lacks gets the frequency that makes it win over its own parts.
                self._tk.add_word(w, max(self._tk.FREQ.get(w, 0), self._tk.suggest_freq(w, False)))
            self._cache.cache_clear()
            self._crossed.cache_clear()

    def _tokens(self, text: str) -> tuple[tuple[tuple[int, int, str], ...], frozenset[int]]:
        spans, bounds, pos = [], {0}, 0
        for tok in self._tk.cut(text, HMM=False):
            spans.append((pos, pos + len(tok), tok))
            pos += len(tok)
            bounds.add(pos)
        return tuple(spans), frozenset(bounds)

    def tokens(self, text: str) -> tuple[tuple[int, int, str], ...]:
        """(start, end, word) of each word of `text`."""
        return self._cache(text)[0]

    def cut(self, text: str) -> list[str]:
        return [t for _, _, t in self._cache(text)[0]]

    def boundaries(self, text: str) -> frozenset[int]:
        """Offsets in `text` where a word starts or ends (0 and len(text) included)."""
        return self._cache(text)[1]

    def _crossed_uncached(self, text: str, p: int) -> bool:
        """Whether some dictionary word of `text` spans offset p (starts before it, ends after it)."""
        freq = self._tk.FREQ
        for i in range(max(0, p - MAX_WORD + 1), p):
            for j in range(p + 1, min(len(text), i + MAX_WORD) + 1):
                if freq.get(text[i:j]):
                    return True
        return False

    def aligned(self, text: str, start: int, end: int) -> bool:
        """Whether text[start:end] starts and ends on word boundaries. With no dictionary word spanning
        either edge every segmentation has both boundaries (unknown characters are words of their own), so
        the segmentation itself is computed only when some word does."""
        if (start == 0 or not self._crossed(text, start)) and (
            end == len(text) or not self._crossed(text, end)
        ):
            return True
        # The segmentation of a window around the span: context further away does not move its edges.
        w0, w1 = max(0, start - WINDOW), min(len(text), end + WINDOW)
        b = self._cache(text[w0:w1])[1]
        return start - w0 in b and end - w0 in b


@lru_cache(maxsize=8)
def _segmenter_for(words: frozenset[str]) -> Segmenter:
    return Segmenter(sorted(words))


def segmenter(words: Iterable[str] | None = None) -> Segmenter:
    """The segmenter for this vocabulary (default: the shipped one); each holds jieba's dictionary (tens of
    MB), and a process rarely uses more than two vocabularies."""
    if words is None:
        return default_extractor().seg
    return _segmenter_for(frozenset(w for w in words if 2 <= len(w) <= MAX_USER_WORD))


@cache
def fact_words() -> tuple[Word, ...]:
    out = []
    for no, line in enumerate(FACT_WORDS.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2 or cols[0] == "surface":
            if cols[0] != "surface":
                raise ValueError(f"{FACT_WORDS}:{no}: expected surface<TAB>kind[<TAB>canonical]")
            continue
        out.append(Word(cols[0], cols[1], cols[2] if len(cols) > 2 and cols[2] else cols[0]))
    return tuple(out)


def shipped_words() -> list[Word]:
    """The default vocabulary: core lexicon (exact variants → their term), drugs, knowledge table, ICD list,
    body sites and protected compounds. Earlier sources win for a surface."""
    from medaug.lexicon import load_lexicon

    return [*lexicon_words(load_lexicon()), *table_words()]


def lexicon_words(lexicon) -> list[Word]:
    """Surfaces of an medaug.lexicon.Lexicon: a term and its exact variants share the term as canonical;
    a narrower/broader/related variant is a fact of its own."""
    out: list[Word] = []
    for e in lexicon.entries:
        out.append(Word(e.term, e.kind, lexicon.canonical.get(e.term, e.term)))
        for v in e.variants:
            canon = lexicon.canonical.get(v) if e.relation == "exact" and not e.context else None
            out.append(Word(v, e.kind, canon or lexicon.canonical.get(v, v)))
    return out


@cache
def table_words() -> tuple[Word, ...]:
    import yaml

    out: list[Word] = []
    for line in DRUGS_TSV.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and not line.startswith("name\t"):
            out.append(Word(line.split("\t", 1)[0], "drug", line.split("\t", 1)[0]))
    kb = yaml.safe_load(KNOWLEDGE_YAML.read_text(encoding="utf-8"))
    for d in kb.get("diseases", []):
        out.append(Word(d["name"], "disease", d["name"]))
        out += [Word(s, "symptom", s) for s in d.get("symptoms_clinical", []) if len(s) <= 8]
        out += [Word(x, "drug", x) for x in d.get("drugs", [])]
    if ICD_TSV.exists():
        for line in ICD_TSV.read_text(encoding="utf-8").splitlines():
            cols = line.split("\t")
            if len(cols) >= 2 and cols[1] and not line.startswith("#"):
                out.append(Word(cols[1], "disease", cols[1]))
    out += list(fact_words())
    return tuple(out)


class FactExtractor:
    """Facts over one vocabulary. Build once per process (a few hundred ms); clause results are cached."""

    def __init__(self, words: Iterable[Word], *, cache_size: int = 1 << 16):
        self.words: dict[str, Word] = {}
        for w in words:
            if len(w.surface) >= 2 or w.kind == "site":
                self.words.setdefault(w.surface, w)
        self.sites = {s: w.term for s, w in self.words.items() if w.kind == "site"}
        self._auto = ahocorasick.Automaton()
        for s, w in self.words.items():
            if w.kind != "site" and len(s) >= 2:
                self._auto.add_word(s, w)
        self._auto.make_automaton()
        self._site_auto = ahocorasick.Automaton()
        for s in self.sites:
            self._site_auto.add_word(s, s)
        self._site_auto.make_automaton()
        self._scope_auto = ahocorasick.Automaton()
        for w in (*NEGATION_CUES, *CONTRAST, *FREQUENCY):
            self._scope_auto.add_word(w, w)
        self._scope_auto.make_automaton()
        self.seg = segmenter(s for s, w in self.words.items() if w.kind != "site")
        self._clause = lru_cache(maxsize=cache_size)(self._extract_clause)

    # -- public -----------------------------------------------------------------------------------------
    def extract(self, text: str) -> FactSet:
        facts: list[Fact] = []
        for start, clause in _clauses(text or ""):
            for f in self._clause(clause):
                facts.append(_shift(f, start))
        return FactSet(facts)

    def changes(self, a: str, b: str, *, typos: bool = False) -> list[FactChange]:
        """Clauses both texts share state the same facts, so the clauses that differ are read first; only
        if their facts differ are the whole texts compared (facts may have moved between clauses).

        typos=True (dedup: two users' wordings of one question): a term lost from one text whose wording
        appears in the other with one character mistyped (咳嗽/咳漱, 恶心/恶新) is no change. The mistyped
        window must be no word the vocabulary or the dictionary knows (头疼/头晕 stays a change), and the
        changed character no negation, side, number or severity character. Off for paraphrases: a rewrite
        that mistypes a term is not kept."""
        out = self._changes(a, b)
        for _ in range(4):  # each round repairs one mistyped term, then the texts are compared again
            if not typos or not out:
                return out
            fixed = self._repair(out, a, b)
            if fixed is None:
                return out
            a, b = fixed
            out = self._changes(a, b)
        return out

    def _repair(self, out: list[FactChange], a: str, b: str) -> tuple[str, str] | None:
        """The texts with one mistyped term written as the other text writes it, or None."""
        for c in out:
            if c.change == "lost" and c.before is not None:
                fixed = _typo_fix(c.before.surface, b, self)
                if fixed is not None:
                    return a, fixed
            if c.change == "added" and c.after is not None:
                fixed = _typo_fix(c.after.surface, a, self)
                if fixed is not None:
                    return fixed, b
        return None

    def _changes(self, a: str, b: str) -> list[FactChange]:
        ca, cb = set(CLAUSE_BREAK.split(a or "")), set(CLAUSE_BREAK.split(b or ""))
        only_a, only_b = [c for c in ca - cb if c], [c for c in cb - ca if c]
        if not only_a and not only_b:
            return []
        fa = {f for c in only_a for f in self._clause(c)}
        fb = {f for c in only_b for f in self._clause(c)}
        if fa == fb:
            return []
        return diff_facts(self.extract(a), self.extract(b))

    def hits(self, text: str) -> list[tuple[int, int, Word]]:
        """Word-aligned vocabulary hits (longest first, non-overlapping) of one clause."""
        raw = [(end - len(w.surface) + 1, end + 1, w) for end, w in self._auto.iter(text)]
        if not raw:
            return []
        ok = [h for h in raw if self.seg.aligned(text, h[0], h[1])]
        ok.sort(key=lambda h: (-(h[1] - h[0]), h[0]))
        taken: list[tuple[int, int, Word]] = []
        for h in ok:
            if all(h[1] <= t[0] or h[0] >= t[1] for t in taken):
                taken.append(h)
        taken.sort(key=lambda h: h[0])
        return taken

    # -- one clause ---------------------------------------------------------------------------------------
    def _extract_clause(self, clause: str) -> tuple[Fact, ...]:
        hits = [h for h in self.hits(clause) if h[2].kind != "protect"]
        covered = [(s, e) for s, e, _ in hits]
        facts: list[Fact] = []
        scope = self._scope_words(clause, covered)
        neg_at = _negation_points(scope)
        prev_end = 0
        for s, e, w in hits:
            window = clause[prev_end:s]
            facts.append(
                Fact(
                    w.kind,
                    w.term,
                    negated=_negated(neg_at, clause, s),
                    laterality=_laterality(window, w.surface),
                    site=self._site(window, w),
                    severity=_severity(window, clause[e : e + 3], w.surface),
                    quality=_quality(clause, s, w),
                    span=(s, e),
                    surface=w.surface,
                )
            )
            prev_end = e
        facts += self._generic(clause, covered, neg_at)
        facts += [
            Fact("frequency", FREQUENCY[t], negated=_negated(neg_at, clause, a), span=(a, b), surface=t)
            for a, b, t in scope
            if t in FREQUENCY
        ]
        facts += _quantities(clause, covered, neg_at)
        facts += self._sides(clause, covered, neg_at, facts)
        facts.sort(key=lambda f: f.span)
        return tuple(facts)

    def _sides(self, clause: str, covered, neg_at: list[int], facts: list[Fact]) -> list[Fact]:
        """左/右/双侧 + a body site that no fact of the clause took its side from (左眼红肿, 右手腕骨折).
        The cue must start a word and be followed by a known site, as the rest of its word (左眼) or as the
        next word (左侧 | 乳房), so 左右, 双方, 双胞胎, 两天 are no sides."""
        if not _SIDE_CHARS.search(clause):
            return []
        bounds = self.seg.boundaries(clause)
        out: list[Fact] = []
        i = 0
        while i < len(clause):
            cue = next((c for c in _SIDE_CUES if clause.startswith(c, i)), "")
            if not cue or i not in bounds or any(a <= i < b for a, b in covered):
                i += 1
                continue
            p = i + len(cue)
            p += clause.startswith("的", p)
            site = max((x for x in self.sites if clause.startswith(x, p)), key=len, default="")
            end = p + len(site)
            if not site or end not in bounds and not any(a == end for a, _ in covered):
                i += 1
                continue
            if not any(f.laterality and i < f.span[0] <= end + 1 for f in facts):
                out.append(Fact("site", self.sites[site], negated=_negated(neg_at, clause, i),
                                laterality=_SIDE_CUES[cue], site=self.sites[site], span=(i, end),
                                surface=clause[i:end]))  # fmt: skip
            i = end
        return out

    def _scope_words(self, clause: str, covered) -> list[tuple[int, int, str]]:
        """Negation cues, contrast and frequency words that are words of their own, outside every hit."""
        raw = [(end - len(w) + 1, end + 1, w) for end, w in self._scope_auto.iter(clause)]
        raw = [h for h in raw if not any(a < h[1] and h[0] < b for a, b in covered)]
        raw.sort(key=lambda h: (-(h[1] - h[0]), h[0]))
        taken: list[tuple[int, int, str]] = []
        for h in raw:
            if all(h[1] <= t[0] or h[0] >= t[1] for t in taken) and self.seg.aligned(clause, h[0], h[1]):
                taken.append(h)
        taken.sort()
        return taken

    def _site(self, window: str, w: Word) -> str:
        if w.kind not in ("symptom", "finding"):
            return ""
        tail = window[-4:]
        found = [(end, s) for end, s in self._site_auto.iter(tail) if end == len(tail) - 1]
        return self.sites[max(found, key=lambda x: len(x[1]))[1]] if found else ""

    def _generic(self, clause: str, covered: list[tuple[int, int]], neg_at: list[int]) -> list[Fact]:
        """Body site + pain/itch/swelling that no vocabulary term covers: 左下腹疼 → (下腹, 痛)."""
        out = []
        for end, s in self._site_auto.iter(clause):
            start = end - len(s) + 1
            if any(a <= start < b for a, b in covered):
                continue
            rest = clause[end + 1 : end + 5]
            rest = rest[1:] if rest[:1] in "部口" else rest
            for head in sorted(_HEADS, key=len, reverse=True):
                if rest.startswith(head):
                    stop = end + 1 + clause[end + 1 :].find(head) + len(head)
                    if any(a < stop and start < b for a, b in covered):
                        break
                    lat = _laterality(clause[max(0, start - 3) : start], s)
                    term = f"{self.sites[s]}{_HEADS[head]}"
                    out.append(
                        Fact("symptom", term, negated=_negated(neg_at, clause, start), laterality=lat,
                             site=self.sites[s], severity=_severity(clause[max(0, start - 4) : start],
                             clause[stop : stop + 3]), span=(start, stop), surface=clause[start:stop])
                    )  # fmt: skip
                    covered.append((start, stop))
                    break
        return out


# negation, side, number, severity and direction characters: a change there is another fact, never a typo
_TYPO_BLOCK = set(
    "不没无未非别勿否左右双两单侧一二三四五六七八九十百半几0123456789很极稍略重轻微剧高低升降增减多少大小"
)
_TYPO_BLOCK |= {c for h in _HEADS for c in h}


def _typo_fix(surface: str, text: str, ex: FactExtractor) -> str | None:
    """`text` with `surface` restored where it holds it with exactly one character replaced, or None. The
    window must be no known word (of the vocabulary or jieba's dictionary), and the replaced character no
    negation, side, number, severity, direction (高/低, 增/减) or pain/itch character and part of no fact
    read there, nor of a word the segmenter cuts around it (乳腺疾病 is no mistyped 乳腺炎: 疾 is part of
    疾病; 糖尿病病人 no 糖尿病足). Nor may the text hold the rest of the term as a word of its own with the
    character next to it (糖尿病有什么危害 is no mistyped 糖尿病足, 转移能 no 转移了): that is a shorter
    word, not a mistyped one (for terms of three characters or more)."""
    n = len(surface)
    if n < 2 or surface in text:
        return None
    freq = ex.seg._tk.FREQ
    covered: list[tuple[int, int]] | None = None
    for i in range(len(text) - n + 1):
        win = text[i : i + n]
        diff = [k for k in range(n) if win[k] != surface[k]]
        if len(diff) != 1:
            continue
        k = diff[0]
        if win[k] in _TYPO_BLOCK or surface[k] in _TYPO_BLOCK or not "\u4e00" <= win[k] <= "\u9fff":
            continue
        if win in ex.words or freq.get(win):
            continue
        rest = surface[1:] if k == 0 else surface[:-1] if k == n - 1 else ""
        if len(rest) >= 2 and (rest in ex.words or freq.get(rest)):
            continue
        if covered is None:
            covered = [f.span for f in ex.extract(text) if f.kind in TERM_KINDS or f.kind == "site"]
        if any(a <= i + k < b for a, b in covered):
            continue
        # the words around the character, cut in a window of context (further text does not move them)
        w0 = max(0, i + k - WINDOW)
        if any(b - a >= 2 and a <= i + k - w0 < b for a, b, _ in ex.seg.tokens(text[w0 : i + k + WINDOW])):
            continue
        return text[:i] + surface + text[i + n :]
    return None


def _clauses(text: str) -> Iterator[tuple[int, str]]:
    pos = 0
    for m in CLAUSE_BREAK.finditer(text):
        if m.start() > pos:
            yield pos, text[pos : m.start()]
        pos = m.end()
    if pos < len(text):
        yield pos, text[pos:]


def _shift(f: Fact, by: int) -> Fact:
    if not by:
        return f
    return Fact(f.kind, f.term, f.negated, f.laterality, f.site, f.severity, f.quality, f.value, f.unit,
                (f.span[0] + by, f.span[1] + by), f.surface)  # fmt: skip


def _negation_points(scope: list[tuple[int, int, str]]) -> list[int]:
    """Offsets where a negation's scope starts (after the cue); a contrast word ends it (recorded as -pos)."""
    points: list[int] = []
    for _, e, t in scope:
        if t in NEGATION_CUES:
            points.append(e)
        elif t in CONTRAST:
            points.append(-e)
    return points


def _negated(points: list[int], clause: str, at: int) -> bool:
    state = False
    for p in points:
        if abs(p) > at:
            break
        state = p > 0
    return state


def _laterality(window: str, surface: str) -> str:
    for text in (surface, window[-4:]):
        for w in sorted(LATERALITY, key=len, reverse=True):
            if w in text:
                return LATERALITY[w]
    return ""


# Degree words a wording can hold itself (肚子疼得厉害, 剧烈腹痛): the severity is the wording's, so a rewrite
# to a plain term (腹痛) loses it. One-character ones (很, 极) are left out: they sit inside plain words.
_SURFACE_SEVERITY = ("得厉害", "得很", "得要命", "厉害", "剧烈", "严重", "重度", "中度", "轻度", "轻微")


def _severity(before: str, after: str, surface: str = "") -> str:
    for w in ("得厉害", "得很", "得要命", "厉害"):
        if after.startswith(w):
            return SEVERITY[w]
    for w in _SURFACE_SEVERITY:
        if w in surface:
            return SEVERITY[w]
    tail = before[-4:]
    best = ""
    for w in SEVERITY:
        if (tail.endswith(w) or (len(w) >= 2 and w in tail)) and len(w) > len(best):
            best = w
    return SEVERITY[best] if best else ""


def _quality(clause: str, s: int, w: Word) -> str:
    if w.kind not in ("symptom", "finding") or s == 0:
        return ""
    return QUALITY.get(clause[s - 1], "")


def cn_number(s: str) -> str:
    """'38.5' → '38.5', '三' → '3', '十五' → '15', '两百' → '200', '半' → '0.5', '几' → 'several'."""
    if re.fullmatch(r"\d+(?:\.\d+)?", s):
        return str(float(s)).removesuffix(".0") if "." in s else str(int(s))
    if any(c in s for c in "几数"):
        return "several"
    if s == "半":
        return "0.5"
    total, cur = 0, 0
    for c in s:
        if c in _CN_DIGITS:
            cur = _CN_DIGITS[c]
        elif c in "十百千万":
            mult = {"十": 10, "百": 100, "千": 1000, "万": 10000}[c]
            total += (cur or 1) * mult
            cur = 0
        elif c == "半":
            return str(total + cur + 0.5)
    return str(total + cur)


def _range(num: str) -> str:
    parts = re.split(r"\s*[-~～到至]\s*", num)
    return "-".join(cn_number(p) for p in parts if p)


def _quantities(clause: str, covered, neg_at) -> list[Fact]:
    out = []
    for m in _QUANTITY.finditer(clause):
        s, e = m.span()
        if s == e or any(a <= s < b for a, b in covered):
            continue
        if m.group("code"):
            out.append(Fact("number", m.group("code"), span=(s, e), surface=m.group()))
            continue
        num = m.group("num")
        if not num:
            continue
        dur, unit = m.group("dur"), m.group("unit")
        if not (dur or unit) and not re.search(r"\d", num) and len(num) < 2:
            continue  # a lone 一/两 is a word, not a quantity
        approx = "~" if (m.group("approx1") or m.group("approx2")) else ""
        value = _range(num) + approx
        if dur:
            u = _DURATION_UNITS[dur]
            kind = "number" if u == "age_year" else "duration"
            out.append(Fact(kind, f"{value} {u}", negated=_negated(neg_at, clause, s), value=value, unit=u,
                            span=(s, e), surface=m.group()))  # fmt: skip
        else:
            u = _UNITS[unit] if unit else ""
            if m.group("perday"):
                u = f"{u}/kg/d"  # mg/(kg·d), mg/(kg.d): a weight-based daily dose (audit seed 48213)
            elif m.group("per"):
                u = f"{u}/{m.group('per')}"
            out.append(Fact("number", f"{value} {u}".strip(), value=value, unit=u, span=(s, e),
                            surface=m.group()))  # fmt: skip
    return out


def diff_facts(before: FactSet, after: FactSet) -> list[FactChange]:
    """What changed from `before` to `after`; repeated mentions of the same fact count once."""
    a_by: dict[tuple[str, str], list[Fact]] = defaultdict(list)
    b_by: dict[tuple[str, str], list[Fact]] = defaultdict(list)
    for f in before:
        if f not in a_by[f.key]:
            a_by[f.key].append(f)
    for f in after:
        if f not in b_by[f.key]:
            b_by[f.key].append(f)
    out: list[FactChange] = []
    for key in list(dict.fromkeys([*a_by, *b_by])):
        xs = [f for f in a_by.get(key, []) if f not in b_by.get(key, [])]
        ys = [f for f in b_by.get(key, []) if f not in a_by.get(key, [])]
        for x in xs:
            if ys:
                y = max(ys, key=lambda y: _agreement(x, y))
                ys.remove(y)
                out.append(FactChange(x.kind, _first_difference(x, y), x, y))
            elif key not in b_by:
                out.append(FactChange(x.kind, "lost", x, None))
            else:
                out.append(FactChange(x.kind, _first_difference(x, b_by[key][0]), x, b_by[key][0]))
        for y in ys:
            if key in a_by:
                out.append(FactChange(y.kind, _first_difference(a_by[key][0], y), a_by[key][0], y))
            else:
                out.append(FactChange(y.kind, "added", None, y))
    return out


_ATTRS = ("negated", "laterality", "site", "severity", "quality", "value")


def _agreement(x: Fact, y: Fact) -> int:
    return sum(getattr(x, a) == getattr(y, a) for a in _ATTRS)


def _first_difference(x: Fact, y: Fact) -> str:
    for a in _ATTRS:
        if getattr(x, a) != getattr(y, a):
            return "negation" if a == "negated" else a
    return "value"


@cache
def default_extractor() -> FactExtractor:
    return FactExtractor(shipped_words())


def extract_facts(text: str) -> FactSet:
    """The clinical facts of `text` with the shipped vocabulary."""
    return default_extractor().extract(text)


def fact_changes(a: str, b: str, *, typos: bool = False) -> list[FactChange]:
    """How b's clinical facts differ from a's ([] = the same facts); typos=True tolerates a term mistyped
    by one character (see FactExtractor.changes)."""
    return default_extractor().changes(a, b, typos=typos)
