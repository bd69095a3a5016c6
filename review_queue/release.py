"""Versioned datasets: finalised queue items → immutable `<root>/<dataset>/v<N>/` folders.

Layout of a version (every file read-only once published):
    data/shard-00000.parquet ...   SAMPLE_SCHEMA rows: everything released up to vN. A version
                                   hard-links its parent's shards and adds its own, so each version
                                   folder is complete on its own (a fine-tuning run loads one folder)
                                   without storing any row twice.
    lineage/v00001.parquet ...     one row per queue item accounted for (released, duplicate, rejected):
                                   item id, sample id, run, outcome, reviews, arbitration, version.
    manifest.json                  version, parent, who/when, counts, review statistics, runs and
                                   templates, sha256 of every file.

Publishing is one `os.rename` of a finished temporary folder onto `v<N>`: the kernel lets only one
of two racing merges create `v<N>` (the other gets ENOTEMPTY), and the loser recomputes against the
new parent, so it adds only what the winner did not.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from medaug.schema import SAMPLE_SCHEMA, conform_table, now_utc, sample_id, samples_to_table
from review_queue import audit
from review_queue.audit import Event
from review_queue.stats import cohen_kappa, release_time
from review_queue.store import FinalItem, QueueStore, ReviewRecord

FORMAT = 1
SHARD_ROWS = 100_000
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


class NothingToMerge(ReleaseError):
    pass


@dataclass
class MergeResult:
    dataset: str
    version: int
    parent: int | None
    path: Path
    added: int
    total: int
    skipped: Counter[str] = field(default_factory=Counter)  # already_released | duplicate | rejected
    attempts: int = 1


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
    on_disk = {str(p.relative_to(path)) for sub in ("data", "lineage") for p in (path / sub).glob("*") if p.is_file()}
    problems += [f"{name}: not in the manifest" for name in sorted(on_disk - listed.keys())]
    return problems


# ------------------------------------------------------------------ merge


def content_key(row: dict[str, Any]) -> str:
    """Exact-duplicate key: the content id recomputed from normalised text (an imported id may differ)."""
    return sample_id(row["instruction"], row["input"], row["output"], row["label"])


def _review_json(r: ReviewRecord) -> dict[str, Any]:
    return {"reviewer": r.reviewer, "decision": r.decision, "submitted_at": r.submitted_at.isoformat(),
            "payload": r.payload}


def _lineage_row(it: FinalItem, status: str, duplicate_of: str | None, version: int) -> dict[str, Any]:
    return {"item_id": it.item_id, "sample_id": it.sample.id, "status": status, "duplicate_of": duplicate_of,
            "run_id": it.run_id, "outcome": it.outcome, "finalized_at": it.finalized_at,
            "reviewers": [r.reviewer for r in it.reviews],
            "arbiter": it.arbitration.reviewer if it.arbitration else None,
            "reviews": json.dumps([_review_json(r) for r in it.reviews], ensure_ascii=False),
            "arbitration": json.dumps(_review_json(it.arbitration), ensure_ascii=False) if it.arbitration else None,
            "version": version}


@dataclass
class _Plan:
    released: list[FinalItem]
    lineage: list[dict[str, Any]]
    skipped: Counter[str]
    accounted: list[FinalItem]


def _plan(items: Iterable[FinalItem], parent: Path | None, version: int) -> _Plan:
    """Which items become new rows: not accounted for by an earlier version, not rejected, new content."""
    seen_items: set[str] = set()
    seen_ids: set[str] = set()
    seen_content: dict[str, str] = {}
    if parent is not None:
        lin = read_lineage(parent)
        seen_items.update(lin.column("item_id").to_pylist())
        rows = read_rows(parent).select(["id", "instruction", "input", "output", "label"]).to_pylist()
        seen_ids.update(r["id"] for r in rows)
        seen_content.update((content_key(r), r["id"]) for r in rows)
    plan = _Plan([], [], Counter(), [])
    for it in items:
        if it.item_id in seen_items:
            plan.skipped["already_released"] += 1
            continue
        seen_items.add(it.item_id)
        s = it.sample
        if it.rejected:
            plan.skipped["rejected"] += 1
            plan.lineage.append(_lineage_row(it, "rejected", None, version))
            plan.accounted.append(it)
            continue
        key = content_key(s.model_dump(mode="json"))
        dup = s.id if s.id in seen_ids else seen_content.get(key)
        if dup is not None:
            plan.skipped["duplicate"] += 1
            plan.lineage.append(_lineage_row(it, "duplicate", dup, version))
        else:
            seen_ids.add(s.id)
            seen_content[key] = s.id
            plan.released.append(it)
            plan.lineage.append(_lineage_row(it, "released", None, version))
        plan.accounted.append(it)
    return plan


def review_statistics(items: list[FinalItem], review_seconds: dict[str, float] | None = None,
                      idle_seconds: float | None = None) -> dict[str, Any]:
    """Agreement of the two independent reviews over the items this version accounts for; with
    `review_seconds`, the physician time they took (`time`, review_queue.stats.release_time)."""
    paired = [it for it in items if len(it.reviews) >= 2]
    arbitrated = sum(it.arbitration is not None for it in items)
    agreed = sum(it.arbitration is None for it in paired)
    kappa = cohen_kappa([(it.reviews[0].decision, it.reviews[1].decision) for it in paired])
    return {
        "items": len(items),
        "outcomes": dict(sorted(Counter(it.outcome for it in items).items())),
        "double_reviewed": len(paired),
        "agreed": agreed,
        "arbitrated": arbitrated,
        "agreement_rate": round(agreed / len(paired), 4) if paired else None,
        "kappa": round(kappa, 4) if kappa is not None else None,
        "reviews_by_reviewer": dict(sorted(Counter(r.reviewer for it in items for r in it.reviews).items())),
        "arbitrations_by_arbiter": dict(sorted(Counter(it.arbitration.reviewer for it in items
                                                       if it.arbitration).items())),
        **({"time": release_time(review_seconds, [(it.item_id, not it.rejected) for it in items],
                                 *(() if idle_seconds is None else (idle_seconds,)))}
           if review_seconds is not None else {}),
    }


def count_by(table: pa.Table, columns: Iterable[str] = COUNT_COLUMNS) -> dict[str, dict[str, int]]:
    out = {}
    for c in columns:
        vals = Counter(v if v is not None else "none" for v in table.column(c).to_pylist())
        out[c] = dict(sorted(vals.items()))
    return out


def _add_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return dict(sorted((Counter(a) + Counter(b)).items()))


def _sources(released: list[FinalItem]) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per queue run and per template (the run is the push's, which every item has)."""
    runs = Counter(it.run_id or "unknown" for it in released)
    templates = Counter(it.sample.provenance.template_id or "none" for it in released)
    return dict(sorted(runs.items())), dict(sorted(templates.items()))


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _write_readonly(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")
    path.chmod(0o444)


def _build(tmp: Path, plan: _Plan, parent: Path | None, parent_version: int | None, version: int, dataset: str,
           created_by: str, source: str, review_seconds: dict[str, float] | None = None,
           idle_seconds: float | None = None) -> MergeResult:
    (tmp / "data").mkdir(parents=True)
    (tmp / "lineage").mkdir()
    files: dict[str, dict[str, Any]] = {}
    if parent is not None:
        for name, info in read_manifest(parent)["files"].items():
            _link_or_copy(parent / name, tmp / name)
            files[name] = info
    first_shard = sum(1 for n in files if n.startswith("data/"))
    new = samples_to_table([it.sample for it in plan.released])
    for i, start in enumerate(range(0, new.num_rows, SHARD_ROWS)):
        name = f"data/shard-{first_shard + i:05d}.parquet"
        _write_readonly(new.slice(start, SHARD_ROWS), tmp / name)
        files[name] = {"version": version, "rows": min(SHARD_ROWS, new.num_rows - start)}
    lname = f"lineage/v{version:05d}.parquet"
    _write_readonly(pa.Table.from_pylist(plan.lineage, schema=LINEAGE_SCHEMA), tmp / lname)
    files[lname] = {"version": version, "rows": len(plan.lineage)}
    for name, info in files.items():
        if info["version"] == version:
            info.update(sha256=file_sha256(tmp / name), bytes=(tmp / name).stat().st_size)
    added_counts = count_by(new)
    counts, rows = added_counts, new.num_rows
    if parent is not None:  # parent's counts + this version's: no need to reread released rows
        pm = read_manifest(parent)
        counts = {c: _add_counts(pm["counts"][c], added_counts[c]) for c in COUNT_COLUMNS}
        rows += pm["rows"]
    runs, templates = _sources(plan.released)
    manifest = {
        "format": FORMAT, "dataset": dataset, "version": version, "parent_version": parent_version,
        "created_by": created_by, "created_at": now_utc().isoformat(), "source": source,
        "rows": rows, "added": new.num_rows, "counts": counts, "added_counts": added_counts,
        "skipped": dict(sorted(plan.skipped.items())),
        "review": review_statistics(plan.accounted, review_seconds, idle_seconds),
        "runs": runs, "templates": templates,
        "files": dict(sorted(files.items())),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return MergeResult(dataset, version, parent_version, Path(), new.num_rows, rows, plan.skipped)


def publish(tmp: Path, target: Path) -> bool:
    """Atomically move a finished version folder into place; False when `target` already exists."""
    try:
        os.rename(tmp, target)
    except OSError as e:
        if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return False
        raise
    return True


def merge(items: list[FinalItem], *, root: str | Path, dataset: str, created_by: str, source: str = "",
          attempts: int = 10, review_seconds: dict[str, float] | None = None,
          idle_seconds: float | None = None) -> MergeResult:
    """Release the items no earlier version accounts for as version latest+1.

    `review_seconds` (item id -> active review seconds, QueueStore.review_seconds): the manifest's
    review statistics then give the physician minutes per approved sample of this version.

    Raises NothingToMerge when no item brings a new row (no version is written then).
    """
    base = dataset_dir(root, dataset)
    base.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        have = versions(root, dataset)
        parent_version = have[-1] if have else None
        parent = base / f"v{parent_version}" if parent_version else None
        version = (parent_version or 0) + 1
        plan = _plan(items, parent, version)
        if not plan.released:
            where = f"v{parent_version}" if parent_version else "no earlier version"
            raise NothingToMerge(f"nothing new to merge into {dataset!r} ({where}; "
                                 + ", ".join(f"{k}: {v}" for k, v in sorted(plan.skipped.items())) + ")")
        tmp = base / f".tmp-v{version}-{uuid.uuid4().hex[:8]}"
        try:
            result = _build(tmp, plan, parent, parent_version, version, dataset, created_by, source,
                            review_seconds, idle_seconds)
            if publish(tmp, base / f"v{version}"):
                result.path, result.attempts = base / f"v{version}", attempt
                return result
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    raise ReleaseError(f"{dataset!r}: another merge published first {attempts} times in a row; try again")


# ------------------------------------------------------------------ diff and lineage


def diff(root: str | Path, dataset: str, version: int) -> VersionDiff:
    """What `version` added to / removed from its parent, and how the counts moved."""
    path = version_dir(root, dataset, version)
    parent_version = read_manifest(path)["parent_version"]
    rows = read_rows(path)
    before = read_rows(version_dir(root, dataset, parent_version)) if parent_version else SAMPLE_SCHEMA.empty_table()
    ids, old = set(rows.column("id").to_pylist()), set(before.column("id").to_pylist())
    now_counts, old_counts = count_by(rows), count_by(before)
    counts = {
        c: {v: {"parent": old_counts[c].get(v, 0), "version": now_counts[c].get(v, 0),
                "delta": now_counts[c].get(v, 0) - old_counts[c].get(v, 0)}
            for v in sorted(now_counts[c].keys() | old_counts[c].keys())}
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
    mine = lin.filter(pc.and_(pc.equal(lin.column("sample_id"), sample),
                                      pc.equal(lin.column("status"), "released"))).to_pylist()[0]
    prov = row["provenance"] or {}
    parent_id = prov.get("parent_id")
    parent_rows = (rows.filter(pc.equal(rows.column("id"), parent_id)).to_pylist() if parent_id else [])
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


# ------------------------------------------------------------------ from the queue


def merge_from_store(store: QueueStore, *, root: str | Path, dataset: str, created_by: str,
                     dedup_index: str | Path | None = None) -> MergeResult:
    """Merge the queue's finalised items; the merge is written to the queue's audit log.

    With `dedup_index`, the new rows are also recorded there (origin `release:<dataset>:v<N>`), so
    later runs are deduplicated against what is released.
    """
    result = merge(store.finalized(), root=root, dataset=dataset, created_by=created_by,
                   source=store.engine.url.render_as_string(hide_password=True),
                   review_seconds=store.review_seconds(), idle_seconds=store.idle_seconds)
    with store.engine.begin() as conn:
        audit.append(conn, [Event(created_by, "merge", None, None,
                                  {"dataset": dataset, "version": result.version, "parent": result.parent,
                                   "added": result.added, "total": result.total,
                                   "manifest_sha256": file_sha256(result.path / "manifest.json")})],
                     at=time.time())
    if dedup_index is not None:
        from curation.dedup import DedupIndex

        new = [name for name, info in read_manifest(result.path)["files"].items()
               if name.startswith("data/") and info["version"] == result.version]
        table = pa.concat_tables([pq.read_table(result.path / n) for n in new])
        DedupIndex(dedup_index).add(table, origin=f"release:{dataset}:v{result.version}")
    return result
