"""Line-by-line normalisation of text or JSONL streams: one output line per input line, and a bad line
stops the run with its line number (and field) rather than being dropped."""

from __future__ import annotations

import json
from collections import Counter
from typing import BinaryIO, TextIO

from augmenters.lexicon import Lexicon
from augmenters.paraphrase import normalize_line


class LineError(ValueError):
    pass


def normalize_stream(
    src: BinaryIO,
    dst: TextIO,
    lexicon: Lexicon,
    direction: str,
    *,
    field: str | None = None,
    name: str = "-",
    skipped: Counter[str] | None = None,
) -> int:
    """Returns the number of lines written."""
    skipped = skipped if skipped is not None else Counter()
    n = 0
    for no, raw in enumerate(src, 1):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as e:
            raise LineError(f"{name}:{no}: not valid UTF-8 (byte {e.start})") from e
        if field is None:
            dst.write(normalize_line(line, lexicon, direction, skipped) + "\n")
        else:
            dst.write(_json_line(line, no, name, field, lexicon, direction, skipped) + "\n")
        n += 1
    return n


def _json_line(
    line: str, no: int, name: str, field: str, lexicon: Lexicon, direction: str, skipped: Counter[str]
) -> str:
    if not line.strip():
        return line
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        raise LineError(f"{name}:{no}: not valid JSON: {e.msg} (column {e.colno})") from e
    if not isinstance(rec, dict) or field not in rec:
        raise LineError(f"{name}:{no}: field {field!r} is missing")
    if not isinstance(rec[field], str):
        raise LineError(f"{name}:{no}: field {field!r} is not a string")
    rec[field] = normalize_line(rec[field], lexicon, direction, skipped)
    return json.dumps(rec, ensure_ascii=False)
