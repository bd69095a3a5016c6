"""Fixtures for the release tests; the queue-filling helpers live in release_queue.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from release_queue import Queue, fill_queue

from review_queue.store import QueueStore


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[QueueStore]:
    store = QueueStore.open(f"sqlite:///{tmp_path / 'queue.db'}")
    yield store
    store.close()


@pytest.fixture
def queue(sqlite_store: QueueStore) -> Queue:
    return fill_queue(sqlite_store, "甲")
