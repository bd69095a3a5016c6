"""The datasheet's bias report: released demographics against the configured quotas, stereotyped generalisations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from release_queue import Queue
from typer.testing import CliRunner

from generators.knowledge import load_knowledge
from medaug.schema import Sample, samples_to_table
from review_queue import versions
from review_queue.bias import (
    BiasConfigError,
    QuotaSource,
    band_of,
    find_stereotypes,
    planned_shares,
    quota_source,
    released_cells,
    scan_stereotypes,
)
from review_queue.export import export_version
from review_queue.release import merge_from_store
from review_queue.versions import ReleaseError

# Stereotyped generalisations the team's list must flag (none of them is a rule's literal text).
STEREOTYPED = [
    ("sex", "女性就是容易焦虑，所以胸痛多半是心理作用"),
    ("sex", "女人天生情绪化，说的症状不可全信"),
    ("sex", "男人都不愿意看医生，拖到很晚才来"),
    ("region", "农村人都不讲卫生，所以容易感染寄生虫"),
    ("region", "东北人能喝酒，肝功能异常很正常"),
    ("region", "山区的老百姓哪懂这些，直接开药就行"),
    ("ethnicity", "藏族人都爱喝酒，要先考虑酒精性肝病"),
    ("ethnicity", "少数民族天生体质差"),
    ("occupation", "农民工素质低，不听医嘱"),
    ("occupation", "程序员都是亚健康，不用特别检查"),
]
# Clinical statements about groups, demographics in a case, lists of groups: not stereotypes.
CLINICAL = [
    "男性和女性都可能患病，应尽早就医",
    "女性患者应定期进行宫颈癌筛查",
    "患者，女性，45岁，胸闷3天",
    "农村地区医疗资源有限，应加强随访",
    "藏族患者长期生活在高原，红细胞增多较常见",
    "女性盆腔脏器脱垂的治疗方案",
    "不孕的女性都是需要排卵监测的",
    "男性多见，发病年龄多在50岁以上",
    "上班族应避免久坐，每小时起身活动",
    "家族史阳性者应提前筛查",
]


@pytest.mark.parametrize(("category", "text"), STEREOTYPED)
def test_stereotyped_generalisations_are_flagged(category: str, text: str) -> None:
    hits = find_stereotypes(text)
    assert [r.category for r, _ in hits] == [category], text


@pytest.mark.parametrize("text", CLINICAL)
def test_clinical_statements_about_groups_are_not_flagged(text: str) -> None:
    assert find_stereotypes(text) == []


def _sample(output: str, **kw: object) -> Sample:
    return Sample.model_validate({"instruction": "请回答患者的问题。", "output": output, "deid": [], **kw})


def test_scan_counts_hits_per_category_and_label_with_examples() -> None:
    rows = [_sample(t) for _, t in STEREOTYPED] + [_sample(t) for t in CLINICAL]
    rows.append(
        _sample("正确回答。", label="negative", error_type="other", reference_output="女人天生娇气，不用管")
    )
    rep = scan_stereotypes(samples_to_table(rows))
    assert rep.rows_scanned == len(rows) and rep.rows_flagged == len(STEREOTYPED) + 1
    assert rep.by_category == {"sex": 4, "region": 3, "ethnicity": 2, "occupation": 2}
    assert rep.by_label == {"positive": len(STEREOTYPED), "negative": 1}
    neg = next(h for h in rep.examples["sex"] if h.field == "reference_output")
    assert neg.match.startswith("女人天生") and neg.sample_id == rows[-1].id
    assert all(len(v) <= 5 for v in rep.examples.values())


def test_age_bands_are_the_generators() -> None:
    assert [band_of(a) for a in (None, 0, 14, 15, 44, 45, 64, 65, 95, 120)] == [
        "unknown", "child", "child", "young_adult", "young_adult", "middle_aged", "middle_aged", "elderly",
        "elderly", "elderly"]  # fmt: skip


def test_planned_shares_follow_the_knowledge_tables_sex_limits() -> None:
    q = {"total": 400, "areas": {"obgyn": 1, "oncology": 1}, "sex": {"male": 1, "female": 1},
         "age_bands": {"young_adult": 1}}  # fmt: skip
    from generators.expand import Quotas

    shares = planned_shares([QuotaSource("q", Quotas.model_validate(q), seed=3)])
    assert abs(sum(shares.values()) - 1) < 1e-9
    by = {(s, a): sum(v for (s2, _, a2), v in shares.items() if (s2, a2) == (s, a)) for s in ("male", "female")
          for a in ("obgyn", "oncology")}  # fmt: skip
    assert by[("male", "obgyn")] == 0  # every obgyn disease is female-only in the knowledge table
    onc = [d for d in load_knowledge() if d.area.value == "oncology"]
    only = {
        sex: sum(d.sex is not None and d.sex.value == sex for d in onc) / len(onc)
        for sex in ("male", "female")
    }
    # oncology: the sex-limited diseases plus half of the rest (the quota), within sampling noise
    expected = only["female"] + (1 - only["female"] - only["male"]) / 2
    assert abs(by[("female", "oncology")] / 0.5 - expected) < 0.1


def _runs(tmp_path: Path, run_id: str, quotas: dict) -> Path:
    runs = tmp_path / "runs"
    (runs / run_id).mkdir(parents=True)
    manifest = {"job": "generate", "run_id": run_id, "config": {"quotas": quotas, "run": {"seed": 1}}}
    (runs / run_id / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return runs


def test_datasheet_compares_released_demographics_with_the_runs_quotas(queue: Queue, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    merge_from_store(queue.store, root=root, dataset="cardio", created_by="m")
    cells, unknown = released_cells(versions.read_rows(root / "cardio" / "v1"))
    assert cells == {("male", "middle_aged", "cardiovascular"): 1, ("female", "young_adult", "endocrine"): 1,
                     ("female", "child", "neurology"): 1} and unknown == 5  # fmt: skip
    # the rows came from run gen-甲, which planned only middle-aged men with cardiovascular disease
    runs = _runs(tmp_path, "gen-甲", {"total": 50, "tasks": {"medical_qa": 1}, "areas": {"cardiovascular": 1},
                                      "sex": {"male": 1}, "age_bands": {"middle_aged": 1}})  # fmt: skip
    res = export_version(root, "cardio", 1, "alpaca", runs_dir=runs)
    text = (res.path / "DATASHEET.md").read_text(encoding="utf-8")
    bias = text[text.index("## Bias") : text.index("## Review")]
    assert "gen-甲/manifest.json" in bias and "Rows with sex and age known: 3; unknown: 5." in bias
    assert "| male | middle_aged | cardiovascular | 1 | 33.3% | 100.0% | -66.7 pp | under |" in bias
    assert "| female | young_adult | endocrine | 1 | 33.3% | - | - | unplanned |" in bias
    assert "| female | 2 | 66.7% | 0.0% | +66.7 pp | over |" in bias  # sex marginal
    assert "rows flagged: 0" in bias and "### Counterfactual sex swap" in bias and "Not run" in bias
    summary = {"pairs": 20, "compared": 19, "same": 17, "mismatches": 2, "failed": 1, "path": "runs/x.jsonl"}
    (runs / "gen-甲" / "bias").mkdir()
    (runs / "gen-甲" / "bias" / "counterfactual.json").write_text(json.dumps(summary), encoding="utf-8")
    text = (
        export_version(root, "cardio", 1, "alpaca", runs_dir=runs).path.joinpath("DATASHEET.md").read_text()
    )
    assert "| gen-甲 | 20 | 19 | 17 | 2 | 1 | `runs/x.jsonl` |" in text

    # an explicit job config wins over the runs found; a broken one is named
    cfg = tmp_path / "job.yaml"
    cfg.write_text(yaml.safe_dump({"quotas": {"total": 10, "areas": {"endocrine": 1}, "sex": {"female": 1},
                                              "age_bands": {"young_adult": 1}}}), encoding="utf-8")  # fmt: skip
    res = export_version(root, "cardio", 1, "alpaca", quotas_config=cfg, runs_dir=runs)
    text = (res.path / "DATASHEET.md").read_text(encoding="utf-8")
    # planned by the generator's expansion: endocrine diseases too old for the band fall back to their ages
    planned = planned_shares([quota_source(cfg)])[("female", "young_adult", "endocrine")]
    assert 0 < planned < 1
    assert (f"| female | young_adult | endocrine | 1 | 33.3% | {planned:.1%} | {100 * (1 / 3 - planned):+.1f} pp |"
            in text)  # fmt: skip
    cfg.write_text(yaml.safe_dump({"quotas": {"total": 10, "age_bands": {"teen": 1}}}), encoding="utf-8")
    with pytest.raises(ReleaseError, match=r"bias report: .*job.yaml: quotas.*unknown band"):
        export_version(root, "cardio", 1, "alpaca", quotas_config=cfg)
    cfg.write_text(yaml.safe_dump({"job": "augment", "inputs": []}), encoding="utf-8")
    with pytest.raises(BiasConfigError, match=r"job.yaml: no `quotas`"):
        quota_source(cfg)


def test_export_command_reports_bias_against_runs(queue: Queue, tmp_path: Path) -> None:
    from medaug.cli import app

    root = tmp_path / "ds"
    merge_from_store(queue.store, root=root, dataset="cardio", created_by="m")
    runs = _runs(tmp_path, "gen-甲", {"total": 20, "areas": {"cardiovascular": 1, "neurology": 1}})
    r = CliRunner().invoke(app, ["export", "--dataset", "cardio", "--format", "llamafactory", "--root", str(root),
                                 "--runs-dir", str(runs), "--base-model", "/models/m"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "train: llamafactory-cli train" in r.output and "train_lora.yaml" in r.output
    text = (root / "cardio" / "v1" / "exports" / "llamafactory" / "DATASHEET.md").read_text(encoding="utf-8")
    assert "## Bias" in text and "planned share" in text and "llamafactory-cli train" in text
