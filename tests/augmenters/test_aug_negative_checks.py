"""The checks added after audit seed 8821 (issue 13): promises that contradict their neighbouring clause,
wrong-drug patterns at class level under the share cap, and the negative report with its SHORTFALL and
PATTERN SHARE lines (printed under the job summary)."""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest

from augmenters.negative_kb import PROMISES_FILE, KnowledgeError, _promises, load_negative_knowledge
from augmenters.negative_verify import check_wrong
from augmenters.negatives import (
    PATTERN_SHARE,
    Candidate,
    negative_report,
    negative_rows,
    overclaiming,
    wrong_drug,
)
from augmenters.pipeline import AugmentConfig, augment_table
from medaug.run import summary_table
from medaug.schema import ErrorType, Sample, samples_to_table

KB = load_negative_knowledge()
CHRONIC = KB.promise_clash["chronic"]


def _mk(question: str, answer: str) -> dict:
    return samples_to_table([Sample(instruction=question, output=answer)]).to_pylist()[0]


# ------------------------------------------------------------------------------- overclaiming
def _beside(text: str, start: int, end: int) -> str:
    """The promise's sentence and the sentences before and after it (its neighbourhood for the clash check)."""
    ends = [i for i, ch in enumerate(text) if ch in "。！？；\n"]
    before = [i for i in ends if i < start]
    after = [i for i in ends if i >= end]
    left = before[-2] + 1 if len(before) >= 2 else 0
    right = after[1] if len(after) >= 2 else len(text)
    return text[left:start] + "|" + text[end:right]


@pytest.mark.parametrize("seed", range(12))
def test_no_promise_beside_a_chronic_clause(seed):
    """Audit seeds 8821, 9431: 是需要有长期口服药物治疗，保证药到病除; 终身服药的意识，百分之百有效."""
    row = _mk(
        "我女儿十五岁，癫痫该怎么办？",
        "对于癫痫的患者，是需要长期口服药物治疗。建议规律服用丙戊酸钠，不能随意减量。"
        "另外建议口服维生素B6，注意休息，饮食清淡。平时避免熬夜，外出有人陪同。",
    )
    c = overclaiming(row, KB, random.Random(seed))
    if isinstance(c, Candidate) and not any(w in c.after for w in KB.promise_certainty):
        near = _beside(c.output, c.start, c.start + len(c.after))
        assert not any(w in near for w in CHRONIC), c.output


def test_a_cure_promise_is_still_made_where_nothing_chronic_stands_beside_it():
    row = _mk(
        "嗓子疼两天了怎么办？",
        "考虑是急性咽炎引起的咽痛，建议您按医嘱口服阿莫西林胶囊治疗，平时多喝温水，注意休息。",
    )
    afters = {
        c.after for s in range(40) if isinstance(c := overclaiming(row, KB, random.Random(s)), Candidate)
    }
    assert {"，保证药到病除", "，包治包好", "，以后再也不会复发"} <= afters


def test_the_verifier_rejects_a_cure_promise_beside_a_chronic_clause_from_any_maker():
    row = _mk("高血压怎么治？", "高血压需要长期服用降压药，建议口服氨氯地平，定期监测血压。")
    wrong = "高血压需要长期服用降压药，建议口服氨氯地平，保证药到病除，定期监测血压。"
    assert check_wrong(row, ErrorType.overclaiming, wrong, KB) == "promise_contradicts_its_context"
    assert check_wrong(row, ErrorType.overclaiming, wrong.replace("保证药到病除", "百分之百有效"), KB) == (
        "promise_contradicts_its_context"
    )
    # the same promise where the answer speaks of no chronic course is an overclaim
    row2 = _mk("嗓子疼两天了怎么办？", "考虑急性咽炎，建议口服阿莫西林，多喝温水。饮食清淡，注意休息。")
    wrong2 = "考虑急性咽炎，建议口服阿莫西林，保证药到病除，多喝温水。饮食清淡，注意休息。"
    assert not isinstance(check_wrong(row2, ErrorType.overclaiming, wrong2, KB), str)


def test_long_term_to_short_only_replaces_advice():
    """Audit seed 8821: 长期用药不仅会增强肝脏压力 → 吃一段时间就能停药不仅会增强肝脏压力 is nonsense."""
    statement = _mk(
        "乙肝小三阳要吃药吗？", "患者体内有乙肝病毒，长期用药不仅会增强肝脏压力，还会致使病毒耐药。"
    )
    for s in range(20):
        c = overclaiming(statement, KB, random.Random(s))
        assert not (isinstance(c, Candidate) and c.pattern == "long_term_to_short")
    advice = _mk("高血脂吃什么药？", "可以口服阿托伐他汀，建议长期服药，饮食清淡，适当运动。")
    pats = {
        c.pattern for s in range(60) if isinstance(c := overclaiming(advice, KB, random.Random(s)), Candidate)
    }
    assert "long_term_to_short" in pats


def test_no_promise_splits_an_enumeration_or_cancels_a_scheduled_check():
    """Audit seed 9431: 可检查出是否有拉米夫定，以后再也不会复发，阿德福韦酯等…; 两周后再以后都不用再复查."""
    listed = _mk("耐药检测有什么用？", "可以检查出是否对拉米夫定，阿德福韦酯等抗病毒药耐药，指导下一步用药。")
    for s in range(20):
        c = overclaiming(listed, KB, random.Random(s))
        assert not (isinstance(c, Candidate) and c.output.find(c.after) < c.output.find("阿德福韦酯"))
    scheduled = _mk("胎儿肾积水怎么办？", "多数可以自行恢复，你两周到一个月左右再复查一下肾脏彩超就可以。")
    for s in range(20):
        c = overclaiming(scheduled, KB, random.Random(s))
        assert not (isinstance(c, Candidate) and c.pattern == "followup_none")


def test_no_promise_right_after_no_surgery_is_needed():
    row = _mk(
        "慢性胃炎要手术吗？",
        "一般可以考虑运用果胶铋这类药物，也可以用中药，不需要动手术，但是需要定期复查胃镜。",
    )
    for s in range(20):
        c = overclaiming(row, KB, random.Random(s))
        if isinstance(c, Candidate) and not c.before:
            assert not c.output[: c.start].endswith("不需要动手术")


def _write_promises(tmp_path, edit):
    raw = PROMISES_FILE.read_text(encoding="utf-8")
    p = tmp_path / "promises.yaml"
    p.write_text(edit(raw), encoding="utf-8")
    return p


def test_promises_loader_rejects_a_bare_promise_an_unknown_group_and_an_unseen_promise(tmp_path):
    bare = _write_promises(tmp_path, lambda t: t.replace("text: 保证彻底断根", "text: 可以彻底断根"))
    with pytest.raises(
        KnowledgeError, match=r"insert\[\d+\] \(radical_cure\): '可以彻底断根' is no absolute"
    ):
        _promises(bare)
    group = _write_promises(
        tmp_path, lambda t: t.replace("text: 包治包好}", "text: 包治包好, clashes: [acute]}")
    )
    with pytest.raises(KnowledgeError, match=r"\(cure_all\): unknown clash group\(s\) \['acute'\]"):
        _promises(group)
    unseen = _write_promises(tmp_path, lambda t: t.replace("text: 百分之百有效", "text: 绝对灵验"))
    with pytest.raises(KnowledgeError, match="contains no promise marker"):
        _promises(unseen)


# ------------------------------------------------------------------------------- wrong drug
def test_wrong_drug_patterns_name_the_rule_and_the_drug_classes():
    row = _mk("胃炎反酸烧心怎么办？", "建议口服雷贝拉唑，饭后不要马上平躺，饮食清淡。")
    pats = {c.pattern for s in range(12) if isinstance(c := wrong_drug(row, KB, random.Random(s)), Candidate)}
    assert pats and pats <= {"confusion:质子泵抑制剂->非甾体抗炎药", "confusion:质子泵抑制剂->抗血小板药"}


def test_no_swap_when_the_reference_already_names_a_drug_the_rule_calls_wrong():
    """Audit seed 8821: 失神发作 answered with 丙戊酸钠 or 卡马西平 — 丙戊酸钠 → 苯妥英钠 proves nothing."""
    row = _mk("失神性癫痫发作该怎么治疗？", "可以口服丙戊酸钠缓释片，或者是卡马西平缓释片，规律服药。")
    assert isinstance(wrong_drug(row, KB, random.Random(0)), str)
    clean = _mk("失神性癫痫发作该怎么治疗？", "可以口服丙戊酸钠缓释片，规律服药，定期复查脑电图。")
    c = wrong_drug(clean, KB, random.Random(0))
    assert isinstance(c, Candidate) and c.after in ("卡马西平", "奥卡西平", "苯妥英钠")
    wrong = row["output"].replace("丙戊酸钠", "苯妥英钠")
    assert isinstance(check_wrong(row, ErrorType.wrong_drug, wrong, KB), str)


def test_endogenous_interferon_is_no_drug_to_swap():
    row = _mk("大三阳怎么治？", "这些药物互相配合动用可引导体内产生内源性干扰素，建议定期复查肝功能。")
    assert isinstance(wrong_drug(row, KB, random.Random(0)), str)


def _gastritis_rows(n: int) -> list[dict]:
    """Many answers that all allow the same class confusion (PPI → NSAID), a few that allow others."""
    rnd = random.Random(3)
    ppis = ["奥美拉唑", "雷贝拉唑", "兰索拉唑", "泮托拉唑", "埃索美拉唑"]
    rows = []
    for i in range(n):
        rows.append(
            _mk(f"胃炎{i}天了，胃痛反酸怎么办？", f"建议口服{rnd.choice(ppis)}，少吃辛辣，第{i}天复查。")
        )
    for i in range(n // 4):
        rows.append(
            _mk(f"我是乙肝大三阳，{i}年了，怎么治？", f"建议口服恩替卡韦抗病毒，第{i}个月复查肝功能。")
        )
        rows.append(
            _mk(f"孩子{i % 5 + 1}岁，拉肚子怎么办？", f"可以口服蒙脱石散，注意补液，第{i}天不好就医。")
        )
    return rows


def test_one_class_confusion_cannot_fill_the_wrong_drug_type():
    """Audit seed 3137: two rewrites made all seven wrong-drug items."""
    stats: Counter[str] = Counter()
    out = negative_rows(_gastritis_rows(60), {ErrorType.wrong_drug: 1.0}, seed=1, stats=stats)
    pats = Counter(json.loads(r["provenance"]["augmentation"][-1]["detail"])["pattern"] for r in out)
    assert len(pats) >= 3
    cap = max(2, int(PATTERN_SHARE * len(out)))
    assert max(pats.values()) <= cap
    assert stats["negative_dropped:wrong_drug:pattern_cap"] > 0  # the PPI confusion was cut to its share


# ------------------------------------------------------------------------------- the report
def test_report_counts_each_type_and_flags_shortfalls_and_pattern_shares():
    stats = Counter(
        {
            "negative_target:wrong_drug": 100,
            "negative_made:wrong_drug": 30,
            "negative_wrong_drug": 20,
            "negative_pattern:wrong_drug:a": 5,
            "negative_pattern:wrong_drug:b": 15,
            "negative_dropped:wrong_drug:no_known_drug": 70,
            "negative_target:overclaiming": 100,
            "negative_made:overclaiming": 90,
            "negative_overclaiming": 80,
            **{f"negative_pattern:overclaiming:p{i}": 8 for i in range(10)},
        }
    )
    ratios = {ErrorType.wrong_drug: 0.5, ErrorType.overclaiming: 0.5, ErrorType.wrong_dose: 0.0}
    lines = negative_report(stats, ratios)
    assert lines[0] == "negatives: 100 kept of 200 targeted"
    drug = next(x for x in lines if x.startswith("  wrong_drug:"))
    assert "target 100 (share 50.0%), made 30, kept 20 (share 20.0%)" in drug
    assert "drops: no_known_drug=70" in drug and "top patterns: b=15, a=5" in drug
    assert [x for x in lines if x.startswith("SHORTFALL")] == [
        "SHORTFALL wrong_drug: kept 20 = 20.0% of the negatives, target share 50.0% (main drop reason: no_known_drug)"
    ]
    # b: 15 of 20 and a: 5 of 20 are over the cap of 2; overclaiming's 8 of 80 is within its cap of 8
    assert [x for x in lines if x.startswith("PATTERN SHARE")] == [
        "PATTERN SHARE wrong_drug: b makes 15 of 20 (75%), over the cap of 2 (10% of the type, at least 2)",
        "PATTERN SHARE wrong_drug: a makes 5 of 20 (25%), over the cap of 2 (10% of the type, at least 2)",
    ]
    assert drug.endswith("max pattern share 75% (cap 2 a pattern: too few for 10%)")
    assert next(x for x in lines if x.startswith("  overclaiming:")).endswith("max pattern share 10%")
    assert not any("wrong_dose" in x for x in lines)  # a type not asked for is not reported


def test_augment_summary_prints_the_negative_report():
    rows = [
        Sample(
            instruction=f"孩子{a}岁，发烧咳嗽两天。",
            output=f"考虑上呼吸道感染，可服用对乙酰氨基酚{d}mg退热，多喝水。",
        )
        for a in range(2, 8)
        for d in (100, 150, 200)
    ]
    cfg = AugmentConfig(
        paraphrase=False, negative_ratios={ErrorType.wrong_dose: 1.0, ErrorType.wrong_diagnosis: 1.0}
    )
    res = augment_table(samples_to_table(rows), cfg)
    report = res.stats.extra["report"]
    assert report[0].startswith("negatives: ") and any(
        x.startswith("  wrong_dose: target 18") for x in report
    )
    assert any(x.startswith("SHORTFALL wrong_diagnosis: kept 0") for x in report)
    text = summary_table([res.stats])
    assert "[augment]" in text and all(line in text.splitlines() for line in report)
    assert "report=" not in text  # the lines come under the table, not inside its details column
    kept = sum(1 for x in res.kept.column("label").to_pylist() if x == "negative")
    assert re.search(rf"negatives: {kept} kept", report[0])


@pytest.mark.parametrize(
    "answer",
    [
        # an alternative or a "but" follows (audit seed 1213)
        "如果出现了糖尿病，需要积极使用降血糖药物治疗，或者是使用胰岛素治疗，平时低盐低脂饮食。",
        "建议口服降压药物治疗，但是由于患者情况不同所以用药方法也不一样，请遵医嘱。",
        # a list of drugs goes on
        "可以服食雷贝拉唑肠溶胶囊，莫沙必利分散片看一看，重新调整好心情。",
        "一般建议吃雷贝拉唑钠，丽珠得乐，莫沙必利，效果会好多。",
    ],
)
def test_no_promise_before_an_alternative_a_contrast_or_the_rest_of_a_drug_list(answer):
    row = _mk("胃痛怎么办？", answer)
    for s in range(30):
        c = overclaiming(row, KB, random.Random(s))
        if isinstance(c, Candidate) and not c.before:
            rest = c.output[c.start + len(c.after) :]
            assert not re.match(r"，(或者|但是|莫沙必利|丽珠得乐)", rest), c.output


def test_a_drug_promise_needs_a_recommended_drug():
    """Audit seed 1213: 任何人用都绝对安全 after advice to get an insulin release test."""
    row = _mk(
        "我血糖高，是不是糖尿病？",
        "建议到医院做胰岛素释放实验检查，也可以明确自己是否有胰岛素分泌异常，平时注意控制饮食。",
    )
    for s in range(30):
        c = overclaiming(row, KB, random.Random(s))
        assert not (isinstance(c, Candidate) and c.pattern in ("safe_for_all", "cure_guarantee")), c.output


def test_a_drug_told_not_to_work_is_no_recommendation_to_swap():
    """Audit seed 1213: 干扰素不好用，可用拉米夫定 → 利巴韦林不好用 is true."""
    row = _mk(
        "大三阳用了替比夫定，怎么治？", "在治疗时抗病毒很重要，干扰素不好用，可用拉米夫定等，定期复查。"
    )
    for s in range(10):
        c = wrong_drug(row, KB, random.Random(s))
        assert not (isinstance(c, Candidate) and c.before == "干扰素"), c


def test_no_promise_after_a_clause_whose_only_advice_word_is_inside_another_word():
    """Audit seed 2719: 与增加的凋亡反应和抗癌药物和治疗功效相关，百分之百有效 — 反应 holds no advice."""
    row = _mk(
        "请描述VDAC1的临床意义",
        "VDAC1过表达与增加的凋亡反应和抗癌药物的治疗功效相关，进一步支持它作为治疗靶点。目前研究仍在进行。",
    )
    for s in range(30):
        assert isinstance(overclaiming(row, KB, random.Random(s)), str)


def test_no_promise_beside_a_course_that_goes_on_or_after_a_dangling_connective():
    """Audit seed 2719: 口服降血压的药物，包治包好，一定要连续的按时用药; 克拉霉素此外，以后再也不会复发."""
    ongoing = _mk(
        "高血压165怎么降？", "需要及时口服降血压的药物，一定要连续的按时用药，将血压控制在一定水平。"
    )
    dangling = _mk(
        "十二指肠溃疡反复发作怎么办？", "可以吃些奥美拉唑和克拉霉素此外，胃病患者在治疗期间要注意饮食。"
    )
    for s in range(30):
        for row in (ongoing, dangling):
            c = overclaiming(row, KB, random.Random(s))
            assert not (isinstance(c, Candidate) and not c.before), c.output


@pytest.mark.parametrize(
    "answer",
    [
        "目前没有证据证明柚子可以治疗高血压，如果经常吃柚子对心脑血管有一定益处，但不能代替药物。",
        "如果能听音乐就把病治好，也就不需要什么药物以及医院的治疗了，还是建议规范用药。",
        "这种情况通过药物来控制，如果药物不缓解，就得需要到医院住院治疗，可以换其他药物来治疗。",
    ],
)
def test_no_promise_on_a_denied_or_failed_treatment(answer):
    """Audit seed 3391: promises after 没有证据证明…可以治疗, 不需要…治疗了, 如果药物不缓解."""
    row = _mk("高血压头疼怎么办？", answer)
    for s in range(30):
        c = overclaiming(row, KB, random.Random(s))
        if isinstance(c, Candidate) and not c.before:
            head = c.output[: c.start]
            assert not re.search(r"(可以治疗高血压|医院的治疗了|住院治疗)$", head), c.output


def test_stop_on_ones_own_and_like_new_only_for_conditions_where_they_are_wrong():
    """Audit seed 3391: 症状好了就可以自己停药 for a gastritis remedy, 和正常人完全一样 for intercostal neuralgia."""
    gastritis = _mk(
        "胃炎怎么办？",
        "胃炎患者的日常治疗主要是对症下药，建议规律服药一个疗程，患者可以用许多口服药物，注意饮食。",
    )
    neuralgia = _mk("胸口右侧痛怎么办？", "考虑肋间神经痛的可能，建议可以吃些消炎止痛药物治疗，注意休息。")
    for s in range(40):
        for row, pattern in ((gastritis, "stop_safely"), (neuralgia, "like_new")):
            c = overclaiming(row, KB, random.Random(s))
            assert not (isinstance(c, Candidate) and c.pattern == pattern), c.output


def test_no_sequelae_promise_only_beside_a_condition_with_sequelae_and_no_cure_beside_only_control():
    """Audit seed 4783: 保证不会留下任何后遗症 for a gastritis remedy (手术 said elsewhere); 癫痫…没彻底根治…
    主要是药物控制 → 一定能恢复得和正常人完全一样; 用干扰素不太好 → 用阿昔洛韦不太好 (true)."""
    gastritis = _mk(
        "胃炎怎么办？",
        "胃炎患者建议口服奥美拉唑治疗，注意饮食清淡。平时留意休息。如果出现穿孔需要手术。",
    )
    epilepsy = _mk(
        "癫痫能治好吗？",
        "癫痫病目前医学水平仍然没彻底根治的方法，主要是药物控制。建议去公立医院检查然后针对性的用药治疗，注意休息。",
    )
    for s in range(40):
        c = overclaiming(gastritis, KB, random.Random(s))
        assert not (isinstance(c, Candidate) and c.pattern == "no_sequelae"), c.output
        c = overclaiming(epilepsy, KB, random.Random(s))
        assert not (isinstance(c, Candidate) and c.pattern not in ("certainty", "certainty_diagnosis")), (
            c.output
        )
    hbv = _mk(
        "大三阳想要小孩怎么治？", "病毒数高的话，用干扰素不太好，用核苷类的话不能够停药，建议定期复查。"
    )
    assert isinstance(wrong_drug(hbv, KB, random.Random(0)), str)


@pytest.mark.parametrize(
    "answer",
    [
        "如果明确具有癫痫的话，可以考虑口服一些药物，看一看症状是否可以获得缓解，其次减少诱因。",
        "副作用有水钠潴留，故宜同时服用氢氯噻嗪和钾盐，注意复查血钾。",
        "建议口服吗丁啉，奥美拉唑，建议口服健胃消食片除此之外，患者在治疗期间要注意饮食。",
        "先天性癫痫治好的可能性并不太高，考虑是比较困难的。这个还是需要积极用药治疗，平时注意安全。",
    ],
)
def test_no_promise_before_a_hedge_after_a_caution_or_beside_a_poor_outlook(answer):
    """Audit seed 5927 (fixed after the round, not re-audited)."""
    row = _mk("癫痫怎么治疗？", answer)
    for s in range(30):
        c = overclaiming(row, KB, random.Random(s))
        assert not (isinstance(c, Candidate) and not c.before), c.output


def test_no_relief_in_days_beside_a_course_of_weeks_and_no_promise_inside_a_list_of_drug_classes():
    """Audit seed 6143: 建议口服地黄丸最少2-4周，保证三天之内症状全部消失; 使用秋水仙碱，保证彻底断根，非甾体镇痛药物."""
    weeks = _mk("腰酸怎么办？", "可以多吃核桃、栗子等。建议口服六味地黄丸最少2-4周，必要时去医院男科检查。")
    gout = _mk(
        "痛风发作了吃什么？",
        "有痛风的患者应当使用秋水仙碱，非甾体镇痛药物，促进尿酸排泄的药物治疗，具体用药遵医嘱。",
    )
    for s in range(40):
        c = overclaiming(weeks, KB, random.Random(s))
        assert not (isinstance(c, Candidate) and c.pattern == "three_days"), c.output
        c = overclaiming(gout, KB, random.Random(s))
        assert not (isinstance(c, Candidate) and "秋水仙碱，" + c.after.lstrip("，") in c.output), c.output
