"""`medaug dedup IN OUT`: the dedup stage as a command, registered on the `medaug` app by medaug/cli.py."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands to `app` (keep heavy imports inside the command functions)."""
    app.command("dedup")(dedup_command)


def dedup_command(
    src: Path = typer.Argument(..., help="samples to deduplicate (.jsonl, .json or .parquet)"),
    out: Path = typer.Argument(..., help="kept samples (.parquet or .jsonl)"),
    report: Path | None = typer.Option(
        None, help="duplicates report (JSONL: id, reason, detail); default OUT.duplicates.jsonl"
    ),
    index: Path | None = typer.Option(None, help="dedup index folder of what is already queued/released"),
    record_as: str | None = typer.Option(
        None, help="after dedup, add the kept samples to --index under this origin"
    ),
    threshold: float = typer.Option(0.85, help="Levenshtein normalised similarity at which samples merge"),
    script: str = typer.Option("none", help="'t2s' folds traditional to simplified before comparing"),
    strict: bool = typer.Option(False, help="stop at the first bad input record instead of skipping it"),
) -> None:
    """Drop exact and near-duplicate samples (within IN and against --index); every drop names what it duplicated.

    Question-only records (no or empty `output`, e.g. a file of patient questions) are accepted:
    dedup needs no answer. Stages that build SFT data (check, queue push) still require one.
    """
    from curation.dedup import DedupConfig, DedupIndex, dedup_table
    from medaug.io import InputError, read_samples, write_jsonl, write_parquet, write_samples_jsonl
    from medaug.run import summary_table
    from medaug.schema import samples_to_table, table_to_samples

    if out.suffix.lower() not in (".parquet", ".jsonl"):
        raise typer.BadParameter(f"{out}: output must end in .parquet or .jsonl", param_hint="OUT")
    if record_as and index is None:
        raise typer.BadParameter("--record-as needs --index", param_hint="--record-as")
    try:
        cfg = DedupConfig(threshold=threshold, script=script)
        idx = DedupIndex(index, cfg) if index is not None else None
        read = read_samples(src, strict=strict, require_output=False)
    except (InputError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    for err in read.errors:
        typer.echo(f"skipped bad record: {err}", err=True)
    result = dedup_table(samples_to_table(read.samples), cfg, idx)
    if out.suffix.lower() == ".parquet":
        write_parquet(result.kept, out)
    else:
        write_samples_jsonl(table_to_samples(result.kept, require_output=False), out)
    report = report or out.with_name(out.name + ".duplicates.jsonl")
    write_jsonl(result.rejected.to_pylist(), report)
    if idx is not None and record_as:
        added = idx.add(result.kept, origin=record_as)
        typer.echo(f"recorded {added} samples in {index} as {record_as}")
    typer.echo(summary_table([result.stats], title=f"medaug dedup {src}"))
    typer.echo(f"kept {result.kept.num_rows} -> {out}; duplicates {result.rejected.num_rows} -> {report}")
    if read.errors:
        typer.echo(f"{len(read.errors)} bad input record(s) skipped (listed above)", err=True)
