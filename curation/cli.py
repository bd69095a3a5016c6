"""Commands of the curation stage, registered on the `medaug` app by medaug/cli.py.

`medaug deid IN OUT` de-identifies text lines (or one or more fields of JSONL
records), one output line per input line; `medaug check IN` runs the quality
gates and reports rejections by reason. `-` means stdin/stdout.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import IO, Any

import typer

_CHUNK = 5000


class _LineError(Exception):
    pass


def _load_section(path: Path | None, section: str) -> dict[str, Any]:
    """A YAML/JSON config file: either the section's fields at top level, or under `section:`."""
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise typer.BadParameter(f"cannot read config {path}: {e}", param_hint="--config") from e
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path}: expected a mapping at top level", param_hint="--config")
    return data[section] if section in data else data


def _deid_config(config: Path | None, operators: list[str]) -> Any:
    from pydantic import ValidationError

    from curation.deid import DeidConfig

    data = _load_section(config, "deid")
    ops = dict(data.get("operators") or {})
    for item in operators:
        entity, _, op = item.partition("=")
        if not op:
            raise typer.BadParameter(f"expected ENTITY=operator, got {item!r}", param_hint="--operator")
        ops[entity.strip()] = {"operator": op.strip()}
    if ops:
        data["operators"] = ops
    try:
        return DeidConfig.model_validate(data)
    except ValidationError as e:
        raise typer.BadParameter(f"invalid de-identification config: {e}", param_hint="--config") from e


def _open_in(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as e:
        raise typer.BadParameter(f"cannot open {path}: {e.strerror}", param_hint="IN") from e


def _deid_chunk(
    lines: list[tuple[int, str]], fields: list[str], source: str, cfg: Any, totals: Counter[str]
) -> list[str]:
    from curation.deid.stage import deidentify_texts

    if not fields:
        results = deidentify_texts([text for _, text in lines], cfg)
        for _, c in results:
            totals.update(c)
        return [t for t, _ in results]
    records: list[Any] = []
    texts: list[str] = []
    where: list[tuple[int, str]] = []
    for lineno, text in lines:
        if not text.strip():
            records.append(None)
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as e:
            raise _LineError(f"{source}:{lineno}: malformed JSON: {e.msg} (column {e.colno})") from e
        if not isinstance(rec, dict):
            raise _LineError(f"{source}:{lineno}: expected a JSON object, got {type(rec).__name__}")
        for f in fields:
            if f not in rec:
                raise _LineError(f"{source}:{lineno}: field {f!r}: missing")
            if rec[f] is not None and not isinstance(rec[f], str):
                raise _LineError(
                    f"{source}:{lineno}: field {f!r}: must be a string, got {type(rec[f]).__name__}"
                )
            if rec[f] is not None:
                texts.append(rec[f])
                where.append((len(records), f))
        records.append(rec)
    results = deidentify_texts(texts, cfg)
    per_record: dict[int, Counter[str]] = {}
    for (i, f), (new, counts) in zip(where, results, strict=True):
        records[i][f] = new
        per_record.setdefault(i, Counter()).update(counts)
    out = []
    for i, rec in enumerate(records):
        if rec is None:
            out.append("")
            continue
        counts = per_record.get(i, Counter())
        totals.update(counts)
        rec["deid"] = [{"entity": e, "count": c} for e, c in sorted(counts.items())]
        out.append(json.dumps(rec, ensure_ascii=False))
    return out


def _deid_lines(fh: Any, out: IO[str], field: list[str], source: str, cfg: Any, totals: Counter[str]) -> int:
    """De-identify the lines of `fh` into `out` in chunks; returns the number of lines."""
    n = 0
    chunk: list[tuple[int, str]] = []
    for lineno, raw in enumerate(fh, start=1):
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as e:
            raise _LineError(f"{source}:{lineno}: invalid UTF-8 at byte {e.start}") from e
        chunk.append((lineno, text))
        if len(chunk) >= _CHUNK:
            out.writelines(line + "\n" for line in _deid_chunk(chunk, field, source, cfg, totals))
            n += len(chunk)
            chunk = []
    if chunk:
        out.writelines(line + "\n" for line in _deid_chunk(chunk, field, source, cfg, totals))
        n += len(chunk)
    out.flush()
    return n


def deid_command(
    src: str = typer.Argument(..., metavar="IN", help="text lines or JSONL; - for stdin"),
    dst: str = typer.Argument(..., metavar="OUT", help="output file; - for stdout"),
    field: list[str] = typer.Option(
        [], "--field", "-f", help="JSONL mode: de-identify this field (repeatable)"
    ),
    config: Path | None = typer.Option(
        None, "--config", help="YAML/JSON with DeidConfig fields (or a deid: section)"
    ),
    operator: list[str] = typer.Option(
        [], "--operator", help="ENTITY=replace|mask|hash|encrypt|shift|generalize|keep"
    ),
) -> None:
    """De-identify IN into OUT, one output line per input line (JSONL records get a `deid` list of counts)."""
    from curation.deid import DeidConfigError
    from medaug.io import atomic_write

    cfg = _deid_config(config, operator)
    source = "<stdin>" if src == "-" else src
    totals: Counter[str] = Counter()
    fh = _open_in(src)
    try:
        if dst == "-":
            n = _deid_lines(fh, sys.stdout, field, source, cfg, totals)
        else:
            with atomic_write(Path(dst).resolve()) as tmp, tmp.open("w", encoding="utf-8") as out:
                n = _deid_lines(fh, out, field, source, cfg, totals)
    except (_LineError, DeidConfigError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()
    summary = ", ".join(f"{e}={c}" for e, c in sorted(totals.items())) or "nothing found"
    typer.echo(f"de-identified {n} lines: {summary}", err=True)


def check_command(
    src: str = typer.Argument(
        ..., metavar="IN", help="samples (.jsonl/.json/.parquet); - for JSONL on stdin"
    ),
    config: Path | None = typer.Option(
        None, "--config", help="YAML/JSON with QualityConfig fields (or quality:)"
    ),
    icd10_list: Path | None = typer.Option(
        None, "--icd10-list", help="ICD-10 code list (CSV icd_code,name or TSV)"
    ),
    kept: Path | None = typer.Option(None, "--kept", help="write passing samples here (.parquet or .jsonl)"),
    rejected: Path | None = typer.Option(
        None, "--rejected", help="write rejections (id, reason, detail) as JSONL"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    question_only: bool = typer.Option(
        False,
        "--question-only",
        help="records are questions without answers: accept an empty output and skip the gates on it",
    ),
) -> None:
    """Run the quality gates on IN and report rejections by reason; exit 1 if any sample fails or is unreadable."""
    from pydantic import ValidationError

    from curation.quality import QualityConfig, quality_gate
    from curation.quality_icd10 import Icd10ListError
    from medaug.io import read_samples, write_jsonl, write_parquet
    from medaug.schema import samples_to_table

    data = _load_section(config, "quality")
    if icd10_list is not None:
        data["icd10_list"] = str(icd10_list)
    if question_only:
        data = _question_only(data)
    try:
        cfg = QualityConfig.model_validate(data)
    except ValidationError as e:
        raise typer.BadParameter(f"invalid quality config: {e}", param_hint="--config") from e
    path = _stdin_to_file() if src == "-" else Path(src)
    try:
        read = read_samples(path, require_output=not question_only)
    except (OSError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    finally:
        if src == "-":
            path.unlink()
    try:
        result = quality_gate(samples_to_table(read.samples), cfg)
    except (Icd10ListError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if kept is not None:
        if kept.suffix == ".parquet":
            write_parquet(result.kept, kept)
        else:
            write_jsonl(result.kept.to_pylist(), kept)
    if rejected is not None:
        write_jsonl(result.rejected.to_pylist(), rejected)
    reasons = dict(sorted(result.stats.rejects.items()))
    report = {
        "input": str(src),
        "samples": result.stats.rows_in,
        "unreadable": len(read.errors),
        "kept": result.stats.rows_out,
        "rejected": result.rejected.num_rows,
        "by_reason": reasons,
    }
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
    else:
        typer.echo(
            f"{src}: {report['samples']} samples, {report['kept']} kept, {report['rejected']} rejected"
        )
        for err in read.errors[:20]:
            typer.echo(
                f"  unreadable {'<stdin>' if src == '-' else err.path}:{err.line}: {err.field}: {err.message}"
            )
        if len(read.errors) > 20:
            typer.echo(f"  … and {len(read.errors) - 20} more unreadable records")
        for reason, count in reasons.items():
            typer.echo(f"  {reason:<28}{count:>8}")
    if result.rejected.num_rows or read.errors:
        raise typer.Exit(1)


def _question_only(data: dict[str, Any]) -> dict[str, Any]:
    """The quality config with every gate on the answer turned off (the questions' gates stay)."""
    from curation.quality import QualityConfig

    base = QualityConfig()
    lengths = dict(data.get("lengths", base.lengths))
    lengths.pop("output", None)
    drop = {"output"}
    return {
        **data,
        "require_output": False,
        "lengths": lengths,
        "banned_fields": [f for f in data.get("banned_fields", base.banned_fields) if f not in drop],
        "chinese_ratio_fields": [
            f for f in data.get("chinese_ratio_fields", base.chinese_ratio_fields) if f not in drop
        ],
    }


def _stdin_to_file() -> Path:
    fd, name = tempfile.mkstemp(prefix=".check-", suffix=".jsonl")
    with os.fdopen(fd, "wb") as fh:
        fh.write(sys.stdin.buffer.read())
    return Path(name)


def register(app: typer.Typer) -> None:
    """Add this package's commands to `app` (keep heavy imports inside the command functions)."""
    app.command("deid")(deid_command)
    app.command("check")(check_command)
