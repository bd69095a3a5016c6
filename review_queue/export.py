"""Exports of a dataset version for the tools that fine-tune on it.

Formats: Alpaca JSON, ShareGPT JSONL, a LLaMA-Factory folder (data files + `dataset_info.json`),
and an HF folder that `datasets.load_dataset("parquet", data_dir=...)` loads. Splits:
  none        every row, label columns kept (a negative's output is the WRONG answer: filter on `label`)
  label       one file (HF: one split) per label
  preference  SFT rows (positive, refusal) + preference pairs from negatives: prompt, chosen =
              reference_output, rejected = the negative's output; negatives without a reference
              output cannot form a pair and are counted in the export record, not exported.
A datasheet is written beside every export. A LLaMA-Factory folder also gets ready training configs
(review_queue/train_config.py), and exports of other splits into the same folder keep their
dataset_info.json entries and files: one folder can hold `demo_v1` (none) and `demo_v1_sft` +
`demo_v1_preference` (preference) side by side.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from medaug.alpaca import critique_view, prompt_of
from medaug.schema import Label, now_utc
from review_queue.bias import (
    BiasConfigError,
    bias_report,
    counterfactual_summaries,
    quota_source,
    run_sources,
)
from review_queue.datasheet import write_datasheet
from review_queue.train_config import DEFAULT_BASE_MODEL, DEFAULT_TEMPLATE, write_training_configs
from review_queue.versions import ReleaseError, file_sha256, read_manifest, read_rows, version_dir

Format = Literal["alpaca", "sharegpt", "llamafactory", "hf"]
Split = Literal["none", "label", "preference"]
FORMATS: tuple[str, ...] = ("alpaca", "sharegpt", "llamafactory", "hf")
SPLITS: tuple[str, ...] = ("none", "label", "preference")
HF_SHARD_ROWS = 100_000
_SFT_LABELS = (Label.positive.value, Label.refusal.value)
_NEGATIVE_FIELDS = ("verdict", "error_type", "reference_output")
# LLaMA-Factory's ShareGPT tags (its documented defaults, written out so the file states them).
SHAREGPT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}


@dataclass
class ExportResult:
    dataset: str
    version: int
    format: str
    split: str
    path: Path
    files: dict[str, int] = field(default_factory=dict)  # relative file -> rows
    negatives_without_reference: int = 0
    kept: dict[str, int | None] = field(default_factory=dict)  # LLaMA-Factory: earlier splits' files kept
    training_configs: list[str] = field(
        default_factory=list
    )  # LLaMA-Factory: train_lora.yaml, train_dpo.yaml


def _alpaca(row: dict[str, Any]) -> dict[str, Any]:
    if row["label"] == Label.negative.value:
        row = critique_view(row)
    rec = {
        "instruction": row["instruction"],
        "input": row["input"],
        "output": row["output"],
        "id": row["id"],
        "label": row["label"],
        "task": row["task"],
        "area": row["area"],
    }
    if row["label"] == Label.negative.value:
        rec.update({k: row[k] for k in _NEGATIVE_FIELDS})
    return rec


def _sharegpt(row: dict[str, Any]) -> dict[str, Any]:
    if row["label"] == Label.negative.value:
        row = critique_view(row)
    rec = {
        "conversations": [
            {"from": "human", "value": prompt_of(row)},
            {"from": "gpt", "value": row["output"]},
        ],
        "id": row["id"],
        "label": row["label"],
        "task": row["task"],
        "area": row["area"],
    }
    if row["label"] == Label.negative.value:
        rec.update({k: row[k] for k in _NEGATIVE_FIELDS})
    return rec


def _pair(row: dict[str, Any], style: str) -> dict[str, Any]:
    if style == "sharegpt":
        return {
            "conversations": [{"from": "human", "value": prompt_of(row)}],
            "chosen": {"from": "gpt", "value": row["reference_output"]},
            "rejected": {"from": "gpt", "value": row["output"]},
            "id": row["id"],
            "error_type": row["error_type"],
        }
    return {
        "instruction": row["instruction"],
        "input": row["input"],
        "chosen": row["reference_output"],
        "rejected": row["output"],
        "id": row["id"],
        "error_type": row["error_type"],
    }


def _parts(
    rows: list[dict[str, Any]], split: str
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]], int]:
    """(name -> SFT-shaped rows, preference source rows, negatives lacking a reference output)."""
    if split == "none":
        return {"all": rows}, [], 0
    if split == "label":
        by: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by.setdefault(r["label"], []).append(r)
        return by, [], 0
    negatives = [r for r in rows if r["label"] == Label.negative.value]
    pairs = [r for r in negatives if r["reference_output"]]
    return {"sft": [r for r in rows if r["label"] in _SFT_LABELS]}, pairs, len(negatives) - len(pairs)


def _write_json(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _file_exports(
    out: Path, stem: str, parts: dict[str, list[dict[str, Any]]], pairs: list[dict[str, Any]], style: str
) -> tuple[dict[str, int], dict[str, dict[str, Any]]]:
    """Alpaca (.json) or ShareGPT (.jsonl) files, and the LLaMA-Factory entry describing each."""
    files: dict[str, int] = {}
    info: dict[str, dict[str, Any]] = {}
    ext, write, shape = (
        (".jsonl", _write_jsonl, _sharegpt) if style == "sharegpt" else (".json", _write_json, _alpaca)
    )
    for name, rows in parts.items():
        fname = f"{stem}{'' if name == 'all' else '_' + name}{ext}"
        write(out / fname, [shape(r) for r in rows])
        files[fname] = len(rows)
        info[Path(fname).stem] = _lf_entry(fname, style, ranking=False)
    if pairs:
        fname = f"{stem}_preference{ext}"
        write(out / fname, [_pair(r, style) for r in pairs])
        files[fname] = len(pairs)
        info[Path(fname).stem] = _lf_entry(fname, style, ranking=True)
    return files, info


def _lf_entry(file_name: str, style: str, *, ranking: bool) -> dict[str, Any]:
    """One dataset_info.json entry in LLaMA-Factory's documented format."""
    if style == "sharegpt":
        columns = {"messages": "conversations"}
        if ranking:
            columns |= {"chosen": "chosen", "rejected": "rejected"}
        entry: dict[str, Any] = {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": columns,
            "tags": dict(SHAREGPT_TAGS),
        }
    else:
        columns = {"prompt": "instruction", "query": "input"}
        columns |= {"chosen": "chosen", "rejected": "rejected"} if ranking else {"response": "output"}
        entry = {"file_name": file_name, "formatting": "alpaca", "columns": columns}
    if ranking:
        entry["ranking"] = True
    return entry


def _write_hf(out: Path, table: pa.Table, split: str, pairs: list[dict[str, Any]]) -> dict[str, int]:
    """Hub layout `data/<split>-00000-of-0000N.parquet`, which load_dataset maps to named splits."""
    files: dict[str, int] = {}

    def shards(folder: Path, name: str, t: pa.Table) -> None:
        (folder / "data").mkdir(parents=True, exist_ok=True)
        n = max(1, -(-t.num_rows // HF_SHARD_ROWS))
        for i in range(n):
            rel = folder / "data" / f"{name}-{i:05d}-of-{n:05d}.parquet"
            part = t.slice(i * HF_SHARD_ROWS, HF_SHARD_ROWS)
            pq.write_table(part, rel, compression="zstd")
            files[str(rel.relative_to(out))] = part.num_rows

    labels = table.column("label")
    if split == "none":
        shards(out, "train", table)
    elif split == "label":
        for label in sorted(set(labels.to_pylist())):
            shards(out, label, table.filter(pc.equal(labels, label)))
    else:
        sft = table.filter(pc.is_in(labels, pa.array(_SFT_LABELS)))
        shards(out / "sft", "train", sft)
        if pairs:
            shards(out / "preference", "train", pa.Table.from_pylist([_pair(r, "alpaca") for r in pairs]))
    return files


def _kept_entries(target: Path, new: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int | None]]:
    """Entries of an earlier LLaMA-Factory export in `target` that this one does not replace (other splits),
    with their files' row counts (from the earlier export.json; None when unknown)."""
    info_path = target / "dataset_info.json"
    if not info_path.is_file():
        return {}, {}
    try:
        old = json.loads(info_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReleaseError(f"{info_path}: cannot merge into it, not valid JSON: {e}") from e
    if not isinstance(old, dict):
        raise ReleaseError(f"{info_path}: cannot merge into it, expected a JSON object")
    try:
        record = json.loads((target / "export.json").read_text(encoding="utf-8"))
        known = {**record.get("kept", {}), **record.get("files", {})}
    except (OSError, ValueError):
        known = {}
    new_files = {e["file_name"] for e in new.values()}
    kept: dict[str, Any] = {}
    rows: dict[str, int | None] = {}
    for name, entry in old.items():
        if name in new:
            continue  # the same entry exported again (any style): replaced
        fname = entry.get("file_name") if isinstance(entry, dict) else None
        if not isinstance(fname, str) or Path(fname).name != fname or fname.startswith("."):
            raise ReleaseError(
                f"{info_path}: entry {name!r}: file_name must be a file in this folder, got {fname!r}"
            )
        if fname in new_files or not (target / fname).is_file():
            continue  # its file is being replaced, or is gone: the entry could not load
        kept[name] = entry
        rows[fname] = known.get(fname)
    return kept, rows


def _carry(src: Path, dst: Path) -> None:
    """Hard link (same filesystem, no copy) or copy an earlier export's file into the new folder."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _sft_and_ranking(info: dict[str, Any], new: dict[str, Any], stem: str) -> tuple[list[str], list[str]]:
    """Entries the training configs name: this export's SFT entries; this version's preference entries."""
    sft = [n for n, e in new.items() if not e.get("ranking")]
    ranking = [n for n, e in info.items() if e.get("ranking") and n == f"{stem}_preference"]
    return sft, ranking


def _bias(table: pa.Table, quotas_config: str | Path | None, runs_dir: str | Path) -> dict[str, Any]:
    """The datasheet's bias report; a quotas source that cannot be used is a ReleaseError naming it."""
    run_ids = {p["run_id"] for p in table.column("provenance").to_pylist() if p and p.get("run_id")}
    try:
        sources = (
            [quota_source(quotas_config)] if quotas_config is not None else run_sources(runs_dir, run_ids)
        )
        return bias_report(table, sources, counterfactual_summaries(runs_dir, run_ids))
    except BiasConfigError as e:
        raise ReleaseError(f"bias report: {e}") from e


def export_version(
    root: str | Path,
    dataset: str,
    version: int | None,
    fmt: str,
    *,
    split: str = "none",
    out: str | Path | None = None,
    style: str = "alpaca",
    created_by: str = "",
    base_model: str = DEFAULT_BASE_MODEL,
    template: str = DEFAULT_TEMPLATE,
    quotas_config: str | Path | None = None,
    runs_dir: str | Path = "runs",
) -> ExportResult:
    """Write one export of a version (latest when None) and its datasheet; replaces an earlier export there
    (a LLaMA-Factory folder keeps the entries of other splits). `base_model`/`template`: the training
    configs' model (hub id or local folder) and LLaMA-Factory chat template. The datasheet's bias report
    compares against the quotas of `quotas_config` (a generate job config), else of the version's generate
    runs found under `runs_dir`."""
    if fmt not in FORMATS:
        raise ReleaseError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if split not in SPLITS:
        raise ReleaseError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if style not in ("alpaca", "sharegpt"):
        raise ReleaseError(f"--style must be alpaca or sharegpt, got {style!r}")
    vdir = version_dir(root, dataset, version)
    manifest = read_manifest(vdir)
    n = manifest["version"]
    target = Path(out) if out is not None else vdir / "exports" / fmt
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        table = read_rows(vdir)
        rows = table.to_pylist()
        parts, pairs, unpaired = _parts(rows, split)
        stem = f"{dataset}_v{n}"
        kept_rows: dict[str, int | None] = {}
        configs: list[str] = []
        if fmt == "hf":
            files = _write_hf(tmp, table, split, pairs)
        else:
            file_style = {"alpaca": "alpaca", "sharegpt": "sharegpt"}.get(fmt, style)
            files, new = _file_exports(tmp, stem, parts, pairs, file_style)
            if fmt == "llamafactory":
                kept, kept_rows = _kept_entries(target, new)
                for fname in kept_rows:
                    _carry(target / fname, tmp / fname)
                info = {**kept, **new}
                (tmp / "dataset_info.json").write_text(
                    json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8"
                )
                sft, ranking = _sft_and_ranking(info, new, stem)
                configs = write_training_configs(
                    tmp, target, stem, sft, ranking, base_model=base_model, template=template
                )
        result = ExportResult(dataset, n, fmt, split, target, files, unpaired, kept_rows, configs)
        record = {
            **asdict(result),
            "path": str(target),
            "style": style if fmt == "llamafactory" else None,
            "base_model": base_model if configs else None,
            "template": template if configs else None,
            "created_by": created_by,
            "created_at": now_utc().isoformat(),
            "manifest_sha256": file_sha256(vdir / "manifest.json"),
            "sha256": {f: file_sha256(tmp / f) for f in [*files, *kept_rows, *configs]},
        }
        (tmp / "export.json").write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
        write_datasheet(tmp, table, manifest, record, _bias(table, quotas_config, runs_dir))
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return result
