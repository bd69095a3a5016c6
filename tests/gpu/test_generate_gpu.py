"""The generation job on a real GPU with the vLLM GPU build (run on the GPU host: `pytest -m gpu`)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import yaml

from jobs.config import GenerateConfig, load_config
from jobs.generate import run_generate
from jobs.tiny_model import build_tiny_model, qwen2_05b_shape
from medaug.schema import SAMPLE_SCHEMA

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu_model(tmp_path_factory):
    import torch

    assert torch.cuda.is_available(), "gpu tests need a CUDA GPU"
    return build_tiny_model(tmp_path_factory.mktemp("models") / "qwen2-0.5b-shape", **qwen2_05b_shape())


@pytest.mark.parametrize("mode", ["json", "delimited"])
def test_generate_job_on_gpu(gpu_model, ray_local, tmp_path, mode):
    cfg = {
        "run": {"output_dir": str(tmp_path), "seed": 3, "shard_size": 128},
        "quotas": {"total": 256},
        "llm": {
            "engine": {
                "model": str(gpu_model),
                "device": "cuda",
                "max_model_len": 2048,
                "gpu_memory_utilization": 0.6,
            },
            "sampling": {"max_tokens": 128, "seed": 3},
            "output_mode": mode,
            "field_max_chars": 30,
            "max_retries": 1,
        },
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    manifest = run_generate(load_config(GenerateConfig, path, [f"run.run_id={mode}"]))
    st = manifest["stages"][0]
    shards = sorted((tmp_path / mode / "generate").glob("shard-*.parquet"))
    failures = sorted((tmp_path / mode / "rejects" / "generate").glob("generate-*.parquet"))
    n_samples = sum(pq.read_table(p).num_rows for p in shards)
    n_failed = sum(pq.read_table(p).num_rows for p in failures)
    assert manifest["outputs"]["complete"] and n_samples + n_failed == 256 == st["rows_in"]
    assert all(pq.read_schema(p).equals(SAMPLE_SCHEMA) for p in shards)
    if mode == "json":  # constrained decoding with bounded strings always parses
        assert n_samples == 256
    assert st["extra"]["output_tokens"] > 0
