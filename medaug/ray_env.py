"""Starting or joining Ray the same way everywhere: loopback only, no auth token, no telemetry.

`ray job submit` sets RAY_ADDRESS, so the same job code joins the submitting
cluster; run from the CLI it starts an embedded local Ray instead.
"""

from __future__ import annotations

import os
from typing import Any

# Ray binds every interface unless told otherwise (see PLATFORM.md); these must be set
# before Ray starts any process, and child processes inherit them.
LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def apply_loopback_env() -> None:
    for k, v in LOOPBACK_ENV.items():
        os.environ.setdefault(k, v)


def init_ray(
    address: str | None = None, *, num_cpus: int | None = None, quiet: bool = True
) -> dict[str, Any]:
    """Join `address` (or $RAY_ADDRESS) if given, else start a local Ray bound to 127.0.0.1."""
    apply_loopback_env()
    import ray

    if ray.is_initialized():
        return {"address": "existing"}
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"log_to_driver": not quiet, "logging_level": "WARNING"}
    if address:
        ray.init(address=address, **kwargs)
        return {"address": address}
    ray.init(
        address="local",  # never attach to some other cluster `ray start` left on this machine
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        **kwargs,
    )
    return {"address": "local"}


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
