"""Reading and writing samples: JSONL (seed format, Alpaca, ShareGPT, medaug), JSON arrays, Parquet.

Readers validate every record against the Sample schema. A bad record becomes a
`RecordError` naming file, line and field; the good records around it are kept.
Writers are atomic (temp file + rename) so an interrupted write never leaves a
half-written shard that a resumed run would mistake for a finished one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from medaug.alpaca import alpaca_record
from medaug.schema import (
    MAX_TEXT_CHARS,
    QUESTION_ONLY,
    SAMPLE_FIELDS,
    Sample,
    conform_table,
    samples_to_table,
)


@dataclass(frozen=True)
class RecordError:
    path: str
    line: int  # 1-based line (JSONL) or record index + 1 (JSON array, Parquet)
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.message}"


@dataclass
class ReadResult:
    samples: list[Sample] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


class InputError(ValueError):
    """Raised in strict mode, or when a whole file cannot be read; the message names file and line."""


def record_to_sample(rec: Any, *, source: str | None = None, require_output: bool = True) -> Sample:
    """Map one raw record of a known format to a Sample; raises ValueError/ValidationError.

    require_output=False accepts question-only records (no or empty `output`), for stages
    that need no answer (dedup of patient questions); SFT samples keep needing one.
    """
    if not isinstance(rec, dict):
        raise ValueError(f"expected a JSON object, got {type(rec).__name__}")
    ctx = None if require_output else QUESTION_ONLY
    if "conversations" in rec:
        return _from_sharegpt(rec, source, ctx)
    if "id" in rec and "label" in rec:  # medaug's own full records
        return Sample.model_validate(rec, context=ctx)
    unknown = {k: v for k, v in rec.items() if k not in {"instruction", "input", "output", *SAMPLE_FIELDS}}
    data = {k: v for k, v in rec.items() if k in SAMPLE_FIELDS}
    for key in ("instruction", "input", "output"):
        if key in data and not isinstance(data[key], str):
            raise _field_error(key, f"must be a string, got {type(data[key]).__name__}")
    if not data.get("instruction") and data.get("input"):
        # The seed article's format: {"input": question, "output": answer}.
        data["instruction"], data["input"] = data["input"], ""
    if "instruction" not in data:
        raise _field_error("instruction", "missing")
    if "output" not in data:
        if require_output:
            raise _field_error("output", "missing")
        data["output"] = ""
    data.setdefault("provenance", {})
    if source and isinstance(data["provenance"], dict):
        data["provenance"].setdefault("source", source)
    if unknown:
        data["extra"] = json.dumps(unknown, ensure_ascii=False, sort_keys=True)
    return Sample.model_validate(data, context=ctx)


def _from_sharegpt(rec: dict[str, Any], source: str | None, ctx: dict[str, Any] | None) -> Sample:
    turns = rec["conversations"]
    if not isinstance(turns, list) or not turns:
        raise _field_error("conversations", "must be a non-empty list")
    human = next((t for t in turns if isinstance(t, dict) and t.get("from") in ("human", "user")), None)
    gpt = next((t for t in turns if isinstance(t, dict) and t.get("from") in ("gpt", "assistant")), None)
    if human is None:
        raise _field_error("conversations", "no human/user turn")
    if gpt is None and ctx is None:
        raise _field_error("conversations", "no gpt/assistant turn")
    system = rec.get("system") or ""
    return Sample.model_validate(
        {
            "instruction": human.get("value", ""),
            "input": "",
            "output": gpt.get("value", "") if gpt is not None else "",
            "provenance": {"source": source},
            "extra": json.dumps({"system": system}, ensure_ascii=False) if system else None,
        },
        context=ctx,
    )


class _FieldError(ValueError):
    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field_name = field_name


def _field_error(name: str, message: str) -> _FieldError:
    return _FieldError(name, message)


def _errors_of(exc: Exception, path: str, line: int) -> list[RecordError]:
    if isinstance(exc, ValidationError):
        out = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"]) or "record"
            out.append(RecordError(path, line, loc, e["msg"]))
        return out
    if isinstance(exc, _FieldError):
        return [RecordError(path, line, exc.field_name, str(exc))]
    return [RecordError(path, line, "record", str(exc))]


def _check_sizes(rec: Any) -> None:
    """The schema's text limit, also on source fields that end up in `extra` (before any other work)."""
    if isinstance(rec, dict):
        for k, v in rec.items():
            if isinstance(v, str) and len(v) > MAX_TEXT_CHARS:
                raise _field_error(k, f"{len(v)} characters, more than the limit of {MAX_TEXT_CHARS}")


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any | RecordError]]:
    """Yields (line number, parsed object or RecordError); blank lines are skipped."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield lineno, RecordError(str(path), lineno, "record", f"invalid UTF-8 at byte {e.start}")
                continue
            if not text.strip():
                continue
            try:
                yield lineno, json.loads(text)
            except json.JSONDecodeError as e:
                yield (
                    lineno,
                    RecordError(str(path), lineno, "record", f"malformed JSON: {e.msg} (column {e.colno})"),
                )


def read_samples(path: str | Path, *, strict: bool = False, require_output: bool = True) -> ReadResult:
    """Read samples from .jsonl/.json/.parquet. strict=True raises InputError at the first bad record.

    require_output=False accepts question-only records (see `record_to_sample`).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    result = ReadResult()
    if suffix == ".parquet":
        records: Iterable[tuple[int, Any]] = _iter_parquet(path)
    elif suffix == ".json":
        records = _iter_json_array(path)
    elif suffix in (".jsonl", ".ndjson"):
        records = iter_jsonl(path)
    else:
        raise InputError(f"{path}: unknown sample file type {suffix!r} (use .jsonl, .json or .parquet)")
    for lineno, rec in records:
        if isinstance(rec, RecordError):
            errs = [rec]
        else:
            try:
                _check_sizes(rec)
                result.samples.append(record_to_sample(rec, source=str(path), require_output=require_output))
                continue
            except (ValueError, ValidationError) as e:
                errs = _errors_of(e, str(path), lineno)
        if strict:
            raise InputError(str(errs[0]))
        result.errors.extend(errs)
    return result


def _iter_json_array(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: invalid UTF-8 at byte {e.start}") from e
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: malformed JSON: {e.msg} (column {e.colno})") from e
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON array of records")
    yield from enumerate(data, start=1)


def _iter_parquet(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"{path}: not a readable Parquet file: {e}") from e
    if "id" in table.column_names and "label" in table.column_names:
        try:
            table = conform_table(table)
        except ValueError as e:
            raise InputError(f"{path}: {e}") from e
    yield from enumerate(table.to_pylist(), start=1)


# ------------------------------------------------------------------ writers


@contextmanager
def atomic_write(path: str | Path, *, tmp: str | Path | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` (one rename), on error it is removed.

    The project's one way to write a shard, marker or manifest: a reader (a resumed run) sees the old
    file or the whole new one, never half of it. `tmp` fixes the temporary name (default: a unique one).
    An OSError names the file (pyarrow's messages do not).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tmp is None:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = name
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if str(path) in str(e):
            raise
        msg = f"cannot write {path}: {e.strerror or e}"
        raise (OSError(e.errno, msg) if e.errno else OSError(msg)) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(text: str, path: str | Path) -> Path:
    """Atomically write a UTF-8 text file (markers, manifests)."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(data: Any, path: str | Path) -> Path:
    return write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str), path)


def write_arrow(table: pa.Table, path: str | Path, *, tmp: str | Path | None = None) -> Path:
    """Atomically write any Arrow table (rejects, plans) as Parquet."""
    with atomic_write(path, tmp=tmp) as t:
        pq.write_table(table, t, compression="zstd")
    return Path(path)


def write_parquet(table_or_samples: pa.Table | list[Sample], path: str | Path) -> Path:
    """Atomically write a sample table (validated against SAMPLE_SCHEMA) as one Parquet file."""
    table = table_or_samples if isinstance(table_or_samples, pa.Table) else samples_to_table(table_or_samples)
    return write_arrow(conform_table(table), path)


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Atomically write dict rows as UTF-8 JSONL."""
    with atomic_write(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str))
            fh.write("\n")
    return Path(path)


def sample_to_alpaca(s: Sample) -> dict[str, str]:
    """A negative is written as a critique (medaug/alpaca.py), never as an answer to imitate."""
    return alpaca_record(s.model_dump(mode="json"))


def write_samples_jsonl(samples: Iterable[Sample], path: str | Path, *, fmt: str = "medaug") -> Path:
    """fmt: 'medaug' (every field) or 'alpaca' (instruction/input/output, the seed article's format)."""
    if fmt == "alpaca":
        return write_jsonl((sample_to_alpaca(s) for s in samples), path)
    if fmt == "medaug":
        return write_jsonl((s.model_dump(mode="json") for s in samples), path)
    raise ValueError(f"unknown JSONL format {fmt!r} (use medaug or alpaca)")
