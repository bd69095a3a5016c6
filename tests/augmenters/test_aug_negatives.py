"""Rule negatives: each is wrong for a reason the knowledge tables give, changes exactly one fact of its
type's kind, and the mix follows the ratios with no pattern over 10 % of a type."""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest

from augmenters.negatives import (
    CONSTRUCTORS,
    TYPE_EXCESS,
    Candidate,
    _keep_bound,
    _kept_total,
    _type_limits,
    contradicts_findings,
    load_negative_knowledge,
    make_negative,
    missing_referral,
    negative_rows,
    negative_summary,
    overclaiming,
    verify,
    wrong_diagnosis,
    wrong_dose,
    wrong_drug,
)
from medaug.schema import (
    NEGATIVE_VERDICT,
    ErrorType,
    Sample,
    rows_to_table,
    samples_to_table,
    table_to_samples,
)

KB = load_negative_knowledge()


def _row(samples, i=0):
    return samples_to_table(samples).to_pylist()[i]


def _mk(question: str, answer: str) -> dict:
    return samples_to_table([Sample(instruction=question, output=answer)]).to_pylist()[0]


def _single_edit(ref: str, wrong: str) -> tuple[str, str]:
    """The one differing middle part of two strings (common prefix and suffix removed)."""
    p = 0
    while p < min(len(ref), len(wrong)) and ref[p] == wrong[p]:
        p += 1
    s = 0
    while s < min(len(ref), len(wrong)) - p and ref[-1 - s] == wrong[-1 - s]:
        s += 1
    return ref[p : len(ref) - s], wrong[p : len(wrong) - s]


# ------------------------------------------------------------------------------- wrong diagnosis
@pytest.mark.parametrize("seed", range(4))
def test_wrong_diagnosis_picks_a_differential_and_says_why(samples, seed):
    row = _row(samples)
    c = wrong_diagnosis(row, KB, random.Random(seed))
    assert isinstance(c, Candidate)
    entry = KB.diseases_by_name["急性心肌梗死"]
    diff = next(d for d in entry.differentials if d.name == c.after)  # one of the table's differentials
    assert c.before == "急性心肌梗死" and diff.key in c.reason
    assert c.output == row["output"].replace("急性心肌梗死", c.after)
    assert verify(ErrorType.wrong_diagnosis, row["output"], c) is None


def test_wrong_diagnosis_leaves_knowledge_questions_and_topic_texts_alone():
    topic = _mk("抑郁症怎么治疗？", "抑郁症的治疗包括药物和心理治疗，考虑抑郁症时应到精神科就诊。")
    assert wrong_diagnosis(topic, KB, random.Random(0)) in (
        "question_has_no_presentation",
        "disease_named_in_question",
    )
    named = _mk("我最近情绪低落、失眠，是抑郁症吗？", "考虑抑郁症，建议到精神心理科就诊。")
    assert wrong_diagnosis(named, KB, random.Random(0)) == "disease_named_in_question"
    many = "考虑抑郁症。" + "抑郁症需要治疗。" * 4
    assert (
        wrong_diagnosis(_mk("我最近情绪低落、失眠。", many), KB, random.Random(0)) == "disease_is_the_topic"
    )


# ------------------------------------------------------------------------------- wrong drug
@pytest.mark.parametrize("seed", range(4))
def test_wrong_drug_is_contraindicated_for_this_child_and_shares_a_role(samples, seed):
    row = _row(samples, 1)  # a 3-year-old child
    c = wrong_drug(row, KB, random.Random(seed))
    assert isinstance(c, Candidate)
    assert c.before == "布洛芬"  # 口服补液盐 shares no role with any contraindicated drug
    assert KB.drugs[c.after].roles & KB.drugs["布洛芬"].roles
    rules = KB.contraindicated(c.after, {"child"}, row["instruction"] + row["output"])
    assert rules and rules[0].reason in c.reason
    assert c.output == row["output"].replace("布洛芬", c.after)
    assert verify(ErrorType.wrong_drug, row["output"], c) is None


def test_wrong_drug_needs_a_rule(samples):
    assert wrong_drug(_row(samples, 2), KB, random.Random(0)) == "no_rule_makes_a_swap_wrong"


def test_wrong_drug_never_swaps_inside_a_compound_or_a_warning():
    igf = _mk(
        "孩子3岁，个子矮，查了胰岛素样生长因子偏低。",
        "胰岛素样生长因子偏低需要查生长激素，可用生长激素治疗。",
    )
    assert wrong_drug(igf, KB, random.Random(0)) == "no_known_drug"
    colic = _mk("胆绞痛疼得厉害，怀孕了，能用什么止痛？", "胆绞痛时不宜用吗啡，以免奥迪括约肌痉挛。")
    assert wrong_drug(colic, KB, random.Random(0)) == "drug_in_warning_context"
    asked = _mk("胆绞痛疼得厉害，怀孕了，能用吗啡吗？", "胆绞痛时不宜用吗啡，以免奥迪括约肌痉挛。")
    assert wrong_drug(asked, KB, random.Random(0)) == "drug_named_in_question"
    product = _mk("孩子5岁感冒发烧。", "可以口服小儿对乙酰氨基酚黄那敏颗粒治疗。")
    assert wrong_drug(product, KB, random.Random(0)) == "drug_inside_a_compound_name"


def test_wrong_drug_uses_a_class_confusion_when_no_population_applies():
    row = _mk(
        "感冒三天，流鼻涕、嗓子疼，怎么办？", "普通感冒多为病毒感染，发热时可服用对乙酰氨基酚，多喝水休息。"
    )
    c = wrong_drug(row, KB, random.Random(0))
    assert isinstance(c, Candidate) and c.strategy == "confusion"
    assert "抗生素无效" in c.reason and KB.drugs[c.after].roles == {"抗菌"}


# ------------------------------------------------------------------------------- wrong dose
@pytest.mark.parametrize("seed", range(8))
def test_wrong_dose_changes_only_the_dose_and_is_clearly_wrong(samples, seed):
    row = _row(samples, 2)
    c = wrong_dose(row, KB, random.Random(seed))
    assert isinstance(c, Candidate) and c.before == "500mg"
    assert _single_edit(row["output"], c.output) == _single_edit("500mg", c.after)
    assert "倍" in c.reason or "1/" in c.reason
    assert verify(ErrorType.wrong_dose, row["output"], c) is None


def test_wrong_dose_keeps_no_change_that_lands_in_the_usual_range():
    row = _mk("我在备孕，叶酸怎么吃？", "备孕期间可以吃叶酸，每天0.4mg，从孕前3个月开始。")
    for seed in range(20):
        c = make_negative(row, ErrorType.wrong_dose, seed=seed)
        if isinstance(c, Candidate):
            num, unit = re.fullmatch(r"([\d.]+)\s*(\D+)", c.after).groups()
            mg = float(num) * {"mg": 1, "g": 1000, "μg": 0.001}[unit]
            assert not 0.4 <= mg <= 5  # 4 mg would be a usual dose (high-risk women): not a negative
        else:
            assert c in ("dose_change_not_clearly_wrong",)


def test_weekly_methotrexate_taken_daily_is_a_dose_error():
    row = _mk("类风湿关节炎，甲氨蝶呤怎么吃？", "甲氨蝶呤每次10mg，每周1次口服，同时补充叶酸。")
    seen = {
        c.strategy for s in range(30) if isinstance(c := wrong_dose(row, KB, random.Random(s)), Candidate)
    }
    assert "weekly_as_daily" in seen
    c = next(c for s in range(30) if isinstance(c := wrong_dose(row, KB, random.Random(s)), Candidate)
             and c.strategy == "weekly_as_daily")  # fmt: skip
    assert "每日1次" in c.output and "7倍" in c.reason


def test_adult_dose_for_a_small_child():
    row = _mk("孩子2岁，发烧39度，布洛芬怎么吃？", "可以口服布洛芬，每次5～10mg/kg，间隔6～8小时。")
    row["output"] = "可以口服布洛芬10mg/kg，间隔6～8小时。"
    made = [c for s in range(40) if isinstance(c := wrong_dose(row, KB, random.Random(s)), Candidate)]
    adult = [c for c in made if c.strategy == "adult_dose_for_child"]
    assert adult and adult[0].after == "400mg" and "成人剂量" in adult[0].reason


# ------------------------------------------------------------------------------- contradicts findings
def test_contradicting_findings_flips_a_stated_finding(samples):
    row = _row(samples, 0)
    c = contradicts_findings(row, KB, random.Random(0))
    assert isinstance(c, Candidate) and c.strategy == "flip"
    assert _single_edit(row["output"], c.output) == ("抬高", "压低")
    assert "ST段抬高" in c.reason


def test_contradicting_findings_needs_findings_in_the_question():
    row = _mk("暂时性骨质疏松的发病部位？", "暂时性骨质疏松多见于髋关节。")
    assert contradicts_findings(row, KB, random.Random(0)) == "question_has_no_findings"


def test_contradicting_findings_misquotes_a_lab_value_across_its_range():
    row = _mk(
        "我今年44岁，口渴，血糖是17.2是糖尿病吗？", "你的血糖17.2mmol/L。考虑糖尿病，需要查糖化血红蛋白。"
    )
    made = [
        c for s in range(20) if isinstance(c := contradicts_findings(row, KB, random.Random(s)), Candidate)
    ]
    quotes = [c for c in made if c.strategy == "misquote"]
    assert quotes and 3.9 <= float(quotes[0].after) <= 7.8
    assert verify(ErrorType.contradicts_findings, row["output"], quotes[0]) is None


# ------------------------------------------------------------------------------- missing referral
@pytest.mark.parametrize("seed", range(6))
def test_missing_referral_takes_out_the_escalation_of_a_red_flag_case(samples, seed):
    row = _row(samples, 0)
    c = missing_referral(row, KB, random.Random(seed))
    assert isinstance(c, Candidate)
    assert "120" not in c.output and "导管室" not in c.output
    assert "胸" in c.reason  # the red flag of the question
    assert verify(ErrorType.missing_referral, row["output"], c) is None


def test_missing_referral_needs_a_red_flag():
    row = _mk("最近有点便秘，怎么办？", "多吃蔬菜多喝水，如果一直不缓解请尽快就医。还可以适当运动。")
    assert missing_referral(row, KB, random.Random(0)) == "referral_not_needed_by_red_flag"
    assert missing_referral(_row_dm(), KB, random.Random(0)) == "no_urgent_referral"


def _row_dm():
    from tests.augmenters.conftest import make_samples

    return _row(make_samples(), 2)


# ------------------------------------------------------------------------------- overclaiming
@pytest.mark.parametrize("seed", range(10))
def test_overclaiming_is_woven_in_not_appended(samples, seed):
    row = _row(samples, 2)
    c = overclaiming(row, KB, random.Random(seed))
    assert isinstance(c, Candidate)
    if c.strategy == "insert":  # a promise clause after a treatment clause, never tacked on at the end
        assert not c.output.rstrip("。").endswith(c.after) and c.before == ""
    else:  # an existing hedge / follow-up / side-effect phrase turned into a promise
        assert c.before in row["output"] and c.output == row["output"].replace(c.before, c.after, 1)
    assert sum(c.output.count(m) for m in KB.promise_markers) > sum(
        row["output"].count(m) for m in KB.promise_markers
    )
    assert verify(ErrorType.overclaiming, row["output"], c) is None


# ------------------------------------------------------------------------------- verification
def test_verify_drops_a_candidate_that_changes_two_facts(samples):
    row = _row(samples, 2)
    wrong = row["output"].replace("二甲双胍500mg", "格列美脲50mg")
    c = Candidate(wrong, "二甲双胍", "格列美脲", 0, "x", "p", "s")
    assert verify(ErrorType.wrong_drug, row["output"], c).startswith("fact_check:")
    only_dose = Candidate(row["output"].replace("500mg", "5000mg"), "500mg", "5000mg", 0, "x", "p", "s")
    assert verify(ErrorType.wrong_drug, row["output"], only_dose).startswith("fact_check:")
    assert verify(ErrorType.wrong_dose, row["output"], only_dose) is None


# ------------------------------------------------------------------------------- rows, ratios, balance
def test_negative_rows_carry_type_change_reason_and_reference(samples):
    rows = samples_to_table(samples).to_pylist()
    stats: Counter[str] = Counter()
    out = negative_rows(rows, {et: 1.0 for et in CONSTRUCTORS}, seed=0, stats=stats)
    made = table_to_samples(rows_to_table(out))
    by_id = {r["id"]: r for r in rows}
    assert {s.error_type for s in made} >= {
        ErrorType.wrong_diagnosis,
        ErrorType.wrong_dose,
        ErrorType.overclaiming,
    }
    for s in made:
        parent = by_id[s.provenance.parent_id]
        d = json.loads(s.provenance.augmentation[-1].detail)
        assert s.label == "negative" and s.verdict == f"{NEGATIVE_VERDICT}：{d['reason']}"
        assert s.reference_output == parent["output"] != s.output
        assert d["error_type"] == s.error_type and d["pattern"]
        assert d["change"]["before"] or d["change"]["after"]  # the changed span, before → after
    summary = negative_summary(stats)
    assert sum(v.get("kept", 0) for v in summary.values()) == len(out)
    assert summary["wrong_drug"]["dropped"]["no_rule_makes_a_swap_wrong"] >= 1


def _many_rows(n: int) -> list[dict]:
    """Varied patient questions: several drugs, doses, diseases and findings."""
    rnd = random.Random(7)
    cases = [
        (
            "孩子{a}岁，发烧咳嗽两天。",
            "考虑上呼吸道感染，可服用对乙酰氨基酚{d}mg退热，多喝水，如果精神萎靡请尽快就医。",
        ),
        (
            "患者男，{a}岁，胸口疼出冷汗，心电图ST段抬高。",
            "考虑急性心肌梗死，立即拨打120。可嚼服阿司匹林{d}mg。",
        ),
        (
            "空腹血糖{g}mmol/L，老想喝水，{a}岁。",
            "结合血糖升高和多饮，考虑2型糖尿病。口服二甲双胍{d}mg每日两次，定期复查。",
        ),
        ("我怀孕{a}周，血压偏高，头痛。", "考虑妊娠期高血压，可在医生指导下口服拉贝洛尔{d}mg，定期产检。"),
        (  # findings the answer restates once (flip, misquote): denials are off by default
            "我{a}岁，空腹血糖{g}mmol/L，查出来转氨酶升高，怎么办？",
            "您的空腹血糖{g}mmol/L，转氨酶升高提示肝细胞受损，建议复查肝功能。",
        ),
        (
            "宝宝{a}个月，拉肚子三天，大便稀。",
            "考虑轮状病毒肠炎，口服补液盐补液，蒙脱石散{d}g，尿少时请立即就医。",
        ),
    ]
    out = []
    for i in range(n):
        q, a = cases[i % len(cases)]
        vals = {
            "a": rnd.randint(2, 60),
            "d": rnd.choice([1, 2, 3, 5, 100, 150, 200, 250, 300]),
            "g": 7 + i % 9,
        }
        out.append(Sample(instruction=f"{q.format(**vals)}（{i}）", output=a.format(**vals)))
    return samples_to_table(out).to_pylist()


def test_types_follow_ratios_and_no_pattern_passes_ten_percent():
    rows = _many_rows(300)
    ratios = {et: 0.3 for et in CONSTRUCTORS}
    stats: Counter[str] = Counter()
    out = negative_rows(rows, ratios, seed=1, stats=stats)
    per_type = Counter(r["error_type"] for r in out)
    assert len(per_type) == 6
    for et, n in per_type.items():
        assert n <= 2.0 * len(out) / 6 + 1  # no type beyond twice its share
        pats = Counter(json.loads(r["provenance"]["augmentation"][-1]["detail"])["pattern"] for r in out
                       if r["error_type"] == et)  # fmt: skip
        assert max(pats.values()) <= max(2, int(0.1 * n)), (et, pats.most_common(3))
    summary = negative_summary(stats)
    for v in summary.values():
        assert (
            v["max_pattern_share"] <= max(2, int(0.1 * v["kept"])) / v["kept"] + 0.0005
        )  # rounded to 3 places


def test_ratios_and_seeds_reproduce_exactly():
    rows = _many_rows(120)
    ratios = {ErrorType.wrong_dose: 0.25, ErrorType.overclaiming: 0.5}
    a = negative_rows(rows, ratios, seed=3)
    b = negative_rows(list(reversed(rows)), ratios, seed=3)
    assert sorted(r["id"] for r in a) == sorted(r["id"] for r in b)
    assert set(Counter(r["error_type"] for r in a)) == {"wrong_dose", "overclaiming"}
    c = negative_rows(rows, ratios, seed=4)
    assert sorted(r["id"] for r in a) != sorted(r["id"] for r in c)


# ------------------------------------------------------------------------------- audit findings
def test_a_male_only_differential_is_never_given_to_a_woman():
    row = _mk("我是女生，18岁，同房后这两天尿频尿急尿痛。", "尿频尿急尿痛常提示泌尿系感染，可做尿常规确诊。")
    for seed in range(20):
        c = wrong_diagnosis(row, KB, random.Random(seed))
        assert isinstance(c, Candidate) and c.after != "急性前列腺炎"


def test_denials_are_never_about_pregnancy_or_a_worry():
    row = _mk(
        "我在怀孕期间一直吐，生了小孩以后查出小三阳，会传染宝宝吗？", "怀孕期间感染乙肝可能传染给孩子。"
    )
    for seed in range(10):
        c = contradicts_findings(row, KB, random.Random(seed))
        assert not (isinstance(c, Candidate) and "怀孕" in c.after)


def test_red_flags_told_as_past_history_or_denied_do_not_count():
    past = _mk(
        "2004年诊断为肝硬化，当时有呕血、昏迷。现在怎么调理？", "建议及时就诊，根据医生的意见治疗。注意饮食。"
    )
    assert missing_referral(past, KB, random.Random(0)) == "referral_not_needed_by_red_flag"
    denied = _mk("孩子咳嗽两天，没有抽搐，精神好。", "多喝水，如果咳嗽加重请尽快就医。注意休息。")
    assert missing_referral(denied, KB, random.Random(0)) == "referral_not_needed_by_red_flag"
    # Audit seed 7919: a seizure yesterday that has passed may wait for the clinic; only a current or
    # recurring one makes "wait" wrong.
    ref = "考虑癫痫发作，建议尽快去医院做头颅CT。平时注意休息。"
    yesterday = _mk("表姐昨天不知为什么突然抽搐，口吐白沫。", ref)
    assert missing_referral(yesterday, KB, random.Random(0)) == "red_flag_not_current"
    assert missing_referral(
        _mk("三天前吃饭时突然抽搐了一次，想问是不是癫痫？", ref), KB, random.Random(0)
    ) == ("red_flag_not_current")
    for q in ("表姐刚才突然抽搐，口吐白沫。", "表姐昨天突然抽搐，今天又抽了一次。"):
        c = missing_referral(_mk(q, ref), KB, random.Random(0))
        assert isinstance(c, Candidate) and "抽搐" in c.reason and "抽搐" in q


def test_an_amount_written_before_the_next_drug_is_not_the_previous_drugs_dose():
    row = _mk(
        "氨酚双氢可待因的成分是什么？", "本品为复方制剂，其组分为：500mg对乙酰氨基酚和100mg酒石酸双氢可待因。"
    )
    assert wrong_dose(row, KB, random.Random(0)) == "no_drug_dose"


def test_no_denial_of_a_finding_the_question_itself_denies():
    row = _mk(
        "我45岁，空腹血糖是10.23，没出现多饮，多食，多尿等症状，算糖尿病么？",
        "空腹血糖10.23已达糖尿病标准，多尿等症状并非诊断必需，建议复查。",
    )
    for seed in range(10):
        c = contradicts_findings(row, KB, random.Random(seed))
        assert not (isinstance(c, Candidate) and c.strategy == "deny")


def test_a_number_after_another_dose_is_not_attributed_to_the_earlier_drug():
    row = _mk("幽门螺杆菌阳性怎么治？", "口服克拉霉素500mg＋甲硝唑0.4g+20mg，每日二次。")
    for seed in range(10):
        c = wrong_dose(row, KB, random.Random(seed))
        assert not (isinstance(c, Candidate) and c.before == "20mg")


def test_no_denial_of_a_finding_the_question_says_is_gone():
    row = _mk(
        "我45岁，前天胃胀胃疼，去医院开了药，这天胃不胀了，还有点疼。",
        "胃胀胃疼多与慢性胃炎有关，继续按医嘱服药。",
    )
    for seed in range(10):
        c = contradicts_findings(row, KB, random.Random(seed))
        assert not (isinstance(c, Candidate) and "胃胀" in c.after)


def test_stopping_on_ones_own_is_only_promised_where_the_drug_must_not_be_stopped():
    row = _mk("怀孕20周能吃板蓝根吗？", "可以在医生指导下短期服用板蓝根颗粒治疗，多喝水。注意休息。")
    for seed in range(20):
        c = overclaiming(row, KB, random.Random(seed))
        assert not (isinstance(c, Candidate) and c.pattern == "stop_safely")


def _candidates(maker, row, n=30):
    return [c for s in range(n) if isinstance(c := maker(row, KB, random.Random(s)), Candidate)]


def test_certainty_is_not_claimed_where_the_sentence_still_hedges_or_of_a_complaint():
    """Audit seed 6607: 考虑为胃脘痞满，需要有进一步仔细检查确诊 → 一定是胃脘痞满，需要…确诊 contradicts itself,
    and 胃脘痞满 only names the complaint (胃胀): no certainty claim there."""
    hedged = _mk(
        "胃胀吃晚饭后尤为明显总想打嗝，偶尔有轻微胀痛的感觉",
        "根据你的叙述考虑为慢性胃炎，需要有进一步仔细检查确诊。建议到消化科就诊，遵医嘱服用药物治疗，清淡饮食。",
    )
    complaint = _mk(
        "胃胀吃晚饭后尤为明显总想打嗝，偶尔有轻微胀痛的感觉",
        "根据你的叙述从中医理论角度考虑为胃脘痞满。建议到中医院脾胃病科就诊，遵医嘱服用中药治疗，清淡饮食。",
    )
    for row in (hedged, complaint):
        cs = _candidates(overclaiming, row)
        assert not [c for c in cs if c.pattern.startswith("certainty")], [c.after for c in cs]
    plain = _mk(
        "胃胀吃晚饭后尤为明显总想打嗝，偶尔有轻微胀痛的感觉",
        "根据你的叙述考虑为慢性胃炎。建议到消化科就诊，遵医嘱服用药物治疗，清淡饮食。",
    )
    assert any(c.pattern.startswith("certainty") for c in _candidates(overclaiming, plain, 60))


def test_no_flip_inside_a_disease_name_or_of_a_weak_result():
    """醛固酮增多症 → 醛固酮减少症 swaps a disease (no finding was told); 弱阳性 → 弱阴性 is no category whose
    advice differs (audit seed 6607)."""
    disease = _mk(
        "我血压总是持高不下，全身乏力，朋友说很像是醛固酮增多的症状。醛固酮增多症临床表现是我这样的吗？",
        "醛固酮增多症临床表现多见头晕、头痛、肌无力，针对您叙述的症状不能确诊，建议到医院检查。",
    )
    weak = _mk(
        "家里有乙肝的，检查发现小孩子乙肝抗体弱阳性，抗体可以保持多长时间？",
        "孩子的乙肝抗体弱阳性，证明免疫力已经不是很好了，需要补打乙肝疫苗。",
    )
    for row in (disease, weak):
        flips = [c for c in _candidates(contradicts_findings, row) if c.strategy == "flip"]
        assert not flips, [c.output[:30] for c in flips]
    real = _mk(
        "家里有乙肝的，检查发现小孩子乙肝抗体阳性，抗体可以保持多长时间？",
        "孩子的乙肝抗体阳性，说明有保护力，一般不需要补打乙肝疫苗。",
    )
    assert any(c.strategy == "flip" for c in _candidates(contradicts_findings, real))


# Audit seed 7919: promises spliced into a list of risk groups, into a list of side effects that goes on to
# say they go away, and a swap inside 绝大部分人.
_RISK_GROUPS = (
    "丙肝可因接触感染性血液而传播,也可经性接触传播.传染的危险人群包括：做手术者,静脉药瘾者,"
    "感染者的家庭成员及接触血液的医务人员.很多丙肝感染者并无症状."
)
_SIDE_EFFECTS = (
    "本药有抗雄激素作用，用药剂量较大时可引起男性乳房发育、女性溢乳、性欲减退等，停药后即可消失；"
    "还可诱发剥脱性皮炎。"
)


@pytest.mark.parametrize("seed", range(20))
def test_overclaiming_never_inside_an_enumeration_or_next_to_a_clause_that_says_it_goes(seed):
    for answer in (_RISK_GROUPS, _SIDE_EFFECTS):
        c = overclaiming(_mk("丙肝会传染吗？", answer), KB, random.Random(seed))
        assert not isinstance(c, Candidate) or c.strategy != "insert", c.output


def test_overclaiming_never_replaces_inside_a_longer_word():
    answer = "两种疫苗间隔的时间是28天,绝大部分人都记为一个月.建议按时接种。"
    for seed in range(20):
        c = overclaiming(_mk("两种疫苗间隔多长？", answer), KB, random.Random(seed))
        assert not isinstance(c, Candidate) or "绝大部分人" not in c.before + c.output[:30], c.output
        assert not isinstance(c, Candidate) or "绝每一位" not in c.output and "绝所有" not in c.output


def test_overclaiming_still_follows_a_treatment_clause():
    answer = "建议口服奥美拉唑治疗，平时饮食清淡，注意休息。"  # (not before 饭后服用: the dosing goes on)
    outs = [overclaiming(_mk("胃痛怎么办？", answer), KB, random.Random(s)) for s in range(10)]
    inserted = [c for c in outs if isinstance(c, Candidate) and c.strategy == "insert"]
    assert inserted and all(c.start == answer.find("，") for c in inserted)


@pytest.mark.parametrize(
    "answer",
    [
        "考虑结肠炎，目前可以口服药物诺氟沙星胶囊，黄连素，肠炎宁片来治疗。饮食清淡。",  # a list of drugs
        "根据你的叙述，肝血管瘤不需要治疗，如果有肝硬化需要对症治疗。注意休息。",  # no treatment needed
        "你可以先吃药，在用药期间你还可以检查一下肝功能，或者也可以吃点护肝片。",  # advice to get a test
        "需要做腹腔穿刺并输注人血白蛋白予以纾解，但肝腹水目前还没有特效药。",  # already says it relieves
    ],
)
def test_overclaiming_promise_follows_treatment_advice_only(answer):
    """Seed 9001 check: promises after 不需要治疗, inside a list of drugs, after a test, after 纾解."""
    bad_at = {
        answer.find("胶囊，") + 2,
        answer.find("不需要治疗，") + 5,
        answer.find("肝功能，") + 3,
        answer.find("纾解，") + 2,
    }
    for seed in range(20):
        c = overclaiming(_mk("怎么治疗？", answer), KB, random.Random(seed))
        assert not isinstance(c, Candidate) or c.strategy != "insert" or c.start not in bad_at, c.output


# ------------------------------------------------------------------------------- early stop
def _fixed_point_by_iteration(counts: dict, ratios: dict) -> float:
    """The old way: iterate k = sum(min(n, TYPE_EXCESS x share x k)) down from the sum of the counts."""
    total = sum(ratios[et] for et in counts)
    k = float(sum(counts.values()))
    for _ in range(100_000):
        nk = sum(min(n, TYPE_EXCESS * ratios[et] / total * k) for et, n in counts.items())
        if abs(nk - k) < 1e-12:
            break
        k = nk
    return k


def test_kept_total_is_the_fixed_point_the_type_shares_define():
    rnd = random.Random(5)
    types = list(CONSTRUCTORS)
    for _ in range(300):
        chosen = rnd.sample(types, rnd.randint(1, len(types)))
        counts = {et: rnd.choice([0, 1, 2, 5, 14, 40, 300, 800]) for et in chosen}
        ratios = {et: rnd.choice([0.05, 0.1, 1 / 6, 0.3, 0.5]) for et in chosen}
        assert _kept_total(counts, ratios) == pytest.approx(
            _fixed_point_by_iteration(counts, ratios), abs=1e-6
        )
        # a type's bound: more candidates than it never change any type's limit
        et = chosen[0]
        bound = _keep_bound(et, {e: n for e, n in counts.items() if e != et}, ratios)
        if bound != float("inf") and counts[et] > bound:
            fewer = {**counts, et: int(bound)}
            assert _type_limits(fewer, ratios) == _type_limits(counts, ratios)


def test_abundant_types_stop_early_with_the_same_negatives(shared_data, monkeypatch):
    """Scarce types first, abundant ones only up to what their share lets them keep: the output is the
    one making every type up to its target gives, for far fewer verified candidates."""
    import csv

    import augmenters.negatives as negatives_mod

    path = shared_data / "toyhom_dialogue" / "样例_内科5000-6000.utf8.csv"
    with open(path, encoding="utf-8") as fh:
        pairs = [
            (r["ask"], r["answer"]) for r in csv.DictReader(fh) if r["ask"].strip() and r["answer"].strip()
        ]
    rows = samples_to_table([Sample(instruction=q, output=a) for q, a in pairs[:800]]).to_pylist()
    ratios = {et: 1 / 6 for et in CONSTRUCTORS}
    calls: Counter[str] = Counter()
    make = negatives_mod.make_negative

    def counted(row, et, *a, **k):
        made = make(row, et, *a, **k)
        calls[et.value] += not isinstance(made, str)  # a verified candidate: the costly outcome
        return made

    monkeypatch.setattr(negatives_mod, "make_negative", counted)

    def run() -> tuple[list[dict], int]:
        calls.clear()
        out = negative_rows(rows, ratios, seed=2)
        for r in out:
            r["provenance"].pop("created_at")
        return out, sum(calls.values())

    early, early_calls = run()
    monkeypatch.setattr(negatives_mod, "_keep_bound", lambda *a: float("inf"))
    full, full_calls = run()
    assert early == full and len(early) >= 6
    assert early_calls < 0.5 * full_calls, (early_calls, full_calls)
