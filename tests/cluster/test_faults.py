"""Faults on a loopback cluster: a bad model path, an unwritable output folder, a disk that fills up
mid-run, an engine that raises on one batch. Each gives a clear error or a recorded failure, and
nothing already finished is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import yaml
from cluster_helpers import REPO, job_config, job_env, queued_ids, run_outputs, write_yaml

from generators.expand import Quotas, expand
from generators.knowledge import load_comorbidities, load_knowledge
from generators.templates import load_templates


def _run(cfg: Path, run_id: str, address: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "jobs.generate", "--config", str(cfg), "--run-id", run_id,
           "--set", f"run.ray_address={address}"]  # fmt: skip
    return subprocess.run(cmd, cwd=REPO, env=job_env(), capture_output=True, text=True, timeout=300)


def test_bad_model_path_is_named_before_any_work(cluster, tiny_model, tmp_path):
    cfg = job_config(tiny_model, tmp_path, tmp_path / "q.db", total=8)
    cfg["llm"]["engine"]["model"] = "/nonexistent/medaug-model"
    r = _run(write_yaml(cfg, tmp_path / "job.yaml"), "badmodel", cluster.address)
    assert r.returncode == 1
    assert "model path not found: /nonexistent/medaug-model" in r.stderr
    assert not list((tmp_path / "badmodel" / "generate").glob("shard-*.parquet"))


def test_output_folder_under_a_regular_file_is_named(cluster, tiny_model, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    cfg = job_config(tiny_model, blocker / "runs", tmp_path / "q.db", total=8)
    r = _run(write_yaml(cfg, tmp_path / "job.yaml"), "nowrite", cluster.address)
    assert r.returncode == 2
    assert f"output folder {blocker / 'runs' / 'nowrite'} is not writable" in r.stderr


def test_disk_full_mid_run_keeps_finished_shards_and_the_rerun_completes(cluster, tiny_model, tmp_path):
    # No tmpfs here and root ignores permissions: /dev/full is the real ENOSPC. The write of shard 5's
    # samples (the runner's fixed temporary name) goes to it, as the first write after the disk fills up would.
    gen = tmp_path / "full" / "generate"
    gen.mkdir(parents=True)
    (gen / "shard-00005.tmp").symlink_to("/dev/full")
    cfg = write_yaml(job_config(tiny_model, tmp_path, tmp_path / "q.db", total=32), tmp_path / "job.yaml")
    r = _run(cfg, "full", cluster.address)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert "No space left on device" in r.stderr and "shard-00005.parquet" in r.stderr
    assert not (gen / "shard-00005.parquet").exists()
    first = {p.name: p.stat().st_mtime_ns for p in gen.glob("shard-*.parquet")}
    for name in first:  # what finished before the disk filled is whole and readable
        pq.read_table(gen / name)
    assert not (tmp_path / "q.db").exists() or not queued_ids(tmp_path / "q.db")

    (gen / "shard-00005.tmp").unlink(missing_ok=True)  # space is freed
    again = _run(cfg, "full", cluster.address)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    for name, mtime in first.items():
        assert (gen / name).stat().st_mtime_ns == mtime
    samples, failed, curated = run_outputs(tmp_path / "full")
    assert len(samples) + len(failed) == 32 and len(set(samples)) == len(samples)
    queued = queued_ids(tmp_path / "q.db")
    assert sorted(queued) == sorted(curated) and len(set(queued)) == len(queued)


HUGE = "请结合{disease}的病理生理、流行病学、诊断标准、鉴别诊断、治疗方案和随访要点详细说明。" * 120


def test_engine_error_on_one_batch_is_recorded_and_the_rest_finish(cluster, tiny_model, tmp_path):
    # A template far longer than max_model_len: vLLM refuses the generate call for any batch holding it.
    templates = {"templates": [
        {"id": "cardio-short", "task": "medical_qa", "areas": ["cardiovascular"],
         "system": "你是一名临床医生。", "user": "请生成一条关于{disease}的医患问答样本。"},
        {"id": "onco-huge", "task": "medical_qa", "areas": ["oncology"], "system": "你是一名临床医生。", "user": HUGE},
    ]}  # fmt: skip
    tpl = tmp_path / "templates.yaml"
    tpl.write_text(yaml.safe_dump(templates, allow_unicode=True), encoding="utf-8")
    quotas = {
        "total": 16,
        "tasks": {"medical_qa": 1},
        "areas": {"cardiovascular": 3, "oncology": 1},
        "novelty": {"enabled": False},
    }  # two templates: every planned prompt kept, 4 full shards
    cfg = job_config(tiny_model, tmp_path, tmp_path / "q.db", total=16)
    cfg.update(templates=str(tpl), quotas=quotas)
    r = _run(write_yaml(cfg, tmp_path / "job.yaml"), "crash", cluster.address)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    prompts = expand(load_templates(tpl), load_knowledge(), load_comorbidities(), Quotas(**quotas), 11)
    shards = [prompts[i : i + 4] for i in range(0, 16, 4)]
    bad = {i for i, s in enumerate(shards) if any(p.template_id == "onco-huge" for p in s)}
    assert bad and len(bad) < 4, "the layout must mix failing and clean batches"
    gen = tmp_path / "crash" / "generate"
    for i, shard in enumerate(shards):
        rejects = tmp_path / "crash" / "rejects" / "generate" / f"generate-{i:05d}.parquet"
        failures = pq.read_table(rejects).to_pylist() if rejects.exists() else []  # REJECT_SCHEMA
        written = pq.read_table(gen / f"shard-{i:05d}.parquet").column("id").to_pylist()
        if i in bad:  # the whole batch is recorded, with the engine's error
            assert {f["id"] for f in failures} == {p.prompt_id for p in shard} and not written
            assert all(f["reason"] == "engine_error" and f["stage"] == "generate" for f in failures)
            assert all(json.loads(f["detail"])["error"] for f in failures)
        else:
            assert not any(f["reason"] == "engine_error" for f in failures)
            assert len(written) + len(failures) == 4
    samples, failed, curated = run_outputs(tmp_path / "crash")
    assert samples and len(samples) + len(failed) == 16
    assert sorted(queued_ids(tmp_path / "q.db")) == sorted(curated)
    assert os.path.exists(tmp_path / "crash" / "manifest.json")
