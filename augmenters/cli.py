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
    app.command("augment-file")(augment)


def _load(lexicons: list[Path] | None, no_core: bool):
    from medaug.lexicon import LexiconError, load_lexicon

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
    threshold: Annotated[
        float | None,
        typer.Option(
            help="confidence below which a mention with no exact entry is left as it is "
            "[default: augmenters.normalize.THRESHOLD, 0.6]"
        ),
    ] = None,
) -> None:
    """Map colloquial mentions to standard terms (or clinical text back to colloquial), one output line per
    input line: exact lookup, else the best-ranked standard term above the threshold (docs/lexicon.md)."""
    import sys
    from collections import Counter

    from augmenters.line_io import LineError, normalize_stream
    from augmenters.normalize import Normaliser, normalize_text

    if to not in ("clinical", "colloquial"):
        raise typer.BadParameter("must be 'clinical' or 'colloquial'", param_hint="--to")
    lex = _load(lexicon, no_core)
    normaliser = Normaliser(lex) if threshold is None else Normaliser(lex, threshold=threshold)
    skipped: Counter[str] = Counter()
    try:
        src = sys.stdin.buffer if input == "-" else open(input, "rb")  # noqa: SIM115
    except OSError as e:
        raise typer.BadParameter(f"{input}: {e.strerror}", param_hint="INPUT") from e
    try:
        dst = sys.stdout if output == "-" else open(output, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        src.close()
        raise typer.BadParameter(f"{output}: {e.strerror}", param_hint="OUTPUT") from e
    try:
        n = normalize_stream(src, dst, lex, f"to_{to}", field=field, name=input, skipped=skipped,
                             normalise=lambda t: normalize_text(t, normaliser, f"to_{to}", skipped))  # fmt: skip
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
    from medaug.lexicon import LexiconError

    try:
        cov = pair_coverage(pairs, _load(lexicon, no_core))
    except LexiconError as e:
        raise typer.BadParameter(str(e), param_hint="PAIRS") from e
    typer.echo(
        f"pairs={cov.pairs} correct={cov.correct} coverage={cov.ratio:.4f} identity={cov.identity} "
        f"changed={cov.changed} exact={cov.exact} ranked={cov.ranked} left={cov.left}"
    )


def augment(
    input: Annotated[Path, typer.Argument(help="samples: .jsonl, .json or .parquet")],
    output: Annotated[Path, typer.Argument(help="originals + derived samples: .parquet or .jsonl")],
    config: Annotated[Path | None, typer.Option(help="YAML with AugmentConfig fields")] = None,
    seed: Annotated[int | None, typer.Option(help="overrides the config's seed")] = None,
    refusals: Annotated[int | None, typer.Option(help="overrides the config's refusal count")] = None,
    lexicon: LexiconOpt = None,
    keep_going: Annotated[
        bool, typer.Option(help="list bad input records and augment the good ones")
    ] = False,
) -> None:
    """Lexicon paraphrases, rule negatives and refusals for a sample file (the rule augmenters, no model)."""
    import yaml
    from pydantic import ValidationError

    from augmenters.pipeline import AugmentConfig, augment_table
    from medaug.io import InputError, read_samples, write_parquet, write_samples_jsonl
    from medaug.lexicon import LexiconError
    from medaug.schema import samples_to_table, table_to_samples

    if output.suffix not in (".parquet", ".jsonl"):
        raise typer.BadParameter("must end in .parquet or .jsonl", param_hint="OUTPUT")
    try:
        raw = yaml.safe_load(config.read_text(encoding="utf-8")) if config else {}
        raw = (raw or {}) | {k: v for k, v in (("seed", seed), ("refusals", refusals)) if v is not None}
        if lexicon:
            raw["lexicons"] = [*raw.get("lexicons", []), *map(str, lexicon)]
        cfg = AugmentConfig.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as e:
        raise typer.BadParameter(f"{config}: {e}", param_hint="--config") from e
    try:
        read = read_samples(input)
    except InputError as e:
        raise typer.BadParameter(str(e), param_hint="INPUT") from e
    for err in read.errors:
        typer.echo(f"error: {err}", err=True)
    if read.errors and not keep_going:
        typer.echo(
            f"{len(read.errors)} bad record(s); nothing written (use --keep-going to skip them)", err=True
        )
        raise typer.Exit(2)
    try:
        res = augment_table(samples_to_table(read.samples), cfg)
    except LexiconError as e:
        raise typer.BadParameter(str(e), param_hint="--lexicon") from e
    if output.suffix == ".parquet":
        write_parquet(res.kept, output)
    else:
        write_samples_jsonl(table_to_samples(res.kept), output)
    extra = ", ".join(f"{k}={v}" for k, v in res.stats.extra.items() if k != "report")
    typer.echo(
        f"{res.stats.rows_in} in, {res.stats.rows_out} out in {res.stats.seconds:.1f} s: {extra}", err=True
    )
    for line in res.stats.extra.get("report", ()):  # the negative report: per type, SHORTFALL, PATTERN SHARE
        typer.echo(line, err=True)
