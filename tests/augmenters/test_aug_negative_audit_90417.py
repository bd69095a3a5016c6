"""Failures of the independent audit of seed 90417, each fixed generally: promises beside a hedge or a
fallback, promises between parallel treatments or after boilerplate, HBV-ineffective antivirals and brand
names left after a swap, daily-total doses, the red flag a referral reason cites, first-person emergencies."""

from __future__ import annotations

import random

from augmenters.negative_kb import load_negative_knowledge
from augmenters.negative_verify import check_wrong
from augmenters.negatives import Candidate, overclaiming, wrong_drug
from medaug.schema import ErrorType, Sample, samples_to_table

KB = load_negative_knowledge()
ET = ErrorType


def _mk(question: str, answer: str) -> dict:
    return samples_to_table([Sample(instruction=question, output=answer)]).to_pylist()[0]


def _all(maker, row, n=40):
    return [c for s in range(n) if isinstance(c := maker(row, KB, random.Random(s)), Candidate)]


# ------------------------------------------------------------------------------ overclaiming
def test_a_promise_beside_a_trial_or_a_fallback_is_rejected():
    q = "孩子咳嗽有痰，怎么办？"
    cases = [
        ("建议服用止咳糖浆试一试，如果没有好转再去医院检查。", "止咳糖浆试一试，"),
        ("可以先口服蒲地蓝消炎片看看效果，不见好就去医院。", "看看效果，"),
        ("建议口服阿莫西林治疗，观察一下，如不缓解再去复诊。", "阿莫西林治疗，"),
    ]
    for ref, after in cases:
        at = ref.index(after) + len(after) - 1
        wrong = ref[:at] + "，包治包好" + ref[at:]
        assert check_wrong(_mk(q, ref), ET.overclaiming, wrong, KB) == "promise_contradicts_its_context", ref
    first = "首先需要看一看其他身体状况。如果身体状况还可以，建议胃镜下手术摘除息肉。平时饮食清淡。"
    at = first.index("。平时")
    wrong = first[:at] + "，包治包好" + first[at:]
    assert not isinstance(check_wrong(_mk(q, first), ET.overclaiming, wrong, KB), str)  # 首先 is no trial
    plain = "建议口服阿莫西林治疗，注意多喝水，饮食清淡。"
    at = plain.index("，注意")
    wrong = plain[:at] + "，包治包好" + plain[at:]
    assert not isinstance(check_wrong(_mk(q, plain), ET.overclaiming, wrong, KB), str)


def test_no_promise_between_parallel_treatments():
    row = _mk(
        "肺癌晚期有积水，怎么治疗？",
        "患者有积水建议先抽水治疗，患者年龄较大建议补充营养物质，建议实施手术救治，靶向救治，如果身体状况差，"
        "无法耐受抗肿瘤治疗，只好给与营养支持。",
    )
    at = row["output"].index("，靶向")
    assert not [c for c in _all(overclaiming, row) if c.start == at]


def test_no_promise_inside_boilerplate_about_harm_or_exhortation():
    row = _mk(
        "胃胀，吃一点就饱，怎么办？",
        "你的情况可以用点健脾胃的药物口服救治几下就可以的效果是很不错的胃病对患者们带来的危害是非常大的，"
        "一旦发觉自身的症状，就要及时就诊，以清淡食物为基础，期望患者能获得专业救治。",
    )
    text = row["output"]
    bad = {text.index("，一旦"), text.index("，就要"), text.index("，以清淡")}
    made = _all(overclaiming, row)
    assert not [c for c in made if c.start in bad], [c.after for c in made if c.start in bad]
    ok = _mk("胃胀，怎么办？", "考虑脾胃虚弱，可以用点健脾胃的药物治疗，注意饮食清淡，少吃辛辣。")
    assert [c for c in _all(overclaiming, ok) if c.start == ok["output"].index("，注意")]


# ------------------------------------------------------------------------------ wrong drug
def test_a_reference_with_an_antiviral_ineffective_for_hepatitis_b_makes_no_wrong_drug():
    for drug in ("更昔洛韦", "伐昔洛韦", "泛昔洛韦"):
        row = _mk(
            "乙肝大三阳，肝功能异常，怎么办？",
            f"建议查HBV-DNA定量，最好用一下干扰素和{drug}抗病毒治疗，注意休息。",
        )
        assert wrong_drug(row, KB, random.Random(0)) == "reference_drug_contraindicated", drug
        ref = row["output"]
        assert (
            check_wrong(row, ET.wrong_drug, ref.replace("干扰素", "奥司他韦"), KB)
            == "reference_drug_contraindicated"
        )


def test_a_swap_never_leaves_the_drug_offered_under_its_brand_name():
    q = "大三阳，转氨酶高，要吃药吗？"
    ref = "大三阳需要抗病毒治疗，建议服用拉米夫定或者贺普丁，定期复查肝功能。"
    row = _mk(q, ref)
    assert not [c for c in _all(wrong_drug, row) if c.before == "拉米夫定"]
    assert (
        check_wrong(row, ET.wrong_drug, ref.replace("拉米夫定", "奥司他韦"), KB)
        == "drug_named_by_another_name"
    )
    plain = _mk(q, "大三阳需要抗病毒治疗，建议服用拉米夫定，定期复查肝功能。")
    assert [c for c in _all(wrong_drug, plain) if c.before == "拉米夫定"]


# ------------------------------------------------------------------------------ wrong dose
def test_a_daily_total_is_held_against_the_daily_range():
    q = "幽门螺杆菌阳性，四联疗法怎么吃？"
    ref = "阿莫西林每日总量2克，分两次饭后服用，连用两周。"
    proof = check_wrong(_mk(q, ref), ET.wrong_dose, ref.replace("2克", "0.2克"), KB)
    assert not isinstance(proof, str), proof
    assert "单次" not in proof.reason and "每日" in proof.reason, proof.reason
    # a bound is no dose (audit seed 57331: 每日服用量要超过2克才行 beside 每次两粒，每天三次)
    bound = "阿莫西林每天三次，每次两粒。阿莫西林每日服用量要超过2克才行，连用两周。"
    assert check_wrong(_mk(q, bound), ET.wrong_dose, bound.replace("2克", "0.2克"), KB) == "amount_is_a_bound"


def test_a_tenfold_dose_of_a_wide_margin_drug_is_not_called_poisonous():
    q = "反酸烧心，怎么吃药？"
    ppi = "反酸者可用雷贝拉唑20mg，每日一次，连用两周。"
    proof = check_wrong(_mk(q, ppi), ET.wrong_dose, ppi.replace("20mg", "200mg"), KB)
    assert not isinstance(proof, str), proof
    assert "远超常用剂量" in proof.reason and "中毒" not in proof.reason, proof.reason
    narrow = "发热可用对乙酰氨基酚500mg，必要时每6小时一次。"
    proof = check_wrong(
        _mk("发烧38.5度，吃什么药？", narrow), ET.wrong_dose, narrow.replace("500mg", "5000mg"), KB
    )
    assert not isinstance(proof, str), proof
    assert "可致过量中毒" in proof.reason


# ------------------------------------------------------------------------------ missing referral
def test_a_referral_reason_cites_the_red_flag_present_not_a_threshold_never_stated():
    q = "我妈高血压多年，听说高血压严重了会出事，是真的吗？"
    ref = "高血压控制不好可引起高血压危象，死亡率较高，需要立即到医院就诊。平时遵医嘱服用降压药。"
    wrong = ref.replace("需要立即到医院就诊", "先在家观察一晚上，明天再决定")
    # a question that asks in general tells no current red flag: the reference's advice alone does not count (93151)
    assert check_wrong(_mk(q, ref), ET.missing_referral, wrong, KB) == "referral_not_needed_by_red_flag"
    coma = "高血压引起的晕迷多是高血压脑病，死亡率较高，需要立即到医院就诊。平时遵医嘱服用降压药。"
    wrong = coma.replace("需要立即到医院就诊", "先在家观察一晚上，明天再决定")
    proof = check_wrong(
        _mk("我妈高血压多年，今天突然昏迷不醒，怎么办？", coma), ET.missing_referral, wrong, KB
    )
    assert not isinstance(proof, str), proof
    assert "180" not in proof.reason, proof.reason
    stated = "血压200，需要立即到医院就诊。平时遵医嘱服用降压药。"
    proof = check_wrong(
        _mk("我爸现在血压200，头晕，怎么办？", stated),
        ET.missing_referral,
        stated.replace("需要立即到医院就诊", "先在家观察一晚上，明天再决定"),
        KB,
    )
    assert not isinstance(proof, str), proof
    assert "180" in proof.reason


# ------------------------------------------------------------------------------ refusals
def test_no_first_person_question_about_an_emergency_the_patient_could_not_ask_about():
    from augmenters.refusals import load_taxonomy, person_of

    incapacitated = ("叫不醒", "昏迷", "说话不清", "意识不清", "神志不清", "抽搐")
    seen_first_person = 0
    for cat in load_taxonomy():
        if cat.name != "emergency_120":
            continue
        for q in cat.questions:
            if person_of(q).first is True:  # the patient asks (我刚才…): able to ask, so not unconscious
                seen_first_person += 1
                assert not any(w in q for w in incapacitated), q
    assert seen_first_person
