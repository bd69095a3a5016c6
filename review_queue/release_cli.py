"""Commands for dataset maintainers (`medaug merge`, `medaug export`), registered by medaug/cli.py."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the merge/export commands to `app` (keep heavy imports inside the command functions)."""
