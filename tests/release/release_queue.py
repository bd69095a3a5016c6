"""Release fixtures: a queue whose items were really reviewed (approve, correct, reject, disputed → arbitrated)."""

from __future__ import annotations

from dataclasses import dataclass

from medaug.schema import AugmentationStep, Demographics, Label, Provenance, Sample
from review_queue.decisions import Decision
from review_queue.store import QueueStore

APPROVE = Decision(decision="approve")
REJECT = Decision(decision="reject", reject_reason="low_quality")


def correct(output: str, **kw: object) -> Decision:
    return Decision(decision="correct", output=output, **kw)


def make_samples(tag: str) -> dict[str, Sample]:
    """One sample per review path; `tag` makes their content (and ids) distinct between batches."""

    def s(name: str, **kw: object) -> Sample:
        base = {
            "instruction": f"{tag}：{name}的问题是什么？",
            "output": f"{tag}：关于{name}的规范回答。",
            "task": "medical_qa",
            "area": "cardiovascular",
            "deid": [],
            "provenance": Provenance(template_id=f"tpl-{name}", run_id=f"gen-{tag}"),
        }
        return Sample.model_validate({**base, **kw})

    approve = s("approve", demographics=Demographics(age=58, sex="male"), icd10=["I20.0"])
    return {
        "approve": approve,
        "correct": s(
            "correct",
            area="endocrine",
            task="diagnostic_reasoning",
            demographics=Demographics(age=34, sex="female"),
        ),
        "reject": s("reject", area="oncology"),
        "disputed": s(
            "disputed",
            area="neurology",
            task="report_explanation",
            demographics=Demographics(age=7, sex="female"),
        ),
        "disputed_fix": s(
            "disputed_fix", area="obgyn", task="record_generation", deid=[{"entity": "PERSON", "count": 1}]
        ),
        "negative": s(
            "negative",
            label=Label.negative,
            error_type="wrong_drug",
            output=f"{tag}：胸痛时可以自行服用大量阿司匹林，保证治愈。",
            reference_output=f"{tag}：胸痛应立即就医，由医生评估后决定是否使用阿司匹林。",
        ),
        "negative_noref": s(
            "negative_noref", label=Label.negative, error_type="wrong_dose", area="pediatrics"
        ),
        "refusal": s("refusal", label=Label.refusal, output=f"{tag}：无法在线开具处方，请到医院就诊。"),
        "child": s(
            "child",
            instruction=f"{tag}：胸口疼怎么办？",
            provenance=Provenance(
                template_id="tpl-approve",
                parent_id=approve.id,
                run_id=f"gen-{tag}",
                augmentation=[
                    AugmentationStep(augmenter="lexicon_paraphrase", detail='{"胸骨后压榨感": "胸口疼"}')
                ],
            ),
        ),
    }


def plan(tag: str) -> dict[str, tuple[Decision, Decision, Decision | None]]:
    """First review, second review, arbitration (None: the reviews agree)."""
    return {
        "approve": (APPROVE, APPROVE, None),
        "correct": (correct(f"{tag}：修正后的回答。"), correct(f"{tag}：修正后的回答。"), None),
        "reject": (REJECT, REJECT, None),
        "disputed": (APPROVE, REJECT, APPROVE),
        "disputed_fix": (
            correct(f"{tag}：医生甲改写。"),
            APPROVE,
            correct(f"{tag}：仲裁定稿。", icd10=["O14.1"]),
        ),
        "negative": (APPROVE, APPROVE, None),
        "negative_noref": (APPROVE, APPROVE, None),
        "refusal": (APPROVE, APPROVE, None),
        "child": (APPROVE, APPROVE, None),
    }


@dataclass
class Queue:
    store: QueueStore
    samples: dict[str, Sample]  # as pushed
    run_id: str


def review_all(store: QueueStore, samples: dict[str, Sample], tag: str, people: tuple[str, str, str]) -> None:
    """Drive every pushed item to final through pull/submit/arbitrate, as three physicians would."""
    name_of = {s.id: n for n, s in samples.items()}
    decisions = plan(tag)
    r1, r2, arbiter = people
    for who, idx in ((r1, 0), (r2, 1)):
        leased = store.pull(who, size=100)
        assert {it.id for it in leased} == set(name_of), "every pushed item is leased to each reviewer"
        for it in leased:
            store.submit(who, it.id, decisions[name_of[it.id]][idx])
    for it in store.pull_arbitration(arbiter, size=100):
        arb = decisions[name_of[it.id]][2]
        assert arb is not None, f"{name_of[it.id]} should have been agreed"
        store.arbitrate(arbiter, it.id, arb)


def fill_queue(store: QueueStore, tag: str, *, people: tuple[str, str, str] = ("r1", "r2", "a1")) -> Queue:
    for name, role in zip(people, ("reviewer", "reviewer", "arbiter"), strict=True):
        if store.authenticate(name) is None:
            try:
                store.add_user(name, role)
            except Exception as e:  # already added by an earlier batch
                assert "already exists" in str(e)
    samples = make_samples(tag)
    run_id = f"run-{tag}"
    res = store.push(list(samples.values()), run_id=run_id)
    assert res.inserted == len(samples) and res.refused == 0
    review_all(store, samples, tag, people)
    assert store.counts() == {"final": sum(store.counts().values())}
    return Queue(store, samples, run_id)
