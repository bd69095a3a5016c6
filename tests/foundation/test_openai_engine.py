"""The second engine: the generate job against a real OpenAI-compatible server (`vllm serve`, CPU build)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pyarrow.parquet as pq
import pytest

from jobs.config import GenerateConfig, load_config
from jobs.generate import run_generate
from medaug.io import read_samples


@pytest.fixture(scope="module")
def vllm_server(tiny_model):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model), "--host", "127.0.0.1",
         "--port", str(port), "--max-model-len", "2048",
         "--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}'],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 480  # start-up only: several minutes on a slow AVX2 2-core machine
        while True:
            assert proc.poll() is None, "vllm serve exited during start-up"
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "vllm serve did not come up in 480 s"
            time.sleep(1)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_generate_job_through_an_openai_compatible_server(
    vllm_server, tiny_model, ray_local, tmp_path, write_config, small_config
):
    cfg = small_config(tiny_model, tmp_path, total=8, shard_size=4)
    cfg["llm"]["engine"] = {
        "kind": "openai",
        "model": str(tiny_model),
        "base_url": vllm_server,
        "concurrency": 4,
    }
    manifest = run_generate(load_config(GenerateConfig, write_config(cfg), ["run.run_id=oa"]))
    run = tmp_path / "oa" / "generate"
    samples = [s for p in sorted(run.glob("shard-*.parquet")) for s in read_samples(p).samples]
    rejects = tmp_path / "oa" / "rejects" / "generate"
    failed = sum(pq.read_table(p).num_rows for p in rejects.glob("generate-*.parquet"))
    assert len(samples) + failed == 8 and samples  # regex mode through the server's structured outputs
    assert manifest["stages"][0]["extra"]["output_tokens"] > 0
    for s in samples:
        assert (
            s.provenance.model == str(tiny_model) and '"output_mode": "regex"' in s.provenance.sampling_params
        )


def test_server_errors_are_recorded_per_shard(ray_local, tmp_path, write_config, small_config, tiny_model):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = small_config(tiny_model, tmp_path, total=4, shard_size=4)
    cfg["llm"]["engine"] = {
        "kind": "openai",
        "model": "m",
        "base_url": f"http://127.0.0.1:{port}/v1",
        "request_timeout_s": 5,
    }
    manifest = run_generate(load_config(GenerateConfig, write_config(cfg), ["run.run_id=down"]))
    fails = pq.read_table(tmp_path / "down" / "rejects" / "generate" / "generate-00000.parquet").to_pylist()
    assert len(fails) == 4 and all(f["reason"] == "engine_error" for f in fails)
    assert all(json.loads(f["detail"])["error"].startswith("EngineError") for f in fails)
    assert manifest["stages"][0]["rows_out"] == 0


def test_engine_actors_reserve_gpus_only_for_vllm_on_cuda():
    """Both jobs build their engine actors with these options: an OpenAI-compatible engine is an HTTP
    client, so on a GPU cluster it takes one CPU and leaves the GPUs to the engines that use them."""
    from medaug.llm.engine import CPU_ENGINE_ENV, EngineConfig, engine_actor_options

    vllm = EngineConfig(kind="vllm", model="m", tensor_parallel_size=2)
    assert engine_actor_options(vllm, "cuda")["num_gpus"] == 2
    for engine, device in [
        (EngineConfig(kind="openai", model="m", base_url="http://127.0.0.1:1/v1"), "cuda"),
        (vllm, "cpu"),
    ]:
        opts = engine_actor_options(engine, device)
        assert "num_gpus" not in opts and opts["num_cpus"] == 1
        assert opts["runtime_env"]["env_vars"] == CPU_ENGINE_ENV
