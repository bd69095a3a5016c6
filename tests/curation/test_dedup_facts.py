"""Dedup compares what the user asked, not how it was typed, and never merges different clinical facts.

Texts written for these tests. Each "not merged" case is similar enough to merge on the text
alone (asserted, and shown by turning the facts check off), so the facts check is what keeps
the two apart.
"""

from __future__ import annotations

import numpy as np
from rapidfuzz.distance import Levenshtein

from curation.dedup import DedupConfig, dedup_table
from curation.dedup.normalize import compare_text, strip_surface_noise
from curation.dedup.verify import verify_pairs
from medaug.io import record_to_sample
from medaug.schema import Sample, samples_to_table

ANSWER = (
    "建议完善胃镜、腹部彩超及肿瘤标志物检查，明确有无消化道肿瘤；同时查血常规、肝肾功能和甲状腺功能，"
    "饮食清淡规律，避免烟酒，检查结果出来后到消化内科复诊，由医生根据结果制定治疗方案。"
)
APPETITE_LOST = "患者男，58岁，近三个月食欲减退，进食后上腹胀，乏力，体重减少5Kg，大便颜色正常。"
APPETITE_NORMAL = "患者男，58岁，近三个月食欲正常，进食后上腹胀，乏力，体重无明显变化，大便颜色正常。"
DOSE_NOTE = "，一日2次，温开水送服。服药期间忌食辛辣、生冷、油腻食物；孕妇慎用；如正在使用其他药品，使用前请咨询医师或药师，按说明书或遵医嘱使用。"
DRUG_A = "八珍益母片用法：口服，一次2-3片" + DOSE_NOTE
DRUG_B = "香连化滞丸用法：口服，一次2丸" + DOSE_NOTE


def _question(text: str) -> Sample:
    """A question-only record, as `medaug dedup` reads {"input": question}."""
    return record_to_sample({"input": text}, require_output=False)


def _run(samples: list[Sample], **cfg: object):
    table = samples_to_table(samples)
    return dedup_table(table, DedupConfig(**cfg)), [s.id for s in samples]


def _similarity(a: Sample, b: Sample) -> float:
    ta, tb = (compare_text(s.instruction, s.input, s.output, surface=True) for s in (a, b))
    return Levenshtein.normalized_similarity(ta, tb)


def test_opposite_findings_are_not_merged() -> None:
    a = Sample(instruction="请根据病情给出检查建议。", input=APPETITE_LOST, output=ANSWER)
    b = Sample(instruction="请根据病情给出检查建议。", input=APPETITE_NORMAL, output=ANSWER)
    assert _similarity(a, b) >= 0.85
    result, ids = _run([a, b])
    assert result.kept.column("id").to_pylist() == ids
    assert result.stats.extra["facts_differ"] == 1
    off, _ = _run([a, b], check_facts=False)  # on the text alone they would merge
    assert off.kept.num_rows == 1


def test_different_drugs_and_doses_are_not_merged() -> None:
    a = Sample(instruction="这个药怎么吃？", output=DRUG_A)
    b = Sample(instruction="这个药怎么吃？", output=DRUG_B)
    assert _similarity(a, b) >= 0.85
    result, ids = _run([a, b])
    assert result.kept.column("id").to_pylist() == ids
    assert _run([a, b], check_facts=False)[0].kept.num_rows == 1


def test_surface_variants_of_one_question_are_merged() -> None:
    q = "孩子发烧38度5，吃了退烧药还是反复，需要去医院吗？"
    variants = [
        q,
        "医生您好，请问孩子发烧38度5，吃了退烧药还是反复，需要去医院吗？谢谢！",
        "你好医生  孩子发烧38度5 吃了退烧药还是反复 需要去医院吗？？？",
        "孩子发烧３８度５，吃了退烧药还是反复反复，需要去医院吗吗",  # full-width digits, repeats
        "孩子发烧38度5，吃了退烧要还是反复，需要去医院码？",  # two typos in a short question
        "孩子发烧38度5，吃了退烧药还是反复，需要去医院吗？麻烦了，在线等",
    ]
    samples = [_question(v) for v in variants]
    result, ids = _run(samples)
    assert result.kept.column("id").to_pylist() == [ids[0]]
    rejected = result.rejected.to_pylist()
    assert sorted(r["id"] for r in rejected) == sorted(ids[1:])
    for r in rejected:  # every dropped sample names the one it duplicated
        assert r["detail"].startswith(f"{ids[0]} score=")


def test_a_different_number_or_negation_in_a_variant_is_another_question() -> None:
    base = _question("医生您好，孩子发烧38度5，吃了退烧药还是反复，需要去医院吗？")
    hotter = _question("孩子发烧39度5，吃了退烧药还是反复，需要去医院吗？")
    no_fever = _question("孩子没有发烧，吃了退烧药还是反复，需要去医院吗？")
    result, ids = _run([base, hotter, no_fever])
    assert result.kept.column("id").to_pylist() == ids
    assert result.stats.extra["facts_differ"] >= 1


def test_surface_noise_is_stripped_from_the_question_only() -> None:
    assert strip_surface_noise("医生您好请问头疼疼怎么办谢谢医生") == "头疼怎么办"
    assert strip_surface_noise("吃了100毫克") == "吃了100毫克"  # digits never collapse
    with_noise = compare_text("你好，请问头痛怎么办？谢谢", "", "多休息，谢谢配合。", surface=True)
    assert with_noise == compare_text("头痛怎么办", "", "多休息谢谢配合", surface=True)
    assert compare_text("你好，头痛怎么办", "", "") != compare_text("头痛怎么办", "", "")  # off by default


def test_typo_allowance_needs_length() -> None:
    texts = [
        "头痛怎么办",
        "头疼怎么半",
        "孩子发烧三天了吃什么药才能好得快",
        "孩子发骚三天了吃什么要才能好得怪",
    ]
    pairs = np.array([[0, 1], [2, 3]])
    edges, _ = verify_pairs(pairs, texts, DedupConfig())
    assert edges.tolist() == [[2, 3]]  # 2 edits in 5 characters: another text; 3 in 16: typos
    none, _ = verify_pairs(pairs, texts, DedupConfig(typos=0))
    assert none.tolist() == []
