"""The deid batch stage on Sample tables, and recall/precision on the labeled set built from shared data."""

from __future__ import annotations

from pathlib import Path

from curation.deid import DeidConfig, Recognizers, deidentify_table
from curation.deid.recognizers import valid_resident_id
from medaug.schema import Label, Provenance, Sample, samples_to_table
from tools.deid_labeled import build_labeled_set, evaluate, resident_id


def _table() -> tuple[list[Sample], object]:
    samples = [
        Sample(
            instruction="患者王芳头痛三天，电话13812345678，怎么办？",
            output="建议到北京协和医院神经内科就诊。",
        ),
        Sample(
            instruction="高血压怎么治疗？",
            output="低盐饮食，规律服药。",
            provenance=Provenance(parent_id="p1"),
        ),
        Sample(
            instruction="胸痛怎么办？",
            output="张医生说保证治愈。",
            label=Label.negative,
            error_type="overclaiming",
            reference_output="请李医生评估，2023年5月12日复查。",
        ),
    ]
    return samples, samples_to_table(samples)


def test_table_rewritten_ids_kept_and_deid_recorded() -> None:
    samples, table = _table()
    res = deidentify_table(table, DeidConfig())
    rows = res.kept.to_pylist()
    assert [r["id"] for r in rows] == [s.id for s in samples]  # lineage: ids never recomputed
    assert rows[0]["instruction"] == "患者〈姓名〉头痛三天，电话〈电话〉，怎么办？"
    assert rows[0]["output"] == "建议到〈医院〉〈科室〉就诊。"
    assert rows[0]["deid"] == [
        {"entity": "DEPARTMENT", "count": 1},
        {"entity": "HOSPITAL", "count": 1},
        {"entity": "PERSON", "count": 1},
        {"entity": "PHONE", "count": 1},
    ]
    assert rows[1]["deid"] == [] and rows[1]["output"] == "低盐饮食，规律服药。"  # checked, nothing found
    assert rows[1]["provenance"]["parent_id"] == "p1"
    assert "李" not in rows[2]["reference_output"] and "2023年5月12日" not in rows[2]["reference_output"]
    assert {d["entity"] for d in rows[2]["deid"]} == {"PERSON", "DATE"}
    assert res.rejected.num_rows == 0
    assert res.stats.rows_in == res.stats.rows_out == 3
    assert res.stats.extra["samples_with_pii"] == 2 and res.stats.extra["removed_PERSON"] == 3


def test_already_deidentified_samples_pass_through() -> None:
    _, table = _table()
    once = deidentify_table(table).kept
    again = deidentify_table(once)
    assert again.kept.to_pylist() == once.to_pylist()  # dates are not shifted a second time
    assert again.stats.extra["already_deidentified"] == 3


def test_only_configured_fields_are_touched() -> None:
    _, table = _table()
    res = deidentify_table(table, DeidConfig(fields=("output",)))
    assert res.kept.column("instruction").to_pylist() == table.column("instruction").to_pylist()
    assert res.kept.column("output").to_pylist()[0] == "建议到〈医院〉〈科室〉就诊。"


def test_generated_ids_are_valid_and_some_end_in_x() -> None:
    import random

    rng = random.Random(3)
    ids = [resident_id(rng, force_x=i % 3 == 0) for i in range(60)]
    assert all(valid_resident_id(i) for i in ids)
    assert sum(i.endswith("X") for i in ids) >= 20


def test_recall_and_precision_on_labeled_set(shared_data: Path) -> None:
    gold = build_labeled_set(shared_data, n=1500, seed=5)
    inserted = {e for g in gold for e, _, _ in g.spans}
    assert inserted >= {
        "PERSON",
        "PHONE",
        "ID_CARD",
        "EMAIL",
        "MEDICAL_RECORD",
        "HOSPITAL",
        "ADDRESS",
        "DATE",
        "AGE",
    }
    scores = evaluate(Recognizers().detect_many([g.text for g in gold]), gold)
    for entity, sc in scores.items():
        if entity in inserted:
            assert sc.recall >= 0.9, (entity, sc)
            # the real sentences carry real visit dates of their own, which the gold does not list
            assert sc.precision >= (0.6 if entity == "DATE" else 0.9), (entity, sc)
    # identifiers run into dates, cue landlines, full-width digits: none may leak
    for entity in ("ID_CARD", "PHONE", "EMAIL"):
        assert scores[entity].recall == 1.0, (entity, scores[entity])


def test_clean_lines_are_rarely_altered(shared_data: Path) -> None:
    """Real lines with no inserted personal data (speaker tags, clinical words, generic 医院)."""
    from tools.deid_labeled import clean_lines

    for name, lines in clean_lines(shared_data, 3000, seed=3).items():
        altered = sum(bool(s) for s in Recognizers().detect_many(lines))
        assert altered / len(lines) <= 0.01, (name, altered)
