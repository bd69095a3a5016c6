"""The generate job for real: local Ray, the CPU vLLM build, the tiny model."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs.config import GenerateConfig, load_config
from jobs.generate import run_generate
from medaug.io import read_samples
from medaug.schema import SAMPLE_SCHEMA
from medaug.stage import REJECT_SCHEMA

REPO = Path(__file__).resolve().parents[2]


def _outputs(run_dir: Path) -> tuple[list, list[str]]:
    samples = []
    for shard in sorted((run_dir / "generate").glob("shard-*.parquet")):
        assert pq.read_schema(shard).equals(SAMPLE_SCHEMA)
        samples += read_samples(shard, strict=True).samples
    failed = []  # generation rejects: REJECT_SCHEMA, id = the prompt id
    for f in sorted((run_dir / "rejects" / "generate").glob("generate-*.parquet")):
        assert pq.read_schema(f).equals(REJECT_SCHEMA)
        failed += pq.read_table(f).column("id").to_pylist()
    return samples, failed


@pytest.fixture(scope="module")
def clean_run(small_config, tiny_model, ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    path = out / "job.yaml"
    import yaml

    path.write_text(yaml.safe_dump(small_config(tiny_model, out)), encoding="utf-8")
    cfg = load_config(GenerateConfig, path, ["run.run_id=clean"])
    manifest = run_generate(cfg)
    return out / "clean", manifest, path


def test_end_to_end_samples_carry_provenance(clean_run):
    run_dir, manifest, _ = clean_run
    samples, failed = _outputs(run_dir)
    st = manifest["stages"][0]
    assert st["rows_in"] == 24 and st["rows_out"] == len(samples) == 24 - len(failed)
    assert len(samples) > 0
    assert len({s.id for s in samples}) == len(samples)
    for s in samples:
        p = s.provenance
        assert p.source == "template" and p.template_id and p.seed_id and p.prompt_id
        assert p.model and Path(p.model).name == "tiny-qwen2"
        assert '"temperature": 0.8' in p.sampling_params and '"output_mode": "regex"' in p.sampling_params
        assert p.sampling_seed is not None and p.run_id == "clean" and p.created_at is not None
        assert s.icd10 and s.demographics.age is not None and s.demographics.sex is not None
    assert manifest["outputs"]["complete"] and manifest["config_hash"]
    assert st["extra"]["output_tokens"] > 0 and st["extra"]["output_tok_per_s"] > 0


def test_delimited_mode_records_every_failure(small_config, tiny_model, ray_local, tmp_path, write_config):
    # The random-weight model never writes the 【field】 layout unconstrained: every prompt becomes a failure,
    # recorded after its one bounded retry.
    cfg = small_config(tiny_model, tmp_path, total=8, output_mode="delimited", max_retries=1)
    manifest = run_generate(load_config(GenerateConfig, write_config(cfg), ["run.run_id=delim"]))
    samples, failed = _outputs(tmp_path / "delim")
    assert len(samples) + len(failed) == 8
    st = manifest["stages"][0]
    assert sum(st["rejects"].values()) == len(failed)
    assert st["extra"]["retries"] == len(failed)  # one bounded retry each


def test_delimited_mode_with_the_trained_model_makes_samples(
    small_config, trained_model, ray_local, tmp_path, write_config
):
    # The default mode end to end: the layout-trained tiny model writes 【field】 headers unconstrained.
    from medaug.test_model import is_test_model_folder

    cfg = small_config(trained_model, tmp_path, total=16, output_mode="delimited", max_retries=2)
    manifest = run_generate(load_config(GenerateConfig, write_config(cfg), ["run.run_id=trained"]))
    samples, failed = _outputs(tmp_path / "trained")
    assert len(samples) + len(failed) == 16 and len(samples) >= 12
    st = manifest["stages"][0]
    assert st["rows_out"] == len(samples) and sum(st["rejects"].values()) == len(failed)
    for s in samples:
        assert s.instruction and s.output
        assert '"output_mode": "delimited"' in s.provenance.sampling_params
        assert is_test_model_folder(s.provenance.model)  # the review page marks its samples


def test_the_demo_runs_the_default_mode_on_the_trained_model(trained_model, tmp_path):
    # trained_model: the trained build is in the cache, so the demo's folder below is a copy, not a new run.
    import json

    from jobs.config import prepare_model
    from jobs.tiny_model import BUILD_RECORD, build_tiny_model

    cfg = load_config(GenerateConfig, REPO / "configs" / "demo.yaml", [])
    assert cfg.llm.output_mode == "delimited" and cfg.llm.max_retries > 0
    assert cfg.llm.build_tiny_if_missing and cfg.llm.tiny_trained
    # An older random-weight build in the demo's folder is replaced by the trained one.
    folder = build_tiny_model(tmp_path / "medaug-test-tiny-qwen2")
    assert json.loads((folder / BUILD_RECORD).read_text(encoding="utf-8"))["train"] is None
    cfg.llm.engine.model = str(folder)
    prepare_model(cfg.llm)
    record = json.loads((folder / BUILD_RECORD).read_text(encoding="utf-8"))
    assert (
        record["train"] is not None
        and record["key"] == json.loads((trained_model / BUILD_RECORD).read_text(encoding="utf-8"))["key"]
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    return env


def _outcomes(run_dir: Path) -> list[str]:
    """Every prompt id with an outcome (a sample or a recorded failure), repeats included."""
    samples, failed = _outputs(run_dir)
    return [s.provenance.prompt_id for s in samples] + failed


def test_resume_after_kill_is_exactly_once(clean_run, tmp_path):
    # The guarantee of a resume (README, "Resuming a run"): every prompt of the plan gets exactly one
    # outcome and no sample is written twice. Sample text is not compared here: the resumed run uses
    # other shard sizes than the clean one, and vLLM does not promise identical sampled text across
    # different batch compositions.
    run_dir, _, cfg_path = clean_run
    cmd = [
        sys.executable,
        "-m",
        "jobs.generate",
        "--config",
        str(cfg_path),
        "--run-id",
        "killed",
        "--set",
        "run.shard_size=4",
    ]
    cmd += ["--output-dir", str(tmp_path)]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=_env(), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    shard_dir = tmp_path / "killed" / "generate"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(shard_dir.glob("shard-*.parquet"))) < 2:
        assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p.name for p in shard_dir.glob("shard-*.parquet")}
    assert 2 <= len(first) < 6, "the kill must land mid-run"
    mtimes = {p.name: p.stat().st_mtime_ns for p in shard_dir.glob("shard-*.parquet")}

    done = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{len(first)} already done" in done.stdout
    for name, m in mtimes.items():  # finished shards were not redone
        assert (shard_dir / name).stat().st_mtime_ns == m
    resumed, _ = _outputs(tmp_path / "killed")
    ids = [s.id for s in resumed]
    assert len(ids) == len(set(ids)), "a sample was written twice"
    outcomes = _outcomes(tmp_path / "killed")
    assert len(outcomes) == len(set(outcomes)), "a prompt has two outcomes"
    assert (
        set(outcomes) == set(_outcomes(run_dir)) and len(outcomes) == 24
    )  # the clean run's prompts, each once


def test_a_redone_shard_of_the_same_composition_gives_identical_samples(
    small_config, tiny_model, ray_local, tmp_path, write_config
):
    # The second guarantee: a shard redone with the same prompts in the same shard (same shard size,
    # same build, prefix caching off so no cache hit from an earlier batch changes the numerics) gives
    # the same samples, since every prompt carries its own sampling seed.
    cfg = small_config(tiny_model, tmp_path, total=16, shard_size=8)
    cfg["llm"]["engine"]["enable_prefix_caching"] = False
    path = write_config(cfg)
    run_generate(load_config(GenerateConfig, path, ["run.run_id=same"]))
    shard_dir = tmp_path / "same" / "generate"
    before = {
        p.name: sorted(s.id for s in read_samples(p, strict=True).samples)
        for p in shard_dir.glob("shard-*.parquet")
    }
    assert len(before) == 2 and all(before.values())
    redo = shard_dir / "shard-00001.parquet"
    assert redo.name in before
    redo.unlink()  # as if the worker died before writing it (so the stage was not done either)
    (tmp_path / "same" / "rejects" / "generate" / "generate-00001.parquet").unlink(missing_ok=True)
    (shard_dir / "done.json").unlink()
    manifest = run_generate(load_config(GenerateConfig, path, ["run.run_id=same"]))
    assert manifest["outputs"]["complete"]
    after = {
        p.name: sorted(s.id for s in read_samples(p, strict=True).samples)
        for p in shard_dir.glob("shard-*.parquet")
    }
    assert after == before


def test_ray_job_submit_against_a_head_on_loopback(small_config, tiny_model, tmp_path, write_config):
    import socket

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    gcs, dash = free_port(), free_port()
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    ray_bin = str(Path(sys.executable).parent / "ray")
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--port", str(gcs), "--num-cpus", "2", "--node-ip-address", "127.0.0.1",
         "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash), "--include-dashboard", "true",
         # its own agent port: the default 52365 belongs to the session's local Ray (ray_local)
         "--dashboard-agent-listen-port", str(free_port()),
         "--temp-dir", ray_tmp],
        env=_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        cfg = write_config(small_config(tiny_model, tmp_path / "out", total=8))
        address = f"http://127.0.0.1:{dash}"
        deadline = time.time() + 90
        while time.time() < deadline:
            r = subprocess.run(
                [ray_bin, "job", "list", "--address", address], env=_env(), capture_output=True
            )
            if r.returncode == 0:
                break
            time.sleep(1)
        submit = [ray_bin, "job", "submit", "--address", address, "--working-dir", str(REPO), "--",
                  sys.executable, "-m", "jobs.generate", "--config", str(cfg), "--run-id", "submitted"]  # fmt: skip
        deadline = time.time() + 120
        while True:  # the job agent may come up a little after the dashboard answers
            sub = subprocess.run(submit, env=_env(), capture_output=True, text=True, timeout=300)
            if "No available agent" not in sub.stderr or time.time() > deadline:
                break
            time.sleep(2)
        assert sub.returncode == 0, sub.stdout[-3000:] + sub.stderr[-2000:]
        assert "medaug generate — run submitted" in sub.stdout
        samples, failed = _outputs(tmp_path / "out" / "submitted")
        assert len(samples) + len(failed) == 8 and samples
        assert all(s.provenance.job_id for s in samples)
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)
