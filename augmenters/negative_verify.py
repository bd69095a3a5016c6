"""The one verifier every negative passes, rule-made or LLM-written: from the question, the correct answer
and the wrong answer alone it finds what changed (medaug.facts plus a character diff), checks that it is the
one change of the error type's kind, and finds in the knowledge tables why the new answer is wrong for this
case. A negative it cannot prove wrong is dropped with the reason, never kept on trust in its maker.

What it rejects that a mere "something changed" check lets through (the physician audits' "not actually
wrong"): a differential the question does not rule out (功能性烧心 for heartburn before any endoscopy), a
drug swap no table makes wrong for this patient, a new dose inside the usual range, a denial of a finding
the question says is gone, a red flag the question only asks about (会不会引起胸痛), a promise under a
negation (不能保证根治), a knowledge question read as a case.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from augmenters.negative_kb import (
    NegativeKnowledge,
    entity_extractor,
    flip_concludes,
    load_negative_knowledge,
    sexes,
)
from medaug.guards import negated
from medaug.schema import ErrorType

# 高血压昏迷不醒会死吗 asks what a red flag would mean, it tells none of the patient (audit seed 7301).
_HYPOTHETICAL = re.compile(
    r"会不会|是否|会引起|会导致|会引发|引起|导致|能不能|担心|害怕|怕|预防|万一|如果|若是|避免|会死吗|会死人|会不会死|会致命"
)
_GONE = r"(好了|消失|缓解|没了|好转|不.了)"
# Told after a red flag: the patient has been seen for it since (去了医院检查，查出来是肝硬化), so the
# question no longer carries it as an emergency still to be worked up.
_WORKED_UP = re.compile(
    r"(去了?|到了?|在|上)[^，。！？!?；;]{0,6}(医院|急诊|门诊)|(检查|查)出(来)?(是|了)|确诊|诊断(为|是|出)|住院|"
    r"做了[^，。！？!?；;]{0,8}(检查|胃镜|CT|ct|心电图|造影|B超|彩超)"
)
_NO_PROMISE = re.compile(r"(不能|无法|不可能|不一定|没法|难以|不敢|并非|不是|没有)\s*$")


@dataclass(frozen=True)
class Proof:
    """Why a wrong answer is wrong: the changed span (before → after, at `start` of the reference), the
    reason from the tables, and the rewrite pattern (for the balance caps)."""

    before: str
    after: str
    start: int
    reason: str
    pattern: str

    def to_dict(self) -> dict[str, Any]:
        return {"change": {"before": self.before, "after": self.after, "start": self.start},
                "reason": self.reason, "pattern": self.pattern}  # fmt: skip


def question_of(row: dict[str, Any]) -> str:
    return f"{row['instruction']}\n{row.get('input') or ''}"


def one_edit(a: str, b: str) -> tuple[int, str, str] | None:
    """The smallest span of `a` that, replaced, turns `a` into `b` (start in a, old text, new text); None if
    they are equal."""
    ops = [op for op in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes() if op[0] != "equal"]
    if not ops:
        return None
    i1, i2, j1, j2 = ops[0][1], ops[-1][2], ops[0][3], ops[-1][4]
    return i1, a[i1:i2], b[j1:j2]


def is_case(question: str, kb: NegativeKnowledge) -> bool:
    """The question is about a patient (我/孩子/患者/…岁), not a knowledge question."""
    return any(c in question for c in kb.case_cues)


# A red flag told as a day or more ago (昨天突然抽搐) is over: a referral for it is no emergency unless it
# recurs or goes on (又, 反复, 现在还, 一直); 突然 alone says how it began, not that it is happening now.
_PAST_DAYS = re.compile(
    r"昨天|昨晚|昨日|前天|前晚|上周|上个?星期|上个?月|去年|[\d一二两三四五六七八九十几数]+(?:天|日|周|个?星期|个?月|年)(?:前|以前|之前)"
)
_RECURS = re.compile(r"又|再次|反复|还在|仍然|仍|一直|现在|今天|今早|刚才|刚刚|正在|持续|不停|至今|到现在")


def past_episode(question: str, i: int) -> bool:
    """The red flag at `i` is told as an episode a day or more ago (昨天…突然抽搐) that has not come back."""
    from augmenters.negatives import _sentence_bounds

    s, e = _sentence_bounds(question, i)
    return bool(_PAST_DAYS.search(question[s:i])) and not _RECURS.search(question[s:])


def past_red_flag(question: str, kb: NegativeKnowledge) -> bool:
    """The question tells a red flag only as a past episode (no current one): no referral negative is made,
    and the answer's safety net does not stand in for it."""
    from augmenters.negatives import _red_flag

    found = _red_flag(question, kb)
    return found is not None and past_episode(question, question.find(found[1]))


def asked_red_flag(question: str, kb: NegativeKnowledge):
    """A red flag the question states as this patient's current problem; one it only asks about or fears
    (会不会引起胸口疼, 担心脑出血), or one it says has been worked up since (胸口痛…去了医院检查，查出来是
    肝硬化), does not count."""
    from augmenters.negatives import _clause_bounds, _red_flag

    found = _red_flag(question, kb)
    while found is not None:
        flag, cue = found
        i = question.find(cue)
        s, e = _clause_bounds(question, i)
        if (
            not _HYPOTHETICAL.search(question[s:e])
            and not _WORKED_UP.search(question[e:])
            and not past_episode(question, i)
        ):
            return found
        question = question[:s] + " " * (e - s) + question[e:]
        found = _red_flag(question, kb)
    return None


def check_wrong(
    row: dict[str, Any], et: ErrorType, wrong: str, kb: NegativeKnowledge | None = None
) -> Proof | str:
    """A Proof that `wrong` is the correct answer `row['output']` made wrong in the way `et` says, or why not."""
    kb = kb or load_negative_knowledge()
    ref = row["output"]
    if not wrong.strip():
        return "empty"
    if wrong.strip() == ref.strip():
        return "unchanged"
    fn = _CHECKS.get(et)
    if fn is None:
        return "no_check_for_type"
    return fn(question_of(row), ref, wrong, kb)


def _one_swap(ext: Any, ref: str, wrong: str, kind: str) -> tuple[Any, Any] | None:
    """The (before, after) facts when exactly one entity of `kind` was replaced and nothing else changed."""
    changes = ext.changes(ref, wrong)
    lost = [c for c in changes if c.change == "lost"]
    added = [c for c in changes if c.change == "added"]
    if {c.kind for c in changes} != {kind} or len(lost) != 1 or len(added) != 1 or len(changes) != 2:
        return None
    return lost[0].before, added[0].after


# ------------------------------------------------------------------------------------------ diagnosis
def _diagnosis(q: str, ref: str, wrong: str, kb: NegativeKnowledge) -> Proof | str:
    ext = entity_extractor()
    swap = _one_swap(ext, ref, wrong, "disease")
    if swap is None:
        return "not_one_diagnosis_swapped"
    x, y = swap
    entry = kb.disease_surfaces.get(x.surface) or kb.disease_surfaces.get(x.term)
    d = kb.diseases_by_name.get(entry or "")
    if d is None:
        return "diagnosis_not_in_tables"
    new = kb.disease_surfaces.get(y.surface, y.surface)
    diff = next((z for z in d.differentials if z.name in (new, y.surface, y.term)), None)
    if diff is None:
        return "not_a_differential"
    if not any(not f.negated for f in ext.extract(q).of_kind("symptom", "finding")):
        return "question_has_no_presentation"
    names = {d.name, *d.aliases, x.surface}
    if any(len(n) >= 2 and n in q for n in names | {n.rstrip("病症") for n in names}):
        return "disease_named_in_question"
    if diff.name in q:
        return "differential_named_in_question"
    if diff.sex and sexes(q) != {diff.sex}:
        return "differential_needs_other_sex"
    why = kb.ruled_out_by(d.name, diff.name, q)
    if why is None:
        return "differential_not_ruled_out_by_question"
    shared = kb.shared_symptom(diff.name, q)
    if shared is None:
        return "differential_shares_no_symptom"
    return Proof(
        x.surface, diff.name, x.span[0],
        f"“{shared}”也可见于{diff.name}，但问题中有“{why}”，不支持{diff.name}：{diff.key}；"
        f"本例表现支持{d.name}（见参考回答）",
        f"{d.name}->{diff.name}",
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ drug
def _drug(q: str, ref: str, wrong: str, kb: NegativeKnowledge) -> Proof | str:
    from augmenters.negatives import SALT_SUFFIXES, _recommended, route_mismatch, strength_follows, whole_drug

    ext = entity_extractor()
    swap = _one_swap(ext, ref, wrong, "drug")
    if swap is None:
        return "not_one_drug_swapped"
    sx, sy = swap[0].surface, swap[1].surface
    x, y = _base_drug(sx, kb), _base_drug(sy, kb)
    if x is None or y is None:
        return "drug_not_in_tables"
    for text, name in ((ref, sx), (wrong, sy)):
        for f in ext.extract(text).of_kind("drug"):
            if f.surface != name:
                continue
            # a product name (布洛芬混悬液) is whole by itself; a bare name must not begin a compound
            if (f.surface in kb.drugs and not whole_drug(text, f.span)) or _recommended(text, f.span, kb):
                return "drug_not_recommended_as_a_whole_drug"
    if any(route_mismatch(ref, f.span, y, kb) for f in ext.extract(ref).of_kind("drug") if f.surface == sx):
        return "swap_changes_the_route"  # 注射格列齐德 is no plausible answer
    for f in ext.extract(wrong).of_kind("drug"):
        if f.surface == sy and (salt := wrong[f.span[1] : f.span[1] + 1]) in SALT_SUFFIXES and salt:
            if sx + salt in ref:
                return "salt_suffix_carried_over"  # 雷贝拉唑钠 → 阿司匹林钠: the salt was the old drug's
    if any(strength_follows(ref, f.span, y, kb) for f in ext.extract(ref).of_kind("drug") if f.surface == sx):
        return "drug_strength_would_carry_over"  # 奥美拉唑20mg → 阿司匹林20mg: the old drug's strength kept
    pops = kb.present_populations(q)
    both = q + ref
    ref_drugs = {f.surface for f in ext.extract(ref).of_kind("drug") if f.surface in kb.drugs}
    if any(kb.contraindicated(d, pops, both) for d in ref_drugs | {x}) or kb.wrong_here_in(
        ref_drugs | {x}, both
    ):
        return "reference_drug_contraindicated"
    if kb.named_otherwise(x, wrong):
        return "drug_named_by_another_name"  # 奥司他韦或者贺普丁: the old drug is still offered by its brand name
    if kb.mentions(x, q):
        return "drug_named_in_question"  # the question asks about this drug: the swap answers another (audit 48213)
    for c in kb.contraindications:
        if y in c.drugs and c.population in pops and not any(u in both for u in c.unless):
            if kb.drugs[y].roles & kb.drugs[x].roles:
                pattern = kb.drug_pattern(x, y, f"contraindicated:{c.population}")
                return Proof(x, y, ref.find(x), f"{y}不适合本例：{c.reason}", pattern)
    for c in kb.confusions:
        if x in c.sources and y in c.to and c.applies(both) and not any(z in ref for z in c.to):
            return Proof(x, y, ref.find(x), f"{y}不适合本例：{c.reason}", kb.drug_pattern(x, y, "confusion"))
    return "swap_not_wrong_by_tables"


def _base_drug(surface: str, kb: NegativeKnowledge) -> str | None:
    """The drug of the tables a mention names: itself, or the drug a product name starts with followed by a
    dosage form (布洛芬混悬液 → 布洛芬); None for a compound product (复方…) or an unknown drug."""
    from augmenters.negatives import _DRUG_FOLLOW

    if surface in kb.drugs:
        return surface
    if surface.startswith("复方"):
        return None
    for name in sorted(kb.drugs, key=len, reverse=True):
        if surface.startswith(name) and _DRUG_FOLLOW.match(surface, len(name)):
            return name
    return None


# ------------------------------------------------------------------------------------------ dose
def _drug_before(text: str, at: int, end: int, kb: NegativeKnowledge) -> str | None:
    """The drug an amount at `at`…`end` belongs to: named within 15 characters before, nothing in between,
    no drug right after it (500mg对乙酰氨基酚: the amount is the next drug's)."""
    from augmenters.negatives import whole_drug

    facts = entity_extractor().extract(text)
    drugs = [f for f in facts.of_kind("drug") if f.surface in kb.drugs and whole_drug(text, f.span)]
    before = [d for d in drugs if d.span[1] <= at and at - d.span[1] <= 15]
    if not before or re.search(r"[。！？；;\n和及与、]", text[before[-1].span[1] : at]):
        return None
    between = [m for m in facts.of_kind("number") if before[-1].span[1] <= m.span[0] < at]
    after = [d for d in facts.of_kind("drug") if 0 <= d.span[0] - end <= 2]
    return None if between or after else before[-1].surface


def _mg(f) -> float | None:
    from augmenters.negatives import _TO_MG

    base = f.unit.split("/")[0]
    if base not in _TO_MG or not re.fullmatch(r"\d+(?:\.\d+)?", f.value or "") or re.match(r"0\d", f.surface):
        return None
    return float(f.value) * _TO_MG[base]


def _dose(q: str, ref: str, wrong: str, kb: NegativeKnowledge) -> Proof | str:
    from augmenters.negatives import (
        _FREQ,
        _ONCE_DAILY,
        _WEEKLY,
        _child_weight,
        _cn_int,
        _dose_reason,
        _fmt,
        daily_amount,
        dose_bound,
        per_day_unit,
        unit_swap_allowed,
        weight_based,
    )

    changes = entity_extractor().changes(ref, wrong)
    if not changes or not {c.kind for c in changes} <= {"number", "frequency"}:
        return "not_a_dose_change"
    # a schedule made more frequent: 每周1次 → 每日1次 (weekly drug), 每日1次 → 每日3次 (over the daily max)
    for pat, new, sched in ((_WEEKLY, re.compile(r"(每日|每天|一日|一天)\s*(1|一)\s*次"), "weekly"),
                            (_ONCE_DAILY, _FREQ, "once_daily")):  # fmt: skip
        for m in pat.finditer(ref):
            head, tail = ref[: m.start()], ref[m.end() :]
            if not (wrong.startswith(head) and wrong.endswith(tail)):
                continue
            mid = wrong[len(head) : len(wrong) - len(tail)]
            nm = new.fullmatch(mid.strip())
            drug = next(
                (d for d, v in kb.doses.items() if v.schedule == sched and d in ref[: m.start()][-40:]), None
            )
            if nm is None or drug is None:
                continue
            if sched == "weekly":
                why = f"{drug}在这里是每周用一次，改成每日一次相当于每周7倍剂量，可引起骨髓抑制等严重中毒"
                return Proof(m.group(), mid, m.start(), why, f"weekly_as_daily:{drug}")
            times = _cn_int(nm.group(2)) or 1
            amounts = [
                f for f in entity_extractor().extract(ref[: m.start()][-40:]).of_kind("number") if _mg(f)
            ]
            limit = kb.doses[drug].adult_max_day
            if times >= 3 and amounts and limit and _mg(amounts[-1]) * times > limit:
                day = _mg(amounts[-1]) * times
                why = f"{drug}每日一次即可，改成每日{_fmt(times)}次后每日{_fmt(day)}mg，超过每日最大剂量{_fmt(limit)}mg"
                return Proof(m.group(), mid, m.start(), why, f"once_daily_thrice:{drug}")
    lost = [c for c in changes if c.change == "lost" and c.kind == "number"]
    added = [c for c in changes if c.change == "added" and c.kind == "number"]
    vals = [c for c in changes if c.change == "value" and c.kind == "number"]
    if len(changes) == 2 and len(lost) == 1 and len(added) == 1:
        a, b = lost[0].before, added[0].after
    elif len(changes) == 1 and len(vals) == 1:
        a, b = vals[0].before, vals[0].after
    else:
        return "not_one_dose_changed"
    old, new = _mg(a), _mg(b)
    if old is None or new is None:
        return "not_a_drug_amount"
    drug = _drug_before(ref, a.span[0], a.span[1], kb)
    if drug is None or _drug_before(wrong, b.span[0], b.span[1], kb) != drug:
        return "amount_not_of_a_known_drug"
    if dose_bound(ref, a.span):
        return "amount_is_a_bound"  # 每日服用量要超过2克才行: the regimen is elsewhere (audit seed 57331)
    per_kg = weight_based(a.unit)
    d = kb.doses.get(drug)
    if per_kg and not weight_based(b.unit):
        # a per-kg child dose replaced by a fixed amount: wrong only if it is far above the child's range
        weight, known = _child_weight(q)
        if (
            weight is None
            or weight > 30
            or per_day_unit(a.unit)  # mg/kg/d: the table's child range is per dose
            or not (d and d.child_per_kg)
            or "child" not in kb.present_populations(q)
        ):
            return "per_kg_changed"
        if new / weight <= d.child_per_kg[1] * 1.5:
            return "dose_fits_this_child"
        why = (f"给{known}的孩子用了{b.surface}，约{_fmt(round(new / weight, 1))}mg/kg，"
               f"远超儿童每次{_fmt(d.child_per_kg[0])}～{_fmt(d.child_per_kg[1])}mg/kg")  # fmt: skip
        return Proof(a.surface, b.surface, a.span[0], why, f"adult_dose_for_child:{drug}")
    if per_kg != weight_based(b.unit):
        return "per_kg_changed"
    if a.unit.split("/")[0] != b.unit.split("/")[0] and (why := unit_swap_allowed(ref, a.span, new)):
        return why  # 奥美拉唑20毫克一粒 → 20克一粒: a tablet's strength misread in another unit is absurd
    daily = daily_amount(ref, a.span, a.unit)
    if daily:
        # a daily amount (每日服用量要超过2克): wrong only beyond the daily maximum or by a magnitude
        limit = d.adult_max_day if d else None
        if 0.1 < new / old < 9.99 and (limit is None or new <= limit):
            return "daily_amount_within_max"
    reason = _dose_reason(drug, kb, a.surface, b.surface, old, new, a.unit, daily)
    if reason is None:
        return "dose_within_usual_range"
    return Proof(a.surface, b.surface, a.span[0], reason, f"dose:{drug}")


# ------------------------------------------------------------------------------------------ findings
def _findings(q: str, ref: str, wrong: str, kb: NegativeKnowledge) -> Proof | str:
    from augmenters.negatives import _fmt, clinical_subject, part_of_disease_name, reads_the_value

    if not is_case(q, kb):
        return "knowledge_question_has_no_findings"
    ext = entity_extractor()
    changes = ext.changes(ref, wrong)
    edit = one_edit(ref, wrong)

    # 1. a stated finding word turned round (ST段抬高 → ST段压低), nothing else changed
    def near(c, at: int) -> bool:  # a fact change made by the flipped word itself (血小板减少 → 血小板增多)
        f = c.before or c.after
        return f is not None and f.span[0] <= at + 2 and f.span[1] >= at

    if edit is not None and edit[1] and len(changes) <= 2 and all(near(c, edit[0]) for c in changes):
        s = edit[0]
        for w, opp in kb.opposites.items():
            at = next(
                (p for p in range(max(0, s - len(w) + 1), s + 1)
                 if ref.startswith(w, p) and wrong == ref[:p] + opp + ref[p + len(w):]),
                None,
            )  # fmt: skip
            if at is None:
                continue
            if negated(ref, at):
                return "finding_word_negated"
            for n in range(min(8, at), 1, -1):
                subject = ref[at - n : at]
                if subject + w in q and clinical_subject(subject) and not negated(q, q.find(subject + w)):
                    if w in wrong:
                        return "original_finding_still_stated"  # 偏高 → 偏低 once, 偏高 twice elsewhere
                    if not flip_concludes(ref, at, w, q):
                        return "flip_draws_no_conclusion"  # a restatement flipped: the advice is unchanged
                    return Proof(w, opp, at,
                                 f"问题中写明“{subject}{w}”，回答却说成“{subject}{opp}”，与检查所见相反",
                                 f"flip:{w}->{opp}")  # fmt: skip
            return "flipped_word_not_from_question"
    # 2. a lab value the question gives misquoted across its reference range
    nums = [c for c in changes if c.kind == "number"]
    if nums and len(changes) == len(nums) and len(nums) <= 2 and edit is not None:
        s, old, new = edit
        for lab in kb.labs:
            qm = re.search(re.escape(lab.name) + r"[^\d，。；,;]{0,4}?(\d+(?:\.\d+)?)", q)
            am = re.search(re.escape(lab.name) + r"[^\d，。；,;]{0,4}?(\d+(?:\.\d+)?)(?!\d)", ref)
            if not qm or not am or am.group(1) != qm.group(1) or not (am.start(1) <= s < am.end(1) + 1):
                continue
            wm = re.match(r"(\d+(?:\.\d+)?)", wrong[am.start(1) :])
            if not wm:
                continue
            v, v2 = float(qm.group(1)), float(wm.group(1))

            def side(x: float, lab=lab) -> int:
                return 1 if x > lab.high else -1 if x < lab.low else 0

            if side(v) == side(v2):
                return "misquote_on_same_side_of_range"
            if reads_the_value(ref, am.start(1), lab.name):
                return "misquote_refuted_by_its_reading"  # 5.8，这个血糖值是比较高了 (audits 57331, 68442)
            return Proof(qm.group(1), wm.group(1), am.start(1),
                         f"问题给出的{lab.name}是{qm.group(1)}{lab.unit}（参考范围{_fmt(lab.low)}～{_fmt(lab.high)}"
                         f"{lab.unit}），回答却写成{wm.group(1)}{lab.unit}，把检查结果引错了",
                         f"misquote:{lab.name}")  # fmt: skip
        return "number_change_not_a_stated_lab"
    # 3. a finding the question states denied: one symptom/finding fact, now negated (or, where the
    # extractor reads no negation in the inserted words, an inserted denial of a stated finding)
    denied = None
    if len(changes) == 1 and changes[0].kind in ("symptom", "finding"):
        c = changes[0]
        if c.change in ("negation", "added") and c.after is not None and c.after.negated:
            denied = c.after.term
    elif not changes and edit is not None and not edit[1]:
        ins = edit[2]
        for f in ext.extract(q).of_kind("symptom", "finding"):
            i = ins.find(f.surface)
            if (
                not f.negated
                and i > 0
                and re.search(r"(没有|没|无|并无|不存在|排除|未见)[^，,。]{0,3}$", ins[:i])
            ):
                denied = f.term
                break
    if denied is None:
        return "not_one_finding_denied"
    stated_q = [f for f in ext.extract(q).of_kind("symptom", "finding") if f.term == denied]
    if not stated_q or all(f.negated for f in stated_q):
        return "denied_finding_not_stated_in_question"
    f = next(f for f in stated_q if not f.negated)
    sent_start = max((q.rfind(ch, 0, f.span[0]) for ch in "。！？!?；;\n"), default=-1) + 1
    if re.search(r"没|无|未|否认|不|非", q[sent_start : f.span[0]]):
        return "finding_denied_in_question"
    head = f.surface[-1]
    if re.search(f"[不没无]{re.escape(head)}|{re.escape(f.surface)}.{{0,6}}{_GONE}", q):
        return "finding_gone_since"
    if any(w in f.surface for w in kb.deny_never) or f.surface in kb.disease_surfaces:
        return "denial_about_a_state"
    if part_of_disease_name(q, f.span):
        return "finding_is_part_of_a_disease_name"
    before, after, at = (edit[1], edit[2], edit[0]) if edit else ("", f.surface, 0)
    if any(
        m.term == denied and not m.negated and not at <= m.span[0] < at + len(after)
        for m in ext.extract(wrong).of_kind("symptom", "finding")
    ):
        return "denied_finding_still_stated"  # 虽然没有胃胀，但胃胀: the answer contradicts itself
    return Proof(before, after, at, f"问题中明确有“{f.surface}”，回答却说没有，与病史矛盾", f"deny:{denied}")


# ------------------------------------------------------------------------------------------ referral
def _referral(q: str, ref: str, wrong: str, kb: NegativeKnowledge) -> Proof | str:
    from augmenters.negatives import _SENTENCE, _urgent_at

    cues = _urgent_at(ref, kb)
    if not cues:
        return "reference_has_no_urgent_referral"
    if _urgent_at(wrong, kb):
        return "referral_remains"
    changes = entity_extractor().changes(ref, wrong)
    if any(c.change != "lost" and c.kind not in ("duration", "number", "frequency") for c in changes):
        return "other_facts_changed"
    if any(c.change == "lost" and c.kind in ("symptom", "finding", "disease", "drug") for c in changes):
        hit = [m for m in _SENTENCE.finditer(ref) if any(m.start() <= i < m.end() for i, _ in cues)]
        lost_outside = [
            c
            for c in changes
            if c.change == "lost" and not any(m.start() <= c.before.span[0] < m.end() for m in hit)
        ]
        if lost_outside:
            return "content_lost_outside_the_referral"
    found, where = asked_red_flag(q, kb), "问题中"
    if found is None and past_red_flag(q, kb):
        return "red_flag_not_current"
    # a red flag named only in the reference's safety advice does not count: the question must tell a current one
    # (audit seed 93151: 我听别人说高血压昏迷不醒会死人的 asks in general, no one is in a coma now)
    if found is None:
        return "referral_not_needed_by_red_flag"
    rf, cue = found
    edit = one_edit(ref, wrong)
    before, after, at = (
        (edit[1], edit[2], edit[0]) if edit else (ref[cues[0][0] : cues[0][1]], "", cues[0][0])
    )
    how = "删去了紧急就医建议" if not after.strip("，。, ") else f"把就医建议改成了“{after.strip('，。')}”"
    return Proof(before, after, at, f"{where}有“{cue}”：{rf.why_for(cue)}；错误回答{how}", "referral")


# ------------------------------------------------------------------------------------------ overclaiming
# Trial wording and fallback clauses: a treatment offered as a try (试试看, 先…看看, 观察一下) or with a plan for
# when it fails (如不…再, 如果没有好转, 不见好) cannot also be guaranteed (audit seed 90417).
_HEDGE_OR_FALLBACK = re.compile(
    r"试试|试一试|试一下|(?<![首优事原预])先[^，,。；;！？!?]{0,12}看(看|一看|一下)|观察(一下|几天|一段时间|看看)|"
    r"如(果|若)?不[^，,。；;！？!?]{0,10}再|(如果|若|假如|要是)[^，,。；;！？!?]{0,6}(没有|没|不见|未见|无)"
    r"(好转|改善|缓解|效果|减轻)|不见好|不见效|无效再|不稳定再|不好再|没好再"
)


def hedged_beside(text: str, start: int, end: int) -> str | None:
    """Trial or fallback wording in the sentence around text[start:end] (the inserted promise) or in the
    clause right before or after it: the answer hedges what the promise guarantees."""
    from augmenters.negatives import _clause_bounds, _sentence_bounds

    ss, se = _sentence_bounds(text, start)
    ps = _clause_bounds(text, max(ss - 2, 0))[0] if ss >= 2 else ss
    ne = _clause_bounds(text, se + 1)[1] if se + 1 < len(text) else se
    window = text[min(ps, ss) : start] + "，" + text[end : max(ne, se)]
    m = _HEDGE_OR_FALLBACK.search(window)
    return m.group(0) if m else None


def _overclaim(q: str, ref: str, wrong: str, kb: NegativeKnowledge) -> Proof | str:
    def marks(t: str) -> list[tuple[int, str]]:
        out = []
        for m in sorted(kb.promise_markers, key=len, reverse=True):
            for x in re.finditer(re.escape(m), t):
                if not any(s <= x.start() < s + len(w) for s, w in out):
                    out.append((x.start(), m))
        return out

    new_marks = marks(wrong)
    if len(new_marks) <= len(marks(ref)):
        return "no_new_promise"
    changes = entity_extractor().changes(ref, wrong)
    if not all(c.change == "added" and c.kind in ("number", "duration", "frequency") for c in changes):
        return "facts_changed"
    edit = one_edit(ref, wrong)
    if edit is None:
        return "promise_not_one_edit"
    s, old, new = edit
    # an insertion next to a repeated character is ambiguous (医治 + ，…根治 reads as 治，…根 inserted after 医):
    # shift it to start at its clause mark, so the promise quoted in the reason is the one inserted (seed 7302)
    while not old and new and new[0] not in "，,。；;" and s < len(ref) and ref[s] == new[0]:
        new, s = new[1:] + new[0], s + 1
    inside = [(i, m) for i, m in new_marks if s <= i < s + len(new)]
    if not inside:
        return "promise_not_in_the_edit"
    for i, _m in inside:
        if _NO_PROMISE.search(wrong[max(0, i - 4) : i]) or negated(wrong, i):
            return "promise_negated"
    from augmenters.negatives import clashes_beside

    if any(w in wrong[max(0, s - 2) : s + len(new) + 3] for w in kb.promise_certainty):
        at = s + len(new)
        after = [f for f in entity_extractor().extract(wrong).of_kind("disease") if at <= f.span[0] <= at + 3]
        if after and after[0].surface in q:
            return "diagnosis_already_known"  # she is being treated for it: 肯定是 restates it (audit seed 79553)
    if not any(w in new for w in kb.promise_certainty) and clashes_beside(wrong, s, s + len(new), {}, kb):
        return "promise_contradicts_its_context"  # 需要长期服药，保证药到病除; 终身服药，百分之百有效
    from augmenters.negatives import _CONTINUES

    if (
        old == ""
        and _CONTINUES.match(wrong, s + len(new))
        and wrong[s + len(new) - 1 : s + len(new)] not in "。；;"
    ):
        return "promise_splits_the_treatment"  # 可以用口服药物，以后再也不会复发，互相配合维生素 (seed 93151)
    if hedged_beside(wrong, s, s + len(new)):
        return "promise_contradicts_its_context"  # …口服液试试看，包治包好，如不稳定再去医院查一查
    return Proof(
        old, new, s,
        f"回答做出了医生不能做出的承诺（“{new.strip('，,。')}”）：没有治疗能保证疗效、保证不复发或没有副作用，"
        "诊断也要靠检查确认，必要的复查和医生指导不能免去",
        "promise",
    )  # fmt: skip


_CHECKS = {
    ErrorType.wrong_diagnosis: _diagnosis,
    ErrorType.wrong_drug: _drug,
    ErrorType.wrong_dose: _dose,
    ErrorType.contradicts_findings: _findings,
    ErrorType.missing_referral: _referral,
    ErrorType.overclaiming: _overclaim,
}
