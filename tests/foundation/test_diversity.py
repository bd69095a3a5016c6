"""The diversity report and seeded generation: figures computed with the real dedup, seeds few-shot, copies dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from curation.dedup import DedupIndex
from generators.diversity import distinct_n, diversity_report, format_report, near_duplicate_rate
from generators.expand import Quotas, novelty_text, plan
from generators.knowledge import load_comorbidities, load_knowledge
from generators.novelty import NoveltyFilter
from generators.seeded import REASON_RUN, REASON_SEED, TEMPLATE_ID, SeedNovelty, load_seeds
from generators.templates import load_templates
from medaug.run import RunFolder
from medaug.schema import Label, Provenance, Sample, samples_to_table
from medaug.stage import REJECT_SCHEMA

REPO = Path(__file__).resolve().parents[2]
DEMO_SEEDS = REPO / "configs" / "seeds" / "demo-seeds.jsonl"


def test_distinct_n_counts_unique_character_ngrams():
    assert distinct_n(["abab", "ab"], ns=(1, 2)) == {
        "distinct_1": round(2 / 6, 4),
        "distinct_2": round(2 / 4, 4),
    }
    assert distinct_n(["胸 痛", "胸痛"], ns=(2,)) == {"distinct_2": 0.5}  # whitespace does not count
    assert distinct_n([], ns=(1,)) == {"distinct_1": 0.0}


def test_near_duplicate_rate_is_what_dedup_drops():
    base = "患者男性，56岁，持续胸痛2小时，伴大汗，心电图显示V1-V4导联ST段抬高，请判断诊断并给出处理建议。"
    texts = [
        base,
        base.replace("请判断", "请你判断"),  # no clinical fact changes
        base,
        "孩子发烧两天，嘴里长泡不肯吃饭，手心脚心起红疹子，需要去医院吗？",
    ]
    r = near_duplicate_rate(texts)
    assert r == {"checked": 4, "of": 4, "kept": 2, "rate": 0.5}
    sampled = near_duplicate_rate(texts * 3, cap=5)
    assert sampled["checked"] == 5 and sampled["of"] == 12


def test_report_of_a_plan_names_what_could_not_be_met():
    rows, rep = plan(load_templates(), load_knowledge(), load_comorbidities(), Quotas(total=480), 2)
    d = diversity_report(rep, rows, [r.user[:40] for r in rows])
    assert (
        d["distinct"]["templates"] >= 40
        and d["distinct"]["diseases"] >= 80
        and d["distinct"]["personas"] > 300
    )
    assert d["prompts"]["checked"] == 480 and d["prompts"]["rate"] < 0.02
    assert set(d["outputs"]) >= {"rate", "distinct_1", "distinct_2", "distinct_3"}
    text = format_report(d)
    assert "quota not met: obgyn sex=male: planned 0% vs target 50%" in text
    assert "diversity: " in text and "near-duplicate rate" in text
    json.dumps(d)  # goes into the manifest as it is


def _sample(instruction: str, output: str, prompt_id: str, input: str = "") -> Sample:
    return Sample(instruction=instruction, input=input, output=output, task="medical_qa", label=Label.positive,
                  area="cardiovascular", provenance=Provenance(source="template", prompt_id=prompt_id,
                                                                template_id=TEMPLATE_ID, seed_id="cv-htn"))  # fmt: skip


def test_seed_novelty_drops_copies_of_seeds_and_of_earlier_samples():
    seeds = load_seeds(str(DEMO_SEEDS))
    s0 = seeds[0]
    novel = "我妈妈最近总说头晕，量血压160/100，她需要马上吃降压药吗？平时饮食要注意什么？"
    table = samples_to_table([
        _sample(s0.instruction, (s0.output or "").replace("。", "，", 1), "p1", s0.input),  # a seed with one comma changed
        _sample(novel, "建议先在安静状态下多次测量血压，确认后在医生指导下选择降压药，同时限盐、控制体重。", "p2"),
        _sample(novel, "建议先在安静状态下多次测量血压，确认后在医生指导下选择降压药，同时限盐控制体重。", "p3"),
    ])  # fmt: skip
    check = SeedNovelty(seeds)
    kept, dropped = check.apply(table)
    assert [p["prompt_id"] for p in kept.column("provenance").to_pylist()] == ["p2"]
    # the one reject shape: id = the prompt id, with the dropped sample
    assert dropped.schema == REJECT_SCHEMA
    rows = dropped.to_pylist()
    assert {(f["id"], f["reason"]) for f in rows} == {("p1", REASON_SEED), ("p3", REASON_RUN)}
    assert all(f["sample"]["provenance"]["prompt_id"] == f["id"] for f in rows)
    # a resumed run: what was generated before counts too
    again = SeedNovelty(seeds)
    again.add_table(kept)
    assert again.apply(table.slice(1, 1))[0].num_rows == 0


def test_seeded_prompts_are_few_shot_from_the_seeds_and_keep_the_demographics(tmp_path):
    q = Quotas(total=240, seeded={"file": str(DEMO_SEEDS), "share": 0.5, "shots": 2})
    rows, rep = plan(load_templates(), load_knowledge(), load_comorbidities(), q, 4)
    seeded = [r for r in rows if r.template_id == TEMPLATE_ID]
    assert abs(len(seeded) - 120) <= 6 and rep.distinct["seeded_prompts"] == len(seeded)
    by_id = {s.id: s for s in load_seeds(str(DEMO_SEEDS))}
    for r in seeded:
        ids = r.slots["seed_samples"].split(",")
        assert len(ids) == 2 and all(i in by_id for i in ids)
        assert "【示例1】" in r.user and "【示例2】" in r.user and "不得照抄" in r.user
        assert by_id[ids[0]].instruction[:20] in r.user
        assert all(by_id[i].task == r.task for i in ids)  # the demo seeds cover every task
        assert r.slots["disease"] in r.user and r.slots["_novelty_text"] in r.user
    # balance is planned before the prompt kind: obgyn aside, sexes stay even
    non_ob = [r for r in rows if r.area.value != "obgyn"]
    assert abs(sum(r.sex.value == "male" for r in non_ob) / len(non_ob) - 0.5) <= 0.05
    bad = tmp_path / "seeds.jsonl"
    bad.write_text('{"instruction": "x"}\n{not json\n', encoding="utf-8")
    with pytest.raises(ValueError, match="seeds.jsonl"):
        plan(load_templates(), load_knowledge(), load_comorbidities(),
             Quotas(total=24, seeded={"file": str(bad)}), 1)  # fmt: skip


def test_generate_job_reports_diversity_and_runs_seeded(small_config, tiny_model, ray_local, tmp_path):
    from jobs.config import GenerateConfig, load_config
    from jobs.generate import load_plan, print_summary, run_generate

    cfg = small_config(tiny_model, tmp_path, total=24, shard_size=12)
    cfg["quotas"]["seeded"] = {"file": str(DEMO_SEEDS), "share": 0.5, "shots": 1, "max_field_chars": 40}
    cfg["quotas"]["novelty"] = {"index": str(tmp_path / "prompt-index")}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    manifest = run_generate(load_config(GenerateConfig, path, ["run.run_id=div"]))
    d = manifest["outputs"]["diversity"]
    assert d["plan"]["planned"] == 24 and d["distinct"]["seeded_prompts"] >= 10
    assert d["prompts"]["checked"] == 24 and "distinct_2" in d["outputs"]
    assert any(m["area"] == "obgyn" and m["value"] == "male" for m in d["quota_misses"])
    on_disk = json.loads((tmp_path / "div" / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk["outputs"]["diversity"] == d
    # every prompt has exactly one outcome, seed-novelty drops included
    gen = tmp_path / "div" / "generate"
    samples = sum(pq.read_table(p).num_rows for p in gen.glob("shard-*.parquet"))
    rejects = tmp_path / "div" / "rejects" / "generate"
    failures = sum(pq.read_table(p).num_rows for p in rejects.glob("generate-*.parquet"))
    assert samples + failures == 24
    templates = {
        p["template_id"]
        for f in gen.glob("shard-*.parquet")
        for p in pq.read_table(f).column("provenance").to_pylist()
    }
    assert TEMPLATE_ID in templates or failures
    print_summary(manifest)
    # the plan is saved with the run and recorded in the prompt index; a second run plans away from it
    first, _ = load_plan(RunFolder(tmp_path, "div"))
    outcomes = [
        p["prompt_id"]
        for f in gen.glob("shard-*.parquet")
        for p in pq.read_table(f).column("provenance").to_pylist()
    ]
    outcomes += [
        i for f in rejects.glob("generate-*.parquet") for i in pq.read_table(f).column("id").to_pylist()
    ]
    assert sorted(outcomes) == sorted(p.prompt_id for p in first)
    assert DedupIndex(tmp_path / "prompt-index").origins() == {"plan:div": 24}
    run_generate(load_config(GenerateConfig, path, ["run.run_id=div2"]), max_shards=0)
    second, rep2 = load_plan(RunFolder(tmp_path, "div2"))
    assert rep2.index_hits > 0 and rep2.redrawn > 0
    f = NoveltyFilter(0.85)
    f.add([novelty_text(p) for p in first])
    assert all(v is None for v in f.check([novelty_text(p) for p in second]))
