"""Lexicon formats and loaders, against our core lexicon and the real external ones in ../shared/data."""

from __future__ import annotations

import json

import pytest

from augmenters.lexicon import CORE_LEXICON, LexiconError, load_lexicon, load_lexicon_file, read_pairs
from augmenters.paraphrase import normalize_line
from medaug.schema import Area


def test_core_lexicon_covers_all_areas_with_hundreds_of_entries():
    entries = load_lexicon_file(CORE_LEXICON)
    assert len(entries) >= 300
    areas = {e.area for e in entries}
    for area in ("cardiovascular", "oncology", "endocrine", "neurology", "obgyn", "pediatrics"):
        assert area in areas
        assert sum(e.area == area for e in entries) >= 20, area
    assert all(e.area in Area.__members__ for e in entries)
    assert all(e.variants for e in entries)


@pytest.mark.parametrize(
    ("colloquial", "clinical"),
    [
        ("胸口疼", "胸痛"),
        ("拉肚子", "腹泻"),
        ("心慌", "心悸"),
        ("大便有点稀", "稀便"),
        ("宝宝吐奶", "宝宝溢奶"),
    ],
)
def test_core_maps_colloquial_to_clinical(core_lexicon, colloquial, clinical):
    assert normalize_line(colloquial, core_lexicon) == clinical


def test_chest_pain_has_both_clinical_readings(core_lexicon):
    assert set(core_lexicon.to_clinical["胸口疼"]) == {"胸痛", "胸骨后压榨感"}
    assert core_lexicon.to_clinical["胸口疼"][0] == "胸痛"


def test_clinical_to_colloquial(core_lexicon):
    assert normalize_line("腹泻伴心悸", core_lexicon, "to_colloquial") == "拉肚子伴心慌"


def test_imcs_pairs_load_and_apply(shared_data):
    path = shared_data / "imcs21_symptom_norm" / "imcs_train.csv"
    pairs = read_pairs(path)
    entries = load_lexicon_file(path)
    assert len(entries) == len(pairs) > 4000
    lex = load_lexicon([path], include_core=False)
    mention, standard = next((a, b) for a, b in pairs if a != b and len(a) >= 3 and a.isalpha())
    assert normalize_line(mention, lex) == lex.to_clinical[mention][0]
    assert normalize_line(f"这两天{mention}", lex).endswith(lex.to_clinical[mention][0])


def test_external_lexicon_takes_precedence_over_core(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("原始词\t标准词\n拉肚子\t腹泻病\n", encoding="utf-8")
    lex = load_lexicon([p])
    assert normalize_line("拉肚子", lex) == "腹泻病"
    assert "腹泻" in lex.to_clinical["拉肚子"]


def test_dxy_symptom_list_loads(shared_data):
    path = shared_data / "dxy_symptom_norm" / "norm_symptom_list.txt"
    entries = load_lexicon_file(path)
    assert len(entries) == 41
    lex = load_lexicon([path], include_core=False)
    e = next(
        e
        for e in entries
        if e.variants and len(e.variants[0]) >= 2 and e.variants[0] not in lex.clinical_terms
    )
    assert normalize_line(e.variants[0], lex) == e.term


def test_chip_cdn_and_icd_names_load(shared_data):
    cdn = load_lexicon_file(shared_data / "chip_cdn" / "CHIP-CDN_train.json")
    raw = json.loads((shared_data / "chip_cdn" / "CHIP-CDN_train.json").read_text(encoding="utf-8"))
    assert len(cdn) == sum("##" not in r["normalized_result"] for r in raw)
    icd = load_lexicon_file(shared_data / "chip_cdn" / "ICD-10北京临床版v601.csv")
    assert len(icd) == 40474
    lex = load_lexicon([shared_data / "chip_cdn" / "ICD-10北京临床版v601.csv"])
    assert "霍乱" in lex.clinical_terms
    assert normalize_line("霍乱", lex) == "霍乱"


def test_yaml_lexicon(tmp_path):
    p = tmp_path / "lex.yaml"
    p.write_text("entries:\n  - {term: 眩晕, variants: [天旋地转], area: neurology}\n", encoding="utf-8")
    lex = load_lexicon([p], include_core=False)
    assert normalize_line("天旋地转", lex) == "眩晕"


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        (
            "bad.tsv",
            "term\tvariants\tdirection\tarea\tsource\n胸痛\t胸口疼\tsideways\tgeneral\tx\n",
            "bad.tsv:2: field 'direction'",
        ),
        (
            "bad2.tsv",
            "term\tvariants\tdirection\tarea\tsource\n胸痛\t胸口疼\tboth\theart\tx\n",
            "bad2.tsv:2: field 'area'",
        ),
        ("pairs.csv", "原始词\t标准词\n拉肚子\t腹泻\n只有一列\n", "pairs.csv:3:"),
        ("odd.txt", "hello\n", "odd.txt:1: unknown lexicon format"),
        ("lex.yaml", "entries:\n  - {variants: [a]}\n", "lex.yaml: entry 0: field 'term'"),
    ],
)
def test_bad_lexicon_names_file_and_line(tmp_path, name, text, where):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    with pytest.raises(LexiconError) as e:
        load_lexicon_file(p)
    assert where in str(e.value)


def test_non_utf8_lexicon(tmp_path):
    p = tmp_path / "gbk.csv"
    p.write_bytes("原始词\t标准词\n".encode("gbk"))
    with pytest.raises(LexiconError, match="gbk.csv: not UTF-8"):
        load_lexicon_file(p)
