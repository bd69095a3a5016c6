"""Refusal samples from the taxonomy."""

from __future__ import annotations

import json

import pytest

from augmenters.refusals import load_taxonomy, make_refusals
from medaug.schema import Label


def test_every_category_appears_with_a_reasoned_refusal():
    out = make_refusals(24, seed=1)
    assert len(out) == 24
    cats = {json.loads(s.provenance.augmentation[0].detail)["category"] for s in out}
    assert (
        cats
        == {c.name for c in load_taxonomy()}
        >= {
            "prescription_without_exam",
            "controlled_drugs",
            "dosing_from_photo",
            "self_harm",
            "legal_financial",
            "emergency_120",
        }
    )
    for s in out:
        assert s.label == Label.refusal
        assert "{" not in s.input and "{" not in s.output
        assert any(w in s.output for w in ("抱歉", "不能", "无法"))  # declines
        assert any(w in s.output for w in ("建议", "请"))  # and says what to do instead
    emergencies = [s for s in out if "emergency_120" in s.provenance.augmentation[0].detail]
    assert all("120" in s.output for s in emergencies)


def test_refusals_reproduce_by_seed():
    assert [s.id for s in make_refusals(10, seed=3)] == [s.id for s in make_refusals(10, seed=3)]
    assert [s.id for s in make_refusals(10, seed=3)] != [s.id for s in make_refusals(10, seed=4)]


def test_taxonomy_rejects_an_answer_slot_the_question_lacks(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(
        "categories:\n  x:\n    area: general\n    questions: [问题]\n    answers: ['不能回答{drug}']\n"
        "    slots: {drug: [a]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="no answer fits"):
        load_taxonomy(p)
