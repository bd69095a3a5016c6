"""Dedup's partitioned Ray path on a 3-node loopback cluster: same result as the local engine, memory per node.

One run:
  1. synthetic samples, 25 % derived from an earlier sample anywhere in the input as in
     bench/dedup.py (exact, width-folded, edited, extended, shortened), the others stitched from
     short fragments (5-12 characters, at random offsets) of real text: Toyhom answers and titles,
     CMeEE sentences, IMCS-21 utterances. Not whole sentences: these files hold about 3 M
     characters, so 10 M rows of whole sentences reuse each sentence thousands of times and every
     row shares a title and a sentence with thousands of others (the first 10 M run met 500 M LSH
     candidates, none a real duplicate); fragments keep real text's character statistics with a
     random-pair overlap like that of distinct real samples. Written as parquet shards of
     --chunk-rows rows by two generator processes: each row is a pure function of its number (a
     derived row regenerates the row it copies), so no process ever holds the whole input;
  2. unless --skip-local: the local engine (run_dedup, LocalEngine) on all shards, in a child
     process (its own peak memory; the driver below stays small);
  3. curation.dedup.partitioned.dedup_partitioned on a Ray cluster of a head with no CPUs and
     --nodes worker nodes of one CPU each, all on 127.0.0.1 (ray.cluster_utils, as tests/cluster
     do); the tasks read the shards. Memory is sampled every --every s per node: the head (its
     Ray processes and this driver) and each worker node (raylet with its object store, workers),
     as RSS (shared object-store pages counted in every process that maps them) and as PSS
     (each shared page split among the processes that map it: the node's real share).
Then ours against local: time ratio, identical kept ids and rejected rows (ids, reasons, the
sample each names, scores), and a closing RESULT line.

  nice python bench/dedup_ray.py --n 1000000
  nice python bench/dedup_ray.py --n 10000000 --skip-local      # local at 10 M would not fit
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from dedup import derived_copy, load_sentences  # noqa: E402

from curation.dedup import DedupConfig, run_dedup  # noqa: E402
from curation.dedup.stage import LocalEngine  # noqa: E402
from medaug.ray_env import apply_loopback_env  # noqa: E402

GB = 2**30
_GEN: tuple[str, list[str], str] | None = None


def _fragments(rng: random.Random, text: str, k: int, lo: int, hi: int) -> str:
    out = []
    for _ in range(k):
        n = rng.randint(lo, hi)
        at = rng.randrange(len(text) - n)
        out.append(text[at : at + n])
    return "，".join(out)


def _row(i: int, seed: int) -> tuple[str, str]:
    """(question, answer) of row i, from i alone: a derived copy of an earlier row or fresh fragments."""
    assert _GEN is not None
    text, sents, pool = _GEN
    rng = random.Random(seed * 1_000_000_007 + i)
    if i > 100 and rng.random() < 0.25:
        q, a = _row(rng.randrange(i), seed)
        return derived_copy(q, a, rng, pool, sents)
    q = _fragments(rng, text, rng.randint(2, 3), 5, 9) + "？"
    return q, _fragments(rng, text, rng.randint(10, 18), 6, 12) + "。"


def corpus_text(data: Path) -> str:
    """Real Chinese text the fragments are cut from, punctuation and speaker tags dropped."""
    titles, sents = load_sentences(data)
    cmeee = [r["text"] for r in json.loads((data / "cmeee_dev" / "CMeEE_dev.json").read_text("utf-8"))]
    with open(data / "imcs21_utterances" / "dac_dev.txt", encoding="utf-8") as fh:
        utts = [line.split("\t")[0].split("：", 1)[-1] for line in fh if line.strip()]
    return re.sub(r"[\s，。！？!?、；;：:,.]+", "", "".join(titles + sents + cmeee + utts))


def _gen_init(data: Path) -> None:
    global _GEN
    _, sents = load_sentences(data)
    _GEN = (corpus_text(data), sents, "".join(sorted({c for s in sents[:2000] for c in s})))


def _write_shard(job: tuple[int, int, int, str]) -> str:
    lo, hi, seed, path = job
    rows = [_row(i, seed) for i in range(lo, hi)]
    n = hi - lo
    pq.write_table(
        pa.table(
            {
                "id": [f"s{i:08d}" for i in range(lo, hi)],
                "instruction": [q for q, _ in rows],
                "input": [""] * n,
                "output": [a for _, a in rows],
                "task": ["medical_qa"] * n,
                "label": ["positive"] * n,
                "area": ["general"] * n,
            }
        ),
        path,
        row_group_size=10_000,  # the verify tasks read back raw texts by row group
    )
    return path


def write_shards(n: int, chunk_rows: int, seed: int, data: Path, out: Path, procs: int = 2) -> list[str]:
    jobs = [
        (lo, min(n, lo + chunk_rows), seed, str(out / f"part-{k:05d}.parquet"))
        for k, lo in enumerate(range(0, n, chunk_rows))
    ]
    with multiprocessing.get_context("spawn").Pool(procs, _gen_init, (data,)) as pool:
        return pool.map(_write_shard, jobs, chunksize=1)


def local_only(shards: list[str], out: Path) -> None:
    """The local engine on every shard in this (child) process; its result and figures to `out`."""
    table = pa.concat_tables([pq.read_table(p) for p in shards])
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_dedup(table, DedupConfig(), None, LocalEngine())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    pq.write_table(res.rejected, out / "rejected.parquet")
    pq.write_table(res.kept.select(["id"]), out / "kept.parquet")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB
    (out / "local.json").write_text(
        json.dumps({"wall": wall, "cpu": cpu, "peak_gb": peak, **res.stats.extra})
    )


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree(pids: list[int]) -> list[psutil.Process]:
    procs: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            p = psutil.Process(pid)
            for q in (p, *p.children(recursive=True)):
                procs.setdefault(q.pid, q)
        except psutil.NoSuchProcess:
            continue
    return list(procs.values())


def _mem(procs: list[psutil.Process], by_name: dict[str, int] | None = None) -> tuple[int, int]:
    """Summed RSS and PSS; `by_name` gets each process's PSS under its name (summed per name)."""
    rss = pss = 0
    for p in procs:
        try:
            m = p.memory_full_info()
            rss, pss = rss + m.rss, pss + m.pss
            if by_name is not None:
                name = p.name()
                by_name[name] = by_name.get(name, 0) + m.pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return rss, pss


class Sampler(threading.Thread):
    """Peak RSS and PSS per node (process trees; new workers are found at every sample) and of the driver."""

    def __init__(self, nodes: dict[str, list[int]], every: float):
        super().__init__(daemon=True)
        self.nodes, self.every = nodes, every
        self.stop = threading.Event()
        self.head_procs: dict[str, int] = {}  # peak PSS per process name on the head
        self.idle = self.sample()
        self.peak = dict(self.idle)

    def sample(self) -> dict[str, tuple[int, int]]:
        # the driver alone: cluster_utils starts every node's processes as its children
        driver = psutil.Process()
        out = {"driver": _mem([driver])}
        for name, pids in self.nodes.items():
            if name == "head":
                procs: dict[str, int] = {}
                out[name] = _mem([*_tree(pids), driver], procs)
                for k, v in procs.items():
                    self.head_procs[k] = max(self.head_procs.get(k, 0), v)
            else:
                out[name] = _mem(_tree(pids))
        return out

    def run(self) -> None:
        while not self.stop.is_set():
            for name, (rss, pss) in self.sample().items():
                r0, p0 = self.peak[name]
                self.peak[name] = (max(r0, rss), max(p0, pss))
            self.stop.wait(self.every)


def _ids(table: pa.Table) -> list[str]:
    return table.column("id").to_pylist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--chunk-rows", type=int, default=250_000)
    ap.add_argument("--partitions", type=int, default=None, help="default: max(chunks, 2 x CPUs)")
    ap.add_argument("--object-store-mb", type=int, default=2048, help="per worker node")
    ap.add_argument("--every", type=float, default=0.5, help="seconds between memory samples")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--skip-local", action="store_true", help="no local engine run (it would not fit at 10 M)"
    )
    ap.add_argument("--tmp", type=Path, default=Path("/tmp"), help="where the shards and Ray's files go")
    ap.add_argument("--local-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.local_only:
        local_only(json.loads((args.local_only / "shards.json").read_text()), args.local_only)
        return

    work = Path(tempfile.mkdtemp(prefix="dedup_ray", dir=args.tmp))
    try:
        t0 = time.perf_counter()
        shards = write_shards(args.n, args.chunk_rows, args.seed, args.data, work)
        (work / "shards.json").write_text(json.dumps(shards))
        size = sum(Path(p).stat().st_size for p in shards) / GB
        print(
            f"input: {args.n:,} rows in {len(shards)} parquet shards ({size:.2f} GB) in {time.perf_counter() - t0:.0f} s"
        )
        local = None
        if not args.skip_local:
            subprocess.run([sys.executable, __file__, "--local-only", str(work)], check=True, cwd=REPO)
            local = json.loads((work / "local.json").read_text())
            print(
                f"local: {local['wall']:.1f} s wall, {local['cpu']:.1f} s CPU, process peak RSS {local['peak_gb']:.2f} GB"
            )
        run_ray(args, shards, work, local)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_ray(args: argparse.Namespace, shards: list[str], work: Path, local: dict | None) -> None:
    apply_loopback_env()
    import ray
    from ray.cluster_utils import Cluster

    from curation.dedup.partitioned import dedup_partitioned

    Path("/tmp/ray").mkdir(exist_ok=True)  # Ray writes its address file there whatever temp_dir says
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "node_ip_address": "127.0.0.1",
            "temp_dir": str(work / "ray"),
            "include_dashboard": False,
            "object_store_memory": 256 * 1024 * 1024,
        },
    )
    try:
        workers = [
            cluster.add_node(
                num_cpus=1,
                node_ip_address="127.0.0.1",
                dashboard_agent_listen_port=_port(),
                object_store_memory=args.object_store_mb * 1024 * 1024,
            )
            for _ in range(args.nodes)
        ]
        ray.init(address=cluster.address, log_to_driver=False)

        def pids(node) -> list[int]:
            return [info.process.pid for infos in node.all_processes.values() for info in infos]

        nodes = {"head": pids(cluster.head_node)} | {f"node{i}": pids(w) for i, w in enumerate(workers)}
        sampler = Sampler(nodes, args.every)
        sampler.start()
        t0 = time.perf_counter()
        result = dedup_partitioned(shards, DedupConfig(), partitions=args.partitions)
        done = result.kept + result.rejected  # every table built; they stay where they were made
        ray.wait(done, num_returns=len(done), fetch_local=False)
        t_ray = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
        same = None
        if local is not None:  # after the measurement: the driver now gathers the ids and rejections
            ids = ray.remote(_ids)
            kept_ids = [x for part in ray.get([ids.remote(k) for k in result.kept]) for x in part]
            rejected = pa.concat_tables(ray.get(result.rejected))
            same = (
                kept_ids == pq.read_table(work / "kept.parquet").column("id").to_pylist()
                and rejected.to_pylist() == pq.read_table(work / "rejected.parquet").to_pylist()
            )
        ray.shutdown()
    finally:
        cluster.shutdown()
    report(args, result.stats, t_ray, sampler, local, same)


def report(args, stats, t_ray: float, sampler: Sampler, local: dict | None, same: bool | None) -> None:
    peak = {k: (r / GB, p / GB) for k, (r, p) in sampler.peak.items()}
    idle = {k: (r / GB, p / GB) for k, (r, p) in sampler.idle.items()}
    wnodes = {k: peak[k] for k in peak if k.startswith("node")}  # the worker nodes
    print(
        f"ray partitioned ({args.nodes} nodes x 1 CPU + head with 0 CPUs; {stats.extra['chunks']} chunks, "
        f"{stats.extra['partitions']} partitions): {t_ray:.1f} s wall; "
        f"rejected {sum(stats.rejects.values()):,} ({dict(stats.rejects)}), "
        f"candidates {stats.extra['candidates']:,}, verified {stats.extra['verified']:,}; "
        f"phases {stats.extra.get('phase_s')} s, the rest building the tables"
    )
    if local is not None:
        print(
            f"vs local: {local['wall']:.1f} s -> ratio local/ray {local['wall'] / t_ray:.2f}; identical result: {same}"
        )
    print("peak memory per node, RSS / PSS GB (idle before the run):")
    for k in ("head", "driver", *wnodes):
        note = " (head: GCS, raylet, object store and the driver)" if k == "head" else ""
        note = " (part of head)" if k == "driver" else note
        print(f"  {k:7s} {peak[k][0]:6.2f} / {peak[k][1]:6.2f}   ({idle[k][0]:.2f} / {idle[k][1]:.2f}){note}")
    top = sorted(sampler.head_procs.items(), key=lambda kv: -kv[1])[:6]
    print("  head's largest processes, peak PSS GB: " + ", ".join(f"{k} {v / GB:.2f}" for k, v in top))
    node_rss = max(v[0] for v in wnodes.values())
    node_pss = max(v[1] for v in wnodes.values())
    print(
        f"RESULT n={args.n} nodes={args.nodes} chunks={stats.extra['chunks']} partitions={stats.extra['partitions']} "
        f"same={same} local_s={local['wall'] if local else float('nan'):.1f} ray_s={t_ray:.1f} "
        f"ratio={local['wall'] / t_ray if local else float('nan'):.2f} "
        f"head_rss_gb={peak['head'][0]:.2f} head_pss_gb={peak['head'][1]:.2f} "
        f"driver_rss_gb={peak['driver'][0]:.2f} driver_pss_gb={peak['driver'][1]:.2f} "
        f"worker_node_max_rss_gb={node_rss:.2f} worker_node_max_pss_gb={node_pss:.2f} "
        f"rejected={sum(stats.rejects.values())} candidates={stats.extra['candidates']} verified={stats.extra['verified']}"
    )


if __name__ == "__main__":
    main()
