"""The shipped refusal taxonomy as whole cases (2026-12-04): every question is written in full and every answer
for exactly that question, so each check below reads every (question, answer) pairing the generator can make —
152 texts, the whole of what a reviewer can be shown. The regexes are the tests' own, not the module's; each
check was a finding of a physician audit (the seed is named) on the assembled templates that came before."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from augmenters.refusals import answer_flaw, load_taxonomy, make_refusals


def _pairings() -> list[tuple[str, str, str]]:
    """(class, question, answer) for every answer declared to fit every question."""
    out = []
    for c in load_taxonomy():
        for qi, q in enumerate(c.questions):
            out += [(c.name, q, c.answers[ai]) for ai in c.fitting(qi)]
    return out


PAIRINGS = _pairings()


def _of(name: str) -> list[tuple[str, str]]:
    return [(q, a) for c, q, a in PAIRINGS if c == name]


def test_the_classes_are_whole_cases_each_with_two_answers_per_question():
    for c in load_taxonomy():
        assert not c.slots, c.name  # no assembly: what is shipped is what is read
        assert len(set(c.questions)) >= 6 and len(set(c.answers)) >= 12, c.name
        for qi in range(len(c.questions)):
            assert len(c.fitting(qi)) >= 2, (c.name, c.questions[qi])
    assert len(PAIRINGS) >= 150


def test_every_pairing_passes_the_generators_own_check_and_needs_no_redraw():
    for name, q, a in PAIRINGS:
        assert answer_flaw(q, a) is None, (name, answer_flaw(q, a), q, a)
    redrawn: Counter = Counter()
    made = make_refusals(400, seed=4, dropped=redrawn)
    assert len(made) == len(PAIRINGS) and not redrawn  # every distinct text once, none re-drawn


def test_every_answer_declines_or_warns_and_says_what_to_do():
    for name, _q, a in PAIRINGS:
        assert re.search(r"抱歉|不能|无法|不要|别", a) and re.search(r"请|建议", a), (name, a)
        assert 60 <= len(a) <= 260, (name, len(a), a)


# ----------------------------------------------------------------------------- person (audit seed 55201)
_OTHER = re.compile(
    r"我(?:妈|爸|母亲|父亲|老公|丈夫|老婆|妻子)|邻居|亲戚|家里人|家人|老人|(?<!男)(?<!女)朋友(?!说|发来)"
)
_CHILD = re.compile(r"孩子|宝宝|婴儿|胎儿")


def test_answers_speak_of_the_person_the_question_is_about():
    first = 0
    for _name, q, a in PAIRINGS:
        if _CHILD.search(q) or _OTHER.search(q):
            assert not re.search(r"[为给]您开[具过]|您的?主治医生|您本人", a), (q, a)
        elif "我" in q:
            first += 1
            assert not re.search(r"患者|病人|这位|[替让给帮为][他她](?!们)|他的|她的", a), (q, a)
    assert first >= 30


# ------------------------------------------------------------- nothing said twice (audits 55201, 71733, 93151)
def test_no_answer_says_a_clause_or_six_characters_twice_or_joins_two_contrasts():
    for name, _q, a in PAIRINGS:
        clauses = [c for c in re.split(r"[，。；：、？！,;:（）()“”\s]+", a) if len(c) >= 4]
        assert len(clauses) == len(set(clauses)), (name, a)
        for sentence in re.split(r"[。；！？]", a):
            assert sentence.count("但") <= 1 and sentence.count("也") <= 1 and sentence.count("而且") <= 1, a
        assert len(re.findall(r"我(?:也)?(?:不能|无法|不便|没法)", a)) <= 1, (name, a)


# ------------------------------------------------------- claims and barriers (audits 71733, 93151)
def test_a_quoted_claim_is_called_wrong():
    seen = Counter()
    for name, q, a in PAIRINGS:
        if re.search(r"网上说|听说|别人说|老人说|(?<!男)朋友说(?!你)|有人说", q):
            seen[name] += 1
            assert re.search(
                r"不是真的|说法不对|说法是错的|不可信|不能信|并不是|更不是|不会更|靠不住|不对", a
            ), (q, a)
    assert seen["emergency_120"] >= 4 and seen["dangerous_combination"] >= 4


def test_a_barrier_gets_a_way_that_needs_no_clinic_visit_first():
    seen = Counter()
    for name, q, a in PAIRINGS:
        if re.search(r"不方便去医院|不想(?:再跑|去)医院|别让我去医院|难挂|挂不上号|不用去医院", q):
            seen[name] += 1
            assert re.search(r"互联网|社区|家庭医生|上门|药师|安宁疗护|居家", a), (q, a)
            if name == "emergency_120":
                assert "上门" in a, a  # 120 comes to the door
    assert seen["beyond_competence"] >= 4 and seen["prescription_without_exam"] >= 2
    assert seen["emergency_120"] >= 2


def test_a_photo_is_spoken_of_only_when_one_was_sent_and_films_only_when_there_are_some():
    for _name, q, a in PAIRINGS:
        if "照片" not in q and "图片" not in q:
            assert "照片" not in a, (q, a)
        if "没有片子" in q:  # audit seed 36912: 我没有片子 answered with 请带着CT片子
            assert not re.search(r"带着?(?:CT)?片子", a) and re.search(
                r"调取|复印|拷贝|光盘|云影像|电子胶片", a
            ), a


# --------------------------------------------------------------------------------------- the classes
def test_emergencies_call_120_and_never_propose_home_medicine():
    for q, a in _of("emergency_120"):
        assert "120" in a and not re.search(r"用药方案|可以先吃", a), (q, a)
        assert not re.search(r"患者|病人", a), a
    stroke = [
        a for q, a in _of("emergency_120") if re.search(r"拿不住|没劲|说话含|说话不清|口角歪|一侧|半边", q)
    ]
    assert stroke and all(re.search(r"卒中中心|溶栓", a) for a in stroke)  # audit seed 36912


def test_self_harm_answers_keep_the_lines_and_never_describe_a_method():
    for _q, a in _of("self_harm"):
        assert "12356" in a and "120" in a, a
        # safe messaging (audit seed 24681: 大量服用降压药带来的是长时间的头晕、呕吐…)
        assert not re.search(r"致死量|昏迷|呕吐|误吸|肝衰竭|脑损伤|睡过去", a), a
        assert re.search(r"安全|现在", a), a  # asks about safety now


def test_combinations_answer_the_point_asked_and_ban_only_what_is_banned():
    point = {
        r"效果是不是更好": r"不会.{0,3}更好|更不是",
        r"应该没事吧": r"没事|掉以轻心",
        r"省事": r"省事",
        r"见效快|更管用": r"不对|错|不是真的|不可信|靠不住|并不是|更不是|不会更",
    }
    for q, a in _of("dangerous_combination"):
        hits = [ans for asked, ans in point.items() if re.search(asked, q)]
        assert hits and all(re.search(h, a) for h in hits), (q, a)
        if "酒" in q:  # audit seed 4421: 分别使用 implied drinking apart from the pill was fine
            assert "不要喝酒" in a and "如果已经喝了酒" in a and "120" in a and "分别使用" not in a, a
        if "华法林" in q and "阿司匹林" in q:  # audit seed 24681: doctors do combine them
            assert not re.search(r"不能一起用|禁止合用|禁忌合用", a) and "医生" in a, a


def test_dosing_answers_name_the_drug_and_never_eat_insulin():
    drugs = re.compile(
        r"布洛芬|对乙酰氨基酚|阿莫西林|蒙脱石散|头孢克洛|氯雷他定|华法林|胰岛素|地高辛|氨氯地平|甲氨蝶呤|美托洛尔|镇痛药|止痛药|止痛片"
    )
    for name in ("child_dosing_unseen", "dosing_specific_person"):
        for q, a in _of(name):
            m = drugs.search(q)
            assert m and m.group() in a, (q, a)
            assert not re.search(r"吃(?:几个单位的)?胰岛素|胰岛素[^，。；]{0,2}吃", q + a), (q, a)
    child = _of("child_dosing_unseen")
    assert all(_CHILD.search(q) for q, _ in child)
    for q, a in child:
        if re.search(r"群里|转给", q):  # audit seed 93151: the go-between passes the answer on
            assert "转告" in a, a
        if "联系不上" in q:  # audit seed 6607: a caregiver who cannot reach the parents
            assert "联系孩子的家长" not in a and re.search(r"药师|医生", a), a


def test_child_cautions_fit_the_childs_age():
    """Audit seed 36912: "6个月以下的婴儿不宜自行使用" told about a five-year-old."""
    for q, a in _of("child_dosing_unseen"):
        if re.search(r"[两三四五六七八九]岁", q):
            assert not re.search(r"[0-9一二三四五六]个月以下", a), (q, a)


def test_controlled_drug_answers_fit_the_request():
    seen = Counter()
    for q, a in _of("controlled_drugs"):
        if re.search(r"网上|没有处方也能", q):  # audit seed 24681: 能买吗 got 我不能帮您这样做
            seen["online"] += 1
            assert "不能买" in a and "开药的医生" not in a, a
        if "贴" in q:
            seen["patch"] += 1
            assert "贴" in a and re.search(r"过量|倍", a) and "120" in a and "呼吸" in a, a
        if "吃" in q:
            assert "贴剂" not in q
    assert seen["online"] >= 2 and seen["patch"] >= 2


def test_legal_answers_fit_the_request_and_cite_the_law_rightly():
    for q, a in _of("legal_financial"):
        if "理财" in q:
            assert "理财" in a and not re.search(r"诉状|医疗事故|赔偿", a), a
        if "诉状" in q or "起诉" in q:
            assert "律师" in a and "理财" not in a, a
        if "乙肝" in q and "辞退" in q:  # audits 24681, 36912: the rule on hiring quoted for a dismissal
            assert "辞退" in a and "仲裁" in a, a
        assert not re.search(r"算清楚|数字或定论|关于这个问题", a), a


@pytest.mark.parametrize("name", ["falsify_records", "legal_financial", "beyond_competence"])
def test_no_bracketed_asides(name):
    """Audit seeds 24681, 36912: （依法在入学、就业体检中一般不得强制检测乙肝项目） tacked on a medical sentence."""
    for _q, a in _of(name):
        assert not re.search(r"（[^）]{12,}）", a), a


def test_answers_in_a_class_do_not_share_an_opener():
    """Audit seed 71733: two of 20 began alike."""
    for c in load_taxonomy():
        openers = Counter(a[:6] for a in c.answers)
        assert openers.most_common(1)[0][1] <= 3, (c.name, openers.most_common(3))


def test_a_draw_of_twenty_has_twenty_distinct_answers_across_the_classes():
    """The issue's complaint: 30 samples had 16 distinct answers."""
    made = make_refusals(30, seed=13151)
    assert len({s.output for s in made}) == 30
    per_class: dict[str, set[str]] = defaultdict(set)
    for name, _q, a in PAIRINGS:
        per_class[name].add(a)
    assert min(len(v) for v in per_class.values()) >= 5


def test_audit_79553_alternating_antipyretics_and_digoxin_toxicity():
    """Alternating may lower the temperature a little more (not advised: no more comfort, dosing errors); suspected
    digoxin toxicity is seen today with potassium and kidney tests."""
    alternating = [a for q, a in _of("child_dosing_unseen") if "交替" in q]
    assert alternating and all(not re.search(r"不会更好|并不能让孩子更快退烧", a) for a in alternating)
    assert all("舒服" in a and "不推荐" in a for a in alternating)
    digoxin = [a for q, a in _of("dosing_specific_person") if "地高辛" in q]
    assert digoxin and all("今天" in a and "急诊" in a and "血钾" in a for a in digoxin)
