"""Shared fixtures: the real data folder, a fresh PostgreSQL database, local Ray, the tiny model.

Nothing here skips: a missing server or data folder is a failure, because CI has both.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from medaug.ray_env import apply_loopback_env

REPO = Path(__file__).resolve().parents[1]
apply_loopback_env()
# The queue's audit key (review_queue.audit): PostgreSQL queues refuse to open without one. Tests that
# check what happens without it remove it with monkeypatch.
os.environ.setdefault("MEDAUG_AUDIT_KEY", "medaug-test-audit-key-not-a-secret-0123456789")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (read at run time, never copied into the project)."""
    path = Path(os.environ.get("MEDAUG_SHARED_DATA", REPO.parent / "shared" / "data"))
    assert path.is_dir(), f"shared data folder not found at {path} (set MEDAUG_SHARED_DATA)"
    return path


PG_ADMIN_URL = os.environ.get("MEDAUG_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local server; dropped afterwards."""
    import sqlalchemy as sa

    name = f"medaug_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def _ray_session() -> Iterator[None]:
    from medaug.ray_env import shutdown_ray

    yield
    shutdown_ray()


@pytest.fixture(scope="module")
def ray_local(_ray_session: None) -> None:
    """A local Ray (127.0.0.1 only) shared by the tests that need it; started again after a module stopped it."""
    import ray

    from medaug.ray_env import init_ray

    if not ray.is_initialized():
        init_ray(num_cpus=2)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Qwen2-architecture model with random weights and a locally trained Chinese tokenizer."""
    from jobs.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-qwen2")


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny model after its short layout training (jobs.tiny_train): it writes the 【field】 layout
    unconstrained most of the time, so the delimited mode's success and retry paths run. Built once per
    cache key and copied from MEDAUG_MODEL_CACHE afterwards."""
    from jobs.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("trained") / "tiny-qwen2", train=True)
