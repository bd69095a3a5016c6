"""Dedup's Ray path on a 3-node loopback cluster: same result as the local engine, memory per node.

One run: synthetic samples as in bench/dedup.py (real Toyhom sentences, 25 % derived copies),
deduplicated by the local engine in this process, then by `RayEngine` on a Ray cluster of a
head with no CPUs and three worker nodes of one CPU each, all on 127.0.0.1 (ray.cluster_utils,
as tests/cluster do). Memory is sampled every 0.2 s: the driver's RSS, and per worker node the
RSS of its raylet, object store and worker processes together (shared pages counted in each
process, so an upper bound). Prints ours (ray) against local, whether the rejected rows are
identical, and a linear extrapolation of time and memory to --extrapolate rows (the driver
holds every row's normalised text and band keys, so its memory grows with the input).

  python bench/dedup_ray.py --n 200000
"""

from __future__ import annotations

import argparse
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from dedup import load_sentences, synthesize  # noqa: E402

from curation.dedup import DedupConfig, run_dedup  # noqa: E402
from curation.dedup.stage import LocalEngine  # noqa: E402
from medaug.ray_env import apply_loopback_env  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree_rss(pids: list[int]) -> int:
    total = 0
    seen: set[int] = set()
    for pid in pids:
        try:
            procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in procs:
            if p.pid in seen:
                continue
            seen.add(p.pid)
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
    return total


class Sampler(threading.Thread):
    """Peak RSS of the driver and of each worker node's process tree."""

    def __init__(self, nodes: dict[str, list[int]]):
        super().__init__(daemon=True)
        self.nodes, self.peak = nodes, {k: 0 for k in ("driver", *nodes)}
        self.idle = self.sample()  # before the run: Ray's own processes, this process's imports
        self.stop = threading.Event()

    def sample(self) -> dict[str, int]:
        out = {"driver": psutil.Process().memory_info().rss}
        out.update({name: _tree_rss(pids) for name, pids in self.nodes.items()})
        return out

    def run(self) -> None:
        while not self.stop.is_set():
            for name, rss in self.sample().items():
                self.peak[name] = max(self.peak[name], rss)
            time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--object-store-mb", type=int, default=1024)
    ap.add_argument("--extrapolate", type=int, default=10_000_000)
    args = ap.parse_args()
    cfg = DedupConfig()
    titles, sents = load_sentences(args.data)
    table = synthesize(args.n, titles, sents)

    t0, c0 = time.perf_counter(), time.process_time()
    local = run_dedup(table, cfg, None, LocalEngine())
    t_local, cpu_local = time.perf_counter() - t0, time.process_time() - c0
    local_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"local: {t_local:.1f} s wall, {cpu_local:.1f} s CPU, process peak {local_peak:.2f} GB")

    apply_loopback_env()
    import ray
    from ray.cluster_utils import Cluster

    from curation.dedup.distributed import RayEngine

    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    mb = args.object_store_mb * 1024 * 1024
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "node_ip_address": "127.0.0.1",
            "temp_dir": tmp,
            "include_dashboard": False,
            "object_store_memory": 200 * 1024 * 1024,
        },
    )
    try:
        workers = [
            cluster.add_node(
                num_cpus=1,
                node_ip_address="127.0.0.1",
                dashboard_agent_listen_port=_port(),
                object_store_memory=mb,
            )
            for _ in range(args.nodes)
        ]
        ray.init(address=cluster.address)
        nodes = {
            f"node{i}": [info.process.pid for infos in w.all_processes.values() for info in infos]
            for i, w in enumerate(workers)
        }
        sampler = Sampler(nodes)
        sampler.start()
        engine = RayEngine()
        t0 = time.perf_counter()
        remote = run_dedup(table, cfg, None, engine)
        t_ray = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
        ray.shutdown()
    finally:
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)

    same = remote.rejected.to_pylist() == local.rejected.to_pylist()
    gb = {k: v / 2**30 for k, v in sampler.peak.items()}
    idle = {k: v / 2**30 for k, v in sampler.idle.items()}
    node_max = max(v for k, v in gb.items() if k != "driver")
    scale = args.extrapolate / args.n
    # what the run added on top of the idle processes grows with the rows; the idle part does not
    grown = {k: idle[k] + (gb[k] - idle[k]) * scale for k in gb}
    node_grown = max(v for k, v in grown.items() if k != "driver")
    print(
        f"ray ({args.nodes} nodes x 1 CPU, {engine.parts} parts): {t_ray:.1f} s wall, "
        f"identical rejected rows: {same}; peak RSS (idle before) driver {gb['driver']:.2f} "
        f"({idle['driver']:.2f}) GB, "
        + ", ".join(f"{k} {v:.2f} ({idle[k]:.2f}) GB" for k, v in gb.items() if k != "driver")
    )
    print(
        f"linear extrapolation to {args.extrapolate:,} rows (x{scale:.0f}; candidates grow faster than "
        f"linearly on this data, so time is a lower bound): ray ~{t_ray * scale:.0f} s, "
        f"driver ~{grown['driver']:.1f} GB, busiest node ~{node_grown:.1f} GB (idle + growth x{scale:.0f})"
    )
    print(
        f"RESULT n={args.n} nodes={args.nodes} same={same} local_s={t_local:.1f} ray_s={t_ray:.1f} "
        f"ratio={t_local / t_ray:.2f} driver_gb={gb['driver']:.2f} node_max_gb={node_max:.2f} "
        f"driver_gb_at_{args.extrapolate}={grown['driver']:.1f} node_max_gb_at_{args.extrapolate}={node_grown:.1f} "
        f"rejected={remote.rejected.num_rows} candidates={remote.stats.extra['candidates']}"
    )


if __name__ == "__main__":
    main()
