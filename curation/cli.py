"""Commands of the curation stage, registered on the `medaug` app by medaug/cli.py."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands to `app` (keep heavy imports inside the command functions)."""
