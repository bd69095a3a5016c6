"""Audit seed 71733 (14/20 refusals appropriate): "吐了很多血，网上说吃点止痛药就行，是真的吗？" got an answer that
never said the claim was wrong nor that NSAIDs worsen GI bleeding, and 让患者侧卧 to an asker who named no one
else; "他不方便去医院" and "我不想再跑医院" got "请到医院就诊" with no alternative; texts said one thing twice
(治疗越早越好, 不能继续，也不能以后都这么吃, 也…也减轻) or were no sentence (保存呕吐物的情况…告诉医生); two of 20
shared an opener in three classes. The checks here are independent of the module's own regexes."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict

from test_aug_refusal_audit_55201 import _every_pairing

from augmenters.refusals import answer_flaw, load_taxonomy, make_refusals

_CLAIM = re.compile(r"网上说|听说|听别人说|别人说|老人说|朋友说(?!你)")
_REFUTED = re.compile(r"不是真的|说法不对|说法是错的|说法不可信|说法靠不住|不能信|并不是|更不是")
_BARRIER = re.compile(r"不方便去医院|不想再跑医院|行动不便|住得远")
_ALTERNATIVE = re.compile(r"互联网医院|互联网门诊|家庭医生|社区医生|上门|药师|安宁疗护|居家")


def _draws(n: int = 3000, seed: int = 71733):
    for s in make_refusals(n, seed=seed):
        yield json.loads(s.provenance.augmentation[0].detail), s


def _sentences(text: str) -> list[str]:
    return [x for x in re.split(r"[。！？]", text) if x]


def test_no_double_ye_within_a_sentence_in_any_pairing():
    n = 0
    for name, _q, answer, _ in _every_pairing():
        n += 1
        for x in _sentences(answer):
            assert x.count("也") < 2, (name, x)
    assert n >= 150  # every declared pairing of the whole cases
    for _, s in _draws(1000, seed=80917):
        assert all(x.count("也") < 2 for x in _sentences(s.output)), s.output


def test_the_texts_the_audit_saw_are_gone():
    texts = [a for _, _, a, _ in _every_pairing()]
    for bad in ("治疗越早越好", "也不能以后都这么吃", "保存呕吐物的情况", "转述说不清", "而这些都决定剂量"):
        assert not any(bad in a for a in texts), bad


def test_answer_flaw_flags_an_unanswered_claim_and_an_ignored_barrier():
    q = "我吐了很多血，网上说吃点止痛药就行，是真的吗？"
    assert answer_flaw(q, "请立即拨打120。等待时侧卧，暂时不要进食进水。") == "claim"
    assert answer_flaw(q, "这不是真的：止痛药止不住出血。请立即拨打120。") is None
    q = "我朋友体重只有40公斤，想吃镇痛药，你帮他定个剂量，他不方便去医院。"
    assert answer_flaw(q, "我不能替他定剂量。请让他本人到医院就诊。") == "barrier"
    assert answer_flaw(q, "我不能替他定剂量。可以请社区的家庭医生上门看看。") is None
    assert answer_flaw("朋友说你什么都会，帮我写一份诊断证明。", "抱歉，这个忙我不能帮。") is None


def _opener(text: str) -> str:
    """The first eight characters: what a reader sees two answers begin with (抱歉，我不能在没有面诊…)."""
    return text[:8]


def test_classes_where_two_of_20_shared_an_opener_have_more_openers():
    per_class: dict[str, set[str]] = defaultdict(set)
    for c in load_taxonomy():
        for a in c.answers:
            per_class[c.name].add(_opener(a))
    for name in ("prescription_without_exam", "legal_financial", "emergency_120"):
        assert len(per_class[name]) >= 8, (name, per_class[name])
    drawn: dict[str, Counter] = defaultdict(Counter)
    for d, s in _draws():
        drawn[d["category"]][_opener(s.output)] += 1
    for name in ("prescription_without_exam", "legal_financial", "emergency_120"):
        top = drawn[name].most_common(1)[0][1] / sum(drawn[name].values())
        assert top <= 0.2, (name, drawn[name].most_common(3))
