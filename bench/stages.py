"""Ray overheads that the scale model (docs/scaling.md) needs, each against doing the same in-process.

    python bench/stages.py --rows 20000

Measures: starting a local Ray, starting an actor, an actor call round trip vs a plain call, and
Ray Data `map_batches` over a sample table vs calling the same batch function directly. Ends with
one RESULT line.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]


class Echo:
    def ping(self, x: int) -> int:
        return x


def _batch_fn(batch: pa.Table) -> pa.Table:
    import pyarrow.compute as pc

    return batch.append_column("n", pc.utf8_length(batch.column("text")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=REPO.parent / "shared" / "data", help="unused; kept for symmetry"
    )
    ap.add_argument("--rows", type=int, default=20000, help="rows through map_batches")
    ap.add_argument("--calls", type=int, default=200, help="actor round trips")
    args = ap.parse_args()

    from medaug.ray_env import init_ray

    t = time.perf_counter()
    init_ray(num_cpus=2)
    import ray

    init_s = time.perf_counter() - t
    t = time.perf_counter()
    actor = ray.remote(Echo).options(num_cpus=0).remote()
    ray.get(actor.ping.remote(0))
    actor_start_s = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(args.calls):
        ray.get(actor.ping.remote(i))
    call_ms = (time.perf_counter() - t) / args.calls * 1000
    local = Echo()
    t = time.perf_counter()
    for i in range(args.calls):
        local.ping(i)
    local_ms = max((time.perf_counter() - t) / args.calls * 1000, 1e-6)

    table = pa.table({"text": [f"患者男性{i % 90}岁，胸口疼三天，伴气短。" * 3 for i in range(args.rows)]})
    t = time.perf_counter()
    direct = _batch_fn(table)
    direct_s = time.perf_counter() - t
    t = time.perf_counter()
    ds = (
        ray.data.from_arrow(table)
        .repartition(4)
        .map_batches(_batch_fn, batch_format="pyarrow", batch_size=4096)
    )
    out = pa.concat_tables([ray.get(r) for r in ds.to_arrow_refs()])
    ray_s = time.perf_counter() - t
    assert out.num_rows == direct.num_rows
    print(f"ray.init (local, 2 CPUs)      {init_s:8.2f} s")
    print(f"actor start + first call      {actor_start_s:8.2f} s")
    print(f"actor call round trip         {call_ms:8.2f} ms   (plain call {local_ms * 1000:.2f} us)")
    print(f"map_batches {args.rows} rows        {ray_s:8.2f} s    (direct {direct_s:.3f} s)")
    print(
        f"RESULT rows={args.rows} ray_init_s={init_s:.2f} actor_start_s={actor_start_s:.2f} "
        f"actor_call_ms={call_ms:.2f} map_batches_s={ray_s:.2f} direct_s={direct_s:.3f} "
        f"map_batches_overhead_ratio={ray_s / max(direct_s, 1e-6):.0f}"
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
