"""Negative failures of the independent audits of seeds 24681, 36912 and 48213, each fixed generally: a drug
the question asks about swapped away, an NSAID put in an H. pylori regimen, a strength carried over from the next
clause, promises inside dosing, wound-care and caution clauses or on a vaccine, 大多数→所有 on a plain fact,
weight-based doses held against adult ranges, a daily total's range."""

from __future__ import annotations

import random

from augmenters.negative_kb import load_negative_knowledge
from augmenters.negative_verify import check_wrong
from augmenters.negatives import Candidate, _dose_reason, overclaiming, wrong_drug
from medaug.facts import default_extractor
from medaug.schema import ErrorType, Sample, samples_to_table

KB = load_negative_knowledge()
ET = ErrorType


def _mk(question: str, answer: str) -> dict:
    return samples_to_table([Sample(instruction=question, output=answer)]).to_pylist()[0]


def _made(maker, row, n=40) -> list[Candidate]:
    return [c for s in range(n) if isinstance(c := maker(row, KB, random.Random(s)), Candidate)]


def test_a_drug_the_question_asks_about_is_not_swapped():
    q = "慢性胃炎吃奥美拉唑肠溶胶囊的话要怎么吃？"
    ref = "口服奥美拉唑肠溶胶囊，一般是20毫克一粒，一定要空腹口服一粒，一天一次。"
    assert wrong_drug(_mk(q, ref), KB, random.Random(1)) == "drug_named_in_question"
    plain = "口服奥美拉唑肠溶胶囊，一定要空腹口服一粒，一天一次。"
    wrong = plain.replace("奥美拉唑", "阿司匹林")
    assert check_wrong(_mk(q, plain), ET.wrong_drug, wrong, KB) == "drug_named_in_question"
    brand = "四九胃泰好点还是吗叮啉好？"  # a misspelt brand name of 多潘立酮
    ref2 = "胃胀明显可以口服多潘立酮，饭前半小时吃一片，一天三次。"
    assert check_wrong(_mk(brand, ref2), ET.wrong_drug, ref2.replace("多潘立酮", "洛哌丁胺"), KB) == (
        "drug_named_in_question"
    )


def test_no_nsaid_inside_an_eradication_regimen():
    q = "幽门螺杆菌阳性，胃痛，怎么治疗？"
    ref = "需要三联或四联用药，奥美拉唑、枸橼酸铋钾、克拉霉素是常用的搭配，疗程两周。"
    assert not _made(wrong_drug, _mk(q, ref))
    wrong = ref.replace("奥美拉唑", "布洛芬")
    assert isinstance(check_wrong(_mk(q, ref), ET.wrong_drug, wrong, KB), str)


def test_a_strength_in_the_next_clause_blocks_the_swap():
    q = "胃痛反酸很多年了，吃什么药？"
    ref = "可以口服雷贝拉唑肠溶片，一般是10毫克一片，早饭前吃一片。"
    for c in _made(wrong_drug, _mk(q, ref)):
        assert "雷贝拉唑" in c.before and "10毫克" not in c.after, c


def test_no_promise_inside_a_dosing_instruction_wound_care_or_a_caution():
    from augmenters.negatives import _no_place_for_a_promise

    for ref, clause in (
        ("建议口服奥美拉唑片早饭前半小时一片，一天一次，连用四周。", "建议口服奥美拉唑片早饭前半小时一片"),
        ("两天换一次药，重新包扎，注意保持干燥。", "两天换一次药"),
        ("含片每次一片，儿童应在医师指导下服用，用药七天无缓解请就医。", "儿童应在医师指导下服用"),
        ("口服轮状疫苗可以间隔再打，具体遵医嘱。", "口服轮状疫苗可以间隔再打"),
        ("用药间隔时间应延长，以免出现耳毒性。", "用药间隔时间应延长"),
    ):
        s = ref.index(clause)
        assert _no_place_for_a_promise(ref, s, s + len(clause)), ref
    ok = "建议口服奥美拉唑肠溶胶囊治疗，平时饮食清淡，少吃辛辣。"
    assert not _no_place_for_a_promise(ok, 0, ok.index("，"))


def test_most_to_all_only_before_a_treatment_outcome():
    q = "血吸虫病急性期有什么特点？"
    fact = "急性期大多数患者系初染，表现为发热、肝脾肿大。"
    assert not [c for c in _made(overclaiming, _mk(q, fact)) if "所有患者" in c.after or "所有人" in c.after]
    outcome = "本病经过规范治疗，大多数患者可以治愈，需按疗程服药。"
    assert any("所有患者" in c.after or "每一位患者" in c.after for c in _made(overclaiming, _mk(q, outcome)))


def test_weight_based_and_daily_doses_get_a_true_reason():
    ex = default_extractor()
    units = {f.unit for f in ex.extract("泼尼松2mg/(kg·d)，分次口服；或2mg/(kg.d)").of_kind("number")}
    assert units == {"mg/kg/d"}
    kg_day = _dose_reason("泼尼松", KB, "2mg/(kg·d)", "0.2mg/(kg·d)", 2, 0.2, "mg/kg/d")
    assert kg_day and "成人" not in kg_day, kg_day  # audits 24681, 36912, 48213: 成人常用单次剂量5～60mg
    daily = _dose_reason("阿莫西林", KB, "2克", "0.2克", 2000, 200, "mg", daily=True)
    assert daily and "250～4000" not in daily and "每日" in daily, daily  # audit 36912


def test_a_misquote_is_not_made_where_the_answer_reads_the_value():
    """Audits 57331, 68442: 餐后的血糖在5.8mmol/L，这个血糖值是比较高了 refutes itself."""
    from augmenters.negatives import contradicts_findings

    q = "我爸糖尿病，餐后血糖18.4，该怎么办？"
    read = "餐后血糖18.4，这个血糖值是比较高了，需要调整降糖药物。"
    assert not [c for c in _made(contradicts_findings, _mk(q, read)) if c.strategy == "misquote"]
    wrong = read.replace("18.4", "5.8")
    assert check_wrong(_mk(q, read), ET.contradicts_findings, wrong, KB) == "misquote_refuted_by_its_reading"
    bare = "您父亲餐后血糖18.4。需要调整降糖药物，必要时使用胰岛素。"
    made = [c for c in _made(contradicts_findings, _mk(q, bare)) if c.strategy == "misquote"]
    assert made and "引成了正常" in made[0].reason


def test_audit_79553_no_certainty_about_a_known_diagnosis_and_no_promise_after_a_label_note():
    from augmenters.negatives import _no_place_for_a_promise

    q = "我有子宫内膜异位症，我现在在做治疗的，想问问平时要注意什么？"
    ref = "您的情况考虑是子宫内膜异位症，平时注意休息，按医嘱复查。"
    assert not [c for c in _made(overclaiming, _mk(q, ref)) if "肯定是" in c.after or "百分之百是" in c.after]
    wrong = ref.replace("考虑是", "肯定是")
    assert check_wrong(_mk(q, ref), ET.overclaiming, wrong, KB) == "diagnosis_already_known"
    for ref, clause in (
        (
            "不同企业生产的同种药品可由于包装规格的不同有不同的用药量，请按说明书使用。",
            "不同企业生产的同种药品可由于包装规格的不同有不同的用药量",
        ),
        ("小三阳是可以做结扎手术的，术前查肝功能。", "小三阳是可以做结扎手术的"),
    ):
        s = ref.index(clause)
        assert _no_place_for_a_promise(ref, s, s + len(clause)), ref
    assert "绝不会有问题" in KB.promise_markers  # the reference's own promise (手术小心点，是绝不会有问题的)
