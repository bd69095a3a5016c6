"""Line-by-line normalisation of text or JSONL streams: one output line per input line, and a bad line
stops the run with its line number (and field) rather than being dropped."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import BinaryIO, TextIO

from augmenters.paraphrase import normalize_line
from medaug.lexicon import Lexicon


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
    normalise: Callable[[str], str] | None = None,
) -> int:
    """Returns the number of lines written. `normalise` maps one line (default: normalize_line)."""
    skipped = skipped if skipped is not None else Counter()
    if normalise is None:

        def normalise(text: str) -> str:
            return normalize_line(text, lexicon, direction, skipped)

    n = 0
    for no, raw in enumerate(src, 1):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as e:
            raise LineError(f"{name}:{no}: not valid UTF-8 (byte {e.start})") from e
        if field is None:
            dst.write(normalise(line) + "\n")
        else:
            dst.write(_json_line(line, no, name, field, normalise) + "\n")
        n += 1
    return n


def _json_line(line: str, no: int, name: str, field: str, normalise: Callable[[str], str]) -> str:
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
    rec[field] = normalise(rec[field])
    return json.dumps(rec, ensure_ascii=False)
