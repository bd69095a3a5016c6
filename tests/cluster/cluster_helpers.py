"""Helpers for the cluster tests. A multi-node Ray cluster on one machine, on loopback, with Ray's own cluster utilities: a head
with no CPUs (nothing scheduled on it, like cluster.yaml's head) and worker nodes of one CPU that
tests kill (SIGKILL to every process of the node) and replace.

`ray start --address` refuses to join nodes while RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, and without
that setting Ray listens on every interface; `ray.cluster_utils.Cluster` starts real raylets and
object stores in-process-tree, with the loopback setting, so everything binds 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

import yaml

from medaug.llm.engine import CPU_ENGINE_ENV
from medaug.ray_env import LOOPBACK_ENV, apply_loopback_env

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job_env() -> dict[str, str]:
    """Environment for a job driver process started by a test."""
    env = {**os.environ, **LOOPBACK_ENV, **CPU_ENGINE_ENV}
    env.pop("RAY_ADDRESS", None)
    return env


class LoopbackCluster:
    def __init__(self) -> None:
        apply_loopback_env()
        from ray.cluster_utils import Cluster

        self.tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: socket paths must fit 107 bytes
        self.dashboard_port = free_port()
        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 0,
                "node_ip_address": "127.0.0.1",
                "temp_dir": self.tmp,
                "include_dashboard": True,
                "dashboard_host": "127.0.0.1",
                "dashboard_port": self.dashboard_port,
                "dashboard_agent_listen_port": free_port(),
                "object_store_memory": 200 * 1024 * 1024,
            },
        )
        self.address = self.cluster.address
        self.dashboard_url = f"http://127.0.0.1:{self.dashboard_port}"

    def add_worker(self):
        # Every node's dashboard agent gets its own port: the default (52365) is taken by any other Ray
        # on this machine, e.g. the test session's local Ray, and an agent that cannot bind takes jobs down.
        return self.cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", dashboard_agent_listen_port=free_port(),
                                     object_store_memory=200 * 1024 * 1024)  # fmt: skip

    @property
    def workers(self) -> list:
        return list(self.cluster.worker_nodes)

    def kill(self, node) -> None:
        """The node dies abruptly, like a machine losing power: SIGKILL to its raylet, object store and
        agents, and to the worker processes the raylet started (engine actors included), which Ray's
        own remove_node would leave running until they notice."""
        pids = [info.process.pid for infos in node.all_processes.values() for info in infos]
        for pid in descendants(pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.cluster.remove_node(node, allow_graceful=False)

    def stop(self) -> None:
        self.cluster.shutdown()
        shutil.rmtree(self.tmp, ignore_errors=True)


def job_config(model: Path, out: Path, queue_db: Path, *, total: int = 24, **llm_extra) -> dict:
    """A small generate job (shards of 4 prompts) with curation and a SQLite review queue."""
    return {
        "job": "generate",
        "run": {"output_dir": str(out), "seed": 11, "shard_size": 4},
        "quotas": {"total": total},
        "llm": {
            "engine": {"model": str(model), "max_model_len": 2048},
            "sampling": {"temperature": 0.8, "max_tokens": 96, "seed": 5},
            "output_mode": "regex",
            "field_max_chars": 40,
            **llm_extra,
        },
        "curate": {
            "dedup_index": None,
            "queue": {"url": f"sqlite:///{queue_db}"},
            "quality": {"min_chinese_ratio": 0.0, "banned_phrases_file": None},
        },
    }


def write_yaml(data: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def run_outputs(run_dir: Path) -> tuple[list[str], list[str], list[str]]:
    """Sample ids written by the generate stage, prompt ids recorded as failures, curated sample ids."""
    import pyarrow.parquet as pq

    from medaug.io import read_samples

    samples: list[str] = []
    for shard in sorted((run_dir / "generate").glob("shard-*.parquet")):
        samples += [s.id for s in read_samples(shard, strict=True).samples]
    failed: list[str] = []  # generation rejects (REJECT_SCHEMA): id = the prompt id
    for f in sorted((run_dir / "rejects" / "generate").glob("generate-*.parquet")):
        failed += pq.read_table(f).column("id").to_pylist()
    curated: list[str] = []
    for f in sorted((run_dir / "curated").glob("shard-*.parquet")):
        curated += pq.read_table(f, columns=["id"]).column("id").to_pylist()
    return samples, failed, curated


def prompt_outcomes(run_dir: Path) -> list[str]:
    """The prompt id of every generated sample and every recorded failure, repeats included.

    A resumed run guarantees each prompt exactly one outcome, not the clean run's sample text:
    vLLM does not promise identical text when the batches differ (README, "Resuming a run").
    """
    import pyarrow.parquet as pq

    from medaug.io import read_samples

    out: list[str] = []
    for shard in sorted((run_dir / "generate").glob("shard-*.parquet")):
        out += [s.provenance.prompt_id for s in read_samples(shard, strict=True).samples]
    for f in sorted((run_dir / "rejects" / "generate").glob("generate-*.parquet")):
        out += pq.read_table(f).column("id").to_pylist()
    return out


def queued_ids(db: Path) -> list[str]:
    """Every item id in a SQLite review queue, duplicates included (there must be none)."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as c:
            return [r[0] for r in c.execute(sa.text("SELECT id FROM queue_items"))]
    finally:
        engine.dispose()


def listening_sockets() -> list[tuple[str, str]]:
    """(local address, process) of every TCP listener owned by this process's descendants."""
    import subprocess

    mine = descendants([os.getpid()])
    out = []
    for line in subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout.splitlines():
        fields = line.split()
        if any(f"pid={p}," in fields[-1] for p in mine):
            out.append((fields[3], fields[-1]))
    return out


def descendants(roots: list[int]) -> set[int]:
    """Every process below `roots` (not the roots themselves)."""
    import subprocess

    children: dict[int, list[int]] = {}
    for line in subprocess.run(
        ["ps", "-eo", "pid=,ppid="], capture_output=True, text=True
    ).stdout.splitlines():
        pid, ppid = (int(x) for x in line.split())
        children.setdefault(ppid, []).append(pid)
    found, stack = set(), list(roots)
    while stack:
        for kid in children.get(stack.pop(), []):
            found.add(kid)
            stack.append(kid)
    return found
