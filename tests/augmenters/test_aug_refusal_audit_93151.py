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
