"""Each rule negative differs from the reference in exactly the intended way."""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest

from augmenters.negatives import (
    CONSTRUCTORS,
    contradicts_findings,
    load_negative_knowledge,
    missing_referral,
    negative_rows,
    overclaiming,
    wrong_diagnosis,
    wrong_dose,
    wrong_drug,
)
from medaug.schema import NEGATIVE_VERDICT, ErrorType, rows_to_table, samples_to_table, table_to_samples

KB = load_negative_knowledge()


def _row(samples, i=0):
    return samples_to_table(samples).to_pylist()[i]


def _single_edit(ref: str, wrong: str) -> tuple[str, str]:
    """The one differing middle part of two strings (common prefix and suffix removed)."""
    p = 0
    while p < min(len(ref), len(wrong)) and ref[p] == wrong[p]:
        p += 1
    s = 0
    while s < min(len(ref), len(wrong)) - p and ref[-1 - s] == wrong[-1 - s]:
        s += 1
    return ref[p : len(ref) - s], wrong[p : len(wrong) - s]


def test_wrong_diagnosis_swaps_for_a_confusable_of_the_same_area(samples, core_lexicon):
    row = _row(samples)
    wrong, detail = wrong_diagnosis(row, KB, random.Random(1), core_lexicon)
    assert detail["from"] == "急性心肌梗死"
    assert any(detail["from"] in g and detail["to"] in g for g in KB.confusable["cardiovascular"])
    assert wrong == row["output"].replace("急性心肌梗死", detail["to"])


def test_wrong_drug_prefers_a_contraindicated_drug(samples, core_lexicon):
    row = _row(samples, 1)  # a 3-year-old child
    wrong, detail = wrong_drug(row, KB, random.Random(0), core_lexicon)
    assert detail["from"] in ("布洛芬", "口服补液盐")
    assert "child" in KB.drugs[detail["to"]].contraindicated
    assert detail["reason"] == "contraindicated:child"
    assert wrong == row["output"].replace(detail["from"], detail["to"])


def test_wrong_drug_without_population_uses_another_class(samples, core_lexicon):
    row = _row(samples, 2)
    wrong, detail = wrong_drug(row, KB, random.Random(0), core_lexicon)
    assert detail["from"] == "二甲双胍"
    assert KB.drugs[detail["to"]].cls != KB.drugs["二甲双胍"].cls
    assert wrong == row["output"].replace("二甲双胍", detail["to"])


@pytest.mark.parametrize("seed", range(6))
def test_wrong_dose_changes_only_the_dose(samples, core_lexicon, seed):
    row = _row(samples, 2)
    wrong, detail = wrong_dose(row, KB, random.Random(seed), core_lexicon)
    assert detail["from"] == "500mg"
    assert wrong == row["output"].replace("500mg", detail["to"])
    num, unit = re.fullmatch(r"([\d.]+)(\D+)", detail["to"]).groups()
    assert float(num) != 500 or unit != "mg"


def test_contradicting_findings_flips_a_stated_finding(samples, core_lexicon):
    row = _row(samples, 0)
    wrong, detail = contradicts_findings(row, KB, random.Random(0), core_lexicon)
    assert detail == {"strategy": "flip", "from": "抬高", "to": "压低", "start": row["output"].index("抬高")}
    assert _single_edit(row["output"], wrong) == ("抬高", "压低")


def test_contradicting_findings_denies_a_stated_symptom(samples, core_lexicon):
    row = _row(samples, 1) | {
        "input": "",
        "instruction": "孩子腹泻三天，无发热，怎么办？",
        "output": "注意补液。",
    }
    wrong, detail = contradicts_findings(row, KB, random.Random(0), core_lexicon)
    assert detail["strategy"] == "deny"
    assert detail["finding"] == "腹泻"  # 发热 is negated in the question, so denying it would agree
    assert wrong == detail["inserted"] + row["output"]


def test_missing_referral_removes_only_the_urgent_referral(samples, core_lexicon):
    row = _row(samples, 0)
    wrong, detail = missing_referral(row, KB, random.Random(0), core_lexicon)
    assert detail["removed"] == ["应立即拨打120，尽快送往有导管室的医院开通血管。"]
    assert wrong == row["output"].replace(detail["removed"][0], "")
    assert "120" not in wrong and "导管室" not in wrong


def test_missing_referral_not_applicable_without_referral(samples, core_lexicon):
    assert missing_referral(_row(samples, 2), KB, random.Random(0), core_lexicon) is None


def test_overclaiming_appends_one_promise(samples, core_lexicon):
    row = _row(samples, 2)
    wrong, detail = overclaiming(row, KB, random.Random(0), core_lexicon)
    assert wrong == row["output"] + detail["inserted"]
    assert re.search("保证|百分之?百|一定|绝对", detail["inserted"])


def test_negative_rows_are_labelled_and_keep_the_reference(samples, core_lexicon):
    rows = samples_to_table(samples).to_pylist()
    stats: Counter[str] = Counter()
    out = negative_rows(rows, {et: 1.0 for et in CONSTRUCTORS}, core_lexicon, seed=0, stats=stats)
    made = table_to_samples(rows_to_table(out))
    assert {s.error_type for s in made} == set(CONSTRUCTORS)
    by_id = {r["id"]: r for r in rows}
    for s in made:
        parent = by_id[s.provenance.parent_id]
        assert s.label == "negative" and s.verdict == NEGATIVE_VERDICT
        assert s.reference_output == parent["output"] != s.output
        assert s.instruction == parent["instruction"]
        assert json.loads(s.provenance.augmentation[-1].detail)["error_type"] == s.error_type
    assert stats["negative_not_applicable_missing_referral"] == 1
    assert sum(v for k, v in stats.items() if k.startswith("negative_") and "not_applicable" not in k) == len(
        out
    )


def test_ratios_and_seeds_reproduce_exactly(core_lexicon):
    from medaug.schema import Sample

    rows = samples_to_table(
        [
            Sample(
                instruction=f"第{i}例：胸口疼，ST段抬高",
                output=f"考虑急性心肌梗死，立即拨打120。服用阿司匹林{100 + i}mg。",
            )
            for i in range(400)
        ]
    ).to_pylist()
    ratios = {ErrorType.wrong_dose: 0.25, ErrorType.overclaiming: 0.5}
    a = negative_rows(rows, ratios, core_lexicon, seed=3)
    b = negative_rows(list(reversed(rows)), ratios, core_lexicon, seed=3)
    assert sorted(r["id"] for r in a) == sorted(r["id"] for r in b)
    n = Counter(r["error_type"] for r in a)
    assert 60 < n["wrong_dose"] < 140 and 150 < n["overclaiming"] < 250
    assert set(n) == {"wrong_dose", "overclaiming"}
    c = negative_rows(rows, ratios, core_lexicon, seed=4)
    assert sorted(r["id"] for r in a) != sorted(r["id"] for r in c)
