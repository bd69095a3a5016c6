"""The loopback cluster shared by a test module (see cluster_helpers.LoopbackCluster)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cluster_helpers import LoopbackCluster  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[LoopbackCluster]:
    # The test session's own local Ray (the ray_local fixture) must not run beside the cluster: with both,
    # worker nodes failed to fetch a submitted job's working_dir package. ray_local starts it again later.
    from medaug.ray_env import shutdown_ray

    shutdown_ray()
    c = LoopbackCluster()
    try:
        c.add_worker()
        c.add_worker()
        yield c
    finally:
        c.stop()
