"""Commands of the augmenters stage, registered on the `medaug` app by medaug/cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

lexicon_app = typer.Typer(
    help="Colloquial ↔ clinical lexicons: normalise text, inspect lexicons, measure coverage."
)

LexiconOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--lexicon",
        help="external lexicon (TSV/YAML, IMCS `原始词\\t标准词`, DXY, CHIP-CDN, ICD csv); repeatable",
    ),
]
NoCoreOpt = Annotated[bool, typer.Option("--no-core", help="do not load the shipped core lexicon")]


def register(app: typer.Typer) -> None:
    """Add this package's commands to `app` (keep heavy imports inside the command functions)."""
    app.add_typer(lexicon_app, name="lexicon")


def _load(lexicons: list[Path] | None, no_core: bool):
    from augmenters.lexicon import LexiconError, load_lexicon

    try:
        return load_lexicon(lexicons or [], include_core=not no_core)
    except LexiconError as e:
        raise typer.BadParameter(str(e), param_hint="--lexicon") from e


@lexicon_app.command()
def normalize(
    input: Annotated[str, typer.Argument(help="text or JSONL file, or - for stdin")] = "-",
    output: Annotated[str, typer.Argument(help="output file, or - for stdout")] = "-",
    field: Annotated[
        str | None, typer.Option(help="input is JSONL: rewrite this field of each record")
    ] = None,
    to: Annotated[
        str, typer.Option(help="clinical (colloquial → clinical) or colloquial (the reverse)")
    ] = "clinical",
    lexicon: LexiconOpt = None,
    no_core: NoCoreOpt = False,
) -> None:
    """Map colloquial terms to clinical ones (or back), one output line per input line."""
    import sys
    from collections import Counter

    from augmenters.line_io import LineError, normalize_stream

    if to not in ("clinical", "colloquial"):
        raise typer.BadParameter("must be 'clinical' or 'colloquial'", param_hint="--to")
    lex = _load(lexicon, no_core)
    skipped: Counter[str] = Counter()
    src = sys.stdin.buffer if input == "-" else open(input, "rb")  # noqa: SIM115
    dst = sys.stdout if output == "-" else open(output, "w", encoding="utf-8")  # noqa: SIM115
    try:
        n = normalize_stream(src, dst, lex, f"to_{to}", field=field, name=input, skipped=skipped)
    except LineError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    finally:
        if src is not sys.stdin.buffer:
            src.close()
        if dst is not sys.stdout:
            dst.close()
    held = ", ".join(f"{k}={v}" for k, v in sorted(skipped.items())) or "none"
    typer.echo(f"normalised {n} line(s); guard skips: {held}", err=True)


@lexicon_app.command()
def stats(lexicon: LexiconOpt = None, no_core: NoCoreOpt = False) -> None:
    """Entries per area and source of the lexicon that would be used."""
    import json

    typer.echo(json.dumps(_load(lexicon, no_core).stats(), ensure_ascii=False, indent=2))


@lexicon_app.command()
def coverage(
    pairs: Annotated[Path, typer.Argument(help="`原始词\\t标准词` pair file (e.g. IMCS-21 dev)")],
    lexicon: LexiconOpt = None,
    no_core: NoCoreOpt = False,
) -> None:
    """Share of the pairs whose mention the lexicon normalises exactly to the standard term."""
    from augmenters.coverage import pair_coverage
    from augmenters.lexicon import LexiconError

    try:
        cov = pair_coverage(pairs, _load(lexicon, no_core))
    except LexiconError as e:
        raise typer.BadParameter(str(e), param_hint="PAIRS") from e
    typer.echo(
        f"pairs={cov.pairs} correct={cov.correct} coverage={cov.ratio:.4f} identity={cov.identity} changed={cov.changed}"
    )
