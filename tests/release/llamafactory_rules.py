"""LLaMA-Factory's dataset_info.json rules (data/README.md of hiyouga/LLaMA-Factory), checked without installing it.

Each entry's file is loaded with `datasets` the way LLaMA-Factory loads a local file, then every row is
checked as its alpaca/sharegpt converters would read it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets

COMMON = {
    "file_name",
    "formatting",
    "ranking",
    "subset",
    "split",
    "folder",
    "num_samples",
    "columns",
    "tags",
    "hf_hub_url",
    "ms_hub_url",
    "script_url",
}
ALPACA_COLUMNS = {
    "prompt",
    "query",
    "response",
    "history",
    "system",
    "tools",
    "images",
    "videos",
    "audios",
    "chosen",
    "rejected",
    "kto_tag",
}
SHAREGPT_COLUMNS = {
    "messages",
    "system",
    "tools",
    "images",
    "videos",
    "audios",
    "chosen",
    "rejected",
    "kto_tag",
}
TAGS = {
    "role_tag",
    "content_tag",
    "user_tag",
    "assistant_tag",
    "observation_tag",
    "function_tag",
    "system_tag",
}
TAG_DEFAULTS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}
LOADERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}


def check_dataset_dir(folder: Path) -> dict[str, datasets.Dataset]:
    """Validate every entry; returns each entry's rows as loaded. Raises AssertionError naming the rule."""
    info = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
    assert isinstance(info, dict) and info, "dataset_info.json must be a non-empty object"
    return {name: check_entry(folder, name, entry) for name, entry in info.items()}


def check_entry(folder: Path, name: str, entry: dict[str, Any]) -> datasets.Dataset:
    assert set(entry) <= COMMON, f"{name}: unknown keys {set(entry) - COMMON}"
    assert isinstance(entry.get("file_name"), str), f"{name}: a local dataset needs file_name"
    path = folder / entry["file_name"]
    assert path.is_file(), f"{name}: {path} missing"
    fmt = entry.get("formatting", "alpaca")
    assert fmt in ("alpaca", "sharegpt"), f"{name}: formatting {fmt!r}"
    ranking = entry.get("ranking", False)
    assert isinstance(ranking, bool), f"{name}: ranking must be a boolean"
    columns = entry.get("columns", {})
    allowed = ALPACA_COLUMNS if fmt == "alpaca" else SHAREGPT_COLUMNS
    assert set(columns) <= allowed, f"{name}: columns {set(columns) - allowed} not allowed for {fmt}"
    if ranking:
        assert {"chosen", "rejected"} <= set(columns), f"{name}: a ranking dataset names chosen and rejected"
    if fmt == "alpaca":
        assert "tags" not in entry, f"{name}: tags are for sharegpt only"
    else:
        assert set(entry.get("tags", {})) <= TAGS, f"{name}: unknown tags"
    ds = datasets.load_dataset(LOADERS[path.suffix], data_files=str(path), split="train")
    assert len(ds) > 0, f"{name}: no rows"
    for col in columns.values():
        assert col in ds.column_names, f"{name}: column {col!r} not in {path.name}"
    for i, row in enumerate(ds):
        (_alpaca_row if fmt == "alpaca" else _sharegpt_row)(
            f"{name}[{i}]", row, columns, entry.get("tags", {}), ranking
        )
    return ds


def _alpaca_row(where: str, row: dict[str, Any], columns: dict[str, str], _tags: Any, ranking: bool) -> None:
    prompt = row[columns.get("prompt", "instruction")]
    assert isinstance(prompt, str) and prompt, f"{where}: empty prompt"
    keys = ("chosen", "rejected") if ranking else ("response",)
    for k in keys:
        value = row[columns.get(k, "output")]
        assert isinstance(value, str) and value, f"{where}: {k} must be a non-empty string"


def _sharegpt_row(
    where: str, row: dict[str, Any], columns: dict[str, str], tags: dict[str, str], ranking: bool
) -> None:
    t = {**TAG_DEFAULTS, **tags}
    messages = row[columns.get("messages", "conversations")]
    assert isinstance(messages, list) and messages, f"{where}: messages must be a non-empty list"
    for turn, msg in enumerate(messages):
        want = t["user_tag"] if turn % 2 == 0 else t["assistant_tag"]
        assert msg[t["role_tag"]] == want, f"{where}: turn {turn} must be {want}"
        assert msg[t["content_tag"]], f"{where}: turn {turn} is empty"
    if ranking:  # the prompt ends with the user; chosen/rejected are the assistant's candidate replies
        assert len(messages) % 2 == 1, f"{where}: a ranking prompt ends with a user turn"
        for k in ("chosen", "rejected"):
            reply = row[columns[k]]
            assert reply[t["role_tag"]] == t["assistant_tag"] and reply[t["content_tag"]], f"{where}: bad {k}"
    else:
        assert len(messages) % 2 == 0, f"{where}: an SFT conversation ends with the assistant"
