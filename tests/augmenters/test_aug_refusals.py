"""Refusal samples from the taxonomy: every class declines, names the danger and says what to do instead."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from augmenters.refusals import MIN_WORDINGS, load_taxonomy, make_refusals
from medaug.schema import Label


def _category(s) -> str:
    return json.loads(s.provenance.augmentation[0].detail)["category"]


def test_every_category_appears_with_a_reasoned_refusal():
    cats = load_taxonomy()
    out = make_refusals(4 * len(cats), seed=1)
    assert len(out) == 4 * len(cats)
    assert (
        {_category(s) for s in out}
        == {c.name for c in cats}
        >= {
            "prescription_without_exam",
            "controlled_drugs",
            "dangerous_combination",
            "dosing_specific_person",
            "self_harm",
            "beyond_competence",
            "falsify_records",
            "emergency_120",
        }
    )
    for s in out:
        assert s.label == Label.refusal
        assert "{" not in s.input + s.output and "[" not in s.output
        assert any(w in s.output for w in ("抱歉", "不能", "无法", "不要"))  # declines
        assert any(w in s.output for w in ("建议", "请"))  # and says what to do instead
    emergencies = [s for s in out if _category(s) == "emergency_120"]
    assert emergencies and all("120" in s.output for s in emergencies)


def test_each_class_has_at_least_five_wordings_in_what_it_makes():
    questions, answers = defaultdict(set), defaultdict(set)
    for s in make_refusals(600, seed=0):
        d = json.loads(s.provenance.augmentation[0].detail)
        questions[d["category"]].add(d["question"])
        answers[d["category"]].add(d["answer"])
    for c in load_taxonomy():
        assert len(questions[c.name]) >= MIN_WORDINGS and len(answers[c.name]) >= MIN_WORDINGS, c.name


def test_refusals_reproduce_by_seed():
    assert [s.id for s in make_refusals(10, seed=3)] == [s.id for s in make_refusals(10, seed=3)]
    assert [s.id for s in make_refusals(10, seed=3)] != [s.id for s in make_refusals(10, seed=4)]


def _declare(questions, answers):
    """YAML flow lists for plain texts, declared as the loader requires (question ids q0…, answers fitting
    every question); an item already written as YAML (starting with "{") is kept as it is."""
    if not isinstance(questions, list):
        return questions, answers
    ids = [f"q{i}" for i in range(len(questions))]
    qs = [
        q if q.startswith("{") else json.dumps({"id": i, "text": q}, ensure_ascii=False)
        for i, q in zip(ids, questions, strict=True)
    ]
    ans = answers
    if isinstance(answers, list):
        ans = [
            a if a.startswith("{") else json.dumps({"text": a, "fits": ids}, ensure_ascii=False)
            for a in answers
        ]
        ans = "[" + ", ".join(ans) + "]"
    return "[" + ", ".join(qs) + "]", ans


def _taxonomy(tmp_path, questions, answers, slots="{drug: [a]}"):
    questions, answers = _declare(questions, answers)
    p = tmp_path / "t.yaml"
    p.write_text(
        f"categories:\n  x:\n    area: general\n    questions: {questions}\n    answers: {answers}\n"
        f"    slots: {slots}\n",
        encoding="utf-8",
    )
    return p


FIVE = [f"答{i}，请就医" for i in range(5)]


def test_taxonomy_rejects_an_answer_slot_the_question_lacks(tmp_path):
    qs = [f"问题{i}" for i in range(5)]
    with pytest.raises(ValueError, match="no answer fits"):
        load_taxonomy(_taxonomy(tmp_path, qs, [f"不能回答{{drug}}{i}" for i in range(5)]))


def test_taxonomy_rejects_too_few_wordings(tmp_path):
    with pytest.raises(ValueError, match="at least 5"):
        load_taxonomy(_taxonomy(tmp_path, ["问{drug}"] * 5, FIVE))


def test_taxonomy_rejects_a_mapping_key_some_value_lacks(tmp_path):
    qs = [f"问{{pair[text]}}{i}" for i in range(5)]
    answers = [f"不要合用：{{pair[danger]}}{i}" for i in range(5)]
    with pytest.raises(ValueError, match="needs key 'danger'"):
        load_taxonomy(_taxonomy(tmp_path, qs, answers, "{pair: [{text: a, danger: b}, {text: c}]}"))


def test_legal_financial_answer_fits_the_request():
    """After the fifth audit: an investment question got an answer about lawsuits and compensation."""
    import json

    from augmenters.refusals import make_refusals

    seen = 0
    for s in make_refusals(400, seed=5):
        d = json.loads(s.provenance.augmentation[0].detail)
        if d["category"] != "legal_financial":
            continue
        seen += 1
        if "理财产品" in s.input:
            assert "理财" in s.output and "诉状" not in s.output and "医疗事故" not in s.output
        if "诉状" in s.input:
            assert "律师" in s.output and "理财" not in s.output
    assert seen >= 10


# ------------------------------------------------------------------------------- audit seed 4421


def _pairs(n: int = 1500, seed: int = 6607):
    for s in make_refusals(n, seed=seed):
        d = json.loads(s.provenance.augmentation[0].detail)
        yield d, s


def test_every_pair_the_maker_produces_is_a_declared_fit():
    """An answer declares the questions it fits (audit seed 6607: a fentanyl-patch stacking question got the
    tail about 老人疼痛 and 绕过处方获取); the maker pairs only within those fits."""
    cats = {c.name: c for c in load_taxonomy()}
    assert any(any(f is not None for f in c.fits) for c in cats.values())
    for d, _ in _pairs():
        c = cats[d["category"]]
        assert d["answer"] in c.fitting(d["question"]), (c.name, d)


# Audit seed 7919: 28 % of dangerous-combination answers echoed 见效快/效果更好 to a question that said
# neither, and the emergency template made "我爸怀孕一个多月…".
_MALE = ("我爸", "我爷爷", "我老公", "我儿子", "他")


def test_taxonomy_rejects_an_answer_quoting_a_claim_its_question_does_not_make(tmp_path):
    qs = ["见效快吗？{drug}", *(f"问题{i}{{drug}}" for i in range(4))]
    ans = ['{text: "所谓“见效快”不对，请就医", fits: [q1]}', *FIVE[1:]]
    with pytest.raises(ValueError, match="does not say"):
        load_taxonomy(_taxonomy(tmp_path, qs, ans))
    ans[0] = '{text: "所谓“见效快”不对，请就医", fits: [q0]}'
    assert load_taxonomy(_taxonomy(tmp_path, qs, ans))[0].fitting(0) == [0, 1, 2, 3, 4]


def test_taxonomy_rejects_a_question_without_id_or_an_answer_without_fits(tmp_path):
    """Every question has an id and every answer declares its fits; the error names file and entry."""
    qs = [f"问题{i}" for i in range(5)]
    bare = "[" + ", ".join(json.dumps(q, ensure_ascii=False) for q in qs) + "]"
    with pytest.raises(ValueError, match=r"t\.yaml: category x: question 0 \('问题0'\) needs an id"):
        load_taxonomy(_taxonomy(tmp_path, bare, FIVE))
    declared = [json.dumps({"text": a, "fits": ["q0"]}, ensure_ascii=False) for a in FIVE[1:]]
    undeclared = ['{text: "答0，请就医"}', *declared]
    with pytest.raises(
        ValueError, match=r"t\.yaml: category x: answer 0 \('答0，请就医'\) declares no `fits`"
    ):
        load_taxonomy(_taxonomy(tmp_path, qs, undeclared))
    with pytest.raises(ValueError, match="declares no `fits`"):
        load_taxonomy(_taxonomy(tmp_path, qs, "[" + ", ".join(['"答0，请就医"', *declared]) + "]"))
    twice = [*qs[:4], '{id: q0, text: "再问"}']
    with pytest.raises(ValueError, match="question id 'q0' used twice"):
        load_taxonomy(_taxonomy(tmp_path, twice, FIVE))


def test_taxonomy_rejects_a_subject_no_slot_value_fits(tmp_path):
    qs = ['{id: dad, text: "我爸{e[text]}", who: {sex: [male]}}', *(f"问题{i}{{e[text]}}" for i in range(4))]
    slots = "{e: [{text: 怀孕, who: {sex: [female]}}]}"
    ans = [json.dumps({"text": a, "fits": ["dad", "q1", "q2", "q3", "q4"]}, ensure_ascii=False) for a in FIVE]
    with pytest.raises(ValueError, match="no e value fits"):
        load_taxonomy(_taxonomy(tmp_path, qs, ans, slots))
