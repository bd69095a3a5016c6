"""The shared negative verifier (augmenters.negative_verify): it proves a wrong answer wrong from the texts and
the knowledge tables alone, for rule and LLM negatives alike, and rejects the "not actually wrong" kinds the
physician audits found."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from augmenters.llm_negatives import outcomes_to_rows
from augmenters.negative_kb import load_negative_knowledge
from augmenters.negative_verify import Proof, check_wrong, one_edit
from augmenters.negatives import make_negative
from medaug.llm.stage import LLMOutcome
from medaug.schema import NEGATIVE_VERDICT, ErrorType, Sample, samples_to_table

KB = load_negative_knowledge()
ET = ErrorType


def _mk(question: str, answer: str) -> dict:
    return samples_to_table([Sample(instruction=question, output=answer)]).to_pylist()[0]


def _check(q: str, ref: str, wrong: str, et: ErrorType) -> Proof | str:
    return check_wrong(_mk(q, ref), et, wrong, KB)


def test_one_edit_finds_the_single_change():
    assert one_edit("甲乙丙丁", "甲戊丙丁") == (1, "乙", "戊")
    assert one_edit("甲乙丙丁", "甲乙丙丁") is None
    assert one_edit("甲乙丙丁", "戊乙丙己") == (0, "甲乙丙丁", "戊乙丙己")  # the span that covers both


# ------------------------------------------------------------------------------- diagnosis
def test_differential_the_question_rules_out_is_wrong_with_the_word_named():
    q = "宝宝两个月，拉肚子，大便是黄色水样的，一天七八次。"
    ref = "考虑急性胃肠炎，注意补液。"
    p = _check(q, ref, "考虑细菌性痢疾，注意补液。", ET.wrong_diagnosis)
    assert isinstance(p, Proof) and p.before == "急性胃肠炎" and p.after == "细菌性痢疾"
    assert "水样" in p.reason and p.pattern == "急性胃肠炎->细菌性痢疾"


def test_differential_as_consistent_as_the_diagnosis_is_not_wrong():
    # 功能性烧心 cannot be told from reflux without endoscopy/pH: nothing in the question rules it out
    q = "胃胀，吃了就饱，有时候烧心，打嗝较多，已经一个多月了。"
    ref = "考虑是胃食管反流病引起的，建议做个胃镜。"
    wrong = ref.replace("胃食管反流病", "功能性烧心")
    assert _check(q, ref, wrong, ET.wrong_diagnosis) == "differential_not_ruled_out_by_question"
    # the same swap once the question reports oesophagitis on endoscopy is wrong
    q2 = q + "胃镜提示食管糜烂。"
    assert isinstance(_check(q2, ref, wrong, ET.wrong_diagnosis), Proof)
    # 慢性病贫血 for a pale tired woman with no chronic disease and no labs: not provably wrong
    q3 = "我35岁，头晕无力，脸色发白。"
    ref3 = "很可能就是患了缺铁性贫血，建议查血常规。"
    assert (
        _check(q3, ref3, ref3.replace("缺铁性贫血", "慢性病贫血"), ET.wrong_diagnosis)
        == "differential_not_ruled_out_by_question"
    )
    assert isinstance(
        _check(q3 + "月经量多。", ref3, ref3.replace("缺铁性贫血", "慢性病贫血"), ET.wrong_diagnosis), Proof
    )


def test_diagnosis_swap_must_be_one_whole_differential():
    q = "宝宝两个月，拉肚子，大便是黄色水样的。"
    ref = "考虑急性胃肠炎，注意补液。急性胃肠炎一般几天能好。"
    half = "考虑细菌性痢疾，注意补液。急性胃肠炎一般几天能好。"  # the other mention kept
    assert _check(q, ref, half, ET.wrong_diagnosis) == "not_one_diagnosis_swapped"
    assert _check(q, ref, ref.replace("急性胃肠炎", "痛风"), ET.wrong_diagnosis) in (
        "not_a_differential",
        "not_one_diagnosis_swapped",
    )


# ------------------------------------------------------------------------------- drug
def test_drug_swap_needs_a_table_reason_for_this_patient():
    ref = "可以服用布洛芬混悬液退热，多喝水。"
    child = "孩子3岁，发烧39度。"
    p = _check(child, ref, ref.replace("布洛芬", "阿司匹林"), ET.wrong_drug)
    assert isinstance(p, Proof) and "瑞氏综合征" in p.reason
    # the same swap for an adult is not wrong by any table: acceptable, so no negative
    adult = "我30岁，发烧39度。"
    assert _check(adult, ref, ref.replace("布洛芬", "阿司匹林"), ET.wrong_drug) == "swap_not_wrong_by_tables"
    # an adult son is no child
    son = "我儿子25岁，发烧39度。"
    assert _check(son, ref, ref.replace("布洛芬", "阿司匹林"), ET.wrong_drug) == "swap_not_wrong_by_tables"


def test_drug_named_as_a_warning_is_no_recommendation_to_swap():
    # 胆绞痛 … 不宜用吗啡 → 不宜用来曲唑 was a true statement labelled wrong drug
    q = "孩子3岁，发烧。"
    ref = "发烧不宜用阿司匹林，可以用布洛芬。"
    wrong = "发烧不宜用对乙酰氨基酚，可以用布洛芬。"
    assert isinstance(_check(q, ref, wrong, ET.wrong_drug), str)


# ------------------------------------------------------------------------------- dose
def test_dose_change_within_usual_range_is_not_wrong():
    q = "我头痛，吃什么药？"
    ref = "可以口服布洛芬200mg，一天不超过3次。"
    p = _check(q, ref, ref.replace("200mg", "2000mg"), ET.wrong_dose)
    assert isinstance(p, Proof) and p.before == "200mg" and p.after == "2000mg"
    assert _check(q, ref, ref.replace("200mg", "400mg"), ET.wrong_dose) == "dose_within_usual_range"
    assert _check(q, ref, ref.replace("200mg", "200mg，多喝水"), ET.wrong_dose) == "not_a_dose_change"


def test_weekly_drug_made_daily_is_wrong():
    q = "我有类风湿关节炎，医生开了甲氨蝶呤。"
    ref = "甲氨蝶呤7.5mg，每周1次口服，定期查血常规。"
    p = _check(q, ref, ref.replace("每周1次", "每日1次"), ET.wrong_dose)
    assert isinstance(p, Proof) and "每周" in p.reason


# ------------------------------------------------------------------------------- findings
def test_denied_finding_must_be_stated_and_not_gone():
    q = "我肚子胀胃胀，没便意，还有点恶心。"
    ref = "目前先考虑胃功能差引起的症状，建议做个胃镜。"
    wrong = "虽然没有胃胀，但目前先考虑胃功能差引起的症状，建议做个胃镜。"
    p = _check(q, ref, wrong, ET.contradicts_findings)
    assert isinstance(p, Proof) and "胃胀" in p.reason
    gone = "我前两天胃胀，今天胃不胀了，还有点恶心。"
    assert _check(gone, ref, wrong, ET.contradicts_findings) == "finding_gone_since"
    assert (
        _check("我有点恶心。", ref, wrong, ET.contradicts_findings) == "denied_finding_not_stated_in_question"
    )


def test_flip_needs_a_patient_not_a_knowledge_question():
    ref = "白带增多是指女性阴道分泌物量的增多。"
    wrong = "白带减少是指女性阴道分泌物量的增多。"
    assert _check("白带增多会不会影响怀孕", ref, wrong, ET.contradicts_findings) == (
        "knowledge_question_has_no_findings"
    )
    q = "我查出来转氨酶升高，怎么办？"
    ref2 = "转氨酶升高提示肝细胞受损，建议复查肝功能。"
    p = _check(q, ref2, ref2.replace("升高", "降低", 1), ET.contradicts_findings)
    assert isinstance(p, Proof) and p.pattern == "flip:升高->降低"


# ------------------------------------------------------------------------------- referral
def test_referral_removed_only_counts_for_a_red_flag_the_patient_has():
    ref = "转氨酶稍高，需要复查。如果胸痛加重，请立即到急诊就诊。"
    wrong = "转氨酶稍高，需要复查。"
    told = _check("我胸痛两小时，转氨酶稍高。", ref, wrong, ET.missing_referral)
    assert isinstance(told, Proof) and "胸痛" in told.reason
    # the safety net of the answer names the red flag, but the question tells none now: no clear error (seed 93151)
    asked = _check("转氨酶稍高会不会引起胸痛？", ref, wrong, ET.missing_referral)
    assert asked == "referral_not_needed_by_red_flag"
    ref2 = "转氨酶稍高，需要复查。建议及时就诊。"
    assert (
        _check("转氨酶稍高会不会引来胸口疼？", ref2, "转氨酶稍高，需要复查。", ET.missing_referral)
        == "referral_not_needed_by_red_flag"
    )


# ------------------------------------------------------------------------------- overclaiming
def test_overclaim_must_be_a_promise_not_a_negated_one():
    q = "胃炎怎么办？"
    ref = "可以口服奥美拉唑治疗，注意饮食。"
    p = _check(q, ref, "可以口服奥美拉唑治疗，保证药到病除，注意饮食。", ET.overclaiming)
    assert isinstance(p, Proof) and "保证药到病除" in p.reason
    assert (
        _check(q, ref, "可以口服奥美拉唑治疗，但不能保证根治，注意饮食。", ET.overclaiming)
        == "promise_negated"
    )
    assert (
        _check(q, ref, ref.replace("奥美拉唑", "布洛芬") + "保证治愈。", ET.overclaiming) == "facts_changed"
    )


# ------------------------------------------------------------------------------- rule + LLM share it
def test_rule_negative_carries_the_verifiers_reason():
    row = _mk(
        "宝宝两个月，拉肚子，大便是黄色水样的，一天七八次。",
        "根据你的情况考虑是急性胃肠炎的可能性比较大，注意补液。",
    )
    made = make_negative(row, ET.wrong_diagnosis, seed=0, kb=KB)
    assert not isinstance(made, str) and "问题中有“" in made.reason and "也可见于" in made.reason
    assert made.reason == check_wrong(row, ET.wrong_diagnosis, made.output, KB).reason
    # 烧心 rules out angina, nothing rules out 功能性烧心: only the first is ever made, and only for a
    # patient with chest pain (what angina shares with reflux)
    consistent = _mk("胸口痛，有时候烧心，打嗝较多。", "考虑是胃食管反流病引起的，建议做个胃镜。")
    afters = {make_negative(consistent, ET.wrong_diagnosis, seed=s, kb=KB).after for s in range(8)}
    assert afters == {"稳定型心绞痛"}
    assert make_negative(
        _mk("胃胀，打嗝较多。", consistent["output"]), ET.wrong_diagnosis, seed=0, kb=KB
    ) == ("differential_not_ruled_out_by_question")


def test_a_differential_must_share_a_complaint_with_the_case():
    """Audit seed 8821: 稳定型心绞痛 for bloating and heartburn, 急性胰腺炎 for an infant's diarrhoea."""
    reflux = "考虑是胃食管反流病引起的，建议做个胃镜。"
    bloating = _mk("胃胀，有时候烧心，打嗝较多。", reflux)
    for s in range(8):
        assert isinstance(make_negative(bloating, ET.wrong_diagnosis, seed=s, kb=KB), str)
    angina = reflux.replace("胃食管反流病", "稳定型心绞痛")
    assert check_wrong(bloating, ET.wrong_diagnosis, angina, KB) == "differential_shares_no_symptom"
    chest = _mk("胸口痛，有时候烧心，打嗝较多。", reflux)
    proof = check_wrong(chest, ET.wrong_diagnosis, angina, KB)
    assert not isinstance(proof, str) and "“胸口痛”也可见于稳定型心绞痛" in proof.reason
    # a complaint the question denies is not shared
    denied = _mk("没有胸口痛，有时候烧心，打嗝较多。", reflux)
    assert check_wrong(denied, ET.wrong_diagnosis, angina, KB) == "differential_shares_no_symptom"


def test_every_differential_in_use_needs_its_complaints(tmp_path):
    from augmenters.negative_kb import AGAINST_FILE, KnowledgeError, _against

    raw = AGAINST_FILE.read_text(encoding="utf-8")
    broken = tmp_path / "against.yaml"
    broken.write_text(raw.replace("  功能性烧心: [烧心, 胸骨后烧灼]\n", ""), encoding="utf-8")
    with pytest.raises(KnowledgeError, match="needs: no complaints listed for differential.*功能性烧心"):
        _against(broken, KB.diseases_by_name)


def _outcome(row: dict, et: ErrorType, text: str) -> LLMOutcome:
    return LLMOutcome(f"{row['id']}:{et.value}", {"output": text}, None, 1, 3, 10, 10, "stop")


def test_llm_negatives_pass_the_same_verifier_and_carry_the_change():
    row = _mk("孩子3岁，发烧39度。", "可以服用布洛芬混悬液退热，多喝水。")
    adult = _mk("我30岁，发烧39度。", "可以服用布洛芬混悬液退热，多喝水。")
    pairs = [(row, ET.wrong_drug), (adult, ET.wrong_drug), (row, ET.overclaiming)]
    outs = [
        _outcome(row, ET.wrong_drug, "可以服用阿司匹林混悬液退热，多喝水。"),
        _outcome(adult, ET.wrong_drug, "可以服用阿司匹林混悬液退热，多喝水。"),  # acceptable for an adult
        _outcome(row, ET.overclaiming, "可以服用布洛芬混悬液退热，但不能保证根治，多喝水。"),
    ]
    kept, rejected, counts = outcomes_to_rows(pairs, outs, {}, KB)
    assert len(kept) == 1 and kept[0]["error_type"] == "wrong_drug"
    assert kept[0]["verdict"].startswith(NEGATIVE_VERDICT) and "瑞氏综合征" in kept[0]["verdict"]
    detail = json.loads(kept[0]["provenance"]["augmentation"][-1]["detail"])
    assert detail["change"]["before"] == "布洛芬" and detail["change"]["after"] == "阿司匹林"
    assert detail["reason"] and detail["pattern"] == "contraindicated:child:非甾体抗炎药->抗血小板药"
    reasons = sorted(r[1] for r in rejected)
    assert reasons == [
        "llm_negative:not_wrong:promise_negated",
        "llm_negative:not_wrong:swap_not_wrong_by_tables",
    ]
    assert counts["llm_negative_rejected_not_wrong_swap_not_wrong_by_tables"] == 1


# ------------------------------------------------------------------------------- fifth audit round
def test_fifth_round_findings_are_not_made_again():
    from random import Random as rng

    from augmenters.negatives import contradicts_findings, missing_referral, overclaiming, wrong_dose

    # a red flag told as history earlier in the sentence (2004年…，当时有腹水，呕血) is not today's
    past = _mk(
        "2004年诊断为肝硬化，当时有腹水，呕血、晕迷，在当地医院救治",
        "肝硬化需要长期随访。对于严重患者来说，建议及时就诊，根据医生的意见来救治。",
    )
    assert missing_referral(past, KB, rng(0)) == "referral_not_needed_by_red_flag"
    # 05克 is a garbled 0.5克: no ×10 of it
    garbled = _mk("幽门螺杆菌阳性吃什么药？", "建议吃四联药，阿莫西林，05克，一日两次。")
    assert wrong_dose(garbled, KB, rng(0)) == "no_drug_dose"
    # a flipped word whose subject is only a count (这3个阳性 → 这3个阴性) contradicts nothing clinical
    count = _mk("我查乙肝，报告单3个阳性，2个阴性，正常吗？", "这3个阳性是代表哪3个阳性要看报告。")
    made = contradicts_findings(count, KB, rng(0))
    assert isinstance(made, str) or made.strategy != "flip"
    assert (
        _check(
            count["instruction"],
            count["output"],
            "这3个阳性是代表哪3个阴性要看报告。",
            ET.contradicts_findings,
        )
        == "flipped_word_not_from_question"
    )
    # 有可能是 is never turned into 有一定是; 有利于病情 never into 一定能保证病情
    for seed in range(6):
        c = overclaiming(
            _mk("我有脂肪肝。", "原因有可能是油脂摄取过多，建议控制饮食，可以服用药物治疗，注意休息。"),
            KB,
            rng(seed),
        )
        assert "有一定是" not in c.output and "有肯定是" not in c.output
        c2 = overclaiming(
            _mk(
                "肝病能用鹿鞭吗？",
                "鹿鞭过度温补，许多有利于病情的说法不可信，建议服用保肝药物治疗，注意休息。",
            ),
            KB,
            rng(seed),
        )
        assert "保证病情" not in c2.output


def test_sixth_round_denials_only_where_the_answer_speaks_of_this_patient():
    from random import Random

    from augmenters.negatives import Candidate, contradicts_findings

    # the answer names 恶心 only in a general list: no denial woven in there
    general = _mk(
        "我叔叔最近一年总是恶心，干呕。", "味精用量多可再次出现短暂头痛，心慌甚至恶心等症状。饮食要清淡。"
    )
    assert all(
        not isinstance(c := contradicts_findings(general, KB, Random(s)), Candidate) or c.strategy != "deny"
        for s in range(6)
    )
    # 黄疸 of 急性黄疸肝炎 names the disease
    name = _mk(
        "我们领班得了乙型急性黄疸肝炎，严重吗？",
        "您说的情况目前要看黄疸深浅，急性黄疸型乙型肝炎一般可以治愈。",
    )
    assert all(
        not isinstance(c := contradicts_findings(name, KB, Random(s)), Candidate) or c.strategy != "deny"
        for s in range(6)
    )
    told = _mk("我吃点东西就感觉胃胀，每天吃的很少。", "您这种情况胃胀多是消化不良引起的，建议清淡饮食。")
    on = replace(KB, deny_enabled=True)  # off by default (audit seed 4421): see test_a_denial_..._is_dropped
    made = [contradicts_findings(told, on, Random(s)) for s in range(4)]
    assert any(isinstance(c, Candidate) and c.strategy == "deny" for c in made)


def test_seventh_round_a_swap_keeps_no_route_the_new_drug_lacks():
    from random import Random

    from augmenters.negatives import wrong_drug

    q = "我姐姐有糖尿病，现在怀孕了，药怎么吃？"
    ref = "妊娠期不建议口服降糖药物，可以注射胰岛素来控制血糖。"
    # 胰岛素 → 格列齐德 keeps 注射: no such answer; the verifier says why
    assert _check(q, ref, ref.replace("胰岛素", "格列齐德"), ET.wrong_drug) == "swap_changes_the_route"
    assert wrong_drug(_mk(q, ref), KB, Random(0)) in ("swap_changes_the_route", "no_rule_makes_a_swap_wrong")


def test_a_daily_amount_is_judged_against_the_daily_maximum():
    q = "反流性食管炎和胃炎四联法怎么用药？"
    ref = "阿莫西林每日总量2克，连服两周。"  # (每日服用量要超过2克才行 is a bound, not a dose: audit seed 57331)
    # 3 g a day of amoxicillin is a usual daily amount (over the single-dose maximum, not the daily one)
    assert _check(q, ref, ref.replace("2克", "3克"), ET.wrong_dose) == "daily_amount_within_max"
    assert isinstance(_check(q, ref, ref.replace("2克", "20克"), ET.wrong_dose), Proof)


def test_llm_request_names_the_change_the_tables_can_prove():
    from augmenters.llm_negatives import ERROR_PROMPTS, build_request

    row = _mk("孩子3岁，发烧39度。", "可以服用布洛芬，多喝水。")
    req = build_request(row, ET.wrong_drug)
    assert ERROR_PROMPTS[ET.wrong_drug] in req.user
    assert "“布洛芬”改成“" in req.user and "不适合本例" in req.user
    # no table-backed change for an adult: the plain instruction only
    adult = build_request(_mk("我30岁，发烧39度。", "可以服用布洛芬，多喝水。"), ET.wrong_drug)
    assert "改成“" not in adult.user
    assert build_request(row, ET.wrong_drug).user == req.user  # deterministic (the request key is its cache)


# ------------------------------------------------------------------------------- audit seed 4421
def test_a_denial_whose_answer_still_states_the_finding_is_dropped():
    """Audit seed 4421: 0 of 15 denials valid, each sat next to the answer's own mention (虽然没有胃胀，但胃胀)."""
    from random import Random

    from augmenters.negatives import Candidate, contradicts_findings

    q = "我吃点东西就感觉胃胀，每天吃的很少。"
    ref = "您这种情况胃胀多是消化不良引起的，建议清淡饮食。"
    for ins in ("虽然没有胃胀，但", "可以排除胃胀，", "从描述看并不存在胃胀，"):
        wrong = ref.replace("胃胀多是", ins + "胃胀多是")
        assert _check(q, ref, wrong, ET.contradicts_findings) == "denied_finding_still_stated", ins
    # the denial replaces the only mention: the answer no longer says the patient has it, so it is kept
    p = _check(q, ref, ref.replace("胃胀多是", "没有胃胀，多是"), ET.contradicts_findings)
    assert isinstance(p, Proof) and p.pattern.startswith("deny:")
    # and by default the rule maker weaves in no denial at all
    made = [contradicts_findings(_mk(q, ref), KB, Random(s)) for s in range(8)]
    assert not any(isinstance(c, Candidate) and c.strategy == "deny" for c in made)
    # with the templates switched on, every denial made is dropped by the verifier
    on = replace(KB, deny_enabled=True)
    denials = [c for s in range(8) if isinstance(c := contradicts_findings(_mk(q, ref), on, Random(s)), Candidate)
               and c.strategy == "deny"]  # fmt: skip
    assert denials and all(_check(q, ref, c.output, ET.contradicts_findings) == "denied_finding_still_stated"
                           for c in denials)  # fmt: skip


def test_a_flip_that_leaves_the_original_value_elsewhere_is_dropped():
    """Audit seed 4421: 偏高 → 偏低 in one line while 胆红素偏高 stayed twice in the same answer."""
    from random import Random

    from augmenters.negatives import Candidate, contradicts_findings

    q = "我患乙肝，肝功上总胆红素偏高，有什么危害？"
    ref = "你好胆红素偏高就是黄疸。总胆红素偏高病情严重就要及时救治，否则会致使总胆红素偏高再次病发。"
    wrong = ref[::-1].replace("高偏", "低偏", 1)[::-1]  # the last one only
    assert _check(q, ref, wrong, ET.contradicts_findings) == "original_finding_still_stated"
    for s in range(8):
        c = contradicts_findings(_mk(q, ref), KB, Random(s))
        assert not (isinstance(c, Candidate) and c.strategy == "flip")
    # one mention, flipped: still a valid negative
    ref1 = "总胆红素偏高提示肝细胞受损或胆汁排泄受阻，建议复查肝功能。"
    p = _check(q, ref1, ref1.replace("偏高", "偏低"), ET.contradicts_findings)
    assert isinstance(p, Proof) and p.pattern == "flip:偏高->偏低"


def test_a_red_flag_the_question_says_was_worked_up_since_needs_no_referral():
    """Audit seed 4421: a diet question on known cirrhosis; the chest pain had been seen at hospital."""
    from random import Random

    from augmenters.negatives import missing_referral

    q = ("我婆婆一直都说胸口痛，吃不下饭，所以昨天就去了医院检查，查出来是得了肝硬化中期。"
         "想知道肝硬化平时的饮食要注意什么？")  # fmt: skip
    ref = "肝硬化患者宜低盐饮食，每日钠盐控制在1.5克以内。对于肝硬化严重患者，建议立即就诊，根据医生的意见治疗。"
    wrong = (
        "肝硬化患者宜低盐饮食，每日钠盐控制在1.5克以内。对于肝硬化严重患者，先在家观察一晚上，明天再决定。"
    )
    assert _check(q, ref, wrong, ET.missing_referral) == "referral_not_needed_by_red_flag"
    assert all(isinstance(missing_referral(_mk(q, ref), KB, Random(s)), str) for s in range(4))
    # a chest pain of now, not yet seen, still needs the referral
    now = "我婆婆胸口痛两个小时了，肝硬化饮食要注意什么？"
    p = _check(now, ref, wrong, ET.missing_referral)
    assert isinstance(p, Proof) and "胸口痛" in p.reason
