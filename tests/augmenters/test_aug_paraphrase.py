"""Lexicon paraphrasing of samples: exact provenance, N distinct variants, seeds, batch independence."""

from __future__ import annotations

import json
from collections import Counter

from augmenters.paraphrase import AUGMENTER, paraphrase_rows
from medaug.schema import samples_to_table, table_to_samples


def _rows(samples):
    return samples_to_table(samples).to_pylist()


def test_variants_record_exact_substitutions(samples, core_lexicon):
    rows = _rows(samples)
    out = paraphrase_rows(rows, core_lexicon, variants=3, seed=1)
    assert out
    parents = {r["id"]: r for r in rows}
    for child in out:
        parent = parents[child["provenance"]["parent_id"]]
        step = child["provenance"]["augmentation"][-1]
        assert step["augmenter"] == AUGMENTER
        subs = json.loads(step["detail"])["substitutions"]
        assert subs
        # Replaying the recorded substitutions on the parent gives exactly the child.
        for field in ("instruction", "input", "output"):
            text, shift = parent[field], 0
            for s in sorted((s for s in subs if s["field"] == field), key=lambda s: s["start"]):
                start = s["start"] + shift
                assert text[start : start + len(s["from"])] == s["from"]
                text = text[:start] + s["to"] + text[start + len(s["from"]) :]
                shift += len(s["to"]) - len(s["from"])
            assert text == child[field]
        assert child["id"] != parent["id"]
        assert child["label"] == parent["label"]


def test_n_distinct_variants_per_sample(samples, core_lexicon):
    out = paraphrase_rows(_rows(samples), core_lexicon, variants=3, seed=0)
    by_parent = Counter(r["provenance"]["parent_id"] for r in out)
    assert set(by_parent.values()) == {3}
    assert len({r["id"] for r in out}) == len(out)


def test_colloquial_question_becomes_clinical(samples, core_lexicon):
    out = paraphrase_rows(_rows(samples[:1]), core_lexicon, variants=4, seed=3, direction="to_clinical")
    assert any("胸痛" in r["instruction"] or "胸骨后压榨感" in r["instruction"] for r in out)
    assert all("30分钟" in r["instruction"] and "ST段" in r["instruction"] for r in out)


def test_seed_reproduces_and_changes(samples, core_lexicon):
    rows = _rows(samples)
    a = [r["id"] for r in paraphrase_rows(rows, core_lexicon, variants=3, seed=7)]
    b = [r["id"] for r in paraphrase_rows(rows, core_lexicon, variants=3, seed=7)]
    c = [r["id"] for r in paraphrase_rows(rows, core_lexicon, variants=3, seed=8)]
    assert a == b
    assert a != c


def test_batch_boundaries_do_not_change_results(samples, core_lexicon):
    rows = _rows(samples)
    whole = [r["id"] for r in paraphrase_rows(rows, core_lexicon, seed=5)]
    split = [r["id"] for part in (rows[2:], rows[:2]) for r in paraphrase_rows(part, core_lexicon, seed=5)]
    assert sorted(whole) == sorted(split)


def test_derived_rows_are_valid_samples(samples, core_lexicon):
    from medaug.schema import rows_to_table

    out = table_to_samples(rows_to_table(paraphrase_rows(_rows(samples), core_lexicon, seed=2)))
    assert all(s.provenance.parent_id for s in out)
    assert all(s.provenance.created_at is not None for s in out)
