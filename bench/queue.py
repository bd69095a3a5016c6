"""Review-queue benchmark: pull+submit operations per second with many concurrent reviewers on PostgreSQL.

Both sides run the same protocol on the same schema (created by the queue's Alembic
migration) in fresh databases, with the same number of reviewer threads and connections:
  ours      review_queue.store.QueueStore (SQLAlchemy Core, decision validation, audit chain)
  bare SQL  psycopg with hand-written SQL doing the same transactions: lease with
            FOR UPDATE SKIP LOCKED, insert the review, finalise on the second approval,
            append the hash-chained audit rows under the head-row lock
Every item is reviewed by two different reviewers (batch size 1: one pull = one op,
one submit = one op). Latency is per operation, measured in the reviewer thread.
Samples come from the MedicalGPT SFT sample under --data (read at run time), repeated
with a numbered suffix to reach --items.

  python bench/queue.py --items 3000 --reviewers 64
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named queue.py: drop its folder from the path so `import queue` finds the standard library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import queue  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from medaug.io import read_samples  # noqa: E402
from medaug.schema import DeidEntity, Sample  # noqa: E402
from review_queue.audit import row_hash  # noqa: E402
from review_queue.decisions import Decision  # noqa: E402
from review_queue.store import QueueStore  # noqa: E402

APPROVE = Decision(decision="approve")


def load_samples(data: Path, n: int) -> list[Sample]:
    base = read_samples(data / "medicalgpt_sft_sample" / "medical_sft_1K_format.jsonl").samples
    assert base, f"no samples read from {data}"
    out = []
    for i in range(n):
        s = base[i % len(base)]
        out.append(Sample(instruction=f"{s.instruction}（{i}）", output=s.output, deid=[DeidEntity(entity="PERSON",
                                                                                                       count=0)]))
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


def drive(reviewers: int, pull: Callable[[str], str | None], submit: Callable[[str, str], None],
          open_left: Callable[[], int]) -> tuple[float, list[float]]:
    """Run reviewer threads until every item has two reviews; returns (seconds, per-op latencies)."""
    lat: list[list[float]] = [[] for _ in range(reviewers)]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        me, mine = f"rev{i:02d}", lat[i]
        try:
            while True:
                t0 = time.perf_counter()
                item = pull(me)
                t1 = time.perf_counter()
                if item is None:
                    if open_left() == 0:
                        return
                    time.sleep(0.005)
                    continue
                mine.append(t1 - t0)
                submit(me, item)
                mine.append(time.perf_counter() - t1)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(reviewers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - start
    if errors:
        raise errors[0]
    return took, [x for xs in lat for x in xs]


def run_ours(url: str, samples: list[Sample], reviewers: int, conns: int) -> tuple[float, list[float]]:
    store = QueueStore.open(url, lease_seconds=600, engine_kwargs={"pool_size": conns, "max_overflow": 0})
    store.push(samples, run_id="bench")

    def pull(me: str) -> str | None:
        got = store.pull(me, 1)
        return got[0].id if got else None

    try:
        return drive(reviewers, pull, lambda me, item: (store.submit(me, item, APPROVE), None)[1],
                     lambda: store.counts().get("open", 0))
    finally:
        assert store.counts() == {"final": len(samples)}, store.counts()
        store.close()


class BareSql:
    """The same transactions in hand-written SQL over plain psycopg connections."""

    def __init__(self, url: str, conns: int):
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        self.pool: queue.Queue[psycopg.Connection] = queue.Queue()
        for _ in range(conns):
            self.pool.put(psycopg.connect(dsn))

    @contextmanager
    def tx(self) -> Iterator[psycopg.Cursor]:
        conn = self.pool.get()
        try:
            with conn.transaction(), conn.cursor() as cur:
                yield cur
        finally:
            self.pool.put(conn)

    @staticmethod
    def _audit(cur: psycopg.Cursor, actor: str, action: str, item: str, before: dict, after: dict,
               now: float) -> None:
        cur.execute("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
        seq, prev = cur.fetchone()
        seq += 1
        at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        b, a = json.dumps(before, sort_keys=True), json.dumps(after, sort_keys=True)
        h = row_hash(seq, at, actor, action, item, b, a, prev)
        cur.execute("INSERT INTO audit_log (seq, at, actor, action, item_id, before, after, prev_hash, hash) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", (seq, at, actor, action, item, b, a, prev, h))
        cur.execute("UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1", (seq, h))

    def pull(self, me: str) -> str | None:
        now = time.time()
        with self.tx() as cur:
            cur.execute("SELECT id, lease_owner FROM queue_items WHERE status = 'open' "
                        "AND coalesce(first_reviewer, '') <> %s AND (lease_owner IS NULL OR lease_expires < %s) "
                        "ORDER BY priority DESC, pushed_at, id LIMIT 1 FOR UPDATE SKIP LOCKED", (me, now))
            row = cur.fetchone()
            if row is None:
                return None
            cur.execute("UPDATE queue_items SET lease_owner = %s, lease_started = %s, lease_expires = %s "
                        "WHERE id = %s", (me, now, now + 600, row[0]))
            self._audit(cur, me, "lease", row[0], {"lease_owner": None}, {"lease_owner": me}, now)
        return row[0]

    def submit(self, me: str, item: str) -> None:
        now = time.time()
        with self.tx() as cur:
            cur.execute("SELECT status, reviews_done, lease_owner, lease_started FROM queue_items "
                        "WHERE id = %s FOR UPDATE", (item,))
            status, done, owner, started = cur.fetchone()
            assert status == "open" and owner == me
            payload = '{"decision":"approve"}'
            cur.execute("INSERT INTO reviews (item_id, reviewer, decision, payload, leased_at, submitted_at) "
                        "VALUES (%s, %s, 'approve', %s, %s, %s)", (item, me, payload, started, now))
            if done == 0:
                cur.execute("UPDATE queue_items SET reviews_done = 1, first_reviewer = %s, lease_owner = NULL, "
                            "lease_started = NULL, lease_expires = NULL WHERE id = %s", (me, item))
                new = "open"
            else:
                cur.execute("SELECT decision FROM reviews WHERE item_id = %s AND reviewer <> %s", (item, me))
                agreed = cur.fetchone()[0] == "approve"
                cur.execute("SELECT sample_json FROM queue_items WHERE id = %s", (item,))
                final = cur.fetchone()[0]
                new = "final" if agreed else "arbitration"
                cur.execute("UPDATE queue_items SET reviews_done = 2, second_reviewer = %s, agreed = %s, "
                            "status = %s, outcome = 'approved', final_json = %s, finalized_at = %s, "
                            "lease_owner = NULL, lease_started = NULL, lease_expires = NULL WHERE id = %s",
                            (me, agreed, new, final, now, item))
            self._audit(cur, me, "submit", item, {"status": status, "reviews_done": done},
                        {"status": new, "review": {"decision": "approve"}}, now)

    def open_left(self) -> int:
        with self.tx() as cur:
            cur.execute("SELECT count(*) FROM queue_items WHERE status = 'open'")
            return cur.fetchone()[0]

    def close(self) -> None:
        while not self.pool.empty():
            self.pool.get().close()


def run_bare(url: str, samples: list[Sample], reviewers: int, conns: int) -> tuple[float, list[float]]:
    QueueStore.open(url).push(samples, run_id="bench")  # same schema and rows; only the review loop is timed
    bare = BareSql(url, conns)
    try:
        return drive(reviewers, bare.pull, bare.submit, bare.open_left)
    finally:
        assert bare.open_left() == 0
        bare.close()


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--items", type=int, default=3000, help="items, each reviewed twice (ops = 4 × items)")
    ap.add_argument("--reviewers", type=int, default=64)
    ap.add_argument("--connections", type=int, default=32, help="database connections shared by the reviewers")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                    help="admin URL; fresh databases are created beside it and dropped")
    args = ap.parse_args()
    samples = load_samples(args.data, args.items)
    results = {}
    for name, fn in (("bare", run_bare), ("ours", run_ours)):
        with fresh_db(args.pg) as url:
            took, lat = fn(url, samples, args.reviewers, args.connections)
        ops = len(lat)
        results[name] = (ops / took, pct(lat, 0.5), pct(lat, 0.99))
        print(f"{name:5s} {ops} ops in {took:.2f}s: {ops / took:,.0f} ops/s  p50 {results[name][1]:.1f} ms  "
              f"p99 {results[name][2]:.1f} ms")
    ratio = results["ours"][0] / results["bare"][0]
    print(f"ours / bare SQL = {ratio:.2f}x")
    print(f"RESULT ours_ops_per_s={results['ours'][0]:.0f} bare_ops_per_s={results['bare'][0]:.0f} "
          f"ratio={ratio:.2f} ours_p50_ms={results['ours'][1]:.1f} ours_p99_ms={results['ours'][2]:.1f} "
          f"bare_p50_ms={results['bare'][1]:.1f} bare_p99_ms={results['bare'][2]:.1f} "
          f"reviewers={args.reviewers} items={args.items}")


if __name__ == "__main__":
    main()
