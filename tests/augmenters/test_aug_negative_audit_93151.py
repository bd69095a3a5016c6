"""Failures of the independent audit of seed 93151, each fixed generally: a promise in an answer that says
anywhere the condition cannot be cured, a promise between the halves of a treatment pair, a missing referral
justified only by the reference's own safety advice."""

from __future__ import annotations

import random

from augmenters.negative_kb import load_negative_knowledge
from augmenters.negative_verify import check_wrong
from augmenters.negatives import Candidate, overclaiming
from medaug.schema import ErrorType, Sample, samples_to_table

KB = load_negative_knowledge()
ET = ErrorType


def _mk(question: str, answer: str) -> dict:
    return samples_to_table([Sample(instruction=question, output=answer)]).to_pylist()[0]


def _all(row, n=40):
    return [c for s in range(n) if isinstance(c := overclaiming(row, KB, random.Random(s)), Candidate)]


EPILEPSY_Q = "医生我患癫痫病已经很多年了，癫痫怎么样可以彻底根治?"
EPILEPSY = (
    "癫痫是无法全愈的，需要坚持规律治疗。必要的时候，可能需要调整药量。平时的话可以根据血药浓度的情况来重新调整用量。"
    "随着时间的流逝，如果病情稳定的话可以慢慢减用药量，必要的时候可以停用药。"
)


def test_no_cure_promise_in_an_answer_that_says_anywhere_the_condition_cannot_be_cured():
    made = _all(_mk(EPILEPSY_Q, EPILEPSY))
    assert not any("断根" in c.output or "根治" in c.output or "复发" in c.output for c in made), [
        c.output for c in made
    ]
    at = EPILEPSY.index("，必要的时候可以停用药")
    wrong = EPILEPSY[:at] + "，保证彻底断根" + EPILEPSY[at:]
    assert (
        check_wrong(_mk(EPILEPSY_Q, EPILEPSY), ET.overclaiming, wrong, KB)
        == "promise_contradicts_its_context"
    )


def test_no_promise_before_a_clause_that_continues_the_treatment():
    q = "最近胃胀，不想吃晚饭，是什么原因引发的"
    ref = "考虑胃炎。建议口服药物，忌辛辣。患者可以用口服药物，互相配合维生素，而且留意规律作息，禁酒。"
    for c in _all(_mk(q, ref)):
        assert not c.output[c.start + len(c.after) :].startswith("，互相配合"), c.output
    at = ref.index("，互相配合")
    wrong = ref[:at] + "，以后再也不会复发" + ref[at:]
    assert check_wrong(_mk(q, ref), ET.overclaiming, wrong, KB) == "promise_splits_the_treatment"


def test_a_missing_referral_needs_a_red_flag_current_in_the_question_not_in_the_reference():
    from augmenters.negatives import missing_referral

    q = "爸爸患高血压十多年，我听别人说高血压昏迷不醒会死人的，您好高血压昏迷不醒会死吗？"
    ref = (
        "高血压所引来的晕迷，多是高血压脑病，死亡率还是很高的，需要立即到医院就诊。"
        "平时需要遵医嘱，运用降压药物，防止情绪太过激动。"
    )
    wrong = "平时需要遵医嘱，运用降压药物，防止情绪太过激动。"
    assert check_wrong(_mk(q, ref), ET.missing_referral, wrong, KB) == "referral_not_needed_by_red_flag"
    assert isinstance(missing_referral(_mk(q, ref), KB, random.Random(0)), str)
    now = "我爸高血压，今天突然昏迷不醒，怎么办？"
    assert not isinstance(check_wrong(_mk(now, ref), ET.missing_referral, wrong, KB), str)
