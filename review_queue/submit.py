"""Decisions on an item: two independent reviews, then final or arbitration; the arbiter's decision is final.

A correction's text work (applying it, the diff against the first review, the final sample)
grows with the text, so it is done before the write transaction opens, on an unlocked read;
under the lock the item must still be in the state that work saw, or the decision is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from medaug.schema import Sample
from review_queue import audit, pgfast, sql
from review_queue.audit import Event
from review_queue.decisions import (
    Decision,
    DecisionError,
    agree,
    apply,
    check_shape,
    finalize_sample,
    merge,
    outcome_of,
)
from review_queue.errors import Conflict, InvalidDecision, NotFound, NotYours
from review_queue.records import SubmitResult
from review_queue.store_base import StoreBase


@dataclass
class _Prepared:
    """A correction's text work, done outside the transaction, and the item state it was done on."""

    seen: tuple[int, str | None]  # (reviews_done, first review payload)
    payload: str
    shown: dict[str, Any]
    agreed: bool = False
    outcome: str | None = None
    final_json: str | None = None


class _LazySample:
    """A stored sample's JSON, validated into a Sample only on first use (approvals never need it)."""

    def __init__(self, text: str):
        self.text = text
        self._sample: Sample | None = None

    def get(self) -> Sample:
        if self._sample is None:
            self._sample = Sample.model_validate_json(self.text)
        return self._sample


def _checked(item_id: str, decision: Decision, sample: _LazySample) -> None:
    try:
        check_shape(decision)
        if decision.decision == "correct":
            apply(decision, sample.get())
    except DecisionError as e:
        raise InvalidDecision(item_id, e.field, str(e).split(": ", 1)[-1]) from e


def _final_json(decision: Decision, sample: _LazySample, item_id: str, deciders: list[str]) -> str:
    if decision.decision != "correct":
        return sample.text  # approved or rejected: the pushed sample, byte for byte
    return finalize_sample(decision, sample.get(), item_id=item_id, deciders=deciders).model_dump_json()


class SubmitOps(StoreBase):
    def submit(self, who: str, item_id: str, decision: Decision) -> SubmitResult:
        """Record one independent review; the second one finalises the item or sends it to arbitration.

        A correction's work is done before the write transaction (see the module docstring); under
        the lock the item's reviews must still be the ones that work saw (they are, while the caller
        holds the lease; otherwise the submit is refused).
        """
        pre = self._prepare_correction(who, item_id, decision) if decision.decision == "correct" else None
        res = self._submit(who, item_id, decision, pre)
        self._judge_item(item_id)
        return res

    def _prepare_correction(self, who: str, item_id: str, decision: Decision) -> _Prepared:
        with self.engine.connect() as conn:
            row = conn.execute(sql.READ_FOR_SUBMIT, {"lock_id": item_id}).first()
        self._check_submit(row, who, item_id)
        sample = _LazySample(row.sample_json)
        _checked(item_id, decision, sample)
        payload = decision.model_dump_json(exclude_none=True)
        pre = _Prepared((row.reviews_done, row.first_payload), payload, json.loads(payload))
        if row.reviews_done:
            first = Decision.model_validate_json(row.first_payload)
            pre.agreed = first.decision == "correct" and agree(first, decision, sample.get(), self.similarity)
            if pre.agreed:
                merged = merge(first, decision)
                pre.outcome = outcome_of(merged)
                pre.final_json = _final_json(merged, sample, item_id, [row.first_reviewer, who])
        return pre

    def _check_submit(self, row: Any, who: str, item_id: str) -> None:
        if row is None:
            raise NotFound(f"unknown item {item_id}")
        if who in (row.first_reviewer, row.second_reviewer):
            raise Conflict(f"{who} already reviewed item {item_id}")
        if row.status != "open":
            raise Conflict(f"item {item_id} is not awaiting review (status {row.status})")
        self._check_lease(row, who)

    def _submit(self, who: str, item_id: str, decision: Decision, pre: _Prepared | None) -> SubmitResult:
        now = self.clock()
        with self.engine.begin() as conn:
            found = (
                pgfast.execute(conn, sql.LOCK_FOR_SUBMIT, {"lock_id": item_id})
                if self._pg
                else conn.execute(sql.LOCK_FOR_SUBMIT, {"lock_id": item_id}).all()
            )
            row = found[0] if found else None
            self._check_submit(row, who, item_id)
            sample = _LazySample(row.sample_json)  # parsed only when a correction needs it
            if pre is None:
                _checked(item_id, decision, sample)  # approve / reject: shape checks, no text work
                payload = decision.model_dump_json(exclude_none=True)
                shown = json.loads(payload)
            elif (row.reviews_done, row.first_payload) != pre.seen:
                raise Conflict(f"item {item_id} got another review during this submit; pull again")
            else:
                payload, shown = pre.payload, pre.shown
            review = {
                "r_item": item_id,
                "r_reviewer": who,
                "r_decision": decision.decision,
                "r_payload": payload,
                "r_leased": row.lease_started or now,
                "r_at": now,
            }
            if row.reviews_done == 0:
                status, update = "open", (sql.FIRST_REVIEW, {"u_id": item_id, "u_first": who})
            else:
                if pre is not None:
                    agreed, outcome, final_json = pre.agreed, pre.outcome, pre.final_json
                else:  # the same approve/reject as the first review, or not: no text is compared
                    first = Decision.model_validate_json(row.first_payload)
                    agreed = first.decision == decision.decision
                    outcome = outcome_of(decision)
                    final_json = sample.text  # approved or rejected: the pushed sample, byte for byte
                final = {"u_outcome": None, "u_final_json": None, "u_finalized": None}
                if agreed:
                    final = {"u_outcome": outcome, "u_finalized": now, "u_final_json": final_json}
                status = "final" if agreed else "arbitration"
                update = (
                    sql.SECOND_REVIEW,
                    {"u_id": item_id, "u_second": who, "u_agreed": agreed, "u_status": status, **final},
                )
            audit.append(
                conn,
                [
                    Event(
                        who,
                        "submit",
                        item_id,
                        {"status": row.status, "reviews_done": row.reviews_done},
                        {"status": status, "review": shown},
                    )
                ],
                at=now,
                writes=[(sql.REVIEW_INSERT, review), update],
            )
        return SubmitResult(item_id, status)

    def arbitrate(self, who: str, item_id: str, decision: Decision) -> SubmitResult:
        """The arbiter's decision is final; an arbiter never decides an item they reviewed.

        A correction is applied before the write transaction opens (its cost grows with the
        text); once an item awaits arbitration its reviewers, and so that result, cannot change.
        """
        pre: tuple[tuple[str, str], str] | None = None
        if decision.decision == "correct":
            with self.engine.connect() as conn:
                row = conn.execute(sql.ITEM, {"id": item_id}).first()
            self._check_arbitrate(row, who, item_id)
            sample = _LazySample(row.sample_json)
            _checked(item_id, decision, sample)
            deciders = [row.first_reviewer, row.second_reviewer, who]
            pre = (
                (row.first_reviewer, row.second_reviewer),
                _final_json(decision, sample, item_id, deciders),
            )
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._lock(conn, item_id)
            self._check_arbitrate(row, who, item_id)
            if pre is None:
                sample = _LazySample(row.sample_json)
                _checked(item_id, decision, sample)
                final_json = _final_json(decision, sample, item_id, [])  # the pushed sample as it is
            elif (row.first_reviewer, row.second_reviewer) != pre[0]:
                raise Conflict(f"item {item_id} changed during the arbitration; try again")
            else:
                final_json = pre[1]
            payload = decision.model_dump_json(exclude_none=True)
            conn.execute(
                sql.ARBITRATION_INSERT,
                {
                    "item_id": item_id,
                    "arbiter": who,
                    "decision": decision.decision,
                    "payload": payload,
                    "submitted_at": now,
                },
            )
            conn.execute(
                sql.ARBITRATED,
                {"f_id": item_id, "f_outcome": outcome_of(decision), "f_final_json": final_json, "f_at": now},
            )
            audit.append(
                conn,
                [
                    Event(
                        who,
                        "arbitrate",
                        item_id,
                        {"status": "arbitration"},
                        {"status": "final", "arbitration": json.loads(payload)},
                    )
                ],
                at=now,
            )
        self._judge_item(item_id)
        return SubmitResult(item_id, "final")

    def _check_arbitrate(self, row: Any, who: str, item_id: str) -> None:
        if row is None:
            raise NotFound(f"unknown item {item_id}")
        if who in (row.first_reviewer, row.second_reviewer):
            raise NotYours(f"{who} reviewed item {item_id} and may not arbitrate it")
        if row.status != "arbitration":
            raise Conflict(f"item {item_id} is not awaiting arbitration (status {row.status})")
        self._check_lease(row, who)
