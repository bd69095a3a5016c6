"""Helpers for the generation-job tests: a small job config around the tiny model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

JOB_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
for _k, _v in JOB_ENV.items():
    os.environ.setdefault(_k, _v)


def small_config(model: Path, out: Path, *, total: int = 24, shard_size: int = 8, **llm_extra) -> dict:
    return {
        "job": "generate",
        "run": {"output_dir": str(out), "seed": 11, "shard_size": shard_size},
        "quotas": {"total": total},
        "llm": {
            "engine": {"model": str(model), "max_model_len": 2048},
            "sampling": {"temperature": 0.8, "max_tokens": 96, "seed": 5},
            "output_mode": "regex",
            "field_max_chars": 40,
            **llm_extra,
        },
    }


@pytest.fixture(name="small_config", scope="session")
def small_config_fixture():
    return small_config


@pytest.fixture
def write_config(tmp_path):
    def write(cfg: dict, name: str = "job.yaml") -> Path:
        p = tmp_path / name
        p.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        return p

    return write
