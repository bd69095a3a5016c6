"""Lexicon paraphrasing: word-aware, sense-typed replacement of colloquial ↔ clinical wordings, and a
clinical-fact check on every variant.

A match must cover whole words of the jieba segmentation (很困难 holds no 很困) and must not cross another
known wording (伴发烧心: 发烧 or 烧心 — ambiguous, so neither is touched). A match is rewritten only by an
exact mapping, or by a narrower/broader one whose context rule holds for this sample (the variant then
records the specificity change in its augmentation detail). Every candidate also passes the guards
(medaug/guards.py: numbers, doses, durations, drugs, ICD codes, laterality, negation scope, kind).
Then the variant's clinical facts (medaug/facts.py) must equal its parent's, except for the recorded
specificity changes: otherwise it is rejected with a reason code naming the fact kind that changed, and
the rejection carries both fact sets.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any

from augmenters.derive import derive_row, rng_for
from augmenters.slots import slot_misfit
from augmenters.temperature import fever_grade
from medaug.facts import CLAUSE_BREAK, FactExtractor, Segmenter, lexicon_words, table_words
from medaug.guards import check_candidate, check_substitution, protected_spans
from medaug.lexicon import MIN_MATCH_LEN, Candidate, Lexicon

AUGMENTER = "lexicon_paraphrase"
PARAPHRASE_FIELDS = ("instruction", "input", "output")
ANSWER_FIELDS = frozenset({"output"})
REJECT_PREFIX = "lexicon_paraphrase:fact_changed"
# Particles and degree words around a bare mention (有点儿拉肚子了 → 拉肚子), stripped for whole-line lookup.
_MENTION_EDGES = (
    "有点儿", "有点", "有些", "一直", "老是", "总是", "经常", "比较", "特别", "非常", "还是", "感觉", "觉得",
    "很", "也", "都", "还", "就", "了", "的", "啊", "呢", "吧", "呀",
)  # fmt: skip


@dataclass(frozen=True)
class Match:
    start: int
    end: int
    key: str
    candidates: tuple[str, ...]
    typed: tuple[Candidate, ...] = ()

    def candidate(self, target: str) -> Candidate | None:
        return next((c for c in self.typed if c.target == target), None)


@cache
def fact_extractor(lexicon: Lexicon) -> FactExtractor:
    """The fact extractor over this lexicon's wordings plus the shipped tables (one per lexicon)."""
    return FactExtractor([*lexicon_words(lexicon), *table_words()])


def _clause_bounds(text: str) -> list[tuple[int, int]]:
    out, pos = [], 0
    for m in CLAUSE_BREAK.finditer(text):
        out.append((pos, m.start()))
        pos = m.end()
    out.append((pos, len(text)))
    return out


def word_aligned(text: str, start: int, end: int, clauses: list[tuple[int, int]], seg: Segmenter) -> bool:
    """Whether text[start:end] begins and ends on word boundaries of its clause."""
    for a, b in clauses:
        if a <= start and end <= b:
            return seg.aligned(text[a:b], start - a, end - a)
    return False


_CLAUSE_PARTICLES = re.compile("[了着就得地的吗呢吧有一]")


def noun_like(wording: str) -> bool:
    """Whether a colloquial wording can stand where a clinical noun stood (流鼻涕, 肚子疼, 心慌), rather than
    being a clause of its own (烧起来了, 一按就疼, 子宫里有肌瘤, 摔了一跤)."""
    return len(wording) <= 4 and not _CLAUSE_PARTICLES.search(wording)


# A term followed by one of these is the head of a longer name (甲减性心脏病, 感冒灵颗粒, 骨质疏松性骨折,
# 腹泻奶粉, 甲亢危象).
_COMPOUND_SUFFIX = "性型样灵片丸散膏液剂宁清颗胶症病屎来冲药茶奶危"
# ... or a few characters later, with no break, a function word or a verb in between: a proprietary drug
# name (感冒驱毒灵, 咳嗽糖浆; 感冒了吃了两片 is no name).
_DRUG_NAME_TAIL = re.compile(
    r"[^\s，。、；：！？,.;:!?（）()“”\"了吃喝用服和与及的是就都也还在要不很有没又或等个天次]{1,4}?"
    r"(?:颗粒|胶囊|口服液|冲剂|糖浆|注射液|片|丸|灵|散|膏|贴|丹)"
)
# Into colloquial wording a term is rewritten only after a word boundary a lay speaker would use: text
# start, punctuation, or a function word or verb that takes it as object (有, 没, 出现, 引起 ...); a
# preceding noun or modifier makes it part of a compound (纵隔放疗, 感染性肺炎, 眼睑湿疹).
_OPEN_BEFORE = set(
    "有没无未非否认诉感觉伴因致引示及并且而后前时常或见疑似查为即的是了和与就都也还在会要不很太再又现起患得说过点些种个次天"
)


_FORMAL = re.compile(
    r"；|、.*、|临床|表现|三联征|刺激征|综合征|并发症|不良反应|诊断|可致|则见|之一|症状|等症"
)


def _sentence(text: str, start: int, end: int) -> str:
    left = max(text.rfind(c, 0, start) for c in "。！？!?\n") + 1
    rights = [i for i in (text.find(c, end) for c in "。！？!?\n") if i >= 0]
    return text[left : min(rights) if rights else len(text)]


_NAMED = re.compile(r"简称|俗称|又称|也称|称为|叫做|又叫|也叫|上说就是|就是指|是指|全称")
_NAMING = re.compile(r"(?:俗称|又称|也称|简称|称为|叫做|所谓|又叫|也叫|全称)[为是“\"「『]?$")


def compound(
    text: str, start: int, end: int, *, into_colloquial: bool, diseases: frozenset[str] = frozenset()
) -> bool:
    """Whether text[start:end] is part of a longer name rather than a word on its own, or is being named
    (癫痫俗称羊癫疯: the words themselves are the subject, so neither may be swapped). A wording right before
    a disease name is its modifier (腹痛癫痫 is abdominal epilepsy, not stomach ache and epilepsy)."""
    if end < len(text) and text[end] in _COMPOUND_SUFFIX:
        return True
    if _DRUG_NAME_TAIL.match(text, end):
        return True
    if diseases and any(text[end : end + k] in diseases for k in range(2, 7)):
        return True
    if text[end : end + 2] == "不" + text[end - 1 : end]:
        return True  # 大便稀不稀, 尿酸高不高: an A-not-A question is built on the wording itself
    if _NAMING.search(text[max(0, start - 4) : start]) or _NAMED.search(_sentence(text, start, end)):
        return True
    if not into_colloquial:
        return False
    if _FORMAL.search(_sentence(text, start, end)):
        return True  # a definition or an enumeration of findings: clinical register is the point
    if start == 0:
        return False
    before = text[start - 1]
    return (before.isalnum() or "\u4e00" <= before <= "\u9fff") and before not in _OPEN_BEFORE


def _repeats(text: str, start: int, end: int, target: str, source: str = "") -> bool:
    """Whether the target already stands in the same clause or the one before it (恶心难耐想吐 → 恶心难耐恶心,
    偶尔恶心，想吐的感觉 → 恶心，恶心的感觉 read as a stutter), or brings in a word of two characters the
    clause or the next one already has and the source lacks (大便一次先是便秘 → 大便一次先是大便不通, 大便发白，
    像陶土一样 → 陶土样便，像陶土一样)."""
    a = max(text.rfind(c, 0, start) for c in "，,。；;！？!?、\n") + 1
    rights = [i for i in (text.find(c, end) for c in "，,。；;！？!?、\n") if i >= 0]
    b = min(rights) if rights else len(text)
    prev = max(text.rfind(c, 0, max(0, a - 1)) for c in "，,。；;！？!?、\n") + 1 if a else a
    left = max(text.rfind(c, 0, start) for c in "。！？!?\n") + 1
    rights = [i for i in (text.find(c, end) for c in "。！？!?\n") if i >= 0]
    sentence = text[left:start] + "\u3000" + text[end : min(rights) if rights else len(text)]
    if target in text[prev:start] or target in text[end:b] or target in sentence:
        return True
    if target.startswith(("晚上", "夜里", "夜间")) and re.search("睡|夜|晚上", sentence):
        return True  # 在睡觉时磨牙 → 在睡觉时晚上磨牙
    nxt = [i for i in (text.find(c, b + 1) for c in "，,。；;！？!?、\n") if i >= 0]
    clause = text[a:start] + text[end : min(nxt) if nxt else len(text)]  # and the clause after (像陶土一样)
    return any(
        target[i : i + 2] in clause and target[i : i + 2] not in source for i in range(len(target) - 1)
    )


@cache
def _synonyms(lexicon: Lexicon) -> dict[str, frozenset[str]]:
    """Wording → the other wordings of its canonical term (exact synonyms)."""
    by_term: dict[str, set[str]] = {}
    for w, t in lexicon.canonical.items():
        by_term.setdefault(t, {t}).add(w)
    return {w: frozenset(ws - {w}) for ws in by_term.values() for w in ws}


_BREAKS = "，,。；;！？!?、\n"


def _synonym_near(text: str, start: int, end: int, key: str, lexicon: Lexicon) -> bool:
    """Whether a synonym of the wording stands in its clause or the clauses either side (有点腹泻拉肚子,
    恶心，想吐): a rewrite would make the two read as a stutter."""
    syn = [w for w in _synonyms(lexicon).get(key, ()) if len(w) >= 2]
    if not syn:
        return False
    a = max(text.rfind(c, 0, start) for c in _BREAKS) + 1
    a = max(text.rfind(c, 0, max(0, a - 1)) for c in _BREAKS) + 1 if a else a
    b = end
    for _ in range(2):
        nxt = [i for i in (text.find(c, b) for c in _BREAKS) if i >= 0]
        b = min(nxt) + 1 if nxt else len(text)
    around = text[a:start] + "\u3000" + text[end:b]
    return any(w in around for w in syn)


# A result complement after a pain verb (疼醒, 痛哭, 疼死).
_RESULT_AFTER = frozenset("醒哭死晕")
# A motion complement makes the wording a thing that moves (有胀气上来: gas coming up, not bloating).
_MOTION_AFTER = re.compile(r"^(?:上来|上去|出来|下去|上冲|往上)")


# Before a clinical noun no degree adverb (好胖了 → 好体重增加), and no 都/也 before a negated predicate
# (吃什么都没胃口 → 都食欲不振).
_DEGREE_BEFORE = re.compile(r"(?:越来越|变得|特别|非常|十分|好|很|太|挺|更|超|蛮|许多|很多|好多|大量)$")
# A predicate with a complement (瘦了几圈, 胖了十斤): the clinical noun cannot take it.
_COMPLEMENT_AFTER = re.compile(r"^[几一二两三四五六七八九十好很多不许些点\d]")
_ALSO_BEFORE = re.compile(r"(?:都|也|一点儿|一点)$")  # 一点儿没胃口 is "no appetite at all"
# An attribute of food, not a symptom: 少吃不消化和刺激性食物, 不要吃闹肚子的食物.
_FOOD_AFTER = re.compile(r"^(?:的|性|和[^，,。；;！？!?\n]{0,6}?)(?:食物|食品|东西)")
_FOOD_NEAR = re.compile(r"^[^，,。；;！？!?\n]{0,8}?(?:食物|食品)")
_EATING_BEFORE = re.compile(r"吃|食|喝|忌")
# A verb-headed colloquial wording after a verb (有犯恶心, 出现长疹子).
_VERB_HEAD = set("犯长出起流拉打闹发冒吐喘憋")
_VERB_BEFORE = re.compile(r"(?:有|出现|伴|伴有|伴发|见|诉|偶见)$")
_COORD_BEFORE = re.compile(r"[和与及、跟]$")
_OFTEN_BEFORE = re.compile(r"(?:总是|老是|经常|常常|一直|总|老|有点|有些|一点)$")


@cache
def _sites() -> dict[str, str]:
    from medaug.facts import fact_words

    return {w.surface: w.term for w in fact_words() if w.kind == "site"}


def _lead_site(s: str) -> str:
    return max((x for x in _sites() if s.startswith(x)), key=len, default="")


def _lead_site_end(s: str) -> str:
    return max((x for x in _sites() if s.endswith(x)), key=len, default="")


def _site_in(s: str) -> set[str]:
    return {c for x, c in _sites().items() if x in s}


def awkward(
    text: str, start: int, end: int, source: str, target: str, *, into_colloquial: bool
) -> str | None:
    """Why replacing text[start:end] (source) by target would garble the sentence or move a site, or None.
    Reason codes: word_boundary (an erhua 儿 belongs to the word: 没劲儿), degree_adverb, food_attribute,
    clause_wording (a verb-headed wording after a verb), coordination (牙齿和鼻子出血: the head is shared,
    so rewriting the last member drops it from the others), site_repeated (腹部胀气 → 腹部腹胀), site (a
    target that names a site the clause already names differently: 四肢的乏力 → 四肢的全身无力)."""
    before = text[max(0, start - 4) : start]
    if text[end : end + 1] == "儿":
        return "word_boundary"
    if slot_misfit(text, start, end, source, target):
        return "slot"
    if _MOTION_AFTER.search(text[end:]):
        return "clause_wording"
    if source[-1:] in "疼痛" and text[end : end + 1] in _RESULT_AFTER and target[-1:] != source[-1:]:
        return "clause_wording"  # 被胃疼醒: the pain is a verb with its result, 上腹痛醒 is no word
    if not into_colloquial:
        predicate = source[:1] in "没不" or source.endswith("了")
        if _DEGREE_BEFORE.search(before) or (_ALSO_BEFORE.search(before) and predicate):
            return "degree_adverb"
        if source.endswith("了") and _COMPLEMENT_AFTER.search(text[end:]):
            return "clause_wording"
        a = max(text.rfind(c, 0, start) for c in "，,。；;！？!?\n") + 1
        if _FOOD_AFTER.search(text[end:]) or (
            _FOOD_NEAR.search(text[end:]) and _EATING_BEFORE.search(text[a:start])
        ):
            return "food_attribute"  # 不要吃辛辣闹肚子刺激性的食物
        if before.endswith(("把", "含")) or (predicate and before.endswith("的")):
            return "clause_wording"  # 把体重减轻至…, 恢复原先的胖了
    elif target[:1] in _VERB_HEAD and _VERB_BEFORE.search(before):
        return "clause_wording"
    elif before.endswith("不") and _lead_site(target):
        return "negation"  # 不反酸 → 不胃里冒酸: the negation belongs inside the lay wording
    elif _lead_site(target) and (_DEGREE_BEFORE.search(before) or before.endswith("的")):
        return "degree_adverb"  # 很乏力 → 很全身无力, 很重的口臭 → 很重的嘴巴臭
    elif target.startswith(("总", "老", "经常", "一直")) and _OFTEN_BEFORE.search(before):
        return "repetition"  # 总是尿频 → 总是老想尿尿, 有点尿频 → 有点总想小便
    elif target.startswith(("微微", "稍微", "有点", "有些", "轻微")) and _OFTEN_BEFORE.search(before):
        return "repetition"  # 有一点低热 → 有一点微微发烧
    src_site = _lead_site(source)
    if not into_colloquial and not src_site and _lead_site_end(before):
        return "site"  # 胃发烧 is a burning stomach, 胃怕冷 a stomach that dislikes cold: no fever, no chills
    if src_site and _COORD_BEFORE.search(before) and _lead_site_end(text[max(0, start - 5) : start - 1]):
        return "coordination"
    tgt_site = _lead_site(target)
    if tgt_site:
        canon = _sites()[tgt_site]
        stem = before.removesuffix("部").removesuffix("的")
        if any(stem.endswith(x) and c == canon for x, c in _sites().items()):
            return "site_repeated"
        clause = text[max(text.rfind(c, 0, start) for c in _BREAKS) + 1 : start]
        if canon in _site_in(clause):
            return "site_repeated"  # 双眼有眼部分泌物增多, 胸口总是出现胸部疼痛
        if not src_site and canon not in _site_in(source) and _site_in(stem) - {canon}:
            return "site"  # 四肢的乏力 → 四肢的全身无力
    return None


def allowed(c: Candidate, text: str, start: int, end: int, area: str | None) -> bool:
    """Exact mappings always; narrower/broader only where their context rule holds; related never."""
    if c.relation == "exact" and not c.context:
        return True
    if c.relation == "related" or not c.context:
        return False
    from medaug.guards import parse_context

    return parse_context(c.context).holds(text, start, end, area)


_COLOURS = frozenset("黑黄白绿红褐灰青紫")


def _runs_on(text: str, end: int, key: str) -> bool:
    """Whether the text goes on with the wording's own last word: a colour after a colour (大便黑黄黑黄的 is
    no 大便黑) or a reduplication (大便黑黑的)."""
    nxt = text[end : end + 1]
    return bool(nxt) and (nxt == key[-1] or (key[-1] in _COLOURS and nxt in _COLOURS))


# Text in another register, where no rewrite reads right: TCM doctrine (腑气不通则胃痛: 胃痛 is a TCM disease
# name, not 上腹痛), and a formal case record (某女，45岁…症见…), which takes no lay wording; a patient's own
# （女，27岁） is no case record.
_TCM = re.compile(r"腑气|脏腑|脾胃虚|脾虚|肝郁|气滞|血瘀|湿热|痰湿|阴虚|阳虚|气虚|辨证|证型|不通则")
_CASE = re.compile(
    r"症见|无明显诱因|(?:某|患者|病人)[男女][，,]|舌[质苔淡红]|苔[白黄薄厚腻]|脉[弦细滑数沉浮濡缓]"
)


def formal_register(text: str) -> str | None:
    """ "tcm" (no rewrite at all), "case" (no lay wording), or None."""
    if _TCM.search(text):
        return "tcm"
    return "case" if _CASE.search(text) else None


def find_matches(
    text: str,
    lexicon: Lexicon,
    direction: str,
    skipped: Counter[str],
    area: str | None = None,
    *,
    colloquial_ok: bool = True,
    register: str | None = None,
) -> list[Match]:
    """Longest, non-overlapping, word-aligned matches that at least one candidate may safely replace.
    colloquial_ok=False (a doctor's answer): no clinical term is rewritten into lay wording. register: the
    sample's (see formal_register); the text's own when not given."""
    auto = lexicon.automaton(direction)
    if auto is None or not text:
        return []
    register = register or formal_register(text)
    hits = [(end - len(key) + 1, end + 1, key, cands) for end, (key, cands) in auto.iter(text)]
    if not hits:
        return []
    clauses = None
    spans = None
    out: list[Match] = []
    for start, end, key, cands in sorted(h for h in hits if h[3]):
        # Inside a longer known wording (气管炎 in 支气管炎): not this wording.
        if any(s <= start and end <= e and e - s > end - start for s, e, _, _ in hits):
            continue
        # Another known wording crossing this one (发烧|烧心 in 伴发烧心): the boundary is ambiguous.
        if any(s < start < e < end or start < s < end < e for s, e, _, _ in hits):
            skipped["ambiguous_boundary"] += 1
            continue
        if clauses is None:
            clauses = _clause_bounds(text)
        if not word_aligned(text, start, end, clauses, fact_extractor(lexicon).seg) or _runs_on(
            text, end, key
        ):
            skipped["word_boundary"] += 1
            continue
        if spans is None:
            spans = protected_spans(text)
        ok: list[Candidate] = []
        reason = None
        into_colloquial = key in lexicon.clinical_terms
        if register == "tcm" or (register == "case" and into_colloquial):
            skipped["register"] += 1
            continue
        for c in cands:
            if len(c.target) < MIN_MATCH_LEN:
                continue  # 咳嗽 → 咳: a one-character wording reads as a fragment in running text
            why = None if allowed(c, text, start, end, area) else "sense"
            why = why or check_candidate(lexicon, key, c)
            why = why or check_substitution(text, start, end, c.target, spans)
            if why is None and into_colloquial and c.target not in lexicon.clinical_terms:
                # 发热 → 烧起来了 / 摸到一个包: a clause where the text has a noun
                why = None if noun_like(c.target) else "clause_wording"
            if why is None:
                ok.append(c)
            else:
                reason = reason or why
        if ok and not colloquial_ok and into_colloquial:
            ok, reason = [c for c in ok if c.target in lexicon.clinical_terms], reason or "answer_register"
        if ok:
            odd = [awkward(text, start, end, key, c.target, into_colloquial=into_colloquial) for c in ok]
            reason = reason or next((w for w in odd if w), None)
            ok = [c for c, w in zip(ok, odd, strict=True) if w is None]
        if ok and compound(text, start, end, into_colloquial=into_colloquial, diseases=_diseases(lexicon)):
            skipped["compound"] += 1
        elif ok and (
            not (ok := [c for c in ok if not _repeats(text, start, end, c.target, key)])
            or _synonym_near(text, start, end, key, lexicon)
        ):
            skipped["repetition"] += 1
        elif ok:
            out.append(Match(start, end, key, tuple(c.target for c in ok), tuple(ok)))
        elif reason and reason != "sense":
            skipped[reason] += 1
    return out


@cache
def _diseases(lexicon: Lexicon) -> frozenset[str]:
    """Disease names of the lexicon (terms and variants of kind disease), for the modifier compound rule."""
    return frozenset(
        w for e in lexicon.entries if e.kind == "disease" for w in (e.term, *e.variants) if len(w) >= 2
    )


def apply(text: str, matches: list[Match], choices: list[str | None]) -> str:
    parts, pos = [], 0
    for m, c in zip(matches, choices, strict=True):
        if c is None:
            continue
        parts += [text[pos : m.start], c]
        pos = m.end
    parts.append(text[pos:])
    return "".join(parts)


def normalize_line(
    line: str, lexicon: Lexicon, direction: str = "to_clinical", skipped: Counter[str] | None = None
) -> str:
    """A line with every safe exact match mapped to its term; a whole-line (or whole-clause) mention maps
    as a unit through the lexicon's normalisation pairs."""
    skipped = skipped if skipped is not None else Counter()
    whole = _whole_mention(line, lexicon, direction)
    if whole is not None:
        return whole
    pieces = re.split(r"([，,。；;！？!?])", line)
    if len(pieces) > 1:
        return "".join(
            p if i % 2 else normalize_line(p, lexicon, direction, skipped) for i, p in enumerate(pieces)
        )
    matches = find_matches(line, lexicon, direction, skipped)
    exact = [next((c.target for c in m.typed if c.relation == "exact"), None) for m in matches]
    return apply(line, matches, exact)


def _whole_mention(line: str, lexicon: Lexicon, direction: str) -> str | None:
    stripped = line.strip()
    whole = lexicon.lookup(stripped, direction)
    if whole is None and stripped:
        core = _strip_edges(stripped)
        whole = lexicon.lookup(core, direction) if core != stripped else None
        if whole is None and direction == "to_clinical":
            whole = fever_grade(stripped)
    return whole


def _strip_edges(s: str) -> str:
    changed = True
    while changed and s:
        changed = False
        for w in _MENTION_EDGES:
            if s.startswith(w) and len(s) > len(w):
                s, changed = s[len(w) :], True
            if s.endswith(w) and len(s) > len(w):
                s, changed = s[: -len(w)], True
    return s


def variants_of(
    row: dict[str, Any],
    lexicon: Lexicon,
    direction: str,
    n: int,
    rng: random.Random,
    fields: tuple[str, ...],
    skipped: Counter[str],
) -> list[tuple[dict[str, str], list[dict[str, Any]]]]:
    """Up to `n` distinct rewrites of the row's fields, each with its exact substitutions."""
    area = row.get("area")
    # The answer is the doctor's: lay wording there reads wrong (偶见大便不通, 胃粘膜充血、浮肿), so only the
    # asker's fields are made colloquial.
    # TCM doctrine in the answer makes 胃痛 in the question a TCM disease name too: the register is the sample's.
    registers = {formal_register(row[f] or "") for f in fields}
    register = "tcm" if "tcm" in registers else "case" if "case" in registers else None
    found = {
        f: find_matches(
            row[f] or "",
            lexicon,
            direction,
            skipped,
            area,
            colloquial_ok=f not in ANSWER_FIELDS,
            register=register,
        )
        for f in fields
    }
    slots = [(f, m) for f in fields for m in found[f]]
    if not slots:
        return []
    seen: set[tuple[str, ...]] = set()
    out = []
    for _ in range(n * 3):
        if len(out) == n:
            break
        picks: list[str | None] = [rng.choice(m.candidates) if rng.random() < 0.8 else None for _, m in slots]
        if all(p is None for p in picks):
            j = rng.randrange(len(slots))
            picks[j] = rng.choice(slots[j][1].candidates)
        sig = tuple(p or "" for p in picks)
        if sig in seen:
            continue
        seen.add(sig)
        texts, subs, i = {}, [], 0
        for f in fields:
            ms = found[f]
            chosen = picks[i : i + len(ms)]
            i += len(ms)
            if any(c is not None for c in chosen):
                texts[f] = apply(row[f], ms, chosen)
                for m, c in zip(ms, chosen, strict=True):
                    if c is None:
                        continue
                    sub: dict[str, Any] = {"field": f, "start": m.start, "from": m.key, "to": c}
                    typed = m.candidate(c)
                    if typed is not None and typed.relation != "exact":
                        sub |= {"relation": typed.relation, "context": typed.context}
                    subs.append(sub)
        out.append((texts, subs))
    return out


def unexplained_changes(extractor: FactExtractor, row: dict[str, Any], texts: dict[str, str], subs):
    """Fact changes of each rewritten field that no recorded specificity change explains."""
    specific = {(s["from"], s["to"]) for s in subs if s.get("relation")}
    known = {w for pair in specific for w in pair}
    canon = {w: extractor.words[w].term for w in known if w in extractor.words}
    explained = set(canon.values()) | known
    out = []
    for f, new in texts.items():
        for c in extractor.changes(row[f] or "", new):
            terms = {x.term for x in (c.before, c.after) if x is not None}
            if specific and c.change in ("lost", "added") and terms <= explained:
                continue
            out.append((f, c))
    return out


def paraphrase_rows(
    rows: list[dict[str, Any]],
    lexicon: Lexicon,
    *,
    variants: int = 2,
    seed: int = 0,
    direction: str = "both",
    fields: tuple[str, ...] = PARAPHRASE_FIELDS,
    stats: Counter[str] | None = None,
    rejects: list[tuple[str, str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Derived rows (parents not included). `stats` receives variants made, guard skips and fact-check
    rejections by kind; `rejects` receives (parent id, reason, detail JSON) for every rejected variant."""
    stats = stats if stats is not None else Counter()
    rejects = rejects if rejects is not None else []
    extractor = fact_extractor(lexicon)
    out = []
    for row in rows:
        skipped: Counter[str] = Counter()
        rng = rng_for(seed, row["id"], AUGMENTER)
        for texts, subs in variants_of(row, lexicon, direction, variants, rng, fields, skipped):
            bad = unexplained_changes(extractor, row, texts, subs)
            if bad:
                code = bad[0][1].code
                stats[f"paraphrase_rejected_{code}"] += 1
                rejects.append(
                    (row["id"], f"{REJECT_PREFIX}:{code}", reject_detail(extractor, row, texts, subs, bad))
                )
                continue
            detail: dict[str, Any] = {"direction": direction, "substitutions": subs}
            specific = [s for s in subs if s.get("relation")]
            if specific:
                detail["specificity_changed"] = [
                    {"from": s["from"], "to": s["to"], "relation": s["relation"], "context": s["context"]}
                    for s in specific
                ]
                stats["paraphrase_specificity_changed"] += 1
            out.append(derive_row(row, AUGMENTER, detail, **texts))
        for k, v in skipped.items():
            stats[f"paraphrase_skipped_{k}"] += v
    stats["paraphrase_variants"] += len(out)
    return out


def reject_detail(extractor: FactExtractor, row: dict[str, Any], texts, subs, bad) -> str:
    """Both fact sets of every changed field, the changes and the substitutions that caused them."""
    fields = sorted({f for f, _ in bad})
    return json.dumps(
        {
            "augmenter": AUGMENTER,
            "substitutions": subs,
            "changes": [{"field": f, **c.to_dict()} for f, c in bad],
            "facts_before": {f: extractor.extract(row[f] or "").to_list() for f in fields},
            "facts_after": {f: extractor.extract(texts[f]).to_list() for f in fields},
        },
        ensure_ascii=False,
        sort_keys=True,
    )
