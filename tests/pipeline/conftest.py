"""A queue service in its own process, for tests that talk to it over HTTP (and kill it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

MEDAUG = str(Path(sys.executable).parent / "medaug")


class QueueService:
    """`medaug queue serve` in its own process group on 127.0.0.1; can be killed and restarted on the same port."""

    def __init__(self, db: str):
        self.db = db
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MEDAUG, "queue", "serve", "--db", self.db, "--port", str(self.port)],
                                     start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(self.url + "/api/me", timeout=1).status_code == 401:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None and time.time() < deadline, "queue service did not start"
            time.sleep(0.2)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="module")
def queue_service():
    """Factory: queue_service(db_url) → a started QueueService; all of them are killed after the module."""
    started: list[QueueService] = []

    def make(db: str) -> QueueService:
        svc = QueueService(db)
        svc.start()
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.kill()
