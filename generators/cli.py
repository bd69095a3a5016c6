"""`medaug knowledge`: check and import users' knowledge tables (the job commands are in jobs/cli.py)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
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
    from medaug.io import atomic_write

    if out.exists() and not force:
        typer.echo(f"error: {out} exists (use --force to overwrite)", err=True)
        raise typer.Exit(1)
    kb = _checked(source)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:
        write_knowledge(kb, tmp)
    typer.echo(f"{out}: written: {_describe(kb)}")
