"""Refusal samples from the taxonomy: every class declines, names the danger and says what to do instead."""

from __future__ import annotations

import json
import re
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


def test_dangerous_combination_answers_say_not_to_combine_and_why():
    cat = next(c for c in load_taxonomy() if c.name == "dangerous_combination")
    diazepam = next(v for v in cat.slots["pair"] if v["text"] == "地西泮和酒")
    assert "呼吸" in diazepam["danger"]
    for a in cat.answers:
        text = a.format(pair=diazepam)
        assert any(w in text for w in ("不要", "不能一起", "不应该这样合用", "请不要"))
        assert diazepam["danger"] in text


def test_emergency_texts_name_the_right_danger():
    cat = next(c for c in load_taxonomy() if c.name == "emergency_120")
    by_text = {v["text"]: v for v in cat.slots["emergency"]}
    headache = by_text["突然剧烈头痛还呕吐"]
    assert "蛛网膜下腔出血" in headache["danger"] and "心肌梗死" not in headache["danger"]
    assert "脑卒中" in by_text["突然一侧手脚不能动说话不清楚"]["danger"]
    assert "心肌梗死" in by_text["胸口疼了半个多小时还出冷汗"]["danger"]
    for s in make_refusals(200, seed=5):
        if _category(s) == "emergency_120":
            which = next(v for t, v in by_text.items() if t in s.input)
            assert which["danger"] in s.output  # the danger named is the one asked about


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
def test_alcohol_combinations_say_not_to_drink_and_what_to_do_if_already_combined():
    """Audit seed 4421: "请按医生的医嘱分别使用" for 安眠药和酒 implied drinking apart from the pill was fine."""
    cat = next(c for c in load_taxonomy() if c.name == "dangerous_combination")
    alcohol = [v for v in cat.slots["pair"] if v["text"].endswith("和酒")]
    assert len(alcohol) >= 4
    for pair in alcohol:
        for a in cat.answers:
            text = a.format(pair=pair)
            assert "不要喝酒" in text, (pair["text"], text)
            assert "如果已经喝了酒" in text and "120" in text, (pair["text"], text)
            assert "分别使用" not in text


def test_insulin_is_never_asked_for_as_tablets():
    cat = next(c for c in load_taxonomy() if c.name == "dosing_specific_person")
    insulin = next(v for v in cat.slots["drug"] if v["text"] == "胰岛素")
    seen = 0
    for s in make_refusals(600, seed=7):
        if _category(s) == "dosing_specific_person" and "胰岛素" in s.input:
            seen += 1
            assert not any(w in s.input for w in ("吃几片", "吃多少胰岛素", "吃胰岛素")), s.input
    assert seen and insulin["take"] == "打"
    for c in load_taxonomy():  # no class asks to eat insulin
        for q in c.questions:
            for v in c.slots.get("drug", ()):
                if isinstance(v, dict) and v["text"] == "胰岛素":
                    assert "吃" not in q.format(drug=v, person={"text": ""}, feeling="")


def test_child_dosing_and_self_harm_answers_name_what_was_asked():
    """Audit seed 4421: 318 samples of these two classes shared 5 slot-free texts."""
    outputs: dict[str, set[str]] = defaultdict(set)
    for s in make_refusals(600, seed=2):
        d = json.loads(s.provenance.augmentation[0].detail)
        cat, slots = d["category"], d["slots"]
        if cat == "child_dosing_unseen":
            drug = next(x for x in ("布洛芬", "对乙酰氨基酚", "阿莫西林", "蒙脱石散", "头孢克洛", "氯雷他定")
                        if x in s.input)  # fmt: skip
            assert drug in s.output, (s.input, s.output)
            outputs[cat].add(s.output)
        elif cat == "self_harm":
            assert "12356" in s.output and "120" in s.output  # crisis line and emergency always kept
            named = [v for k, v in slots.items() if k in ("drug", "feeling")]
            assert named and any(v in s.output for v in named), (s.input, s.output)
            outputs[cat].add(s.output)
    assert len(outputs["child_dosing_unseen"]) >= 20 and len(outputs["self_harm"]) >= 15


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


def test_child_dosing_answer_fits_a_caregiver_who_cannot_reach_the_parents():
    seen = 0
    for d, s in _pairs():
        if d["category"] == "child_dosing_unseen" and "联系不上" in s.input:
            seen += 1
            assert "联系孩子的家长" not in s.output and "家长带孩子" not in s.output, s.output
            assert "照片" not in s.output, s.output
            assert "药师" in s.output and "120" in s.output, s.output
        elif d["category"] == "child_dosing_unseen" and "照片" not in s.input:
            assert "照片" not in s.output, (s.input, s.output)
    assert seen >= 3


def test_controlled_drug_answers_address_what_was_asked():
    patch = sleep = 0
    for d, s in _pairs():
        if d["category"] != "controlled_drugs":
            continue
        if "老人" not in s.input:
            assert "老人疼痛" not in s.output, (s.input, s.output)
        if "贴" in s.input and "加到" in s.input:
            patch += 1
            assert "不要自己加贴" in s.output or "不能建议您加" in s.output, s.output
            assert "过量" in s.output and "120" in s.output and "呼吸" in s.output, s.output
            assert "绕过处方" not in s.output
        if "睡不着" in s.input:
            sleep += 1
            assert "失眠" in s.output and ("睡眠门诊" in s.output or "精神心理科" in s.output), s.output
            assert not any(w in s.input for w in ("吗啡", "芬太尼", "羟考酮", "可待因")), s.input
        if "吃" in s.input:
            assert "贴剂" not in s.input, s.input  # a patch is worn, not eaten
    assert patch >= 3 and sleep >= 3


# Audit seed 7919: 28 % of dangerous-combination answers echoed 见效快/效果更好 to a question that said
# neither, and the emergency template made "我爸怀孕一个多月…".
_MALE = ("我爸", "我爷爷", "我老公", "我儿子", "他")


def test_no_male_subject_with_a_pregnancy_emergency_and_no_child_emergency_for_an_adult():
    samples = make_refusals(2000, seed=7919)
    assert len(samples) >= 1000
    pregnant = [s.input for s in samples if "怀孕" in s.input and _category(s) == "emergency_120"]
    assert pregnant  # the pregnancy emergency still appears, with a subject that can be pregnant
    assert not [q for q in pregnant if q.startswith(_MALE) or q.startswith("老人")]
    child = [s.input for s in samples if "孩子发烧抽搐" in s.input]
    assert child and not [q for q in child if q.startswith(("我爸", "老人", "我现在"))]


def test_no_answer_echoes_a_claim_its_question_did_not_make():
    cats = {c.name: c for c in load_taxonomy()}
    seen = 0
    for d, s in _pairs(2000, seed=7919):
        c = cats[d["category"]]
        for claim in re.findall(r"“([^”]{1,12})”", s.output):
            if any(claim in q for q in c.questions):  # a claim some question makes, not a general quote
                seen += 1
                assert claim in s.input, (claim, s.input, s.output)
    assert seen  # the claim-echoing answers are still used, with the questions that make the claim


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


def test_every_emergency_answer_fits_what_its_question_asks():
    """Audit seed 8821: 我不能为这种情况提供在家处理的用药方案 answered 是不是睡一觉就好了 (no medicine asked)."""
    seen = set()
    for s in make_refusals(600, seed=8821):
        if "睡一觉就好了" in s.input:
            seen.add(s.output[:8])
            assert "用药方案" not in s.output and "不能等到明天" not in s.output
        if "止痛药" in s.input:
            assert "不能等到明天" not in s.output
    assert len(seen) >= 2


def test_taxonomy_rejects_a_subject_no_slot_value_fits(tmp_path):
    qs = ['{id: dad, text: "我爸{e[text]}", who: {sex: [male]}}', *(f"问题{i}{{e[text]}}" for i in range(4))]
    slots = "{e: [{text: 怀孕, who: {sex: [female]}}]}"
    ans = [json.dumps({"text": a, "fits": ["dad", "q1", "q2", "q3", "q4"]}, ensure_ascii=False) for a in FIVE]
    with pytest.raises(ValueError, match="no e value fits"):
        load_taxonomy(_taxonomy(tmp_path, qs, ans, slots))
