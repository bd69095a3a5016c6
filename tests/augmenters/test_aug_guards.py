"""Each guard: the substitution that would break it is skipped and counted; safe ones still happen."""

from __future__ import annotations

from collections import Counter

from augmenters.paraphrase import find_matches, normalize_line
from medaug.lexicon import Lexicon, LexiconEntry


def lex(*entries: tuple[str, list[str]]) -> Lexicon:
    return Lexicon([LexiconEntry(t, tuple(v)) for t, v in entries])


def run(text: str, lexicon: Lexicon, direction: str) -> tuple[str, Counter[str]]:
    skipped: Counter[str] = Counter()
    return normalize_line(text, lexicon, direction, skipped), skipped


def test_negated_mention_keeps_its_negation(core_lexicon):
    out, skipped = run("患者无胸痛，诉胸闷", core_lexicon, "to_colloquial")
    assert out.startswith("患者无胸口疼")
    assert not skipped


def test_double_negation_is_skipped_and_counted():
    lexicon = lex(("食欲不振", ["不想吃饭"]), ("胸痛", ["胸口疼"]))
    out, skipped = run("否认食欲不振，胸痛", lexicon, "to_colloquial")
    assert out == "否认食欲不振，胸口疼"
    assert skipped == Counter({"negation": 1})


def test_replacement_that_breaks_negation_scope_is_skipped():
    lexicon = lex(("胸痛", ["胸口疼，压得慌"]))
    out, skipped = run("无胸痛", lexicon, "to_colloquial")
    assert out == "无胸痛"
    assert skipped["negation"] == 1


def test_laterality_is_never_changed():
    lexicon = lex(("偏瘫", ["左边身子不能动"]), ("头痛", ["头疼"]))
    out, skipped = run("右侧偏瘫伴头痛", lexicon, "to_colloquial")
    assert out == "右侧偏瘫伴头疼"
    assert skipped == Counter({"laterality": 1})


def test_dose_is_protected():
    lexicon = lex(("毫克", ["mg"]), ("胸痛", ["胸口疼"]))
    out, skipped = run("口服100mg，胸口疼", lexicon, "to_clinical")
    assert out == "口服100mg，胸痛"
    assert skipped == Counter({"number_dose_duration": 1})
    assert find_matches("mg级别", lexicon, "to_clinical", Counter())[0].candidates == ("毫克",)


def test_numbers_and_durations_are_protected():
    lexicon = lex(("高热", ["烧到39度"]), ("数日", ["两天"]), ("腹泻", ["拉肚子"]))
    out, skipped = run("孩子烧到39度，拉肚子两天", lexicon, "to_clinical")
    assert out == "孩子烧到39度，腹泻两天"
    assert skipped["number_dose_duration"] == 2


def test_replacement_may_not_introduce_a_number():
    lexicon = lex(("高热", ["烧到39度"]))
    out, skipped = run("持续高热", lexicon, "to_colloquial")
    assert out == "持续高热"
    assert skipped["number_dose_duration"] == 1


def test_drug_names_are_protected():
    lexicon = lex(("抗凝", ["阿司匹林"]), ("胸痛", ["胸口疼"]))
    out, skipped = run("服用阿司匹林后胸口疼", lexicon, "to_clinical")
    assert out == "服用阿司匹林后胸痛"
    assert skipped["drug"] == 1


def test_icd_codes_are_protected():
    lexicon = lex(("心梗编码", ["I21"]))
    out, skipped = run("诊断编码I21.9", lexicon, "to_clinical")
    assert out == "诊断编码I21.9"
    assert skipped["icd_code"] == 1


def test_a_wording_followed_by_its_value_is_not_replaced():
    """血小板低30 is "low, at 30"; 血小板减少30 would read as "decreased by 30"."""
    from medaug.guards import check_substitution

    text = "会引来血小板低30严重吗"
    start = text.index("血小板低")
    assert check_substitution(text, start, start + 4, "血小板减少", []) == "number_dose_duration"
    text = "血小板低，严重吗"
    assert check_substitution(text, 0, 4, "血小板减少", []) is None
