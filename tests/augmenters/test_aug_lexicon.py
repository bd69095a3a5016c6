"""Lexicon formats and loaders, against our core lexicon and the real external ones in ../shared/data."""

from __future__ import annotations

import json

import pytest

from augmenters.paraphrase import normalize_line
from medaug.lexicon import CORE_LEXICON, LexiconError, load_lexicon, load_lexicon_file, read_pairs
from medaug.schema import Area

HEADER = "term\tvariants\trelation\tkind\tdirection\tarea\tcontext\tsource"


def test_core_lexicon_covers_all_areas_with_hundreds_of_entries():
    entries = load_lexicon_file(CORE_LEXICON)
    assert len(entries) >= 300
    areas = {e.area for e in entries}
    for area in ("cardiovascular", "oncology", "endocrine", "neurology", "obgyn", "pediatrics"):
        assert area in areas
        assert sum(e.area == area for e in entries) >= 20, area
    assert all(e.area in Area.__members__ for e in entries)
    assert sum(bool(e.variants) for e in entries) >= 300
    assert {e.relation for e in entries} == {"exact", "narrower", "broader", "related"}


@pytest.mark.parametrize(
    ("colloquial", "clinical"),
    [
        ("胸口疼", "胸痛"),
        ("拉肚子", "腹泻"),
        ("心慌", "心悸"),
        ("大便稀", "稀便"),
        ("宝宝漾奶", "宝宝溢奶"),
    ],
)
def test_core_maps_colloquial_to_clinical(core_lexicon, colloquial, clinical):
    assert normalize_line(colloquial, core_lexicon) == clinical


def test_chest_pain_has_one_exact_reading_and_a_narrower_one_under_a_rule(core_lexicon):
    cands = core_lexicon.to_clinical_candidates["胸口疼"]
    assert [c.target for c in cands if c.relation == "exact" and not c.context] == ["胸痛"]
    narrower = next(c for c in cands if c.target == "胸骨后压榨感")
    assert narrower.relation == "narrower" and "area=cardiovascular" in narrower.context


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
    # Normalisation pairs map a whole mention (or clause), never a wording inside running text.
    assert normalize_line(f"{mention}，", lex) == lex.to_clinical[mention][0] + "，"
    assert lex.to_clinical_candidates[mention][0].relation in ("broader", "exact")


def test_external_lexicon_takes_precedence_over_core(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("原始词\t标准词\n拉肚子\t腹泻病\n", encoding="utf-8")
    lex = load_lexicon([p])
    assert lex.lookup("拉肚子", "to_clinical") == "腹泻"  # the core's exact synonym beats a normalisation
    assert lex.to_clinical["拉肚子"] == ("腹泻病", "腹泻")  # the user's mapping is listed first
    assert lex.to_clinical_candidates["拉肚子"][0].relation == "broader"


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
    p.write_text(
        "entries:\n  - {term: 眩晕, variants: [天旋地转], relation: exact, kind: symptom, area: neurology}\n",
        encoding="utf-8",
    )
    lex = load_lexicon([p], include_core=False)
    assert normalize_line("天旋地转", lex) == "眩晕"


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        (
            "bad.tsv",
            f"{HEADER}\n胸痛\t胸口疼\texact\tsymptom\tsideways\tgeneral\t\tx\n",
            "bad.tsv:2: field 'direction'",
        ),
        (
            "bad2.tsv",
            f"{HEADER}\n胸痛\t胸口疼\texact\tsymptom\tboth\theart\t\tx\n",
            "bad2.tsv:2: field 'area'",
        ),
        ("rel.tsv", f"{HEADER}\n胸痛\t胸口疼\tsame\tsymptom\n", "rel.tsv:2: field 'relation'"),
        ("kind.tsv", f"{HEADER}\n胸痛\t胸口疼\texact\tpain\n", "kind.tsv:2: field 'kind'"),
        (
            "ctx.tsv",
            f"{HEADER}\n胸痛\t胸口疼\tnarrower\tsymptom\tboth\tgeneral\tnearby=x\n",
            "ctx.tsv:2: field 'context'",
        ),
        (
            "old.tsv",
            "term\tvariants\tdirection\tarea\tsource\n胸痛\t胸口疼\tboth\tgeneral\tx\n",
            "old.tsv:1: old lexicon header",
        ),
        (
            "twice.tsv",
            f"{HEADER}\n疲乏\t没精神\texact\tsymptom\n精神萎靡\t没精神\texact\tsymptom\n",
            "wording '没精神' is an exact variant of both '疲乏' and '精神萎靡'",
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
