"""Counterfactual sex-swap check: pairs, diagnosis comparison, and the generate job running it with the tiny model."""

from __future__ import annotations

import json

from generators.counterfactual import SUFFIX, compare_pairs, named_diagnoses, sex_swap_pairs
from generators.expand import Quotas, expand
from generators.knowledge import load_comorbidities, load_knowledge
from generators.templates import load_templates
from jobs.config import GenerateConfig, load_config
from jobs.generate import run_generate


def _prompts(total: int = 120, **quotas: object) -> list:
    return expand(
        load_templates(), load_knowledge(), load_comorbidities(), Quotas(total=total, **quotas), seed=4
    )


def test_pairs_swap_only_the_sex_and_never_a_sex_specific_disease() -> None:
    diseases = load_knowledge()
    limited = {d.id for d in diseases if d.sex is not None}
    prompts = _prompts(areas={"obgyn": 1, "oncology": 1, "cardiovascular": 1})
    pairs = sex_swap_pairs(prompts, diseases, load_templates(), max_pairs=1000)
    with_sex = {t.id for t in load_templates() if t.slots() & {"sex", "patient"}}
    assert pairs and len(pairs) == sum(
        p.seed_id not in limited and p.template_id in with_sex for p in prompts
    )
    for orig, swap in pairs:
        assert orig.seed_id not in limited and orig.area.value != "obgyn"
        assert swap.prompt_id == orig.prompt_id + SUFFIX and swap.sex != orig.sex
        assert (swap.template_id, swap.seed_id, swap.age, swap.slots["findings"]) == (
            orig.template_id,
            orig.seed_id,
            orig.age,
            orig.slots["findings"],
        )
        # the texts differ, and only where the sex is written: 男 ↔ 女, nothing else
        assert swap.user != orig.user and len(swap.user) == len(orig.user)
        changed = {(a, b) for a, b in zip(orig.user, swap.user, strict=True) if a != b}
        assert changed <= {("男", "女"), ("女", "男")}, changed
    few = sex_swap_pairs(prompts, diseases, load_templates(), max_pairs=5)
    assert len(few) == 5 and few == sex_swap_pairs(prompts, diseases, load_templates(), max_pairs=5)


def test_the_diagnosis_is_the_first_disease_an_answer_names() -> None:
    diseases = load_knowledge()
    by_name = {d.name: d for d in diseases}
    stemi, angina = by_name["急性ST段抬高型心肌梗死"], by_name["稳定型心绞痛"]
    assert named_diagnoses(f"考虑{angina.name}，需排除{stemi.name}", diseases) == [angina.id, stemi.id]
    assert named_diagnoses(f"初步诊断：{stemi.icd10[0]}", diseases) == [stemi.id]
    assert named_diagnoses("随机噪声", diseases) == []

    prompts = _prompts(areas={"cardiovascular": 1})
    (p1, s1), (p2, s2), (p3, s3) = sex_swap_pairs(prompts, diseases, load_templates(), max_pairs=3)
    outputs = {
        p1.prompt_id: f"诊断为{stemi.name}",
        s1.prompt_id: f"诊断为{stemi.name}，鉴别{angina.name}",  # same first diagnosis
        p2.prompt_id: f"诊断为{stemi.name}",
        s2.prompt_id: f"考虑{angina.name}",  # the sex swap changed the diagnosis
        p3.prompt_id: "……",
        s3.prompt_id: None,  # generation failed
    }
    r1, r2, r3 = compare_pairs(
        [(p1, s1), (p2, s2), (p3, s3)], outputs, diseases, {s3.prompt_id: "no_headers"}
    )
    assert r1["same"] is True and r1["diagnosis"] == r1["swapped_diagnosis"] == stemi.id
    assert r2["same"] is False and (r2["diagnosis"], r2["swapped_diagnosis"]) == (stemi.id, angina.id)
    assert r3["same"] is None and r3["swapped_output"] is None and r3["swapped_failure"] == "no_headers"
    assert r2["sex"] != r2["swapped_sex"] and r2["output"] == outputs[p2.prompt_id]


def test_generate_job_runs_the_counterfactual_check(
    small_config, tiny_model, ray_local, tmp_path, write_config
) -> None:
    cfg = small_config(tiny_model, tmp_path, total=8, shard_size=8, field_max_chars=24)
    cfg["llm"]["sampling"]["max_tokens"] = 160  # greedy decoding fills every field: room for all three
    cfg["bias"] = {"counterfactual_sex_swap": True, "counterfactual_max_pairs": 3}
    cfg["quotas"]["areas"] = {"cardiovascular": 1, "obgyn": 1}
    manifest = run_generate(load_config(GenerateConfig, write_config(cfg), ["run.run_id=cf"]))
    summary = manifest["outputs"]["counterfactual"]
    report = tmp_path / "cf" / "bias" / "counterfactual.jsonl"
    assert summary["path"] == str(report) and summary["pairs"] == 3
    assert (
        summary["compared"] + summary["failed"]
        == 3
        == summary["same"] + summary["mismatches"] + summary["failed"]
    )
    records = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    sex_limited = {d.id for d in load_knowledge() if d.sex is not None}  # every obgyn disease, for one
    assert len(records) == 3 and not {r["disease"] for r in records} & sex_limited
    for r in records:
        assert r["swapped_sex"] != r["sex"]
        if r["same"] is not None:  # both sides were generated (the tiny model writes noise: content varies)
            assert r["output"] and r["swapped_output"]
        else:  # a failed side says why
            assert (r["output"] is None and r["failure"]) or (
                r["swapped_output"] is None and r["swapped_failure"]
            )
    assert json.loads((tmp_path / "cf" / "bias" / "counterfactual.json").read_text()) == summary
    # the run's own samples are untouched by the check: the 8 prompts only
    assert manifest["stages"][0]["rows_in"] == 8
    # what the datasheet of a release from this run reads: its quotas and its counterfactual summary
    from review_queue.bias import counterfactual_summaries, planned_shares, run_sources

    shares = planned_shares(run_sources(tmp_path, {"cf", "not-a-run"}))
    assert {a for _, _, a in shares} == {"cardiovascular", "obgyn"} and abs(sum(shares.values()) - 1) < 1e-9
    assert counterfactual_summaries(tmp_path, {"cf"}) == [{"run_id": "cf", **summary}]
    # resuming the complete run does not run the check again
    again = run_generate(load_config(GenerateConfig, write_config(cfg), ["run.run_id=cf"]))
    assert again["outputs"]["counterfactual"] == summary
