"""augment_table: the one entry point jobs call."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pydantic import ValidationError

from augmenters.pipeline import AugmentConfig, augment_table
from medaug.schema import Sample, samples_to_table, table_to_samples


def test_keeps_originals_and_adds_derived(samples):
    table = samples_to_table(samples)
    res = augment_table(table, AugmentConfig(variants=2, refusals=5, seed=1))
    out = table_to_samples(res.kept)
    ids = [s.id for s in out]
    assert ids[:3] == [s.id for s in samples]
    assert len(set(ids)) == len(ids)
    labels = [s.label.value for s in out]
    assert labels.count("refusal") == 5
    assert res.stats.rows_in == 3 and res.stats.rows_out == len(out)
    assert 0 < res.stats.extra["paraphrase_variants"] <= 6  # exact mappings only: not every seed has one
    assert res.stats.extra["refusals"] == 5
    derived = [s for s in out[3:] if s.label != "refusal"]
    assert all(s.provenance.parent_id in ids[:3] for s in derived)


def test_same_seed_same_output_regardless_of_batching(samples):
    rows = [
        Sample(instruction=f"{s.instruction}（病例{i}）", output=s.output, area=s.area)
        for i in range(20)
        for s in samples
    ]
    table = samples_to_table(rows)
    # Negatives are balanced within each call (ratios, pattern caps: tests/augmenters/test_aug_negatives.py),
    # so batching changes which rows they come from; everything else must not depend on it.
    cfg = AugmentConfig(seed=9, negative_ratios={})
    whole = augment_table(table, cfg).kept.column("id").to_pylist()
    parts = [augment_table(table.slice(o, 17), cfg).kept.column("id").to_pylist() for o in range(0, 60, 17)]
    assert sorted(whole) == sorted(i for p in parts for i in p)


def test_only_selected_augmenters_run(samples):
    cfg = AugmentConfig(paraphrase=False, negative_ratios={"overclaiming": 1.0})
    out = table_to_samples(augment_table(samples_to_table(samples), cfg).kept)
    assert [s.error_type for s in out[3:]] == ["overclaiming"] * 3


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"negative_ratios": {"wrong_dose": 1.5}}, "wrong_dose ratio must be within [0, 1]"),
        ({"negative_ratios": {"bogus": 0.1}}, "negative_ratios"),
        ({"direction": "sideways"}, "direction"),
        ({"fields": ["answer"]}, "fields"),
        ({"variant": 2}, "variant"),
    ],
)
def test_bad_config_names_the_field(bad, where):
    with pytest.raises(ValidationError) as e:
        AugmentConfig.model_validate(bad)
    assert where in str(e.value)


def test_missing_lexicon_file_is_named(samples, tmp_path):
    from medaug.lexicon import LexiconError

    with pytest.raises(LexiconError, match="nope.tsv"):
        augment_table(samples_to_table(samples), AugmentConfig(lexicons=[tmp_path / "nope.tsv"]))


def test_table_missing_a_column_is_named():
    with pytest.raises(ValueError, match="output"):
        augment_table(pa.table({"id": ["x"], "instruction": ["q"]}), AugmentConfig())


def test_llm_augmenters_need_a_stage(samples):
    cfg = AugmentConfig(llm_paraphrase_modes=("plain_answer",))
    with pytest.raises(ValueError, match="no LLM stage"):
        augment_table(samples_to_table(samples), cfg)
    with pytest.raises(ValidationError, match="unknown mode"):
        AugmentConfig(llm_paraphrase_modes=("shout",))
