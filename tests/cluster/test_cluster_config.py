"""Every shipped cluster config passes Ray's JSON schema and Ray's own preparation and validation
(offline: the AWS and local providers' defaults need no cloud SDK or credentials)."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(REPO.glob("cluster*.yaml"))
SCHEMA = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text(encoding="utf-8"))


def test_both_layouts_ship():
    assert [p.name for p in CONFIGS] == ["cluster-onprem.yaml", "cluster.yaml"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_passes_rays_schema_and_validation(path):
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    jsonschema.validate(raw, SCHEMA)
    prepared = prepare_config(copy.deepcopy(raw))
    validate_config(prepared)
    # The head schedules no work: no engine replica or Ray Data task may land next to the driver.
    assert any("--head" in c and "--num-cpus=0" in c for c in prepared["head_start_ray_commands"])
    assert any("--dashboard-host=127.0.0.1" in c for c in prepared["head_start_ray_commands"])
    assert any('[gpu]"' in c and "pip install" in c for c in prepared["setup_commands"])


def test_cloud_layout_cpu_head_and_autoscaling_gpu_groups():
    cfg = prepare_config(yaml.safe_load((REPO / "cluster.yaml").read_text(encoding="utf-8")))
    types = cfg["available_node_types"]
    assert types[cfg["head_node_type"]]["resources"] == {"CPU": 0}
    assert types[cfg["head_node_type"]]["max_workers"] == 0
    gpus = sorted(t["resources"].get("GPU", 0) for n, t in types.items() if n != cfg["head_node_type"])
    assert gpus == [1, 8]
    for name, t in types.items():
        if name != cfg["head_node_type"]:
            assert t["min_workers"] == 0 < t["max_workers"] <= cfg["max_workers"]  # scales from zero


def test_the_gpu_extra_the_configs_install_exists():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    assert any(d.startswith("vllm") for d in extras["gpu"])


def test_a_broken_config_is_caught(tmp_path):
    cfg = yaml.safe_load((REPO / "cluster.yaml").read_text(encoding="utf-8"))
    cfg["available_node_types"]["gpu_1x"]["resources"]["GPU"] = "one"
    with pytest.raises(jsonschema.ValidationError, match="'one' is not of type 'integer'"):
        jsonschema.validate(cfg, SCHEMA)
