"""The on-disk layout of versioned datasets, and reading it: version folders, manifests, rows,
lineage, integrity, diffs.

Read-only: everything here works on published versions (review_queue.release writes them), so
exports, the evidence pane and the CLI read datasets without the merge machinery. The layout itself
is described in review_queue.release.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from medaug.schema import SAMPLE_SCHEMA, conform_table

DEFAULT_ROOT = "datasets"
_VERSION_DIR = re.compile(r"v(\d+)")
_DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
COUNT_COLUMNS = ("label", "task", "area", "error_type")

LINEAGE_SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # released | duplicate | rejected
        pa.field("duplicate_of", pa.string()),  # the released sample id this item's content equals
        pa.field("run_id", pa.string()),
        pa.field("outcome", pa.string(), nullable=False),  # approved | corrected | rejected
        pa.field("finalized_at", pa.timestamp("us", tz="UTC")),
        pa.field("reviewers", pa.list_(pa.string())),
        pa.field("arbiter", pa.string()),
        pa.field("reviews", pa.string()),  # JSON: [{reviewer, decision, submitted_at, payload}]
        pa.field("arbitration", pa.string()),  # JSON or null
        pa.field("version", pa.int32(), nullable=False),
    ]
)


class ReleaseError(Exception):
    """A merge/export/diff request that cannot be done (names the dataset, version or file)."""


@dataclass
class VersionDiff:
    dataset: str
    version: int
    parent: int | None
    added: list[str]
    removed: list[str]
    counts: dict[str, dict[str, dict[str, int]]]  # column -> value -> {parent, version, delta}


# ------------------------------------------------------------------ layout


def default_root() -> Path:
    return Path(os.environ.get("MEDAUG_DATASETS", DEFAULT_ROOT))


def dataset_dir(root: str | Path, dataset: str) -> Path:
    if not _DATASET_NAME.fullmatch(dataset):
        raise ReleaseError(f"dataset name {dataset!r}: use letters, digits, '_', '-', '.' (max 100)")
    return Path(root) / dataset


def versions(root: str | Path, dataset: str) -> list[int]:
    """Published versions, ascending (a folder counts once it holds its manifest)."""
    d = dataset_dir(root, dataset)
    if not d.is_dir():
        return []
    found = [int(m.group(1)) for p in d.iterdir() if (m := _VERSION_DIR.fullmatch(p.name))]
    return sorted(n for n in found if (d / f"v{n}" / "manifest.json").is_file())


def version_dir(root: str | Path, dataset: str, version: int | None = None) -> Path:
    """The folder of `version` (latest when None); ReleaseError when there is none."""
    have = versions(root, dataset)
    if not have:
        raise ReleaseError(f"dataset {dataset!r} has no versions under {Path(root)}")
    n = have[-1] if version is None else version
    if n not in have:
        raise ReleaseError(f"dataset {dataset!r} has no version {n} (have {', '.join(map(str, have))})")
    return dataset_dir(root, dataset) / f"v{n}"


def read_manifest(path: str | Path) -> dict[str, Any]:
    p = Path(path) / "manifest.json"
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ReleaseError(f"{p}: cannot read manifest: {e}") from e


def read_rows(path: str | Path) -> pa.Table:
    """Every sample released up to this version (SAMPLE_SCHEMA)."""
    files = sorted((Path(path) / "data").glob("shard-*.parquet"))
    if not files:
        return SAMPLE_SCHEMA.empty_table()
    return pa.concat_tables([conform_table(pq.read_table(f)) for f in files])


def read_lineage(path: str | Path) -> pa.Table:
    files = sorted((Path(path) / "lineage").glob("v*.parquet"))
    if not files:
        return LINEAGE_SCHEMA.empty_table()
    return pa.concat_tables([pq.read_table(f).cast(LINEAGE_SCHEMA) for f in files])


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: str | Path) -> list[str]:
    """Files whose content no longer matches the manifest's hash (or that are missing/unlisted)."""
    path = Path(path)
    listed = read_manifest(path)["files"]
    problems = []
    for name, info in sorted(listed.items()):
        f = path / name
        if not f.is_file():
            problems.append(f"{name}: missing")
        elif file_sha256(f) != info["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest")
    on_disk = {
        str(p.relative_to(path)) for sub in ("data", "lineage") for p in (path / sub).glob("*") if p.is_file()
    }
    problems += [f"{name}: not in the manifest" for name in sorted(on_disk - listed.keys())]
    return problems


def count_by(table: pa.Table, columns: Iterable[str] = COUNT_COLUMNS) -> dict[str, dict[str, int]]:
    out = {}
    for c in columns:
        vals = Counter(v if v is not None else "none" for v in table.column(c).to_pylist())
        out[c] = dict(sorted(vals.items()))
    return out


# ------------------------------------------------------------------ diff and lineage


def diff(root: str | Path, dataset: str, version: int) -> VersionDiff:
    """What `version` added to / removed from its parent, and how the counts moved."""
    path = version_dir(root, dataset, version)
    parent_version = read_manifest(path)["parent_version"]
    rows = read_rows(path)
    before = (
        read_rows(version_dir(root, dataset, parent_version))
        if parent_version
        else SAMPLE_SCHEMA.empty_table()
    )
    ids, old = set(rows.column("id").to_pylist()), set(before.column("id").to_pylist())
    now_counts, old_counts = count_by(rows), count_by(before)
    counts = {
        c: {
            v: {
                "parent": old_counts[c].get(v, 0),
                "version": now_counts[c].get(v, 0),
                "delta": now_counts[c].get(v, 0) - old_counts[c].get(v, 0),
            }
            for v in sorted(now_counts[c].keys() | old_counts[c].keys())
        }
        for c in COUNT_COLUMNS
    }
    return VersionDiff(dataset, version, parent_version, sorted(ids - old), sorted(old - ids), counts)


def lineage_of(path: str | Path, sample: str) -> dict[str, Any]:
    """From one released row to its queue item, reviews, arbitration, run, template, parent and augmentation."""
    path = Path(path)
    rows = read_rows(path)
    found = [r for r in rows.filter(pc.equal(rows.column("id"), sample)).to_pylist()]
    if not found:
        raise ReleaseError(f"{path}: no released sample {sample!r}")
    row = found[0]
    lin = read_lineage(path)
    mine = lin.filter(
        pc.and_(pc.equal(lin.column("sample_id"), sample), pc.equal(lin.column("status"), "released"))
    ).to_pylist()[0]
    prov = row["provenance"] or {}
    parent_id = prov.get("parent_id")
    parent_rows = rows.filter(pc.equal(rows.column("id"), parent_id)).to_pylist() if parent_id else []
    return {
        "sample": row,
        "version": mine["version"],
        "queue_item": mine["item_id"],
        "run_id": mine["run_id"],
        "outcome": mine["outcome"],
        "reviews": json.loads(mine["reviews"]),
        "arbitration": json.loads(mine["arbitration"]) if mine["arbitration"] else None,
        "template_id": prov.get("template_id"),
        "seed_id": prov.get("seed_id"),
        "parent_id": parent_id,
        "parent": parent_rows[0] if parent_rows else None,  # None when the parent was never released
        "augmentation": prov.get("augmentation") or [],
    }
