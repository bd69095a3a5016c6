"""Failures of the independent audit of seed 48317, each fixed generally: flips of restated findings, unit
errors on a tablet's strength, strengths carried to a substitute drug, salt suffixes, one substitute drug
dominating, cancelled follow-ups outside an instruction, unusable references, refusal classes."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from augmenters.negative_kb import flip_concludes, load_negative_knowledge
from augmenters.negative_verify import check_wrong
from augmenters.negatives import (
    Candidate,
    _balance,
    contradicts_findings,
    make_negative,
    overclaiming,
    per_dose,
    per_unit_strength,
    reference_unusable,
    salt_span,
    wrong_dose,
    wrong_drug,
)
from augmenters.refusals import load_taxonomy
from medaug.schema import ErrorType, Sample, samples_to_table

KB = load_negative_knowledge()
ET = ErrorType


def _mk(question: str, answer: str) -> dict:
    return samples_to_table([Sample(instruction=question, output=answer)]).to_pylist()[0]


def _all(maker, row, n=30):
    return [c for s in range(n) if isinstance(c := maker(row, KB, random.Random(s)), Candidate)]


# ------------------------------------------------------------------------------ contradicts findings
def test_flip_needs_a_conclusion_in_its_clause():
    q = "体检发现转氨酶偏高，平时喝酒，要紧吗？"
    assert flip_concludes("转氨酶偏高，说明肝细胞有损伤，需要戒酒。", 3, "偏高", q)
    assert flip_concludes("您转氨酶偏高提示肝细胞有损伤。", 4, "偏高", q)
    assert not flip_concludes("您好，您说体检转氨酶偏高，平时喝酒。", 9, "偏高", q)  # restates the question
    # the cue is the question's own words: 转氨酶偏高说明什么 asked, the same words answered
    q2 = "转氨酶偏高说明什么问题？"
    assert not flip_concludes("转氨酶偏高说明什么问题？要看具体数值。", 3, "偏高", q2)


def test_no_flip_made_or_passed_where_the_answer_only_restates_the_question():
    q = "我老公体检，转氨酶偏高，平时喝酒，要紧吗？"
    restate = _mk(q, "您好，您老公体检转氨酶偏高，平时喝酒。建议戒酒，清淡饮食，一个月后复查肝功能。")
    assert not [c for c in _all(contradicts_findings, restate) if c.strategy == "flip"]
    wrong = restate["output"].replace("偏高", "偏低")
    assert check_wrong(restate, ET.contradicts_findings, wrong, KB) == "flip_draws_no_conclusion"
    concl = _mk(q, "您好，转氨酶偏高，说明肝细胞有损伤，与喝酒有关，建议戒酒，一个月后复查肝功能。")
    flips = [c for c in _all(contradicts_findings, concl) if c.strategy == "flip"]
    assert flips and all(c.after == "偏低" for c in flips)
    wrong = concl["output"].replace("偏高", "偏低")
    assert not isinstance(check_wrong(concl, ET.contradicts_findings, wrong, KB), str)


# ------------------------------------------------------------------------------ wrong dose
def test_a_tablets_strength_is_never_read_in_another_unit():
    text = "可以吃奥美拉唑，20毫克一粒，每日一次。"
    at = text.index("20毫克")
    assert per_unit_strength(text, (at, at + 4))
    assert per_unit_strength("奥美拉唑每粒20mg", (6, 10))
    assert not per_unit_strength("奥美拉唑每次20mg，每日一次", (7, 11))
    row = _mk("胃痛反酸，吃什么药？", "建议口服奥美拉唑，20毫克一粒，每日一次，饭前服用。")
    made = _all(wrong_dose, row)
    assert made, "a ×10 / ÷10 in the same unit is still a possible wrong dose"
    assert all(c.strategy in ("x10", "div10") and c.after.endswith("毫克") for c in made)
    wrong = row["output"].replace("20毫克", "20克")
    assert check_wrong(row, ET.wrong_dose, wrong, KB) == "strength_unit_changed"


def test_unit_confusion_only_for_a_realistic_per_dose_amount():
    assert per_dose("布洛芬每次200mg", (5, 10)) and per_dose("布洛芬200mg/次", (3, 8))
    assert not per_dose("布洛芬200mg", (3, 8))
    row = _mk("头痛，能吃什么？", "可以口服布洛芬，每次200mg，疼时服用，不要空腹。")
    swaps = [c for c in _all(wrong_dose, row, 60) if c.strategy.startswith("unit_")]
    assert swaps, "200mg read as 200μg (per dose) is a realistic confusion"
    assert all(c.after != "200g" for c in swaps)  # 200 g of ibuprofen is no confusion anyone makes
    assert (
        check_wrong(row, ET.wrong_dose, row["output"].replace("200mg", "200g"), KB) == "unit_swap_unrealistic"
    )
    plain = _mk("头痛，能吃什么？", "可以口服布洛芬200mg，疼时服用，不要空腹。")
    assert not [c for c in _all(wrong_dose, plain, 60) if c.strategy.startswith("unit_")]


# ------------------------------------------------------------------------------ wrong drug
def test_no_substitute_carries_a_strength_outside_its_usual_dose():
    q = "胃溃疡，胃疼得厉害，吃什么药？"
    row = _mk(q, "建议服用奥美拉唑20mg治疗，饭前服用，忌辛辣。")
    made = _all(wrong_drug, row)
    # 布洛芬/双氯芬酸/吲哚美辛 20mg are no doses of those drugs (阿司匹林 20mg neither): nothing is made
    assert not made
    assert wrong_drug(row, KB, random.Random(0)) == "drug_strength_would_carry_over"
    wrong = row["output"].replace("奥美拉唑", "布洛芬")
    assert check_wrong(row, ET.wrong_drug, wrong, KB) == "drug_strength_would_carry_over"


def test_a_salt_suffix_goes_with_the_drug_it_belongs_to():
    text = "可以服用雷贝拉唑钠治疗"
    assert salt_span(text, (4, 8)) == (4, 9)
    assert salt_span("服用盐酸二甲双胍", (4, 8)) == (2, 8)
    row = _mk("胃溃疡，胃疼反酸，吃什么药？", "建议服用雷贝拉唑钠治疗，饭前服用，忌辛辣。")
    made = _all(wrong_drug, row)
    assert made
    for c in made:
        assert c.before == "雷贝拉唑钠" and f"{c.after}钠" not in c.output
        assert c.detail["substitute"] == c.after
    bad = row["output"].replace("雷贝拉唑", "布洛芬")  # 布洛芬钠
    assert check_wrong(row, ET.wrong_drug, bad, KB) == "salt_suffix_carried_over"


def test_one_substitute_drug_is_capped_like_a_pattern():
    def cand(i: int, sub: str) -> tuple[dict, Candidate]:
        return {"id": str(i)}, Candidate(
            "x", "a", sub, 0, "r", f"p{i}", "confusion", detail={"substitute": sub}
        )

    picked = [cand(i, "布洛芬") for i in range(10)] + [cand(10 + i, f"药{i}") for i in range(20)]
    kept, dropped = _balance(picked)
    subs = Counter(c.detail["substitute"] for _, c in kept)
    assert subs["布洛芬"] <= max(2, int(0.1 * len(kept))) and dropped >= 7


# ------------------------------------------------------------------------------ overclaiming
def test_followup_is_cancelled_only_in_an_instruction():
    statement = _mk(
        "胃镜提示慢性浅表性胃炎，怎么办？", "胃炎的患者，定期复查是非常重要的，饮食要规律，少吃辛辣。"
    )
    assert not [c for c in _all(overclaiming, statement) if c.pattern == "followup_none"]
    advice = _mk("胃镜提示慢性浅表性胃炎，怎么办？", "饮食要规律，少吃辛辣，建议定期复查胃镜。")
    assert [c for c in _all(overclaiming, advice, 60) if c.pattern == "followup_none"]


# ------------------------------------------------------------------------------ reference quality
@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("", "too_short"),
        ("建议就医。", "too_short"),
        ("好好好好好好好好好好好好好好好好好好", "one_word"),
        ("这个病吃我们的中药，保证治愈，一个疗程就好，不用担心，放心吧。", "reference_promises"),
        ("建议到医院检查一下，具体情况可以加我微信详细咨询，我给你看看。", "reference_advert"),
    ],
)
def test_an_unusable_reference_makes_no_negative(answer, why):
    assert reference_unusable(answer) == why
    if not answer:
        return  # an empty answer is no sample at all
    row = _mk("我胃疼三天了，怎么办？", answer)
    assert make_negative(row, ET.overclaiming, 0, KB) == f"reference_unusable:{why}"


def test_a_usable_reference_passes():
    assert (
        reference_unusable("胃疼三天，考虑胃炎可能，建议清淡饮食，可以口服奥美拉唑，不能保证治愈，需要复查。")
        is None
    )


# ------------------------------------------------------------------------------ refusals
def test_refusal_class_follows_from_the_question():
    cats = {c.name: c for c in load_taxonomy()}
    assert not any("照片" in q or "孩子" in q for q in cats["dosing_specific_person"].questions)
    assert all("孩子" in q or "宝宝" in q for q in cats["child_dosing_unseen"].questions)


def test_loader_rejects_a_question_of_another_class(tmp_path: Path):
    import yaml

    from augmenters.refusals import REFUSALS_FILE

    raw = yaml.safe_load(REFUSALS_FILE.read_text(encoding="utf-8"))
    qs = raw["categories"]["dosing_specific_person"]["questions"]
    qs[0] = {"id": qs[0]["id"], "text": "这是我妈的照片，" + qs[0]["text"]}
    bad = tmp_path / "refusals.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="belong to another class"):
        load_taxonomy(bad)


def test_no_swap_inside_a_longer_drug_name_and_no_tenfold_gram_misreading():
    """Audit seed 7301: 艾斯奥美拉唑 → 艾斯阿司匹林; 吗丁啉每次10毫克 → 10克."""
    from augmenters.negatives import unit_swap_allowed, whole_drug

    text = "可以服用艾斯奥美拉唑肠溶胶囊治疗"
    assert not whole_drug(text, (6, 10))
    row = _mk("糜烂性胃炎，胃疼，吃什么药？", "可以服用艾斯奥美拉唑肠溶胶囊治疗，饮食清淡。")
    assert not _all(wrong_drug, row)
    dose = "吗丁啉每次10毫克，每日3次"
    assert unit_swap_allowed(dose, (5, 9), 10_000.0) == "unit_swap_unrealistic"
    assert unit_swap_allowed(dose, (5, 9), 0.01) is None


# ------------------------------------------------------------------------------ missing referral
def test_a_systolic_pressure_of_180_or_more_is_a_red_flag_told_as_a_number():
    """More honest missing-referral parents: 血压260 needs the escalation the answer gives."""
    from augmenters.negatives import _red_flag, missing_referral

    flag = _red_flag("我爸血压高达230，头晕", KB)
    assert flag is not None and flag[0].name == "重度血压升高"
    assert _red_flag("血压150/90，头晕", KB) is None
    assert _red_flag("血压从190降到130了", KB) is None
    q = "这几天一直头晕眼花，检查后血压特别高，血压260，有生命危险吗？"
    a = "血压260已经很危险了，属于高血压急症的范围。建议你尽快去医院就诊，在医生指导下降压。平时低盐饮食。"
    row = _mk(q, a)
    made = [c for s in range(8) if isinstance(c := missing_referral(row, KB, random.Random(s)), Candidate)]
    assert made and all("尽快去医院" not in c.output for c in made)
    assert all("重度血压升高" in c.reason or "180" in c.reason for c in made)
    proof = check_wrong(row, ET.missing_referral, made[0].output, KB)
    assert not isinstance(proof, str), proof
    asked = _mk("血压会不会升到200？", a)
    assert isinstance(missing_referral(asked, KB, random.Random(0)), str)


def test_a_red_flag_asked_about_in_general_is_no_current_one():
    """Audit seed 7301: 高血压昏迷不醒会死吗 told no coma of the patient, yet the reason said 问题中有“昏迷”."""
    from augmenters.negative_verify import asked_red_flag

    assert asked_red_flag("爸爸患高血压十多年，您好高血压昏迷不醒会死吗？", KB) is None
    assert asked_red_flag("我爸高血压，今天突然昏迷不醒，怎么办？", KB) is not None


def test_no_promise_splits_a_drug_list_and_no_cure_promise_for_a_self_limiting_illness():
    """Audit seed 7302: 可选择兰索拉唑，保证彻底断根，果胶铋和克拉霉素; 2岁宝宝肠胃炎…保证一个疗程就能根治 (resolves anyway)."""
    q = "胃炎伴糜烂，胃又疼了，怎么治疗？"
    split = _mk(q, "考虑浅表性胃炎伴糜烂，可选择兰索拉唑，果胶铋和克拉霉素救治，平时不要吃辣的食物。")
    made = _all(overclaiming, split, 40)
    assert not [c for c in made if c.start == split["output"].index("，果胶铋")]
    acute = _mk(
        "我2岁宝宝肠胃炎，呕吐，怎么办？",
        "孩子出现肠胃炎需要及时使用药物医治，同时使用营养药物调养，注意饮食清淡，多喝水。",
    )
    assert not [c for c in _all(overclaiming, acute, 40) if c.pattern in ("one_course", "radical_cure")]
    lasting = _mk(
        "乙肝小三阳，需要治疗吗？",
        "乙肝小三阳需要查肝功能和病毒定量，建议口服药物治疗，同时注意休息，饮食清淡，戒酒。",
    )
    assert [c for c in _all(overclaiming, lasting, 60) if c.pattern in ("one_course", "radical_cure")]


def test_the_reason_quotes_the_inserted_promise_even_beside_a_repeated_character():
    q = "乙肝小三阳，需要治疗吗？"
    ref = "乙肝小三阳需要及时使用药物医治，同时注意休息，饮食清淡，戒酒。"
    wrong = ref.replace("医治，", "医治，保证一个疗程就能根治，", 1)
    proof = check_wrong(_mk(q, ref), ET.overclaiming, wrong, KB)
    assert not isinstance(proof, str), proof
    assert "“保证一个疗程就能根治”" in proof.reason


def test_no_promise_after_a_clause_saying_the_treatment_did_not_work():
    """Audit seed 7302: 治疗效果不是很明显，保证三天之内症状全部消失，应当到医院做检查."""
    row = _mk(
        "我母亲57岁，胃胀，吃了好多种胃药没效果，怎么回事？",
        "考虑胃炎，建议母亲现在这种情况治疗效果不是很明显，应当到医院做检查，可以口服药物治疗，注意饮食清淡规律。",
    )
    at = row["output"].index("，应当")
    assert not [c for c in _all(overclaiming, row, 40) if c.start == at]
