"""Slot fit of a substitution: whether the new wording can stand where the old one stood grammatically.

A verb-phrase wording (起疹子, 做放疗, 拉水, 睡不醒) is a predicate: in a noun slot it reads wrong (无长疹子,
细菌性的长疹子, 起起疹子, 淋巴瘤的做放疗). A noun term (皮疹, 黑便, 水样便, 睡眠差) is not a predicate: where a
verb phrase was the predicate it reads wrong (都不水样便, 都睡眠差了, 解的黑便的, 孩子陶土样便). The part of
speech is inferred from the wording's shape, not from jieba's tags, which call 出疹子 a noun and 放疗 a verb.
Lexicalised verb-object words (拉肚子, 流鼻涕, 打呼噜, 发烧) behave as nouns too and are not predicates here.
"""

from __future__ import annotations

import re

# Verbs that make a predicate of a noun object (出/起/长 疹子, 做 放疗, 解 大便, 吃东西噎); two-character
# words (吃奶) are lexicalised and left out.
_LIGHT_VERBS = frozenset("出起长做解吃喝")
# Verbs a target may add to a noun source (清鼻涕 → 流清涕, 皮疹 → 出疹子): the result is a verb phrase.
_ADDED_VERBS = frozenset("流出起长做解吃喝拉打")
# Body outputs a lay predicate is said of (大便黑色, 大便发白, 尿很少).
_SUBJECTS = ("大便", "小便", "尿")
# Head characters of a noun term (皮疹, 黑便, 水样便, 荨麻疹, 脓痰) and a state said of a noun (睡眠差).
_NOUN_HEADS = frozenset("便疹症病炎物瘤斑块屎痰涕差")
# A predicate slot: an adverb before (都/也/不/没 …, but not 没有, which takes nouns), a person as subject,
# an aspect or complement after, or the clause-final 的 of a description (大便黑色的。).
_ADVERB_BEFORE = re.compile(
    r"(?:(?<!没)(?:都|也|不|还|就|又|很|太|总|老|常|再|才|会|要|能|在)|已经|一直|经常|总是|老是|容易|(?<!没)没)$"
)
_PERSON_BEFORE = re.compile(r"(?:孩子|宝宝|宝贝|小孩|儿子|女儿|老公|老婆|妈妈|爸爸|患者|病人|我|他|她|你)$")
_ASPECT_AFTER = re.compile(r"^(?:[了过着得]|的(?:$|[，,。；;！？!?\n吗呢啊呀了]))")
# A noun slot: a modifier, a negation of existence or a verb that takes the wording as object.
_NOUN_SLOT_BEFORE = re.compile(
    r"(?:[的之性无未起出长做见伴]|有|一点|一些|好些|许多|很多|不少|这种|那种|一片)$"
)
# A noun subject: the wording begins its clause and a predicate about it follows (皮疹消了吗, 皮疹长在哪).
_SUBJECT_AFTER = re.compile(r"^(?:消|退|好了|好转|减轻|变|是|长在|分布|多不多|多吗|严重|明显|还在|颜色)")
# A degree adverb grades an adjective-like word (很嗜睡), not a verb phrase (很睡不醒, 很总是犯困).
_DEGREE_BEFORE = re.compile(r"(?:很|太|非常|特别|十分|挺|更|越来越|比较)$")


def predicate_wording(w: str) -> bool:
    """Whether a wording is a verb phrase that can only be a predicate: a light verb with its object (起疹子,
    做放疗), 拉 with a one-character or term object (拉水, 拉黑便), a verb with a potential or negated
    complement (睡不好, 睡不醒, 吃不下), or a lay subject-predicate clause (大便稀, 大便黑色, 大便发白)."""
    if len(w) < 2:
        return False
    if len(w) >= 3 and any(c in "不没" for c in w[1:-1]):
        return True
    if w[0] in _LIGHT_VERBS and len(w) >= 3:
        return True
    if w[0] == "拉" and (len(w) == 2 and w[1] in "水血屎" or w.endswith("便")):
        return True
    return any(w.startswith(s) and len(w) > len(s) for s in _SUBJECTS)


def noun_term(w: str) -> bool:
    """Whether a wording is a noun (or a state said of a noun) that cannot be a predicate of its own."""
    return w[-1:] in _NOUN_HEADS and not predicate_wording(w)


def slot_misfit(text: str, start: int, end: int, source: str, target: str) -> bool:
    """Whether target cannot fill the slot source fills in text[start:end] (see the module docstring)."""
    before, after = text[max(0, start - 4) : start], text[end : end + 3]
    adds_verb = len(target) >= 3 and target[0] in _ADDED_VERBS and target[0] not in source
    if (predicate_wording(target) or adds_verb) and not predicate_wording(source):
        subject = (not before or before[-1] in "，,。；;！？!?、\n") and _SUBJECT_AFTER.search(after)
        return bool(_NOUN_SLOT_BEFORE.search(before) or _DEGREE_BEFORE.search(before) or subject)
    if target[:1] in "老总" and _DEGREE_BEFORE.search(before):
        return True
    if noun_term(target) and predicate_wording(source):
        # A person before a lay clause about the stool (孩子大便有粘液 → 孩子黏液便) still reads as a
        # description; before a verb phrase (宝宝拉水 → 宝宝水样便) the noun has no verb.
        person = _PERSON_BEFORE.search(before) and not source.startswith(_SUBJECTS)
        return bool(_ADVERB_BEFORE.search(before) or person or _ASPECT_AFTER.search(after))
    return False
