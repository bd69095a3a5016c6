"""Planning for novelty: no prompt planned that dedup would later drop as a near-duplicate of another."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from curation.dedup import DedupIndex
from generators.diversity import near_duplicate_rate
from generators.expand import Quotas, plan
from generators.knowledge import load_comorbidities, load_knowledge
from generators.novelty import NoveltyFilter
from generators.templates import load_templates


def _plan(total: int, seed: int = 1, templates=None, diseases=None, **kw):
    return plan(templates or load_templates(), diseases or load_knowledge(), load_comorbidities(),
                Quotas(total=total, **kw.pop("quotas", {})), seed, **kw)  # fmt: skip


def test_filter_rejects_near_duplicates_and_keeps_novel_texts():
    f = NoveltyFilter(0.85)
    base = "患者女性，54岁，自述浑身没力气、稍微一动就喘，已持续5天，既往高血压8年，请医生解答可能的原因和需要做的检查。"
    near = base.replace("5天", "6天").replace("8年", "9年")
    other = "孩子3岁，发烧两天，嘴里长泡不肯吃饭，手心脚心起红疹子，家长想知道要不要去医院，会不会传染给别的孩子。"
    assert f.check([base, near, other, base]) == [None, 0, None, 0]
    assert f.rejected == 2 and len(f.texts) == 2
    f.add(["完全不同的一句话，讲的是糖尿病患者应该如何安排一日三餐和运动的时间。"])
    assert not f.is_novel("完全不同的一句话，讲的是糖尿病患者应该如何安排一日三餐和运动时间。")


def test_novelty_plan_leaves_nothing_for_dedup_and_plain_expansion_does():
    """A tiny table makes it visible at a small size: one short template, two diseases."""
    ds = [d for d in load_knowledge() if d.id in ("endo-t2dm", "endo-hypo")]
    tpl = [t for t in load_templates() if t.id == "rep-lab"]
    q = {"areas": {"endocrine": 1}, "tasks": {"report_explanation": 1}}
    plain, plain_rep = _plan(400, templates=tpl, diseases=ds, quotas=q | {"novelty": {"enabled": False}})
    novel, rep = _plan(400, templates=tpl, diseases=ds, quotas=q)
    plain_rate = near_duplicate_rate([r.user for r in plain])["rate"]
    novel_rate = near_duplicate_rate([r.user for r in novel])["rate"]
    assert plain_rep.redrawn == plain_rep.skipped == 0 and len(plain) == 400
    assert rep.redrawn > 0 and rep.planned == len(novel) == 400 - rep.skipped
    # the planner is stricter than dedup (dedup also keeps pairs whose clinical facts differ): nothing left for it
    assert plain_rate > 0.03 and novel_rate == 0.0
    # deterministic for a seed, redraws included
    again, _ = _plan(400, templates=tpl, diseases=ds, quotas=q)
    assert [r.prompt_id for r in again] == [r.prompt_id for r in novel]
    assert len({r.prompt_id for r in novel}) == len(novel)


def test_a_cell_without_enough_variety_is_reported_not_padded():
    tpl = [t for t in load_templates() if t.id == "qa-disease-knowledge"]
    ds = [d for d in load_knowledge() if d.id == "cv-htn"]
    rows, rep = _plan(200, templates=tpl, diseases=ds,
                      quotas={"areas": {"cardiovascular": 1}, "tasks": {"medical_qa": 1}})  # fmt: skip
    assert rep.skipped > 100 and len(rows) == 200 - rep.skipped
    (cell,) = rep.out_of_variety
    assert cell["task"] == "medical_qa" and cell["area"] == "cardiovascular"
    assert cell["planned"] == len(rows) and "near-duplicates" in cell["reason"]


def test_plan_stays_away_from_given_texts_and_the_dedup_index(tmp_path: Path):
    first, _ = _plan(300, seed=2)
    texts = [r.user for r in first]
    second, rep = _plan(300, seed=2, avoid=texts)  # same seed: would be the same prompts
    f = NoveltyFilter(0.85)
    f.add(texts)
    assert all(v is None for v in f.check([r.user for r in second]))
    # the first cell's first draws are the first plan's prompts again: all redrawn (then the draws diverge)
    assert rep.redrawn >= 300 // 24
    # the same through a dedup index holding the first plan's prompts
    index = DedupIndex(tmp_path / "idx")
    n = len(first)
    index.add(
        pa.table({"id": [r.prompt_id for r in first], "instruction": texts, "input": [""] * n, "output": [""] * n,
                  "label": ["positive"] * n, "task": [r.task.value for r in first], "area": [r.area.value for r in first]}),
        origin="queue",
    )  # fmt: skip
    third, rep3 = _plan(300, seed=2, index=index)
    assert rep3.index_hits >= 250
    g = NoveltyFilter(0.85)
    g.add(texts)
    assert all(v is None for v in g.check([r.user for r in third]))
