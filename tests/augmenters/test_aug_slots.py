"""Slot fit, word runs, register and site guards of lexicon paraphrasing, each on sentences written here."""

from collections import Counter

import pytest

from augmenters.paraphrase import find_matches, formal_register
from augmenters.slots import noun_term, predicate_wording, slot_misfit
from medaug.facts import fact_changes


def _targets(text, lexicon, direction):
    skipped: Counter = Counter()
    ms = find_matches(text, lexicon, direction, skipped)
    return {m.key: set(m.candidates) for m in ms}, skipped


def test_wording_shapes():
    for w in ("起疹子", "长疹子", "做放疗", "拉水", "拉黑便", "睡不好", "睡不醒", "大便黑色", "大便发白"):
        assert predicate_wording(w), w
    for w in ("拉肚子", "流鼻涕", "发烧", "腹泻", "皮疹", "疹子", "放疗", "失眠", "头晕"):
        assert not predicate_wording(w), w
    assert all(noun_term(w) for w in ("皮疹", "黑便", "水样便", "陶土样便", "睡眠差"))
    assert not any(noun_term(w) for w in ("失眠", "腹泻", "头晕", "拉黑便"))


@pytest.mark.parametrize(
    "text,source,target",
    [
        ("这两天晚上都睡不好了", "睡不好", "睡眠差"),  # adverb before, aspect after
        ("他说昨天解的大便黑色的。", "大便黑色", "黑便"),  # clause-final 的
        ("我家老二从来不拉水", "拉水", "水样便"),  # negated predicate
        ("宝宝拉水好几次了", "拉水", "水样便"),  # a person is the subject of a verb phrase
        ("放疗科说肺癌的放疗要六周", "放疗", "做放疗"),  # modifier 的 + verb phrase
        ("手臂上无皮疹", "皮疹", "长疹子"),  # 无 + verb phrase
        ("喝了感冒药后起皮疹", "皮疹", "起疹子"),  # the verb doubled
        ("老人最近特别嗜睡", "嗜睡", "睡不醒"),  # degree adverb + potential complement
        ("老人最近特别嗜睡", "嗜睡", "总是犯困"),
    ],
)
def test_slot_misfit(text, source, target):
    start = text.rindex(source)
    assert slot_misfit(text, start, start + len(source), source, target)


@pytest.mark.parametrize(
    "text,source,target",
    [
        ("今天有没有拉水的情况", "拉水", "水样便"),
        ("最近没有拉水", "拉水", "水样便"),
        ("大便发白怎么办", "大便发白", "陶土样便"),
        ("放疗后皮肤发红", "放疗", "做放疗"),
        ("腿上有皮疹", "皮疹", "疹子"),
        ("翻来覆去睡不着", "睡不着", "失眠"),
    ],
)
def test_slot_fits(text, source, target):
    start = text.index(source)
    assert not slot_misfit(text, start, start + len(source), source, target)


def test_slot_misfits_are_skipped_and_counted(core_lexicon):
    keys, skipped = _targets("这两天晚上都睡不好了", core_lexicon, "to_clinical")
    assert "睡不好" not in keys and skipped["slot"] == 1
    keys, _ = _targets("腿上无皮疹，也不痒", core_lexicon, "to_colloquial")
    assert keys.get("皮疹") == {"疹子"}  # 无疹子, not 无长疹子


def test_colour_run_and_reduplication_are_no_match(core_lexicon):
    for text in ("他拉的大便黑绿黑绿的", "这几天大便黑黑的"):
        keys, skipped = _targets(text, core_lexicon, "to_clinical")
        assert "大便黑" not in keys and skipped["word_boundary"] >= 1, text
    assert "大便黑" in _targets("这几天大便黑，胃不舒服", core_lexicon, "to_clinical")[0]


def test_fixed_phrases_and_compounds_are_not_cut(core_lexicon):
    assert "吃奶呛" not in _targets("喂的时候吃奶呛咳厉害吗", core_lexicon, "to_clinical")[0]
    assert "头晕" not in _targets("整天头晕眼花，没力气", core_lexicon, "to_colloquial")[0]
    assert "甲亢" not in _targets("甲亢危象要马上住院", core_lexicon, "to_clinical")[0]
    assert "甲亢" not in _targets("甲亢危象要马上住院", core_lexicon, "to_colloquial")[0]
    assert "腹泻" not in _targets("医生推荐了一款腹泻奶粉", core_lexicon, "to_colloquial")[0]


def test_a_term_inside_a_proprietary_drug_name_is_not_rewritten(core_lexicon):
    for text in ("医生开了感冒驱毒灵和阿莫西林", "孩子感冒清热颗粒喝了两天"):
        assert "感冒" not in _targets(text, core_lexicon, "to_colloquial")[0], text
    for text in ("孩子有点感冒，吃了两片药", "有点感冒了吃了两片药"):  # no name: a verb before the count
        assert "感冒" in _targets(text, core_lexicon, "to_colloquial")[0], text


def test_register_guard(core_lexicon):
    doctrine = "中医认为本病多由肝郁气滞所致，胃痛反复"
    assert formal_register(doctrine) == "tcm"
    keys, skipped = _targets(doctrine, core_lexicon, "to_clinical")
    assert not keys and skipped["register"] >= 1
    record = "某男，60岁。三天前受凉后头痛，症见恶寒发热"
    assert formal_register(record) == "case"
    assert "头痛" not in _targets(record, core_lexicon, "to_colloquial")[0]
    assert formal_register("孩子三岁，头痛两天") is None
    assert formal_register("经常头痛怎么办（男，30岁）") is None  # the asker's own age, not a case record
    assert "头痛" in _targets("孩子三岁，头痛两天", core_lexicon, "to_colloquial")[0]


def test_site_said_twice(core_lexicon):
    keys, skipped = _targets("左眼一早起来眼屎多", core_lexicon, "to_clinical")
    assert "眼屎多" not in keys and skipped["site_repeated"] >= 1
    assert "眼屎多" in _targets("孩子眼屎多", core_lexicon, "to_clinical")[0]
    assert "胸部疼痛" not in _targets("胸痛三天", core_lexicon, "to_colloquial")[0].get("胸痛", set())


def test_narrower_rows_need_their_context(core_lexicon):
    assert "缺水" not in _targets("冬天皮肤容易缺水", core_lexicon, "to_clinical")[0]
    assert _targets("宝宝腹泻了一天，身体缺水", core_lexicon, "to_clinical")[0].get("身体缺水") == {"脱水"}
    assert "尿少" not in _targets("老是尿频尿少", core_lexicon, "to_clinical")[0]
    assert "大便黑色" not in _targets("吃了补铁的药大便黑色", core_lexicon, "to_clinical")[0]
    assert "屁股红" not in _targets("宝宝屁股红了", core_lexicon, "to_clinical")[0]


def test_severity_inside_a_wording_is_a_fact():
    # 心跳得厉害 is an exact wording of 心悸, but its 得厉害 is a severity the plain term drops.
    assert [c.change for c in fact_changes("昨晚心跳得厉害", "昨晚心悸")] == ["severity"]
    assert fact_changes("昨晚心慌", "昨晚心悸") == []
    # 肚子疼得厉害 is no exact wording of 腹痛 any more: the rewrite is a different fact, not a synonym.
    assert fact_changes("昨晚肚子疼得厉害", "昨晚腹痛")


def test_target_word_already_in_the_next_clause(core_lexicon):
    keys, skipped = _targets("大便发白，颜色像陶土一样", core_lexicon, "to_clinical")
    assert "大便发白" not in keys and skipped["repetition"] >= 1
    assert "大便发白" in _targets("大便发白，还有点稀", core_lexicon, "to_clinical")[0]


def test_register_is_the_samples(core_lexicon):
    from augmenters.paraphrase import paraphrase_rows
    from medaug.schema import Area, Sample, Task, samples_to_table

    def rows(answer):
        sample = Sample(
            instruction="胃痛半年，吃饭后加重", output=answer, task=Task.medical_qa, area=Area.general
        )
        return samples_to_table([sample]).to_pylist()

    tcm = rows("此属中医胃痛范畴，多因肝郁气滞，不通则痛，治宜疏肝理气。")
    assert paraphrase_rows(tcm, core_lexicon, variants=3, seed=1, direction="to_clinical") == []
    assert paraphrase_rows(
        rows("建议做胃镜检查。"), core_lexicon, variants=3, seed=1, direction="to_clinical"
    )


@pytest.mark.parametrize(
    "text,source,target",
    [
        ("皮疹消了没有", "皮疹", "出疹子"),  # a verb phrase as the subject
        ("鼻子里还有一点清鼻涕", "清鼻涕", "流清涕"),  # a measure takes a noun
        ("胃癌引起的吞咽困难", "吞咽困难", "吃东西噎"),  # modifier 的 + verb phrase
    ],
)
def test_more_slot_misfits(text, source, target):
    start = text.rindex(source)
    assert slot_misfit(text, start, start + len(source), source, target)


def test_more_register_compound_and_time_guards(core_lexicon):
    assert formal_register("三年前无明显诱因出现腹痛") == "case"
    assert "腹痛" not in _targets("我女儿有腹痛癫痫，怎么治", core_lexicon, "to_colloquial")[0]
    assert "腹痛" in _targets("我女儿有腹痛，怎么治", core_lexicon, "to_colloquial")[0]
    keys, _ = _targets("孩子睡觉的时候磨牙", core_lexicon, "to_colloquial")
    assert not any(c.startswith("晚上") for c in keys.get("磨牙", ()))


def test_final_audit_guards(core_lexicon):
    # 一直大便稀 → 一直稀便: the lay clause is the predicate of 一直.
    assert predicate_wording("大便稀")
    assert "大便稀" not in _targets("孩子这周一直大便稀", core_lexicon, "to_clinical")[0]
    assert "大便稀" in _targets("大便稀，一天三次", core_lexicon, "to_clinical")[0]
    # 有一点低热 → 有一点微微发烧: the degree said twice.
    keys, _ = _targets("下午还有一点低热", core_lexicon, "to_colloquial")
    assert not any(c.startswith("微微") for c in keys.get("低热", ()))
    # 被胃疼醒: a pain verb with its result takes no noun term.
    assert "胃疼" not in _targets("半夜被胃疼醒了", core_lexicon, "to_clinical")[0]
    assert "胃疼" in _targets("半夜胃疼，醒了好几次", core_lexicon, "to_clinical")[0]
    # 疲乏无力 is one fixed phrase.
    assert "疲乏" not in _targets("最近总感觉疲乏无力", core_lexicon, "to_colloquial")[0]


def test_third_audit_guards(core_lexicon):
    # 起了好些皮疹 → 起了好些起疹子: a quantity takes a noun.
    keys, _ = _targets("手臂上起了好些皮疹", core_lexicon, "to_colloquial")
    assert not any(c.startswith(("起", "出", "长")) for c in keys.get("皮疹", ()))
    # Names built on a wording are not cut.
    assert "甲亢" not in _targets("甲亢突眼怎么治", core_lexicon, "to_clinical")[0]
    assert "高热" not in _targets("小时候得过高热惊厥", core_lexicon, "to_colloquial")[0]
    # 提不起劲 about sex is not fatigue.
    assert "提不起劲" not in _targets("最近性生活总是提不起劲", core_lexicon, "to_clinical")[0]
    assert "提不起劲" in _targets("最近上班总是提不起劲", core_lexicon, "to_clinical")[0]
