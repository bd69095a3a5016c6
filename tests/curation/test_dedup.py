"""Dedup on a constructed set with known clusters, lineage and label rules, keeper rule, bad config."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from curation.dedup import DedupConfig, dedup_table
from curation.dedup.normalize import compare_text, normalize_for_dedup
from medaug.schema import Sample, samples_to_table

Q1 = "我最近两周经常胸口疼，爬楼梯的时候更明显，休息几分钟能缓解，需要做什么检查？"
A1 = (
    "您描述的症状是劳力性胸痛，休息后缓解，需要警惕稳定型心绞痛。建议尽快到心内科就诊，"
    "先做心电图、心肌酶和心脏彩超，必要时做运动平板试验或冠脉CT。在明确诊断前避免剧烈活动，"
    "如果胸痛持续超过二十分钟不缓解，或伴有出汗、气短，应立即拨打急救电话。"
)
# the same question asked in other words, with another answer: a paraphrase, not a duplicate
Q1_PARA = "这半个月一活动就觉得胸骨后面发紧发闷，停下来歇一会儿就好了，应该查些什么？"
A1_PARA = (
    "活动时出现胸骨后压榨感、停止活动后减轻，是典型的心绞痛表现，应当到心血管专科评估冠心病风险。"
    "常规检查包括静息心电图、血脂血糖、超声心动图，医生会根据结果决定是否需要冠状动脉造影。"
    "平时随身携带硝酸甘油，出现持续胸痛时及时就医。"
)
Q2 = "糖尿病患者空腹血糖一直在九左右，已经在吃二甲双胍，还需要加药吗？"
A2 = (
    "空腹血糖长期在九毫摩尔每升左右说明控制不达标。建议复查糖化血红蛋白，评估饮食和运动是否规律，"
    "确认二甲双胍剂量是否已用足。若规范调整生活方式三个月仍不达标，可在医生指导下联合其他降糖药，"
    "同时注意监测低血糖。"
)
A2_TRAD = (
    "空腹血糖長期在九毫摩爾每升左右說明控制不達標。建議複查糖化血紅蛋白，評估飲食和運動是否規律，"
    "確認二甲雙胍劑量是否已用足。若規範調整生活方式三個月仍不達標，可在醫生指導下聯合其他降糖藥，"
    "同時注意監測低血糖。"
)


def _width_variant(text: str) -> str:
    """Full-width Latin, ASCII punctuation and stray spaces: the same text to a reader."""
    text = text.replace("，", ",").replace("。", ". ").replace("CT", "ＣＴ")
    return " ".join(text[i : i + 30] for i in range(0, len(text), 30))


def _few_changed(text: str) -> str:
    return text.replace("尽快", "及时").replace("剧烈", "激烈").replace("二十", "20")


def _s(q: str, a: str, **kw: object) -> Sample:
    return Sample(instruction="请回答患者的问题。", input=q, output=a, **kw)


@pytest.fixture
def constructed() -> dict[str, Sample]:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    t1 = datetime(2025, 6, 1, tzinfo=UTC)
    base = _s(Q1, A1, provenance={"source": "import", "created_at": t1})
    return {
        "base": base,
        "copy": _s(Q1, A1, provenance={"source": "other-file", "created_at": t0}),  # same id as base
        "width": _s(_width_variant(Q1), _width_variant(A1)),
        "few": _s(Q1, _few_changed(A1), provenance={"source": "x", "template_id": "t", "job_id": "j"}),
        "para": _s(Q1_PARA, A1_PARA),
        "same_q_other_a": _s(Q1, A1_PARA),
        "q2": _s(Q2, A2),
        "q2_trad": _s(Q2, A2_TRAD),
        "negative": Sample(
            instruction="请回答患者的问题。",
            input=Q1,
            output=A1,
            label="negative",
            error_type="missing_referral",
            provenance={"parent_id": base.id},
        ),
        "child": _s(Q1, A1.replace("心内科", "心血管内科"), provenance={"parent_id": base.id}),
    }


def _run(samples: dict[str, Sample], **cfg: object):
    names = list(samples)
    result = dedup_table(samples_to_table(list(samples.values())), DedupConfig(**cfg))
    kept_ids = result.kept.column("id").to_pylist()
    rejected: dict[str, list[dict[str, str]]] = {}
    for r in result.rejected.to_pylist():
        rejected.setdefault(r["id"], []).append(r)
    return names, kept_ids, rejected, result


def test_known_clusters(constructed: dict[str, Sample]) -> None:
    _, kept, rejected, result = _run(constructed)
    s = constructed
    # "few" has the most provenance fields, so it keeps the Q1/A1 cluster; the exact copy (same id
    # as base), the width/punctuation variant and base itself all name it
    assert s["few"].id in kept
    assert s["copy"].id == s["base"].id
    assert len(rejected[s["base"].id]) == 2
    for name in ("base", "width"):
        for row in rejected[s[name].id]:
            assert row["reason"] == "near_duplicate", name
            assert row["detail"].startswith(s["few"].id), name
    # paraphrases, another answer to the same question, other labels and lineage never merge
    for name in ("para", "same_q_other_a", "q2", "q2_trad", "negative"):
        assert s[name].id in kept, name
    # the child is protected from its parent only: it is also a near-copy of "few", which is kept
    (child,) = rejected[s["child"].id]
    assert child["reason"] == "near_duplicate" and child["detail"].startswith(s["few"].id)
    assert result.stats.rows_in == len(s)
    assert result.stats.rows_out == len(kept) == result.kept.num_rows
    assert result.stats.rows_out + result.rejected.num_rows == len(s)  # nothing lost


def test_exact_reason_and_scores(constructed: dict[str, Sample]) -> None:
    del constructed["few"]
    _, kept, rejected, _ = _run(constructed)
    assert constructed["base"].id in kept  # richer provenance than the copy: same id, first row kept
    (width,) = rejected[constructed["width"].id]
    assert width["reason"] == "duplicate_exact"  # width/punctuation/spacing is normalised away
    assert width["detail"] == f"{constructed['base'].id} score=1.000"
    (copy,) = rejected[constructed["base"].id]
    assert copy["reason"] == "duplicate_exact"


def test_near_score_recorded(constructed: dict[str, Sample]) -> None:
    del constructed["copy"], constructed["width"]
    _, _, rejected, _ = _run(constructed)
    (row,) = rejected[constructed["base"].id]
    assert row["reason"] == "near_duplicate"
    score = float(row["detail"].split("score=")[1])
    assert 0.85 <= score < 1.0


def test_traditional_folds_only_when_configured(constructed: dict[str, Sample]) -> None:
    _, kept, rejected, _ = _run(constructed, script="t2s")
    (row,) = rejected[constructed["q2_trad"].id]
    assert row["reason"] == "duplicate_exact"
    assert row["detail"].startswith(constructed["q2"].id)


def test_keeper_rule_earliest_when_provenance_ties() -> None:
    early = _s(
        Q2, A2 + "请遵医嘱。", provenance={"source": "a", "created_at": datetime(2024, 1, 1, tzinfo=UTC)}
    )
    late = _s(
        Q2, A2 + "请遵医嘱！!", provenance={"source": "b", "created_at": datetime(2025, 1, 1, tzinfo=UTC)}
    )
    plain = _s(Q2, A2 + "遵医嘱。")
    result = dedup_table(samples_to_table([late, plain, early]))
    assert result.kept.column("id").to_pylist() == [early.id]
    reasons = {r["id"]: r["reason"] for r in result.rejected.to_pylist()}
    assert reasons == {late.id: "duplicate_exact", plain.id: "near_duplicate"}


def test_label_separates_exact_text() -> None:
    pos = _s(Q2, A2)
    ref = Sample(instruction="请回答患者的问题。", input=Q2, output=A2, label="refusal")
    result = dedup_table(samples_to_table([pos, ref, pos]))
    assert sorted(result.kept.column("id").to_pylist()) == sorted([pos.id, ref.id])


def test_compare_text_keeps_fields_apart() -> None:
    assert compare_text("ab", "c", "d") != compare_text("a", "bc", "d")
    assert compare_text("高血压， 怎么办？", "", "ＯＫ") == compare_text("高血压怎么办", "", "ok")
    # NFKC before dropping symbols (㎏ is a symbol, "kg" is not); combining sequences compose
    assert normalize_for_dedup("５㎏ e\u0301") == "5kgé"
    assert normalize_for_dedup("體重５㎏", "t2s") == "体重5kg"


def test_empty_table_and_bad_config() -> None:
    result = dedup_table(samples_to_table([]))
    assert result.kept.num_rows == 0 and result.rejected.num_rows == 0
    with pytest.raises(ValueError, match="threshold"):
        DedupConfig(threshold=1.5)
    with pytest.raises(ValueError, match="script"):
        DedupConfig(script="s2x")


def test_lineage_never_merges_parent_and_child() -> None:
    parent = _s(Q1, A1, provenance={"source": "import", "template_id": "t", "job_id": "j"})
    child = _s(Q1, A1.replace("心内科", "心血管内科"), provenance={"parent_id": parent.id})
    result = dedup_table(samples_to_table([parent, child]))
    assert result.kept.num_rows == 2
    # a third sample close to both joins them in one cluster; the parent keeps it, the child stays too
    bridge = _s(Q1, A1.replace("心内科", "心血管科"))
    result = dedup_table(samples_to_table([child, bridge, parent]))
    assert sorted(result.kept.column("id").to_pylist()) == sorted([parent.id, child.id])
    assert result.rejected.to_pylist()[0]["id"] == bridge.id


def test_siblings_of_one_parent_never_merge() -> None:
    parent = _s(Q1, A1, provenance={"source": "import"})
    a = _s(Q1, A1.replace("心内科", "心血管内科"), provenance={"parent_id": parent.id})
    b = _s(Q1, A1.replace("心内科", "心血管科"), provenance={"parent_id": parent.id})
    other_parent = _s(Q1, A1.replace("心内科", "心脏内科"), provenance={"parent_id": "someone-else"})
    result = dedup_table(samples_to_table([parent, a, b]))
    assert result.rejected.num_rows == 0
    # a near-copy from another family is still a duplicate of the family that was kept
    result = dedup_table(samples_to_table([parent, a, b, other_parent]))
    assert result.rejected.column("id").to_pylist() == [other_parent.id]
