"""Job commands: `medaug generate`, `medaug augment`, `medaug demo`, `medaug model build-tiny`, `medaug knowledge`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("augment")(augment)
    app.command("demo")(demo)
    model_app = typer.Typer(help="Model helpers.", no_args_is_help=True)
    model_app.command("build-tiny")(build_tiny)
    app.add_typer(model_app, name="model")
    kb_app = typer.Typer(
        help="Knowledge tables: check or convert a table of diseases (docs/knowledge.md).",
        no_args_is_help=True,
    )
    kb_app.command("validate")(knowledge_validate)
    kb_app.command("import")(knowledge_import)
    app.add_typer(kb_app, name="knowledge")


def _checked(path: Path):  # type: ignore[no-untyped-def]
    from generators.knowledge import MAX_ERRORS, KnowledgeError, check_knowledge

    try:
        kb, errors = check_knowledge(path)
    except KnowledgeError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    if errors:
        for line in errors[:MAX_ERRORS]:
            typer.echo(f"error: {line}", err=True)
        if len(errors) > MAX_ERRORS:
            typer.echo(f"... and {len(errors) - MAX_ERRORS} more errors", err=True)
        typer.echo(f"{path}: {len(errors)} problem(s); nothing was written", err=True)
        raise typer.Exit(1)
    return kb


def _describe(kb) -> str:  # type: ignore[no-untyped-def]
    from collections import Counter

    areas = Counter(d.area.value for d in kb.diseases)
    with_labs = sum(bool(d.labs) for d in kb.diseases)
    return (
        f"{len(kb.diseases)} diseases ({', '.join(f'{a} {n}' for a, n in sorted(areas.items()))}); "
        f"{with_labs} with lab ranges; {len(kb.comorbidities)} comorbidities"
    )


def knowledge_validate(
    path: Path = typer.Argument(..., help="knowledge table: .yaml/.yml, .json or .csv"),
) -> None:
    """Check a knowledge table; lists every problem with file, row and field (exit 1 if any)."""
    kb = _checked(path)
    typer.echo(f"{path}: ok: {_describe(kb)}")


def knowledge_import(
    source: Path = typer.Argument(..., help="your table: .yaml/.yml, .json or .csv"),
    out: Path = typer.Argument(..., help="where to write the checked table (YAML, the shipped layout)"),
    force: bool = typer.Option(False, help="overwrite OUT if it exists"),
) -> None:
    """Check a table and write it in the layout the generate job reads (`knowledge: OUT` in a job config)."""
    from generators.knowledge import write_knowledge

    if out.exists() and not force:
        typer.echo(f"error: {out} exists (use --force to overwrite)", err=True)
        raise typer.Exit(1)
    kb = _checked(source)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    write_knowledge(kb, tmp)
    tmp.replace(out)
    typer.echo(f"{out}: written: {_describe(kb)}")


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
