"""The knowledge table: the shipped one checked against the real ICD-10 lists, users' tables imported with clear errors."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from generators.knowledge import (
    DEFAULT_KNOWLEDGE,
    KnowledgeError,
    check_knowledge,
    load_knowledge,
    load_knowledge_file,
    parse_lab,
    write_knowledge,
)
from medaug.cli import app
from medaug.schema import Area

BEIJING = "chip_cdn/ICD-10北京临床版v601.csv"
CATEGORIES = "icd10_cn/disease.csv"
# naming conventions that differ between clinical usage and the ICD-10 titles
ICD_WORDING = {"癌": "恶性肿瘤", "假丝酵母菌": "念珠菌", "子痫前期": "先兆子痫", "卒中": "梗死"}


def test_default_table_is_large_and_covers_every_area_and_the_priorities() -> None:
    diseases = load_knowledge()
    assert len(diseases) >= 80
    per_area = Counter(d.area for d in diseases)
    assert set(per_area) == {a for a in Area if a != Area.general}
    assert min(per_area.values()) >= 12
    names = {d.name for d in diseases}
    assert len(names) == len(diseases)
    for must in (
        "急性ST段抬高型心肌梗死",
        "原发性高血压",
        "2型糖尿病",
        "急性缺血性脑卒中",
        "乳腺癌",
        "肺癌",
        "妊娠期糖尿病",
    ):
        assert must in names
    # the ids other modules and tables refer to are still there (never renamed)
    ids = {d.id for d in diseases}
    assert {"cv-stemi", "cv-htn", "endo-t2dm", "neuro-stroke", "onc-breast", "ob-gdm", "ped-kawasaki"} <= ids
    # sex limits are where anatomy puts them, and both sexes appear among the limited
    assert {d.sex.value for d in diseases if d.sex} == {"female", "male"}
    assert all(d.sex is not None for d in diseases if d.area == Area.obgyn)
    assert all(d.age[1] <= 14 for d in diseases if d.area == Area.pediatrics)


def test_every_icd10_code_exists_and_names_the_disease(shared_data: Path) -> None:
    """Codes read from the real ICD-10 lists at run time: the WHO categories and the Beijing clinical edition."""
    categories = {
        line.split("\t")[0]
        for line in (shared_data / CATEGORIES).read_text(encoding="utf-8").splitlines()[1:]
    }
    titles: dict[str, list[str]] = {}
    with open(shared_data / BEIJING, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            code = row["icd_code"].split("+")[0].rstrip("*")
            titles.setdefault(code, []).append(row["name"])
    problems = []
    for d in load_knowledge():
        for code in d.icd10:
            if code[:3] not in categories:
                problems.append(f"{d.id}: category {code[:3]} not in ICD-10")
                continue
            family = [n for c, ns in titles.items() if c == code or c.startswith(code) for n in ns]
            if not family:
                problems.append(f"{d.id}: {code} not in the clinical edition")
                continue
            name = d.name
            for ours, theirs in ICD_WORDING.items():
                name = name.replace(ours, theirs)
            # the disease's characteristic characters appear in a title of its code (catches a code for another organ)
            if max(len(set(name) & set(t)) for t in family) < 2:
                problems.append(f"{d.id}: {d.name} vs {code} {family[:3]}")
    assert not problems, problems


def test_lab_ranges_parse_and_render_inside_their_range() -> None:
    lab = parse_lab("空腹血糖 7.0~13.9 mmol/L")
    assert (lab.name, lab.low, lab.high, lab.unit, lab.decimals) == ("空腹血糖", 7.0, 13.9, "mmol/L", 1)
    assert lab.render(9.64) == "空腹血糖9.6mmol/L"
    assert parse_lab("血小板 8~40 ×10^9/L").render(12) == "血小板12×10^9/L"
    rng = random.Random(1)
    for d in load_knowledge():
        for spec in d.lab_specs():
            v = round(rng.uniform(spec.low, spec.high), spec.decimals)
            assert spec.low - 1e-9 <= v <= spec.high + 1e-9
    for bad in ("空腹血糖 高", "空腹血糖 9~7 mmol/L", "7~9"):
        with pytest.raises(ValueError, match="lab"):
            parse_lab(bad)


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


GOOD = {
    "id": "u-asthma",
    "area": "儿科",
    "name": "咳嗽变异性哮喘",
    "icd10": "J45.9",
    "symptoms_clinical": "慢性干咳|夜间咳嗽加重",
    "symptoms_colloquial": "老是干咳|晚上咳得更厉害",
    "findings": "支气管激发试验阳性",
    "labs": "呼出气一氧化氮 30~60 ppb",
    "drugs": "布地奈德|孟鲁司特钠",
    "urgent": "否",
    "sex": "",
    "age": "3-14",
    "confusable": "u-urti",
}
URTI = GOOD | {
    "id": "u-urti",
    "name": "急性上呼吸道感染",
    "icd10": "J06.9",
    "labs": "",
    "confusable": "u-asthma",
}


def test_csv_import_round_trips_into_the_shipped_layout(tmp_path: Path) -> None:
    src = _csv(tmp_path / "mine.csv", [GOOD, URTI])
    out = tmp_path / "out" / "kb.yaml"
    res = CliRunner().invoke(app, ["knowledge", "import", str(src), str(out)])
    assert res.exit_code == 0, res.output
    assert "2 diseases" in res.output
    kb = load_knowledge_file(out)
    d = {x.id: x for x in kb.diseases}["u-asthma"]
    assert d.area == Area.pediatrics and d.age == (3, 14) and d.sex is None and d.urgent is False
    assert d.symptoms_colloquial == ["老是干咳", "晚上咳得更厉害"] and d.lab_specs()[0].unit == "ppb"
    assert kb.comorbidities  # a CSV has none: the shipped list is used
    # the same table as JSON is accepted too, and validate says ok
    js = tmp_path / "mine.json"
    js.write_text(
        json.dumps({"diseases": [x.model_dump(mode="json") for x in kb.diseases]}, ensure_ascii=False),
        encoding="utf-8",
    )
    res = CliRunner().invoke(app, ["knowledge", "validate", str(js)])
    assert res.exit_code == 0 and "ok: 2 diseases" in res.output
    # import refuses to overwrite without --force
    assert CliRunner().invoke(app, ["knowledge", "import", str(src), str(out)]).exit_code == 1


def test_errors_name_file_row_and_field_and_list_every_problem(tmp_path: Path) -> None:
    rows = [
        GOOD,
        URTI | {"area": "dermatology"},  # line 3
        GOOD | {"id": "u-3", "name": "x3", "icd10": "J4"},  # line 4: not a code
        GOOD | {"id": "u-4", "name": "x4", "confusable": "u-nowhere"},  # line 5
        GOOD | {"id": "u-5", "name": "x5", "age": "60-5"},  # line 6
        GOOD | {"id": "u-6", "name": "x6", "labs": "血糖 偏高"},  # line 7
        GOOD,  # line 8: duplicate id
    ]
    src = _csv(tmp_path / "bad.csv", rows)
    kb, errors = check_knowledge(src)
    assert kb is None
    text = "\n".join(errors)
    assert all(e.startswith(f"{src}: line ") for e in errors), errors
    assert "line 3 (disease u-urti): area:" in text
    assert "line 4 (disease u-3): icd10: 'J4' is not an ICD-10 code" in text
    assert "line 5 (disease u-4): confusable: 'u-nowhere' is not a disease id" in text
    assert "line 6 (disease u-5): age" in text
    assert "line 7 (disease u-6): labs" in text and "NAME LOW~HIGH UNIT" in text
    assert "line 8 (disease u-asthma): id: duplicate id (first at line 2)" in text
    res = CliRunner().invoke(app, ["knowledge", "validate", str(src)])
    # line 2 refers to u-urti, whose row was refused: that is reported too
    assert "line 2 (disease u-asthma): confusable: 'u-urti' is not a disease id" in text
    assert res.exit_code == 1 and "7 problem(s)" in res.output
    assert not (tmp_path / "x.yaml").exists()
    assert CliRunner().invoke(app, ["knowledge", "import", str(src), str(tmp_path / "x.yaml")]).exit_code == 1
    assert not (tmp_path / "x.yaml").exists()  # nothing half-written


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("t.csv", "id,area,colour\nx,儿科,red\n", "unknown column(s) ['colour']"),
        ("t.json", '{"diseases": [{"id": "x"}]', "cannot read knowledge table"),
        (
            "t.json",
            '{"diseases": [{"id": "x", "area": "obgyn"}]}',
            "diseases[0] (disease x): name: Field required",
        ),
        ("t.yaml", "diseases: {a: 1}\n", "expected a list of diseases"),
        ("t.yaml", "illnesses: []\n", "unknown top-level key"),
        ("t.yaml", "diseases: [3]\n", "diseases[0]: expected a mapping of fields"),
        ("t.yaml", "diseases: []\n", "no diseases"),
    ],
)
def test_malformed_tables(tmp_path: Path, name: str, body: str, message: str) -> None:
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    with pytest.raises(KnowledgeError) as e:
        load_knowledge_file(p)
    assert message in str(e.value) and str(p) in str(e.value)


def test_shipped_table_survives_write_and_reload(tmp_path: Path) -> None:
    kb = load_knowledge_file(DEFAULT_KNOWLEDGE)
    write_knowledge(kb, tmp_path / "copy.yaml")
    again = load_knowledge_file(tmp_path / "copy.yaml")
    assert again.diseases == kb.diseases and again.comorbidities == kb.comorbidities
