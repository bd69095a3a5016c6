"""Push: de-identified samples into the queue, once each, in one transaction per push."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
from pydantic import ValidationError
from sqlalchemy.engine import Connection

from medaug.schema import MAX_ID_CHARS, MAX_RUN_ID_CHARS, Sample, check_id, check_text, conform_table
from review_queue import audit, sql
from review_queue.audit import Event, text_sha256
from review_queue.errors import QueueError
from review_queue.records import PushResult, Refusal
from review_queue.store_base import StoreBase
from review_queue.strata import is_test_model, stratum_of

PRIORITY_MIN, PRIORITY_MAX = -(2**31), 2**31 - 1  # queue_items.priority is a 32-bit INTEGER
_ANALYZE_AFTER = 200  # pushed rows


def check_push_args(run_id: str, priority: int) -> None:
    """The push arguments that go into columns as they are: bounded, so a bad one is a 4xx, not a DB error."""
    if (
        isinstance(priority, bool)
        or not isinstance(priority, int)
        or not PRIORITY_MIN <= priority <= PRIORITY_MAX
    ):
        raise QueueError(f"priority must be an integer from {PRIORITY_MIN} to {PRIORITY_MAX}")
    if not isinstance(run_id, str) or not 1 <= len(run_id) <= MAX_RUN_ID_CHARS:
        raise QueueError(f"run_id must be 1-{MAX_RUN_ID_CHARS} characters")
    try:
        check_text(run_id)
    except ValueError as e:
        raise QueueError(f"run_id: {e}") from None


def _short_id(row: Any) -> str | None:
    """A refused row's id for the answer, only when it is a plausible id (never a huge or odd value)."""
    v = row.get("id") if isinstance(row, dict) else None
    return v if isinstance(v, str) and len(v) <= MAX_ID_CHARS and "\x00" not in v else None


def _parent_view(s: Sample) -> str:
    return json.dumps(
        {
            "id": s.id,
            "instruction": s.instruction,
            "input": s.input,
            "output": s.output,
            "label": s.label.value,
        },
        ensure_ascii=False,
    )


def _chunked(conn: Connection, stmt: Any, name: str, values: Sequence[str]) -> Iterable[Any]:
    for start in range(0, len(values), sql.IN_CHUNK):
        yield from conn.execute(stmt, {name: list(values[start : start + sql.IN_CHUNK])})


class PushOps(StoreBase):
    def push(
        self,
        data: pa.Table | Iterable[Sample],
        *,
        run_id: str,
        priority: int = 0,
        actor: str = "pipeline",
        batch_size: int = 2000,
    ) -> PushResult:
        """Queue de-identified samples once each; samples without a de-identification record are refused.

        The whole batch is validated first and stored in one transaction, so a push that fails
        (database error, interrupted connection) stores nothing and can simply be sent again.
        """
        check_push_args(run_id, priority)
        res = PushResult()
        samples: list[tuple[int, Sample]] = []
        rows = conform_table(data).to_pylist() if isinstance(data, pa.Table) else list(data)
        for i, row in enumerate(rows, 1):
            try:
                if isinstance(row, Sample):  # built in Python: model_copy(update=...) skips validation
                    s = row
                    check_id(s.id)
                else:
                    s = Sample.model_validate(row)
            except ValidationError as e:
                err = e.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                res.refusals.append(Refusal(i, _short_id(row), f"{loc}: {err['msg']}"))
                continue
            except ValueError as e:
                res.refusals.append(Refusal(i, None, f"id: {e}"))
                continue
            if s.deid is None:
                res.refusals.append(
                    Refusal(
                        i,
                        s.id,
                        "not de-identified (deid is None): only de-identified text may enter the queue",
                    )
                )
                continue
            samples.append((i, s))
        res.refused = len(res.refusals)
        by_id = {s.id: s for _, s in samples}
        now = self.clock()
        with self.engine.begin() as conn:
            events: list[Event] = []
            seen: set[str] = set()  # ids inserted by this push: a repeat in the batch is already queued
            for start in range(0, len(samples), batch_size):
                batch = [s for _, s in samples[start : start + batch_size]]
                events += self._push_batch(conn, batch, by_id, run_id, priority, actor, res, now, seen)
            if events:
                audit.append(conn, events, at=now)
        if self._pg and res.inserted >= _ANALYZE_AFTER:
            with self.engine.begin() as conn:
                conn.execute(sql.ANALYZE_ITEMS)
        return res

    def _push_batch(
        self,
        conn: Connection,
        batch: list[Sample],
        by_id: dict[str, Sample],
        run_id: str,
        priority: int,
        actor: str,
        res: PushResult,
        now: float,
        seen: set[str],
    ) -> list[Event]:
        """Insert one slice of a push inside the push's transaction; returns its audit events."""
        existing = self._existing(conn, [s.id for s in batch])
        parent_ids = {s.provenance.parent_id for s in batch if s.provenance.parent_id} - by_id.keys()
        stored_parents = {
            r.id: r.sample_json for r in _chunked(conn, sql.SAMPLE_JSON_OF, "ids", list(parent_ids))
        }
        kinds = {s.id: stratum_of(s).key for s in batch}
        held = self._held_strata(conn, set(kinds.values()), now)
        rows, events = [], []
        for s in batch:
            if s.id in existing or s.id in seen:
                res.already_queued += 1
                continue
            seen.add(s.id)
            pid = s.provenance.parent_id
            parent = None
            if pid in by_id:
                parent = _parent_view(by_id[pid])
            elif pid in stored_parents:
                parent = _parent_view(Sample.model_validate_json(stored_parents[pid]))
            status = "held" if kinds[s.id] in held else "open"
            sample_json = s.model_dump_json()
            rows.append(
                {
                    "id": s.id,
                    "run_id": run_id,
                    "priority": priority,
                    "area": s.area.value,
                    "task": s.task.value,
                    "label": s.label.value,
                    "status": status,
                    "reviews_done": 0,
                    "sample_json": sample_json,
                    "parent_json": parent,
                    "pushed_at": now,
                    "stratum": kinds[s.id],
                    "test_model": is_test_model(s.provenance.model),
                }
            )
            # The pushed text's digest (never the text): verify finds a sample edited in the table.
            shown: dict[str, Any] = {
                "run_id": run_id,
                "priority": priority,
                "sample_sha256": text_sha256(sample_json),
            }
            events.append(
                Event(
                    actor,
                    "push",
                    s.id,
                    None,
                    shown | ({"status": "held", "stratum": kinds[s.id]} if status == "held" else {}),
                )
            )
        if rows:
            conn.execute(sql.push_items(self._pg), rows)
        res.inserted += len(rows)
        return events

    @staticmethod
    def _existing(conn: Connection, ids: Sequence[str]) -> set[str]:
        return {r.id for r in _chunked(conn, sql.QUEUED_IDS, "ids", list(ids))}

    def _held_strata(self, conn: Connection, keys: set[str], now: float) -> set[str]:
        """Record strata seen for the first time; return those of `keys` that are held."""
        if not keys:
            return set()
        conn.execute(sql.record_strata(self._pg), [{"stratum": k, "first_seen": now} for k in sorted(keys)])
        return {r.stratum for r in _chunked(conn, sql.HELD_AMONG, "keys", sorted(keys))}

    def queued_ids(self, ids: Iterable[str]) -> set[str]:
        with self.engine.connect() as conn:
            return self._existing(conn, list(ids))
