"""The CLI's service commands (pull, submit, stats) and the lease sweep, against a real uvicorn server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import sqlalchemy as sa
from queue_samples import make_samples
from queue_server import serving
from typer.testing import CliRunner

from medaug.cli import app
from review_queue.db import audit_log, items
from review_queue.store import QueueStore

runner = CliRunner()


def _cli(url: str, token: str, *args: str, stdin: str | None = None):
    return runner.invoke(app, ["queue", *args, "--url", url, "--token", token], input=stdin)


def test_pull_submit_stats_through_the_cli(store: QueueStore, tmp_path: Path) -> None:
    a, b = make_samples(2)
    store.push([a, b], run_id="r")
    ann, bob, boss = (
        store.add_user(n, r) for n, r in (("ann", "reviewer"), ("bob", "reviewer"), ("max", "maintainer"))
    )
    approve = tmp_path / "approve.json"
    approve.write_text('{"decision": "approve"}', encoding="utf-8")
    with serving(store) as url:
        r = _cli(url, ann, "pull", "--size", "2")
        assert r.exit_code == 0, r.stderr
        pulled = [json.loads(line) for line in r.stdout.splitlines()]
        assert sorted(p["id"] for p in pulled) == sorted([a.id, b.id])  # same push: ordered by id
        by_id = {p["id"]: p for p in pulled}
        assert by_id[a.id]["sample"]["instruction"] == a.instruction and by_id[a.id]["reviews"] == []

        r = _cli(url, ann, "submit", a.id, str(approve))
        assert r.exit_code == 0 and json.loads(r.stdout) == {"id": a.id, "status": "open"}
        r = _cli(url, ann, "submit", b.id, "-", stdin='{"decision": "reject", "reject_reason": "duplicate"}')
        assert r.exit_code == 0 and json.loads(r.stdout) == {"id": b.id, "status": "open"}

        r = _cli(url, bob, "pull", "--size", "5")
        assert r.exit_code == 0 and len(r.stdout.splitlines()) == 2
        assert json.loads(_cli(url, bob, "submit", a.id, str(approve)).stdout)["status"] == "final"
        assert json.loads(_cli(url, bob, "submit", b.id, str(approve)).stdout)["status"] == "arbitration"

        r = _cli(url, boss, "stats")
        assert r.exit_code == 0, r.stderr
        assert "'final': 1" in r.stdout and "'arbitration': 1" in r.stdout
        assert "ann" in r.stdout and "bob" in r.stdout and "ann / bob" in r.stdout

    with store.engine.connect() as c:
        got = c.execute(sa.select(items.c.id, items.c.status, items.c.first_reviewer)).all()
    assert sorted(map(tuple, got)) == sorted([(a.id, "final", "ann"), (b.id, "arbitration", "ann")])


def test_cli_errors_name_the_problem(store: QueueStore, tmp_path: Path) -> None:
    (a,) = make_samples(1)
    store.push([a], run_id="r")
    ann, boss = store.add_user("ann", "reviewer"), store.add_user("max", "maintainer")
    broken = tmp_path / "decision.json"
    broken.write_text('{"decision":\n  approve}', encoding="utf-8")
    with serving(store) as url:
        r = _cli(url, "not-a-token", "pull")
        assert r.exit_code == 1 and "error 401" in r.stderr and "unknown token" in r.stderr
        r = _cli(url, ann, "stats")
        assert r.exit_code == 1 and "error 403" in r.stderr
        r = _cli(url, boss, "pull")
        assert r.exit_code == 1 and "error 403" in r.stderr
        r = _cli(url, ann, "submit", a.id, str(broken))
        assert r.exit_code == 2 and "decision.json" in r.stderr and "line 2" in r.stderr
        r = _cli(url, ann, "submit", a.id, "-", stdin='{"decision": "approve"}')
        assert r.exit_code == 1 and "error 403" in r.stderr and "not leased to ann" in r.stderr
        r = _cli(url, "", "pull")
        assert r.exit_code == 2 and "no token" in r.stderr
    assert store.counts() == {"open": 1}


def _expire_rows(store: QueueStore) -> list[sa.Row]:
    with store.engine.connect() as c:
        return c.execute(sa.select(audit_log).where(audit_log.c.action == "expire")).all()


def _lease_owner(store: QueueStore, item_id: str) -> str | None:
    with store.engine.connect() as c:
        return c.execute(sa.select(items.c.lease_owner).where(items.c.id == item_id)).scalar_one()


def test_the_sweep_expires_leases_nobody_repulls_and_stops_with_the_server(store: QueueStore) -> None:
    store.push(make_samples(3), run_id="r")
    store.lease_seconds = 0.3
    with serving(store):  # no sweep configured: an expired lease stays until someone pulls
        first = store.pull("ann", 1)[0].id
        time.sleep(1.0)
        assert _expire_rows(store) == [] and _lease_owner(store, first) == "ann"
    with serving(store, sweep_seconds=0.1):
        deadline = time.monotonic() + 30
        while not _expire_rows(store):
            assert time.monotonic() < deadline, "the sweep never expired the lease"
            time.sleep(0.05)
        (row,) = _expire_rows(store)
        assert (
            row.item_id == first and row.actor == "system" and json.loads(row.before)["lease_owner"] == "ann"
        )
        assert _lease_owner(store, first) is None
        assert (
            store.pull("bob", 1)[0].id == first
        )  # back in the pool: bob gets it, and the sweep expires it again
        while len(_expire_rows(store)) < 2:
            assert time.monotonic() < deadline, "the sweep stopped while the server runs"
            time.sleep(0.05)
    assert store.pull("cat", 1)[0].id == first  # the server is stopped: nothing sweeps this lease any more
    time.sleep(1.0)
    assert len(_expire_rows(store)) == 2 and _lease_owner(store, first) == "cat"
    assert store.audit_verify().ok
