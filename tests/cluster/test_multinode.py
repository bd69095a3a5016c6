"""Generate and augment jobs on a three-node loopback cluster (CPU head + two one-CPU workers):
a worker node killed mid-job and a job killed and resubmitted both end with every prompt of the
clean run's plan given exactly one outcome, each sample written and queued exactly once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from cluster_helpers import (
    RAY,
    REPO,
    job_config,
    job_env,
    listening_sockets,
    prompt_outcomes,
    queued_ids,
    run_outputs,
    write_yaml,
)

TOTAL = 32  # 8 shards of 4 prompts


def _job(cfg: Path, run_id: str, address: str) -> list[str]:
    return [sys.executable, "-m", "jobs.generate", "--config", str(cfg), "--run-id", run_id,
            "--set", f"run.ray_address={address}"]  # fmt: skip


def _wait_for_shards(
    shard_dir: Path, n: int, proc: subprocess.Popen | None = None, timeout: float = 240
) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = len(list(shard_dir.glob("shard-*.parquet")))
        if done >= n:
            return done
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"job ended before {n} shard(s): {proc.stdout.read()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"no {n} shard(s) in {shard_dir} after {timeout}s")


@pytest.fixture(scope="module")
def clean(cluster, tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    cfg = write_yaml(job_config(tiny_model, out, out / "queue.db", total=TOTAL), out / "job.yaml")
    r = subprocess.run(_job(cfg, "clean", cluster.address), cwd=REPO, env=job_env(), capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    samples, failed, curated = run_outputs(out / "clean")
    return {"cfg": cfg, "stdout": r.stdout, "samples": samples, "failed": failed, "curated": curated,
            "queued": queued_ids(out / "queue.db"), "prompts": prompt_outcomes(out / "clean")}  # fmt: skip


def test_clean_run_spreads_over_the_worker_nodes(cluster, clean):
    assert "2 engine replica(s) on cpu" in clean["stdout"]  # one per worker node; none on the 0-CPU head
    assert len(clean["samples"]) + len(clean["failed"]) == TOTAL and clean["samples"]
    assert len(set(clean["samples"])) == len(clean["samples"])
    assert sorted(clean["queued"]) == sorted(clean["curated"]) and clean["queued"]
    manifest = json.loads((Path(clean["cfg"]).parent / "clean" / "manifest.json").read_text())
    assert manifest["outputs"]["complete"] and manifest["outputs"]["shards_done"] == TOTAL // 4


def test_every_listener_is_on_loopback(cluster):
    socks = listening_sockets()
    assert len(socks) >= 6, socks  # GCS, three raylets, dashboard, agents
    assert all(addr.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")) for addr, _ in socks), socks


def _load(path) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _ray_job(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([RAY, "job", *args], env=job_env(), capture_output=True, text=True, timeout=timeout)


def test_job_stopped_and_resubmitted_queues_each_sample_once(cluster, clean, tmp_path):
    queue_db = tmp_path / "queue.db"
    base = _load(clean["cfg"])
    cfg = write_yaml({**base, "run": {**base["run"], "output_dir": str(tmp_path)},
                      "curate": {**base["curate"], "queue": {"url": f"sqlite:///{queue_db}"}}},
                     tmp_path / "job.yaml")  # fmt: skip
    entry = ["--", sys.executable, "-m", "jobs.generate", "--config", str(cfg), "--run-id", "resub"]
    addr = ["--address", cluster.dashboard_url]
    sub = _ray_job("submit", *addr, "--no-wait", "--working-dir", str(REPO), *entry)
    assert sub.returncode == 0, sub.stdout[-2000:] + sub.stderr[-2000:]
    job_id = re.search(r"raysubmit_[A-Za-z0-9]+", sub.stdout).group(0)
    try:
        done_at_stop = _wait_for_shards(tmp_path / "resub" / "generate", 1, timeout=180)
    except AssertionError as e:
        logs = _ray_job("logs", *addr, job_id, timeout=60)
        status = _ray_job("status", *addr, job_id, timeout=60)
        raise AssertionError(
            f"{e}\n{status.stdout[-1500:]}\n{logs.stdout[-4000:]}{logs.stderr[-2000:]}"
        ) from e
    # The job API directly: the CLI's own start-up (≈ 1 s) can outlast the remaining shards.
    stop = httpx.post(f"{cluster.dashboard_url}/api/jobs/{job_id}/stop", timeout=30)
    assert stop.status_code == 200 and stop.json()["stopped"], stop.text
    deadline = time.time() + 60
    while httpx.get(f"{cluster.dashboard_url}/api/jobs/{job_id}", timeout=30).json()["status"] != "STOPPED":
        assert time.time() < deadline, "the job did not stop"
        time.sleep(0.5)
    first = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "resub" / "generate").glob("shard-*.parquet")}
    assert done_at_stop <= len(first) < TOTAL // 4, "the stop must land mid-run"
    assert not queue_db.exists() or not queued_ids(queue_db), "nothing is queued before every shard is done"

    again = _ray_job("submit", *addr, "--working-dir", str(REPO), *entry)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-2000:]
    assert f"{len(first)} already done" in again.stdout
    for name, mtime in first.items():  # finished shards were not redone
        assert (tmp_path / "resub" / "generate" / name).stat().st_mtime_ns == mtime
    samples, failed, curated = run_outputs(tmp_path / "resub")
    assert len(samples) == len(set(samples))
    outcomes = prompt_outcomes(tmp_path / "resub")
    assert len(outcomes) == len(set(outcomes)) and set(outcomes) == set(clean["prompts"])  # each prompt once
    queued = queued_ids(queue_db)
    assert len(queued) == len(set(queued)) and set(queued) == set(curated)

    # A third submission of the finished run re-pushes: the queue ignores what it holds.
    third = _ray_job("submit", *addr, "--working-dir", str(REPO), *entry)
    assert third.returncode == 0, third.stdout[-4000:]
    assert f"0 queued, {len(queued)} already queued" in third.stdout
    assert sorted(queued_ids(queue_db)) == sorted(queued)


# Runs after the stop/resubmit test: a cluster that lost and regained a node once failed to fetch
# a submitted job's working_dir on the new node (runtime_env package download).
def test_worker_node_killed_mid_job_loses_and_duplicates_nothing(cluster, clean, tmp_path):
    queue_db = tmp_path / "queue.db"
    cfg = write_yaml({**_load(clean["cfg"]), "run": {**_load(clean["cfg"])["run"], "output_dir": str(tmp_path)},
                      "curate": {**_load(clean["cfg"])["curate"], "queue": {"url": f"sqlite:///{queue_db}"}}},
                     tmp_path / "job.yaml")  # fmt: skip
    proc = subprocess.Popen(_job(cfg, "nodekill", cluster.address), cwd=REPO, env=job_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        done_at_kill = _wait_for_shards(tmp_path / "nodekill" / "generate", 1, proc)
        victim = cluster.workers[0]
        cluster.kill(victim)  # no replacement node: the surviving node must take the remaining shards
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        cluster.add_worker()  # back to two workers for the tests after this one
    assert done_at_kill < TOTAL // 4, "the kill must land mid-run"
    assert proc.returncode == 0, out[-4000:]
    assert "worker lost" in out, out[-6000:]  # the killed node's shard was handed out again
    samples, failed, curated = run_outputs(tmp_path / "nodekill")
    assert len(samples) == len(set(samples))
    outcomes = prompt_outcomes(tmp_path / "nodekill")
    assert len(outcomes) == len(set(outcomes)) and set(outcomes) == set(clean["prompts"])  # each prompt once
    queued = queued_ids(queue_db)
    assert len(queued) == len(set(queued))
    assert set(queued) == set(curated)


def test_augment_job_on_the_cluster_matches_a_single_batch_run(cluster, clean, tmp_path):
    generated = Path(clean["cfg"]).parent / "clean" / "generate"
    outs = {}
    for name, batch in (("spread", 8), ("single", 100_000)):  # 8-row batches: Ray Data tasks on both nodes
        queue_db = tmp_path / f"{name}.db"
        cfg = write_yaml({
            "job": "augment",
            "run": {"output_dir": str(tmp_path), "seed": 3, "ray_address": cluster.address},
            "inputs": [str(generated)],
            "augment": {"variants": 1, "direction": "both", "negative_ratios": {"wrong_dose": 0.5}, "seed": 3},
            "curate": {"dedup_index": None, "batch_size": batch, "queue": {"url": f"sqlite:///{queue_db}"},
                       "quality": {"min_chinese_ratio": 0.0, "banned_phrases_file": None}},
        }, tmp_path / f"{name}.yaml")  # fmt: skip
        r = subprocess.run([sys.executable, "-m", "jobs.augment", "--config", str(cfg), "--run-id", name],
                           cwd=REPO, env=job_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        manifest = json.loads((tmp_path / name / "manifest.json").read_text(encoding="utf-8"))
        augmented = _ids(Path(manifest["outputs"]["augmented"]))  # the last augmenter's stage folder
        curated = _ids(tmp_path / name / "curated")
        rejected = sum(pq.read_metadata(p).num_rows for p in (tmp_path / name / "rejects").glob("*.parquet"))
        assert len(curated) + rejected == len(augmented)  # every augmented sample: kept or rejected
        queued = queued_ids(queue_db)
        assert sorted(queued) == sorted(curated) and len(set(queued)) == len(queued)
        outs[name] = (sorted(augmented), sorted(curated))
    assert outs["spread"] == outs["single"]
    assert len(outs["spread"][0]) > len(clean["samples"])  # the augmenters added samples


def _ids(stage_dir: Path) -> list[str]:
    return [
        i
        for p in sorted(stage_dir.glob("shard-*.parquet"))
        for i in pq.read_table(p).column("id").to_pylist()
    ]
