"""Job commands: `medaug generate`, `augment`, `demo`, `merge`, `model build-tiny`.

Each calls the same entry as `python -m jobs.<name>`, so both paths parse and run a job the same way."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from medaug.run import DEFAULT_QUEUE_URL
from review_queue.release_cli import ByOpt, DatasetOpt, RootOpt, resolve_root


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("augment")(augment)
    app.command("demo")(demo)
    app.command("merge")(merge)
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


def build_tiny(
    path: Path = typer.Argument(..., help="folder to write the model to"),
    trained: bool = typer.Option(
        False, "--trained/--random", help="train it briefly on the 【field】 layout (the demo's model)"
    ),
) -> None:
    """Build the tiny Qwen2 test model (random weights, or briefly trained) used by tests and the demo."""
    from jobs.tiny_model import build_tiny_model

    typer.echo(str(build_tiny_model(path, train=trained, log=typer.echo if trained else None)))


def augment(
    config: Path = typer.Option(..., "--config", "-c", help="job config (YAML)"),
    run_id: str | None = typer.Option(None, help="resume or name a run"),
    output_dir: str | None = typer.Option(None, help="overrides run.output_dir"),
    set_: list[str] = typer.Option([], "--set", help="override a config value: key.sub=value"),
) -> None:
    """Augment existing SFT data, curate it and push it into the review queue."""
    from jobs.augment import cli_entry

    raise typer.Exit(cli_entry(str(config), run_id, output_dir, set_))


def demo(
    generate_config: Path = typer.Option(Path("configs/demo.yaml"), help="generate job config"),
    augment_config: Path = typer.Option(Path("configs/augment-demo.yaml"), help="augment job config"),
) -> None:
    """The embedded default end to end: generate + augment on local Ray into the SQLite queue."""
    from jobs.augment import cli_entry as augment_entry
    from jobs.generate import cli_entry as generate_entry

    for code in (
        generate_entry(str(generate_config), None, None, [], None),
        augment_entry(str(augment_config), None, None, []),
    ):
        if code:
            raise typer.Exit(code)
    typer.echo(
        "\nThe review queue is filled (sqlite:///var/queue.db). To review:\n"
        "  medaug queue user add alice --role reviewer      # prints alice's token once\n"
        "  medaug queue user add bob --role reviewer\n"
        "  medaug queue user add carol --role arbiter\n"
        "  medaug queue serve                               # then open http://127.0.0.1:8765/ and paste a token\n"
        "Then: medaug merge --dataset demo && medaug export --dataset demo --format alpaca"
    )


def merge(
    dataset: DatasetOpt,
    db: Annotated[
        str, typer.Option("--db", envvar="MEDAUG_QUEUE_DB", help="queue database URL")
    ] = DEFAULT_QUEUE_URL,
    root: RootOpt = None,
    by: ByOpt = None,
    dedup_index: Annotated[
        Path | None, typer.Option(help="also record released rows in this dedup index")
    ] = None,
) -> None:
    """Merge finalised queue items into a new immutable dataset version."""
    from jobs.merge import run_merge

    raise typer.Exit(run_merge(dataset, db, resolve_root(root), by or getpass.getuser(), dedup_index))
