"""Dedup reads two samples as two users' wordings of one question: surface noise and typos are no
difference, a changed clinical fact always is.

Texts written for these tests. Every "not merged" pair is close enough to merge on the text alone
(shown with the facts check off), so the fact guard is what keeps the two apart; the "merged" variants
mostly differ on the plain facts reading (asserted per case), so the noise handling or the typo repair
is what lets them merge.
"""

from __future__ import annotations

import numpy as np
import pytest

from curation.dedup import DedupConfig, dedup_table
from curation.dedup.candidates import bucket_pairs
from curation.dedup.minhash import signatures
from curation.dedup.normalize import compare_text, noise_aligned
from curation.dedup.verify import facts_differ
from medaug.facts import fact_changes
from medaug.io import record_to_sample
from medaug.schema import Sample, samples_to_table

APPETITE_LOST = "患者男，58岁，近三个月食欲减退，进食后上腹胀，乏力，体重减少5Kg，大便颜色正常。"
APPETITE_NORMAL = "患者男，58岁，近三个月食欲正常，进食后上腹胀，乏力，体重无明显变化，大便颜色正常。"
ANSWER = "建议完善胃镜、腹部彩超及肿瘤标志物检查，检查结果出来后到消化内科复诊，由医生制定治疗方案。"
DOSE_NOTE = "，一日2次，温开水送服。服药期间忌食辛辣、生冷、油腻食物；孕妇慎用；请按说明书或遵医嘱使用。"


def _dedup(texts: list[str], **cfg: object):
    samples = [record_to_sample({"input": t}, require_output=False) for t in texts]
    return dedup_table(samples_to_table(samples), DedupConfig(**cfg)), [s.id for s in samples]


@pytest.mark.parametrize(
    ("a", "b", "as_written"),
    [
        ("我空腹血糖6.47，是糖尿病吗？", "我空腹血糖６．４７，是糖尿病吗？", True),  # full width
        ("高血压可以吃阿司匹林吗", "高血血压可以吃阿司匹林吗吗", True),  # repeated characters
        ("胰岛素要打一辈子吗", "胰岛 素要打一辈子吗？，在线等", True),  # a space inside a word, punctuation
        ("血糖6.5算糖尿病吗", "血糖6 .5算糖尿病吗", True),  # a space inside a number
        (
            "孩子发烧38度5，需要去医院吗？",
            "医生您好，孩子发烧38度5，需要去医院吗？谢谢医生",
            False,
        ),  # fillers
    ],
)
def test_surface_noise_is_taken_out_before_the_facts_are_read(a: str, b: str, as_written: bool) -> None:
    x, y = noise_aligned(a, b)
    assert x == y
    assert bool(fact_changes(a, b)) == as_written  # the plain reading: a change where there is none
    assert not facts_differ(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("一次2-3片，一日2次", "一次23片，一日2次"),  # a mark between digits is part of the number
        ("血糖6.5算糖尿病吗", "血糖65算糖尿病吗"),
        ("一次1片", "一次11片"),  # a repeated digit is another number
        ("一天一次", "一天一一次"),  # nor a repeated numeral
        ("头疼", "天天头疼"),  # a repeat of nothing next to it is a word (daily), not noise
        ("吃了5%的葡萄糖", "吃了5的葡萄糖"),  # % is a unit
    ],
)
def test_what_noise_handling_never_takes_out(a: str, b: str) -> None:
    x, y = noise_aligned(a, b)
    assert x != y


def test_a_mistyped_term_is_the_same_fact() -> None:
    a = "孩子咳嗽有痰三天了，晚上咳得厉害，吃什么药好？"
    b = "医生你好，孩子咳漱有痰三天了 晚上咳得厉害，吃什么药好？谢谢"
    assert fact_changes(a, b)  # as written, the term 咳嗽 is lost
    assert not facts_differ(a, b)
    result, ids = _dedup([a, b])
    assert result.kept.column("id").to_pylist() == [ids[0]]
    assert result.rejected.column("detail").to_pylist()[0].startswith(f"{ids[0]} score=")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("乳腺炎会导致乳腺癌吗", "乳腺疾病会导致乳腺癌吗？"),  # 疾 is part of 疾病, no typo of 炎
        ("糖尿病足可以泡脚吗", "糖尿病病人可以泡脚吗？"),  # 病 is part of 病人
        ("备孕可以喝板蓝根吗", "怀孕可以喝板蓝根吗？"),  # planning a pregnancy is not being pregnant
        ("尿酸高与糖尿病有关系吗", "尿酸跟与糖尿病有关系吗"),  # 高 (a direction) is never a typo
        ("早上起来左眼红肿怎么办", "早上起来右眼红肿怎么办"),  # nor a side
        ("孩子没有发烧，咳嗽两天了怎么办", "孩子有发烧，咳嗽两天了怎么办"),  # nor a negation
        ("糖尿病足有什么危害？", "糖尿病有什么危害"),  # 糖尿病 is a word of its own, not 糖尿病足 mistyped
        ("乳腺癌转移了能活多久？", "乳腺癌肝转移能活多久"),  # 转移 likewise
        ("何为糖尿病酮症酸中毒", "二型糖尿病，酮症酸中毒"),  # a numeral where they differ (read as one term)
        ("妊娠期糖尿病能顺产吗", "妊娠期糖尿病不能顺产吗"),  # a negation there (顺产 is no term)
        ("三价肺炎疫苗接种", "七价肺炎疫苗接种"),  # Chinese numerals are numbers
        ("幽门螺杆菌阴性是什么意思", "幽门螺杆菌阳性是什么意思"),  # a pole of a result
        ("糖尿病人可以吃南瓜吗", "糖尿病人可以吃兔肉吗"),  # one word put for another, in a question
    ],
)
def test_a_one_character_change_that_is_another_fact_is_no_typo(a: str, b: str) -> None:
    assert facts_differ(a, b)
    result, ids = _dedup([a, b])
    assert result.kept.column("id").to_pylist() == ids
    off, _ = _dedup([a, b], check_facts=False)  # the text alone would merge them
    assert off.kept.num_rows == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("糖尿病人能吃大枣吗？", "糖尿病人能吃大枣不"),  # a clause-final 不 asks, it does not negate
        ("乳腺癌早期有什么症状", "乳腺癌早期有什么症状是不是"),  # 是不是 asks
        ("孩子三个月大一天拉几次正常", "孩子3个月大一天拉几次正常"),  # 三 is 3
    ],
)
def test_question_forms_and_written_numbers_are_no_change(a: str, b: str) -> None:
    assert not facts_differ(a, b)


def test_opposite_findings_are_never_merged_whatever_the_noise() -> None:
    noisy = "医生您好，" + APPETITE_NORMAL.replace("，", "  ，").replace("乏力", "乏乏力") + "谢谢！"
    for other in (APPETITE_NORMAL, noisy):
        assert facts_differ(APPETITE_LOST, other)
        a = Sample(instruction="请根据病情给出检查建议。", input=APPETITE_LOST, output=ANSWER)
        b = Sample(instruction="请根据病情给出检查建议。", input=other, output=ANSWER)
        table = samples_to_table([a, b])
        assert dedup_table(table, DedupConfig()).kept.num_rows == 2
        assert dedup_table(table, DedupConfig(check_facts=False)).kept.num_rows == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("八珍益母片用法：口服，一次2-3片" + DOSE_NOTE, "香连化滞丸用法：口服，一次2丸" + DOSE_NOTE),
        ("阿莫西林胶囊用法：口服，一次2粒" + DOSE_NOTE, "阿莫西林胶囊用法：口服，一次4粒" + DOSE_NOTE),
        ("布洛芬缓释胶囊用法：口服，一次1粒" + DOSE_NOTE, "对乙酰氨基酚片用法：口服，一次1片" + DOSE_NOTE),
    ],
)
def test_different_drugs_or_doses_are_never_merged(a: str, b: str) -> None:
    assert facts_differ(a, b)
    samples = [Sample(instruction="这个药怎么吃？", output=t) for t in (a, b)]
    table = samples_to_table(samples)
    assert dedup_table(table, DedupConfig()).kept.num_rows == 2
    assert dedup_table(table, DedupConfig(check_facts=False)).kept.num_rows == 1


def test_int32_nodes_give_the_same_pairs() -> None:
    rng = np.random.default_rng(7)
    n, bands = 2000, 6
    keys = rng.integers(0, 500, size=n * bands).astype(np.uint64)
    nodes = np.repeat(np.arange(n), bands)
    lengths = rng.integers(5, 80, size=n)[nodes]
    cfg = DedupConfig(max_bucket=32, window=8)
    wide = bucket_pairs(keys, nodes.astype(np.int64), lengths.astype(np.int64), cfg)
    narrow = bucket_pairs(keys, nodes.astype(np.int32), lengths.astype(np.int32), cfg)
    assert narrow.dtype == np.int32 and len(narrow) > 1000
    assert np.array_equal(wide, narrow)


def test_signatures_do_not_depend_on_the_thread_count() -> None:
    texts = [compare_text(f"第{i}位患者头痛{i % 7}天，伴恶心呕吐", "", "建议休息") for i in range(3000)]
    cfg = DedupConfig(chunk_rows=400)
    one = signatures(texts, cfg, threads=1)
    assert np.array_equal(one, signatures(texts, cfg, threads=3))
    assert len({row.tobytes() for row in one}) == len(texts)  # and they tell the texts apart
