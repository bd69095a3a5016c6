"""Commands of the generation stage: `medaug generate`, `medaug model build-tiny`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    model_app = typer.Typer(help="Model helpers.", no_args_is_help=True)
    model_app.command("build-tiny")(build_tiny)
    app.add_typer(model_app, name="model")


def generate(
    config: Path = typer.Option(..., "--config", "-c", help="job config (YAML)"),
    run_id: str | None = typer.Option(None, help="resume or name a run"),
    output_dir: str | None = typer.Option(None, help="overrides run.output_dir"),
    set_: list[str] = typer.Option([], "--set", help="override a config value: key.sub=value"),
    max_shards: int | None = typer.Option(
        None, help="stop after this many shards (resume later with --run-id)"
    ),
) -> None:
    """Generate samples from templates with vLLM on Ray (local Ray unless RAY_ADDRESS/run.ray_address is set)."""
    from jobs.generate import cli_entry

    raise typer.Exit(cli_entry(str(config), run_id, output_dir, set_, max_shards))


def build_tiny(path: Path = typer.Argument(..., help="folder to write the model to")) -> None:
    """Build the random-weight tiny Qwen2 model used by tests and the offline demo."""
    from generators.tiny_model import build_tiny_model

    typer.echo(str(build_tiny_model(path)))
