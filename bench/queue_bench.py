"""Review-queue benchmark: pull+submit operations per second with many concurrent reviewers on PostgreSQL.

Both sides run the same protocol on the same schema (created by the queue's Alembic
migrations) in fresh databases, with the same reviewers, processes and connections:
  ours      review_queue.store.QueueStore (SQLAlchemy Core, sample and decision validation,
            audit chain)
  bare SQL  psycopg with hand-written SQL doing the same transactions in the fewest round
            trips: lease with one UPDATE .. FROM (SELECT .. FOR UPDATE SKIP LOCKED) RETURNING,
            lock the row on submit, insert the review, finalise on the second approval, and
            append the HMAC-chained audit rows under a free head's lock (the same chains,
            sequence and keyed hashes as ours, written with the item changes in one statement),
            with the same lease cap, BEGIN sent with each transaction's first statement, and
            lease transactions committed without waiting for the WAL flush
Every item is reviewed by two different reviewers (batch size 1: one pull = one op, one
submit = one op). Reviewers are threads spread over --procs processes, so one client's
GIL is not what is measured on a small machine. Latency is per operation, measured in
the reviewer thread. Each side runs --repeat times (alternating, fresh databases); the
figures are medians over the repeats. Samples come from the MedicalGPT SFT sample under
--data (read at run time), repeated with a numbered suffix to reach --items.

Where the latency tail came from (2-core machine shared with other jobs, load 25-50): the
pool (64 reviewers on 32 connections: p99 2 s, the thread that returns a connection takes it
again; one connection per reviewer: 0.45 s), a cold start (every thread compiling the same
statements and opening its connection at once: seconds for the first operations; now
compiled once under a lock and warmed before the clock starts, as `medaug queue serve`
does), the WAL flush of every commit (5 ms median, 20 ms p99 here, on half the commits
before leases stopped waiting for it), 0.25 ms of client CPU per statement spent building
psycopg column descriptions, and writers waiting for a busy audit head (a new chain now).
What remains is the machine: most connections sit "idle in transaction" waiting for a
client process to get a core.

  python bench/queue_bench.py --items 3000 --reviewers 64 --procs 4 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import secrets
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg
import sqlalchemy as sa

from medaug.io import read_samples
from medaug.schema import DeidEntity, Sample
from review_queue.audit import KEY_ENV, row_hash
from review_queue.db import make_engine
from review_queue.decisions import Decision
from review_queue.store import QueueStore

REPO = Path(__file__).resolve().parents[1]

APPROVE = Decision(decision="approve")
CAP = 50  # the lease cap both sides enforce (the store's default)
OPEN_LEFT = "SELECT count(*) FROM queue_items WHERE status = 'open'"


def load_samples(data: Path, n: int) -> list[Sample]:
    base = read_samples(data / "medicalgpt_sft_sample" / "medical_sft_1K_format.jsonl").samples
    assert base, f"no samples read from {data}"
    out = []
    for i in range(n):
        s = base[i % len(base)]
        out.append(
            Sample(
                instruction=f"{s.instruction}（{i}）",
                output=s.output,
                deid=[DeidEntity(entity="PERSON", count=0)],
            )
        )
    return out


@contextmanager
def fresh_db(admin_url: str) -> Iterator[str]:
    name = f"medaug_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Side(Protocol):
    """One implementation of the reviewer loop's operations, opened inside a reviewer process."""

    def pull(self, me: str) -> str | None: ...

    def submit(self, me: str, item: str) -> None: ...

    def open_left(self) -> int: ...

    def close(self) -> None: ...


class Ours:
    def __init__(self, url: str, conns: int):
        self.store = QueueStore(make_engine(url, pool_size=conns, max_overflow=0), lease_seconds=600)
        self.store.warm(
            conns
        )  # as `medaug queue serve` does; the bare side opens its connections up front too

    def pull(self, me: str) -> str | None:
        got = self.store.pull(me, 1)
        return got[0].id if got else None

    def submit(self, me: str, item: str) -> None:
        self.store.submit(me, item, APPROVE)

    def open_left(self) -> int:  # the harness's stop check, the same query as the bare side's (not timed)
        with self.store.engine.connect() as conn:
            return conn.exec_driver_sql(OPEN_LEFT).scalar_one()

    def close(self) -> None:
        self.store.close()


_FREE_HEAD = (
    "WITH h AS MATERIALIZED (SELECT id, hash FROM audit_head ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "SELECT h.id, h.hash, ARRAY(SELECT nextval('audit_log_seq') FROM generate_series(1, %s)) FROM h"
)
_ONE_HEAD = (
    "WITH h AS MATERIALIZED (SELECT id, hash FROM audit_head WHERE id = %s FOR UPDATE) "
    "SELECT h.id, h.hash, ARRAY(SELECT nextval('audit_log_seq') FROM generate_series(1, %s)) FROM h"
)
_NEW_HEAD = (
    "WITH h AS (INSERT INTO audit_head (id, seq, hash) SELECT coalesce(max(id), 0) + 1, 0, repeat('0', 64) "
    "FROM audit_head HAVING coalesce(max(id), 0) < 256 ON CONFLICT (id) DO NOTHING RETURNING id, hash) "
    "SELECT h.id, h.hash, ARRAY(SELECT nextval('audit_log_seq') FROM generate_series(1, %s)) FROM h"
)
_AUDIT_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_AUDIT_INSERT = (
    "INSERT INTO audit_log (seq, at, actor, action, item_id, before, after, prev_hash, hash, chain) VALUES "
)


class BareSql:
    """The same transactions in hand-written SQL over plain psycopg connections."""

    def __init__(self, url: str, conns: int):
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        self.pool: queue.Queue[psycopg.Connection] = queue.Queue()
        self.heads = 0
        self.key = os.environ[KEY_ENV].encode().strip()  # the same keyed hash as ours
        for _ in range(conns):
            self.pool.put(psycopg.connect(dsn))

    @contextmanager
    def tx(self) -> Iterator[psycopg.Cursor]:
        """A transaction whose BEGIN goes out with its first statement (`first`), as ours does."""
        conn = self.pool.get()
        try:
            with conn.cursor() as cur:
                yield cur
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            self.pool.put(conn)

    @staticmethod
    def first(cur: psycopg.Cursor, sql: str, params: tuple) -> None:
        with cur.connection.pipeline():  # BEGIN and the statement in one round trip
            cur.execute(sql, params)

    def _audit(
        self,
        cur: psycopg.Cursor,
        events: list[tuple[str, str, str, dict, dict]],
        now: float,
        writes: list[tuple[str, tuple]],
        *,
        durable: bool = True,
    ) -> None:
        """Lock a free head, then the item writes, audit rows and head update as one statement."""
        cur.execute(_FREE_HEAD, (len(events),))
        row = cur.fetchone()
        if row is None:  # every head busy: start a chain, as ours does
            cur.execute(_NEW_HEAD, (len(events),))
            row = cur.fetchone()
        if row is None:
            cur.execute(_ONE_HEAD, (1 + hash(threading.get_ident()) % 32, len(events)))
            row = cur.fetchone()
        chain, prev, seqs = row[0], row[1], sorted(row[2])
        at = datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds")
        values: list[Any] = []
        for seq, (actor, action, item, before, after) in zip(seqs, events, strict=True):
            b = json.dumps(before, ensure_ascii=False, sort_keys=True)
            a = json.dumps(after, ensure_ascii=False, sort_keys=True)
            h = row_hash(seq, at, actor, action, item, b, a, prev, self.key)
            values += [seq, at, actor, action, item, b, a, prev, h, chain]
            prev = h
        ctes = [f"w{i} AS ({sql})" for i, (sql, _) in enumerate(writes)]
        ctes.append(f"a AS ({_AUDIT_INSERT}{', '.join([_AUDIT_ROW] * len(events))})")
        params = [p for _, ps in writes for p in ps] + values + [seqs[-1], prev, chain]
        soft = "" if durable else " AND set_config('synchronous_commit', 'off', true) IS NOT NULL"  # as ours
        cur.execute(
            f"WITH {', '.join(ctes)} UPDATE audit_head SET seq = %s, hash = %s WHERE id = %s{soft}", params
        )

    def pull(self, me: str) -> str | None:
        now = time.time()
        with self.tx() as cur:
            self.first(
                cur,
                "UPDATE queue_items q SET lease_owner = %s, lease_started = %s, lease_expires = %s "
                "FROM (SELECT id, lease_owner, lease_expires FROM queue_items WHERE status = 'open' "
                "AND coalesce(first_reviewer, '') <> %s AND (lease_owner IS NULL OR lease_expires < %s) "
                "ORDER BY test_model, priority DESC, pushed_at, id LIMIT queue_lease_room(%s, %s, %s, 1) "
                "FOR UPDATE SKIP LOCKED) old "
                "WHERE q.id = old.id RETURNING q.id, q.status, old.lease_owner, old.lease_expires, "
                "q.sample_json, q.parent_json",
                (me, now, now + 600, me, now, me, now, CAP),
            )
            row = cur.fetchone()
            if row is None:
                return None
            item, status, old_owner, old_expires = row[:4]
            events = (
                []
                if old_owner is None
                else [
                    (
                        "system",
                        "expire",
                        item,
                        {"lease_owner": old_owner, "lease_expires": old_expires},
                        {"lease_owner": None},
                    )
                ]
            )
            events.append(
                (
                    me,
                    "lease",
                    item,
                    {"lease_owner": None},
                    {"lease_owner": me, "lease_expires": now + 600, "status": status},
                )
            )
            self._audit(cur, events, now, [], durable=False)  # a lease: no wait for the WAL flush, as ours
        return item

    def submit(self, me: str, item: str) -> None:
        now = time.time()
        with self.tx() as cur:
            self.first(
                cur,
                "SELECT status, reviews_done, lease_owner, lease_started, lease_expires, first_reviewer, "
                "sample_json, (SELECT payload FROM reviews r WHERE r.item_id = q.id ORDER BY r.id LIMIT 1) "
                "FROM queue_items q WHERE id = %s FOR UPDATE OF q",
                (item,),
            )
            status, done, owner, started, expires, first, sample_json, first_payload = cur.fetchone()
            assert status == "open" and owner == me and expires >= now and first != me
            payload = '{"decision":"approve"}'
            writes = [
                (
                    "INSERT INTO reviews (item_id, reviewer, decision, payload, leased_at, submitted_at) "
                    "VALUES (%s, %s, 'approve', %s, %s, %s)",
                    (item, me, payload, started, now),
                )
            ]
            if done == 0:
                writes.append(
                    (
                        "UPDATE queue_items SET reviews_done = 1, first_reviewer = %s, lease_owner = NULL, "
                        "lease_started = NULL, lease_expires = NULL WHERE id = %s",
                        (me, item),
                    )
                )
                new = "open"
            else:
                agreed = json.loads(first_payload)["decision"] == "approve"
                new = "final" if agreed else "arbitration"
                writes.append(
                    (
                        "UPDATE queue_items SET reviews_done = 2, second_reviewer = %s, agreed = %s, "
                        "status = %s, outcome = 'approved', final_json = %s, finalized_at = %s, "
                        "lease_owner = NULL, lease_started = NULL, lease_expires = NULL WHERE id = %s",
                        (me, agreed, new, sample_json, now, item),
                    )
                )
            self._audit(
                cur,
                [
                    (
                        me,
                        "submit",
                        item,
                        {"status": status, "reviews_done": done},
                        {"status": new, "review": {"decision": "approve"}},
                    )
                ],
                now,
                writes,
            )

    def open_left(self) -> int:
        with self.tx() as cur:
            cur.execute(OPEN_LEFT)
            return cur.fetchone()[0]

    def close(self) -> None:
        while not self.pool.empty():
            self.pool.get().close()


SIDES: dict[str, Callable[[str, int], Side]] = {"ours": Ours, "bare": BareSql}


def reviewer_process(
    side: str, url: str, first: int, threads: int, conns: int, ready: Any, go: Any, out: Any
) -> None:
    """Open the side, wait for the common start, run `threads` reviewers; send back (end time, latencies)."""
    impl = SIDES[side](url, conns)
    lat: list[list[float]] = [[] for _ in range(threads)]
    errors: list[str] = []

    def run(i: int) -> None:
        me, mine = f"rev{first + i:02d}", lat[i]
        try:
            while True:
                t0 = time.perf_counter()
                item = impl.pull(me)
                t1 = time.perf_counter()
                if item is None:
                    if impl.open_left() == 0:
                        return
                    time.sleep(0.005)
                    continue
                mine.append(t1 - t0)
                impl.submit(me, item)
                mine.append(time.perf_counter() - t1)
        except BaseException as e:  # noqa: BLE001 - sent to the parent
            errors.append(f"{me}: {type(e).__name__}: {e}")

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    ready.wait()
    go.wait()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    end = time.monotonic()
    impl.close()
    out.put((end, [x for xs in lat for x in xs], errors))


def drive(side: str, url: str, reviewers: int, procs: int, conns: int) -> tuple[float, list[float]]:
    """Run the reviewers until every item has two reviews; returns (seconds, per-op latencies)."""
    ctx = mp.get_context("fork")
    ready, go, out = ctx.Barrier(procs + 1), ctx.Event(), ctx.Queue()
    per = [reviewers // procs + (i < reviewers % procs) for i in range(procs)]
    firsts = [sum(per[:i]) for i in range(procs)]
    ps = [
        ctx.Process(
            target=reviewer_process,
            args=(side, url, firsts[i], per[i], max(1, conns // procs), ready, go, out),
        )
        for i in range(procs)
    ]
    for p in ps:
        p.start()
    ready.wait()
    start = time.monotonic()
    go.set()
    got = [out.get() for _ in ps]
    for p in ps:
        p.join()
    errors = [e for _, _, errs in got for e in errs]
    if errors:
        raise RuntimeError(f"{len(errors)} reviewer(s) failed, first: {errors[0]}")
    return max(end for end, _, _ in got) - start, [x for _, lat, _ in got for x in lat]


def run_side(
    side: str, admin_url: str, samples: list[Sample], reviewers: int, procs: int, conns: int
) -> tuple[float, list[float]]:
    with fresh_db(admin_url) as url:
        store = QueueStore.open(url)
        store.push(samples, run_id="bench")  # same schema and rows; only the review loop is timed
        try:
            return drive(side, url, reviewers, procs, conns)
        finally:
            assert store.counts() == {"final": len(samples)}, store.counts()
            if side == "ours":
                assert store.audit_verify().ok
            store.close()


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--items", type=int, default=3000, help="items, each reviewed twice (ops = 4 × items)")
    ap.add_argument("--reviewers", type=int, default=64)
    ap.add_argument("--procs", type=int, default=4, help="reviewer processes (reviewers are threads in them)")
    ap.add_argument(
        "--connections",
        type=int,
        default=64,
        help="database connections, split over the processes (default: one per reviewer, as the "
        "service's pool covers its worker threads; fewer makes reviewers queue for connections)",
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs per side; medians are reported")
    ap.add_argument(
        "--pg",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="admin URL; fresh databases are created beside it and dropped",
    )
    args = ap.parse_args()
    os.environ.setdefault(
        KEY_ENV, secrets.token_hex(32)
    )  # both sides hash with it; reviewer processes inherit it
    samples = load_samples(args.data, args.items)
    runs: dict[str, list[tuple[float, float, float]]] = {"bare": [], "ours": []}
    for rep in range(args.repeat):
        for name in ("bare", "ours"):
            took, lat = run_side(name, args.pg, samples, args.reviewers, args.procs, args.connections)
            ops = len(lat)
            runs[name].append((ops / took, pct(lat, 0.5), pct(lat, 0.99)))
            print(
                f"run {rep + 1} {name:5s} {ops} ops in {took:.2f}s: {ops / took:,.0f} ops/s  "
                f"p50 {runs[name][-1][1]:.1f} ms  p99 {runs[name][-1][2]:.1f} ms",
                flush=True,
            )
    med = {name: [statistics.median(r[k] for r in rs) for k in range(3)] for name, rs in runs.items()}
    ratios = [o[0] / b[0] for o, b in zip(runs["ours"], runs["bare"], strict=True)]
    ratio = statistics.median(ratios)
    print(
        f"median over {args.repeat} runs: ours {med['ours'][0]:,.0f} ops/s, bare SQL {med['bare'][0]:,.0f} ops/s; "
        f"ours / bare SQL = {ratio:.2f}x (per run: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(
        f"RESULT ours_ops_per_s={med['ours'][0]:.0f} bare_ops_per_s={med['bare'][0]:.0f} "
        f"ratio={ratio:.2f} ours_p50_ms={med['ours'][1]:.1f} ours_p99_ms={med['ours'][2]:.1f} "
        f"bare_p50_ms={med['bare'][1]:.1f} bare_p99_ms={med['bare'][2]:.1f} "
        f"reviewers={args.reviewers} procs={args.procs} items={args.items} repeat={args.repeat}"
    )


if __name__ == "__main__":
    main()
