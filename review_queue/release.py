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
import json
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medaug.schema import now_utc, sample_id, samples_to_table
from review_queue import audit
from review_queue.audit import Event
from review_queue.stats import cohen_kappa, release_time
from review_queue.store import FinalItem, QueueStore, ReviewRecord
from review_queue.versions import (
    COUNT_COLUMNS,
    LINEAGE_SCHEMA,
    ReleaseError,
    count_by,
    dataset_dir,
    file_sha256,
    read_lineage,
    read_manifest,
    read_rows,
    versions,
)

FORMAT = 1
SHARD_ROWS = 100_000


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


# ------------------------------------------------------------------ merge


def content_key(row: dict[str, Any]) -> str:
    """Exact-duplicate key: the content id recomputed from normalised text (an imported id may differ)."""
    return sample_id(row["instruction"], row["input"], row["output"], row["label"])


def _review_json(r: ReviewRecord) -> dict[str, Any]:
    return {
        "reviewer": r.reviewer,
        "decision": r.decision,
        "submitted_at": r.submitted_at.isoformat(),
        "payload": r.payload,
    }


def _lineage_row(it: FinalItem, status: str, duplicate_of: str | None, version: int) -> dict[str, Any]:
    return {
        "item_id": it.item_id,
        "sample_id": it.sample.id,
        "status": status,
        "duplicate_of": duplicate_of,
        "run_id": it.run_id,
        "outcome": it.outcome,
        "finalized_at": it.finalized_at,
        "reviewers": [r.reviewer for r in it.reviews],
        "arbiter": it.arbitration.reviewer if it.arbitration else None,
        "reviews": json.dumps([_review_json(r) for r in it.reviews], ensure_ascii=False),
        "arbitration": json.dumps(_review_json(it.arbitration), ensure_ascii=False)
        if it.arbitration
        else None,
        "version": version,
    }


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


def review_statistics(
    items: list[FinalItem], review_seconds: dict[str, float] | None = None, idle_seconds: float | None = None
) -> dict[str, Any]:
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
        "arbitrations_by_arbiter": dict(
            sorted(Counter(it.arbitration.reviewer for it in items if it.arbitration).items())
        ),
        **(
            {
                "time": release_time(
                    review_seconds,
                    [(it.item_id, not it.rejected) for it in items],
                    *(() if idle_seconds is None else (idle_seconds,)),
                )
            }
            if review_seconds is not None
            else {}
        ),
    }


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


def _build(
    tmp: Path,
    plan: _Plan,
    parent: Path | None,
    parent_version: int | None,
    version: int,
    dataset: str,
    created_by: str,
    source: str,
    review_seconds: dict[str, float] | None = None,
    idle_seconds: float | None = None,
) -> MergeResult:
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
        "format": FORMAT,
        "dataset": dataset,
        "version": version,
        "parent_version": parent_version,
        "created_by": created_by,
        "created_at": now_utc().isoformat(),
        "source": source,
        "rows": rows,
        "added": new.num_rows,
        "counts": counts,
        "added_counts": added_counts,
        "skipped": dict(sorted(plan.skipped.items())),
        "review": review_statistics(plan.accounted, review_seconds, idle_seconds),
        "runs": runs,
        "templates": templates,
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


def merge(
    items: list[FinalItem],
    *,
    root: str | Path,
    dataset: str,
    created_by: str,
    source: str = "",
    attempts: int = 10,
    review_seconds: dict[str, float] | None = None,
    idle_seconds: float | None = None,
) -> MergeResult:
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
            raise NothingToMerge(
                f"nothing new to merge into {dataset!r} ({where}; "
                + ", ".join(f"{k}: {v}" for k, v in sorted(plan.skipped.items()))
                + ")"
            )
        tmp = base / f".tmp-v{version}-{uuid.uuid4().hex[:8]}"
        try:
            result = _build(
                tmp,
                plan,
                parent,
                parent_version,
                version,
                dataset,
                created_by,
                source,
                review_seconds,
                idle_seconds,
            )
            if publish(tmp, base / f"v{version}"):
                result.path, result.attempts = base / f"v{version}", attempt
                return result
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    raise ReleaseError(f"{dataset!r}: another merge published first {attempts} times in a row; try again")


# ------------------------------------------------------------------ from the queue


def merge_from_store(
    store: QueueStore,
    *,
    root: str | Path,
    dataset: str,
    created_by: str,
    dedup_index: str | Path | None = None,
) -> MergeResult:
    """Merge the queue's finalised items; the merge is written to the queue's audit log.

    With `dedup_index`, the new rows are also recorded there (origin `release:<dataset>:v<N>`), so
    later runs are deduplicated against what is released.
    """
    result = merge(
        store.finalized(),
        root=root,
        dataset=dataset,
        created_by=created_by,
        source=store.engine.url.render_as_string(hide_password=True),
        review_seconds=store.review_seconds(),
        idle_seconds=store.idle_seconds,
    )
    with store.engine.begin() as conn:
        audit.append(
            conn,
            [
                Event(
                    created_by,
                    "merge",
                    None,
                    None,
                    {
                        "dataset": dataset,
                        "version": result.version,
                        "parent": result.parent,
                        "added": result.added,
                        "total": result.total,
                        "manifest_sha256": file_sha256(result.path / "manifest.json"),
                    },
                )
            ],
            at=time.time(),
        )
    if dedup_index is not None:
        from curation.dedup import DedupIndex

        new = [
            name
            for name, info in read_manifest(result.path)["files"].items()
            if name.startswith("data/") and info["version"] == result.version
        ]
        table = pa.concat_tables([pq.read_table(result.path / n) for n in new])
        DedupIndex(dedup_index).add(table, origin=f"release:{dataset}:v{result.version}")
    return result
