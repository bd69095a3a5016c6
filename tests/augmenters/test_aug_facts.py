"""The clinical-fact extractor (medaug/facts.py): what it reads from real-shaped sentences, and which
changes between two texts it reports (the reason codes the stages record)."""

from __future__ import annotations

import pytest

from medaug.facts import FACT_KINDS, FactSet, extract_facts, fact_changes, segmenter


def facts(text: str, kind: str | None = None):
    return [f for f in extract_facts(text) if kind is None or f.kind == kind]


def test_exact_synonyms_share_a_canonical_term():
    assert [f.term for f in facts("胸口疼", "symptom")] == ["胸痛"]
    assert fact_changes("胸口疼30分钟，拉肚子三天", "胸痛30分钟，腹泻3天") == []


def test_reads_kinds_numbers_durations_and_drugs():
    got = extract_facts("孩子3岁，拉肚子三天了，发烧38.5度，可嚼服阿司匹林300mg")
    assert isinstance(got, FactSet)
    assert {f.kind for f in got} <= set(FACT_KINDS)
    assert {"腹泻", "发热"} <= got.terms("symptom")
    assert got.terms("drug") == {"阿司匹林"}
    assert {"38.5 c", "300 mg", "3 age_year"} <= got.terms("number")
    assert got.terms("duration") == {"3 day"}
    span = next(f.span for f in got if f.term == "阿司匹林")
    assert "孩子3岁，拉肚子三天了，发烧38.5度，可嚼服阿司匹林300mg"[span[0] : span[1]] == "阿司匹林"


def test_negation_scope_runs_over_a_list_and_stops_at_a_clause_or_contrast():
    by = {f.term: f.negated for f in facts("无发热、咳嗽，腹泻")}
    assert by == {"发热": True, "咳嗽": True, "腹泻": False}
    assert {f.term: f.negated for f in facts("没有发烧但是咳嗽")} == {"发热": True, "咳嗽": False}


def test_negation_cue_must_be_a_word_of_its_own():
    # 不 inside 不想吃饭 / 不舒服 is part of the wording, not a negation of what follows.
    assert [f.negated for f in facts("不想吃饭", "symptom")] == [False]


def test_word_aware_matching_never_cuts_a_word():
    assert not facts("拉粑粑都很困难", "symptom")
    assert 6 not in segmenter().boundaries("拉粑粑都很困难")  # 很困|难 would cut 困难


def test_modifiers_are_attached():
    (f,) = facts("右侧偏瘫", "finding")
    assert f.laterality == "right"
    pain = facts("左下腹疼痛3天", "symptom")[0]
    assert (pain.term, pain.laterality, pain.site) == ("下腹痛", "left", "下腹")
    assert facts("有点咳嗽", "symptom")[0].severity == "mild"
    assert facts("剧烈头痛", "symptom")[0].term == "剧烈头痛"


@pytest.mark.parametrize(
    ("a", "b", "code"),
    [
        ("无发热", "有发热", "symptom_negation"),
        ("右侧偏瘫", "左侧偏瘫", "finding_laterality"),
        ("不是一直咳嗽", "不是咳嗽", "frequency_lost"),
        ("确诊高血压", "血压偏高", "disease_lost"),
        ("心情低落", "抑郁症", "symptom_lost"),
        ("流清鼻涕", "鼻流涕", "symptom_lost"),
        ("服用阿司匹林100mg", "服用布洛芬100mg", "drug_lost"),
        ("服用阿司匹林100mg", "服用阿司匹林10mg", "number_lost"),
        ("咳嗽3天", "咳嗽3周", "duration_lost"),
        ("有点咳嗽", "剧烈地咳嗽", "symptom_severity"),
    ],
)
def test_changes_name_the_fact_kind(a, b, code):
    changes = fact_changes(a, b)
    assert code in [c.code for c in changes]
    c = next(c for c in changes if c.code == code)
    assert c.kind == code.split("_")[0]
    d = c.to_dict()
    assert d["code"] == code and (d["before"] or d["after"])


def test_changes_compare_whole_texts_when_clauses_move():
    assert fact_changes("咳嗽，发热", "发热，咳嗽") == []
    assert fact_changes("腹泻。无发热", "腹泻。发热") != []


def test_ascii_full_stop_and_spaces_end_a_clause_but_decimals_do_not():
    # A negation before "." does not reach the next sentence; 38.5 stays one number.
    assert {f.term: f.negated for f in facts("没有发烧.咳嗽三天")} == {
        "发热": True,
        "咳嗽": False,
        "3 day": False,
    }
    assert {f.term: f.negated for f in facts("没有发烧 咳嗽")} == {"发热": True, "咳嗽": False}
    assert "38.5 c" in extract_facts("没有咳嗽.体温38.5度").terms("number")
    assert fact_changes("没有发烧.咳嗽三天", "没有发烧。咳嗽三天") == []


def test_side_of_a_site_no_term_covers_is_a_fact():
    (side,) = facts("左眼红肿", "site")
    assert (side.term, side.laterality) == ("眼", "left")
    assert [c.code for c in fact_changes("右手腕骨折三天", "左手腕骨折三天")] == ["site_laterality"]
    assert [c.code for c in fact_changes("两腿无力", "腿无力")] == ["site_lost"]
    # No side where the cue is part of another word or no site follows; a side a term took is not repeated.
    for text in ("左右两边都疼", "双胞胎", "两天头疼", "右侧", "左氧氟沙星"):
        assert not facts(text, "site"), text
    assert not facts("左膝关节疼", "site") and facts("左膝关节疼", "symptom")[0].laterality == "left"


def test_typos_are_tolerated_only_when_asked_and_only_as_typos():
    assert [c.code for c in fact_changes("咳嗽有痰", "咳漱有痰")] == ["symptom_lost"]
    assert fact_changes("咳嗽有痰", "咳漱有痰", typos=True) == []
    assert fact_changes("头疼恶心", "头疼恶新", typos=True) == []
    # A real change is no typo: another known word, a negation, a pain word, a number.
    for a, b in [("头疼", "头晕"), ("肚子疼", "肚子痒"), ("乏力", "无力"), ("咳嗽三天", "咳漱五天")]:
        assert fact_changes(a, b, typos=True), (a, b)
    # The repaired text is compared as a whole: the typo does not hide a lost negation.
    assert [c.code for c in fact_changes("没有咳嗽", "咳漱", typos=True)] == ["symptom_negation"]


def test_an_extractor_built_earlier_does_not_change_how_another_cuts():
    """Each vocabulary has its own segmenter: a user lexicon loaded first in the process (here one that
    makes 两腿 and 腿无力 words) must not change the shipped extractor's facts."""
    from medaug.facts import FactExtractor, Word, default_extractor

    default_extractor()
    FactExtractor([Word("腿无力", "symptom", "下肢乏力"), Word("两腿", "symptom", "两腿")])
    # texts no earlier test cut (the extractors cache clauses)
    assert [c.code for c in fact_changes("两腿无力已经九天", "腿无力已经九天")] == ["site_lost"]
    assert segmenter() is default_extractor().seg
