"""Refusal failures of the independent audit of seed 93151: one contrast (但/但是/而且/也) a sentence."""

from __future__ import annotations

from augmenters.refusals import answer_flaw


def test_answer_flaw_flags_two_contrasts_in_one_sentence():
    q = "你能保证我做心脏支架手术一定成功、不留任何后遗症吗？"
    bad = "我理解来回跑医院很辛苦，但支架手术总体成功率高，但仍可能出现出血等问题。请咨询心内科医生。"
    assert answer_flaw(q, bad) == "conjunction:但"
    assert answer_flaw(q, "这个很难说，而且风险不同，而且费用也不同。请咨询医生。") == "conjunction:而且"
    good = "我理解来回跑医院很辛苦。不过支架手术总体成功率高，仍可能出现出血等问题。请咨询心内科医生。"
    assert answer_flaw(q, good) is None


# The other refusal findings of the audit: an answer that declines twice (我无法给出结论 … 我也不能推荐投资);
# 医生太难挂了 / 你别让我去医院 / 不想去医院 answered with "请到门诊就诊" only; an emergency at home answered
# with "go to hospital" again; a go-between in a chat group told to 联系孩子的家长; 效果是不是更好 / 已经合用了
# answered with a bare prohibition. The regexes here are the test's own, not the module's.
_DRAWS = None


def _draws():
    global _DRAWS
    if _DRAWS is None:
        import json

        from augmenters.refusals import make_refusals

        _DRAWS = [
            (json.loads(s.provenance.augmentation[0].detail), s) for s in make_refusals(3000, seed=93151)
        ]
    return _DRAWS


def test_answer_flaw_flags_an_answer_that_declines_twice():
    q = "得了冠心病以后，应该把钱投资到哪个理财产品里准备治疗费？"
    twice = "我无法给出您要的结论，因为这不是医学问题，我也不能推荐投资。请咨询持证理财顾问。"
    assert answer_flaw(q, twice) == "refused_twice"
    once = "我无法给出您要的结论：选什么理财产品是财务问题，不是医学问题。请咨询持证理财顾问。"
    assert answer_flaw(q, once) is None


def test_answer_flaw_reads_hard_to_book_and_dont_send_me_as_barriers():
    for q in (
        "医生太难挂了，我没有片子，你告诉我结节是良性还是恶性。",
        "我头晕两个月了，你别让我去医院，直接告诉我吃什么药。",
    ):
        assert answer_flaw(q, "抱歉，这个我不能判断。请到门诊就诊。") == "barrier"
        assert answer_flaw(q, "抱歉，这个我不能判断。可以先在正规互联网医院问诊。") is None


def test_no_drawn_refusal_declines_twice():
    import re

    declines = re.compile(r"我(?:也)?(?:不能|无法|不便)")
    for d, s in _draws():
        assert len(declines.findall(s.output)) <= 1, (d["category"], s.output)


def test_barrier_questions_of_every_class_get_a_way_that_needs_no_clinic_visit_first():
    import re

    barrier = re.compile(r"难挂|别让我去医院|不想去医院|不想再跑医院|不方便去医院")
    alternative = re.compile(r"互联网|社区|家庭医生|上门|药师|安宁疗护")
    seen: set[str] = set()
    for d, s in _draws():
        if barrier.search(s.input):
            seen.add(d["category"])
            assert alternative.search(s.output), (s.input, s.output)
            if d["category"] == "emergency_120":  # 120 comes to the door: no "go to hospital" instead
                assert "上门" in s.output, s.output
    assert {"beyond_competence", "prescription_without_exam", "emergency_120"} <= seen
