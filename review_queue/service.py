"""HTTP service: the review protocol over JSON (OpenAPI at /docs) plus the physicians' web page.

Every endpoint authenticates a bearer token and checks the caller's role; a reviewer
only ever reads items leased to them, and reviews are shown only to the arbiter of a
disputed item. Store errors map to 4xx with a message naming the item and field; a bad
request body gets the locations and messages of what is wrong, never its values echoed
back. Bodies are size-capped, and every response carries the security headers below.
(No `from __future__ import annotations`: FastAPI must resolve the dependency aliases
defined inside create_app.)
"""

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError

from medaug.schema import Area, Label, RunId, Sample, Task
from review_queue.decisions import Decision, RejectReason
from review_queue.errors import QueueError
from review_queue.http_guards import (
    DEFAULT_MAX_BODY_BYTES,
    MAX_PUSH_SAMPLES,
    BodyLimit,
    SecurityHeaders,
    check_item_id,
    clip,
    validation_answer,
)
from review_queue.icd10 import load_codes, search
from review_queue.store import PRIORITY_MAX, PRIORITY_MIN, LeasedItem, QueueStore, User
from review_queue.strata import is_test_model

log = logging.getLogger(__name__)
DEFAULT_SWEEP_SECONDS = 60.0

PERMISSIONS = {
    "reviewer": {"review"},
    "arbiter": {"review", "arbitrate"},
    "maintainer": {"stats", "audit", "push", "strata"},
    "admin": {"review", "arbitrate", "stats", "audit", "push", "strata"},
}


class PullRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int = Field(default=10, ge=1, le=500)
    area: list[Area] | None = None
    task: list[Task] | None = None
    label: list[Label] | None = None


class PushRequest(BaseModel):
    """A batch of samples from a pipeline job; validated whole before anything is queued."""

    model_config = ConfigDict(extra="forbid")

    run_id: RunId
    priority: int = Field(default=0, ge=PRIORITY_MIN, le=PRIORITY_MAX)  # queue_items.priority is 32-bit
    samples: list[Sample] = Field(max_length=MAX_PUSH_SAMPLES)


class ArbitrationPull(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int = Field(default=10, ge=1, le=500)


class StratumRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stratum: str = Field(min_length=1, max_length=255)


class ExtendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)


def _item_out(item: LeasedItem, now: float) -> dict[str, Any]:
    return {
        "id": item.id,
        "status": item.status,
        "lease_expires": item.lease_expires,
        "lease_seconds_left": max(item.lease_expires - now, 0.0),
        "sample": item.sample.model_dump(mode="json"),
        "parent": item.parent,
        "test_model": is_test_model(item.sample.provenance.model),
        "reviews": [
            {
                "reviewer": r.reviewer,
                "decision": r.decision,
                "submitted_at": r.submitted_at.isoformat(),
                "payload": r.payload,
            }
            for r in item.reviews
        ],
    }


async def sweep_expired(store: QueueStore, every: float) -> None:
    """Return expired leases to the pool every `every` seconds.

    A pull takes expired items directly, but when nobody pulls, an expired lease would get
    its "expire" audit row only at the next pull or stats call; the sweep records it on time.
    A failed sweep (database briefly unreachable) is logged and retried at the next tick.
    """
    while True:
        await asyncio.sleep(every)
        try:
            n = await asyncio.to_thread(store.expire_leases)
        except Exception:  # noqa: BLE001 - the service keeps running; the next sweep retries
            log.exception("lease sweep failed")
            continue
        if n:
            log.info("lease sweep returned %d expired item(s) to the pool", n)


def create_app(
    store: QueueStore,
    *,
    icd10_path: Path | None = None,
    sweep_seconds: float | None = DEFAULT_SWEEP_SECONDS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    releases: Path | None = None,
) -> FastAPI:
    """The API and page over `store`; with `sweep_seconds`, a background sweep expires leases while it runs.

    `releases`: the datasets root whose released rows the evidence compares candidates with.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(sweep_expired(store, sweep_seconds)) if sweep_seconds else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass

    app = FastAPI(
        title="medaug review queue",
        version="1",
        description="Physician correction queue (two independent reviews, arbitration, hash-chained audit).",
        lifespan=lifespan,
    )
    codes = load_codes(icd10_path)
    from review_queue.evidence import Released

    released = Released(releases) if releases is not None else None
    static = resources.files("review_queue") / "static"

    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(QueueError)
    async def _queue_error(_: Request, exc: QueueError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": clip(str(exc), 2000)})

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes every input value: huge, and unserialisable for NaN or surrogates.
        return JSONResponse(status_code=422, content=validation_answer(list(exc.errors())))

    @app.exception_handler(DataError)
    async def _data_error(_: Request, exc: DataError) -> JSONResponse:
        # A value the request models let through but the database refuses: still the caller's input.
        log.warning("database refused a value: %s", clip(str(exc.orig), 500))
        return JSONResponse(
            status_code=422,
            content={
                "detail": "a value does not fit the database (too long, out of range or containing NUL)"
            },
        )

    def current_user(authorization: Annotated[str | None, Header()] = None) -> User:
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(
                401,
                "missing bearer token (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        user = store.authenticate(authorization.removeprefix("Bearer ").strip())
        if user is None:
            raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
        return user

    def need(permission: str) -> Any:
        def check(user: Annotated[User, Depends(current_user)]) -> User:
            if permission not in PERMISSIONS.get(user.role, set()):
                raise HTTPException(403, f"role {user.role} may not {permission}")
            return user

        return Depends(check)

    Reviewer = Annotated[User, need("review")]
    Arbiter = Annotated[User, need("arbitrate")]

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/api/me")
    def me(user: Annotated[User, Depends(current_user)]) -> dict[str, Any]:
        return {
            "name": user.name,
            "role": user.role,
            "permissions": sorted(PERMISSIONS.get(user.role, set())),
            "lease_seconds": store.lease_seconds,
        }

    @app.get("/api/reject-reasons")
    def reject_reasons(_: Annotated[User, Depends(current_user)]) -> list[str]:
        return [r.value for r in RejectReason]

    @app.get("/api/icd10")
    def icd10(
        _: Annotated[User, Depends(current_user)], q: str = Query("", max_length=100)
    ) -> list[dict[str, str]]:
        return [{"code": c, "name": n} for c, n in search(codes, q)]

    @app.post("/api/push")
    def push(body: PushRequest, user: Annotated[User, need("push")]) -> dict[str, Any]:
        """Idempotent on sample id: a job that lost its connection simply sends the batch again."""
        res = store.push(body.samples, run_id=body.run_id, priority=body.priority, actor=user.name)
        return {
            "inserted": res.inserted,
            "already_queued": res.already_queued,
            "refused": res.refused,
            "refusals": [{"row": r.row, "id": r.id, "reason": r.reason} for r in res.refusals],
        }

    @app.post("/api/pull")
    def pull(body: PullRequest, user: Reviewer) -> dict[str, Any]:
        got = store.pull(user.name, body.size, area=body.area, task=body.task, label=body.label)
        now = store.clock()
        return {"items": [_item_out(i, now) for i in got]}

    @app.get("/api/items")
    def my_items(user: Reviewer) -> dict[str, Any]:
        now = store.clock()
        return {"items": [_item_out(i, now) for i in store.my_items(user.name)]}

    @app.get("/api/items/{item_id:path}/evidence")
    def item_evidence(item_id: str, user: Reviewer) -> dict[str, Any]:
        """What changed against the parent, why, the facts, the checks and the nearest queued neighbours."""
        from review_queue.evidence import evidence

        item = store.get_leased(user.name, check_item_id(item_id))
        return evidence(store.engine, item.id, item.sample, item.parent, released)

    @app.get("/api/items/{item_id:path}")
    def get_item(item_id: str, user: Reviewer) -> dict[str, Any]:
        return _item_out(store.get_leased(user.name, check_item_id(item_id)), store.clock())

    @app.post("/api/items/{item_id:path}/extend")
    def extend(item_id: str, user: Reviewer, body: ExtendRequest | None = None) -> dict[str, Any]:
        expires = store.extend(user.name, check_item_id(item_id), body.seconds if body else None)
        return {"id": item_id, "lease_expires": expires, "lease_seconds_left": expires - store.clock()}

    @app.post("/api/items/{item_id:path}/release")
    def release(item_id: str, user: Reviewer) -> dict[str, Any]:
        store.release(user.name, check_item_id(item_id))
        return {"id": item_id, "released": True}

    @app.post("/api/items/{item_id:path}/submit")
    def submit(item_id: str, body: Decision, user: Reviewer) -> dict[str, Any]:
        res = store.submit(user.name, check_item_id(item_id), body)
        return {"id": res.item_id, "status": res.status}

    @app.post("/api/arbitration/pull")
    def arbitration_pull(body: ArbitrationPull, user: Arbiter) -> dict[str, Any]:
        now = store.clock()
        return {"items": [_item_out(i, now) for i in store.pull_arbitration(user.name, body.size)]}

    @app.post("/api/items/{item_id:path}/arbitrate")
    def arbitrate(item_id: str, body: Decision, user: Arbiter) -> dict[str, Any]:
        res = store.arbitrate(user.name, check_item_id(item_id), body)
        return {"id": res.item_id, "status": res.status}

    @app.get("/api/stats")
    def stats(_: Annotated[User, need("stats")]) -> dict[str, Any]:
        store.expire_leases()
        return store.stats()

    @app.get("/api/strata")
    def strata(_: Annotated[User, need("stats")]) -> dict[str, Any]:
        """Every stratum with its counts, approval (Wilson bounds), hold state and review minutes."""
        hold = store.hold
        return {
            "strata": store.strata_report(),
            "policy": None
            if hold is None
            else {"threshold": hold.threshold, "min_decisions": hold.min_decisions, "z": hold.z},
        }

    @app.post("/api/strata/release")
    def strata_release(body: StratumRequest, user: Annotated[User, need("strata")]) -> dict[str, Any]:
        return {
            "stratum": body.stratum,
            "released_items": store.release_stratum(body.stratum, actor=user.name),
        }

    @app.post("/api/strata/hold")
    def strata_hold(body: StratumRequest, user: Annotated[User, need("strata")]) -> dict[str, Any]:
        return {"stratum": body.stratum, "held_items": store.hold_stratum(body.stratum, actor=user.name)}

    @app.get("/api/audit/verify")
    def audit_verify(_: Annotated[User, need("audit")]) -> dict[str, Any]:
        res = store.audit_verify()
        return {"ok": res.ok, "rows": res.rows, "problems": res.problems}

    @app.get("/api/audit/export")
    def audit_export(user: Annotated[User, need("audit")]) -> Response:
        """The log as JSONL; for a caller who may also review (admin), without the rows about items they
        could still review (blind review; see QueueStore.audit_export)."""
        buf = io.StringIO()
        blind = user.name if "review" in PERMISSIONS.get(user.role, set()) else None
        store.audit_export(buf, actor=user.name, blind_for=blind)
        return Response(buf.getvalue(), media_type="application/x-ndjson; charset=utf-8")

    return app
