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
    c = LoopbackCluster()
    try:
        c.add_worker()
        c.add_worker()
        yield c
    finally:
        c.stop()
