"""Run the real service with uvicorn on 127.0.0.1 (an OS-chosen port) in a thread, and stop it.

The app's lifespan runs (and with it the lease sweep, when `sweep_seconds` is given), and
the server's shutdown waits for it to end.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from review_queue.service import create_app
from review_queue.store import QueueStore


@contextmanager
def serving(
    store: QueueStore, *, sweep_seconds: float | None = None, releases: Path | None = None
) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(store, sweep_seconds=sweep_seconds, releases=releases)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
