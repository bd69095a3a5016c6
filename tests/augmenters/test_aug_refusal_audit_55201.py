"""Audit seed 55201 (16/20 refusals appropriate): the answer's person disagreed with the question's (我刚做完手术 →
"这位具体的患者", "请联系患者的主治医生"), a template joint said a clause twice (按孩子的实际体重 … 按孩子的实际体重),
a red flag was told twice, a codeine stockpiling request got an answer about bypassing a prescription and sleep,
a warfarin question about 好几种药 got nothing on interactions, and two of 20 shared one body."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

import augmenters.refusals as refusals
from augmenters.refusals import load_taxonomy, make_refusals, person_of, repetition


def _draws(n: int = 3000, seed: int = 55201):
    for s in make_refusals(n, seed=seed):
        yield json.loads(s.provenance.augmentation[0].detail), s


@pytest.mark.parametrize(
    "question, first, who",
    [
        ("不用检查，我刚做完手术在家休养，镇痛药你按我的情况算个准确剂量给我。", True, "您"),
        ("不用检查，我体重只有40公斤，胰岛素你按我的情况算个准确剂量给我。", True, "您"),
        ("我妈肝功能不好，华法林你直接告诉我该吃几片就行，不用去医院了。", False, "您母亲"),
        ("我家老人平时还吃着好几种药，华法林这几天我想给他自己调一下剂量，加多少合适？", False, "老人"),
        ("我邻居体重只有40公斤，托我问问地高辛该吃几片，你直接告诉我，我转告他。", False, "您的邻居"),
        ("朋友发来她两岁的宝宝发烧的照片，麻烦按照片估一下体重。", False, "孩子"),
        ("朋友说地西泮和酒合用更管用，我想试试，剂量怎么配？", True, "您"),
        ("我爸突然晕倒叫不醒，我们想先在家观察一晚上，吃点什么药能扛过去？", False, "您父亲"),
        ("家里人突然剧烈头痛还呕吐，你直接告诉我在家怎么处理就行，不想去医院。", False, "您的家人"),
        ("突然剧烈头痛还呕吐，网上说吃点止痛药就行，是真的吗？", None, "患者"),
        ("我现在胸口疼了半个多小时还出冷汗，能不能先吃点药等明天再去门诊？", True, "您"),
    ],
)
def test_person_of_reads_who_the_question_is_about(question, first, who):
    p = person_of(question)
    assert (p.first, p.who) == (first, who)


_THIRD = re.compile(r"患者|病人|这位|替他|他本人|她本人")


def _said_twice(text: str, names: list[str]) -> str | None:
    """Independent of the module: a clause of 4+ characters twice, or 6 characters twice (not in a name)."""
    clauses = [c for c in re.split(r"[，。；：、？！（）“”]", text) if len(c) >= 4]
    if dup := [c for c, k in Counter(clauses).items() if k > 1]:
        return dup[0]
    for i in range(len(text) - 5):
        run = text[i : i + 6]
        if re.search(r"[，。；：、？！（）“”]", run) or any(run in n for n in names):
            continue
        if text.find(run, i + 6) >= 0:
            return run
    return None


def test_repetition_catches_what_the_audit_saw():
    r13 = (
        "这个剂量我不能提供。儿童剂量错误是常见的用药事故，对乙酰氨基酚也需要按孩子的实际体重并核对药品规格来算："
        "对乙酰氨基酚要按孩子的实际体重计算，滴剂和混悬液浓度不同。"
    )
    assert (found := repetition(r13, ("对乙酰氨基酚",))) and found in "要按孩子的实际体重"
    r11 = (
        "氯雷他定糖浆按年龄和体重分档给量，起疹子同时嘴唇肿或呼吸困难要立即就医。建议请孩子的家长带孩子就诊；"
        "如孩子出现精神差、持续高热、抽搐或呼吸困难，请立即就医。"
    )
    assert repetition(r11) == "呼吸困难"
    assert repetition("不能给出对乙酰氨基酚的用量。对乙酰氨基酚过量可引起肝损伤。", ("对乙酰氨基酚",)) is None
    assert repetition("请立即就医。请立即就医。") == "请立即就医"


def test_generation_redraws_a_failing_answer_and_counts_it(tmp_path, monkeypatch):
    qs = [{"id": f"q{i}", "text": f"我头疼{i}天了，{{drug}}吃多少？"} for i in range(5)]
    ans = [{"text": "请联系患者的主治医生，不要自己吃{drug}。", "fits": [q["id"] for q in qs]}]
    ans += [
        {"text": f"抱歉，{{drug}}的用量我不能定{i}，请就医。", "fits": [q["id"] for q in qs]}
        for i in range(5)
    ]
    p = tmp_path / "t.yaml"
    p.write_text(
        json.dumps({"categories": {"x": {"area": "general", "questions": qs, "answers": ans,
                                         "slots": {"drug": ["布洛芬"]}}}}, ensure_ascii=False),
        encoding="utf-8",
    )  # fmt: skip
    cats = load_taxonomy(p)
    monkeypatch.setattr(refusals, "load_taxonomy", lambda: cats)
    dropped: Counter = Counter()
    out = make_refusals(25, seed=1, dropped=dropped)
    assert out and not any("患者" in s.output for s in out)
    assert dropped["x:person"] > 0 and set(dropped) == {"x:person"}


def _every_pairing():
    """Every (question, answer, slot values, wording) the generator can pair, rendered as it renders them."""
    from itertools import product

    from augmenters.refusals import _names, _placeholders, _with_patient

    for cat in load_taxonomy():
        for qi, q in enumerate(cat.questions):
            used = sorted(_placeholders(q))
            pools = []
            for k in used:
                pool = []
                for v in cat.values_for(qi, k):
                    if not isinstance(v, dict):
                        pool.append(v)
                        continue
                    alts = [[(f, a) for a in (x if isinstance(x, list) else [x])] for f, x in v.items()]
                    pool += [dict(c) for c in product(*alts)]
                pools.append(pool)
            for combo in product(*pools):
                values = dict(zip(used, combo, strict=True))
                question = q.format(**values)
                patient = person_of(question).slot()
                filled = {k: _with_patient(v, patient) for k, v in values.items()}
                for ai in cat.fitting(qi):
                    yield (
                        cat.name,
                        question,
                        cat.answers[ai].format(**filled, patient=patient),
                        _names(values),
                    )


def test_every_pairing_the_taxonomy_can_make_passes_the_check():
    """The check is a guard: the shipped texts never need a re-draw (every pairing enumerated)."""
    from augmenters.refusals import answer_flaw

    n = 0
    for name, question, answer, names in _every_pairing():
        n += 1
        assert answer_flaw(question, answer, names) is None, (
            name,
            answer_flaw(question, answer, names),
            answer,
        )
    assert n >= 150  # every declared pairing of the whole cases
