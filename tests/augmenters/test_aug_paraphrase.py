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
    assert len(by_parent) == 3 and max(by_parent.values()) == 3  # at most 3, fewer when few wordings match
    assert len({r["id"] for r in out}) == len(out)


def test_colloquial_question_becomes_clinical(samples, core_lexicon):
    out = paraphrase_rows(_rows(samples[:1]), core_lexicon, variants=4, seed=3, direction="to_clinical")
    assert any("胸痛" in r["instruction"] for r in out)
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


def _row(instruction: str, output: str = "注意休息。", area=None):
    from medaug.schema import Area, Sample

    s = Sample(instruction=instruction, output=output, area=area or Area.general)
    return samples_to_table([s]).to_pylist()[0]


def _subs(rows):
    return [
        (s["from"], s["to"])
        for r in rows
        for s in json.loads(r["provenance"]["augmentation"][-1]["detail"])["substitutions"]
    ]


def test_a_match_that_cuts_a_word_is_no_match(core_lexicon):
    from augmenters.paraphrase import find_matches

    skipped = Counter()
    assert not find_matches("拉粑粑都很困难", core_lexicon, "to_clinical", skipped)
    assert not find_matches("结合放化疗", core_lexicon, "to_colloquial", skipped)
    assert not find_matches("多饮温开水", core_lexicon, "to_colloquial", skipped)
    # 伴发烧心: 发烧 and 烧心 cross, so the boundary is ambiguous and neither is rewritten.
    assert not find_matches("伴发烧心的感觉", core_lexicon, "to_clinical", skipped)
    assert [m.key for m in find_matches("有点拉肚子了", core_lexicon, "to_clinical", skipped)] == ["拉肚子"]


def test_only_exact_mappings_rewrite_outside_their_context(core_lexicon):
    from augmenters.paraphrase import find_matches

    general = find_matches("胸口疼两天", core_lexicon, "to_clinical", Counter(), "general")
    assert general[0].candidates == ("胸痛",)
    pressure = "胸口疼，像被石头压着一样"
    cardio = find_matches(pressure, core_lexicon, "to_clinical", Counter(), "cardiovascular")
    assert set(cardio[0].candidates) == {"胸痛", "胸骨后压榨感"}
    # related wordings (没精神 may be 疲乏 or 精神萎靡) never rewrite running text
    assert not find_matches("孩子没精神", core_lexicon, "to_clinical", Counter())


def test_specificity_change_is_recorded(core_lexicon):
    from medaug.schema import Area

    row = _row("胸口疼，像被石头压着一样，出冷汗", area=Area.cardiovascular)
    out = paraphrase_rows([row], core_lexicon, variants=6, seed=0, direction="to_clinical")
    narrowed = [r for r in out if "胸骨后压榨感" in r["instruction"]]
    assert narrowed
    detail = json.loads(narrowed[0]["provenance"]["augmentation"][-1]["detail"])
    assert detail["specificity_changed"][0]["relation"] == "narrower"
    assert all("specificity_changed" not in json.loads(r["provenance"]["augmentation"][-1]["detail"])
               for r in out if "胸骨后压榨感" not in r["instruction"])  # fmt: skip


def test_never_symptom_to_diagnosis_nor_diagnosis_softened(core_lexicon):
    rows = [_row("确诊高血压三年，心情低落，做什么事情都没意思，脸色发黄")]
    subs = _subs(paraphrase_rows(rows, core_lexicon, variants=5, seed=1, direction="both"))
    assert ("高血压", "血压偏高") not in subs and ("高血压", "血压高") not in subs
    assert all(to not in ("抑郁症", "抑郁状态", "黄疸") for _, to in subs)


def test_scope_and_modifiers_survive(core_lexicon):
    from medaug.facts import fact_changes

    rows = [_row("不是一直咳嗽，下午开始有点咳嗽，流清鼻涕，左侧胸口疼，没有发烧")]
    out = paraphrase_rows(rows, core_lexicon, variants=5, seed=2, direction="both")
    assert out
    for r in out:
        assert fact_changes(rows[0]["instruction"], r["instruction"]) == []
        assert "不是一直" in r["instruction"] and "左侧" in r["instruction"]


def test_fact_change_rejects_with_both_fact_sets(core_lexicon):
    from medaug.lexicon import Lexicon, LexiconEntry

    # A deliberately bad lexicon: 发热 'exact' to a wording that is really a different symptom.
    bad = Lexicon(
        [LexiconEntry("发热", ("咳嗽",), relation="exact", kind="symptom", direction="to_colloquial")]
    )
    rows = [_row("患者有发热两天")]
    stats, rejects = Counter(), []
    out = paraphrase_rows(
        rows, bad, variants=1, seed=0, direction="to_colloquial", stats=stats, rejects=rejects
    )
    assert not out
    (pid, reason, detail) = rejects[0]
    assert pid == rows[0]["id"]
    assert reason.startswith("lexicon_paraphrase:fact_changed:symptom_")
    d = json.loads(detail)
    assert d["facts_before"]["instruction"] and d["facts_after"]["instruction"]
    assert {c["code"] for c in d["changes"]} >= {"symptom_lost"}
    assert stats[f"paraphrase_rejected_{reason.rsplit(':', 1)[1]}"] == 1


def test_rewrites_that_garble_the_sentence_are_skipped(core_lexicon):
    from augmenters.paraphrase import find_matches

    def kept(text: str, direction: str = "to_clinical") -> tuple[list[str], Counter]:
        skipped: Counter = Counter()
        return [m.key for m in find_matches(text, core_lexicon, direction, skipped)], skipped

    cases = {
        "这半年人变得好胖了": "degree_adverb",  # 好体重增加
        "他吃啥都没胃口": "degree_adverb",  # 都食欲不振
        "一个月人都瘦了两圈": "degree_adverb",
        "她的牙齿和鼻子出血": "coordination",  # 牙齿和鼻出血: the shared head is lost
        "整天浑身没劲儿": "word_boundary",  # 乏力儿
        "少吃油炸和不消化和生冷食物": "food_attribute",  # an attribute of food, not a symptom
        "最近腹部胀气": "site",  # 腹部腹胀
        "胃发烧好几天": "site",  # a burning stomach, not a fever
        "两周来上腹部隐隐作痛，总是觉得很乏力": None,
        "想把体重减轻到六十公斤": "clause_wording",
        "这周一点儿没胃口": "degree_adverb",  # "no appetite at all", not a mild anorexia
        "这类食品里含胆固醇高，少碰": "clause_wording",
    }
    for text, reason in cases.items():
        if reason is None:
            continue
        keys, skipped = kept(text)
        assert not keys and skipped[reason] >= 1, (text, keys, dict(skipped))
    # Into lay wording a site-led wording takes no degree adverb: 很乏力 → 很全身无力 is not offered.
    for m in find_matches(
        next(t for t, r in cases.items() if r is None), core_lexicon, "to_colloquial", Counter()
    ):
        assert m.key != "乏力" or not any(c.startswith(("全身", "浑身", "身上")) for c in m.candidates)
    # 多囊 is PCOS, 多囊肝 or 多囊肾: never rewritten, and 多囊肝 is a disease of its own.
    assert not kept("她查出多囊肝和多囊肾")[0] and not kept("多囊，月经不规律")[0] == ["多囊"]
    # Into lay wording a frequency-led wording after a frequency or degree word would stutter.
    assert not any(c.startswith(("总", "老")) for m in find_matches("总是尿频", core_lexicon, "to_colloquial", Counter())
                   for c in m.candidates)  # fmt: skip
    # The same wordings where the sentence takes a clinical noun are still rewritten.
    assert kept("最近胀气，还没胃口")[0] == ["胀气", "没胃口"]
    # Into lay wording: no verb-headed wording after a verb, no site word after a bare 不.
    on_skin = find_matches("宝宝身上有皮疹", core_lexicon, "to_colloquial", Counter())
    assert [c for m in on_skin for c in m.candidates] == ["疹子"]  # 有疹子, never 有起疹子
    after_not = find_matches("胃胀，打嗝，不反酸", core_lexicon, "to_colloquial", Counter())
    assert all(not c.startswith("胃") for m in after_not for c in m.candidates)  # not 不胃里冒酸
    assert any(c.startswith("胃") for m in find_matches("胃胀，反酸", core_lexicon, "to_colloquial", Counter())
               for c in m.candidates)  # fmt: skip


def test_the_doctors_answer_is_never_made_colloquial(core_lexicon):
    row = _row("医生您好，我最近腹痛，还腹泻")
    row["output"] = "考虑急性胃肠炎，若腹痛加重或出现腹泻、呕吐，请及时就诊。"
    out = paraphrase_rows([row], core_lexicon, variants=4, seed=3, direction="to_colloquial")
    assert out and all(r["output"] == row["output"] for r in out)
    assert any(r["instruction"] != row["instruction"] for r in out)
    # Into clinical wording the answer may still be normalised.
    row["output"] = "拉肚子的话多喝水。"
    out = paraphrase_rows([row], core_lexicon, variants=2, seed=3, direction="to_clinical")
    assert any("腹泻" in r["output"] for r in out)
