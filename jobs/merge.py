"""Merge job: finalised review-queue items → a new immutable dataset version.

    medaug merge --dataset cardio --db postgresql+psycopg://.../queue
    python -m jobs.merge --dataset cardio --db sqlite:///var/queue.db --root datasets

Exit status: 0 merged, 3 nothing new to merge, 2 bad request (unknown dataset name, database error).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from medaug.run import DEFAULT_QUEUE_URL

NOTHING_NEW = 3


def run_merge(dataset: str, db: str, root: Path, created_by: str, dedup_index: Path | None = None) -> int:
    """Merge and print the outcome; returns the exit status."""
    from sqlalchemy.exc import SQLAlchemyError

    from review_queue.release import NothingToMerge, merge_from_store
    from review_queue.store import QueueStore
    from review_queue.versions import ReleaseError, read_manifest

    try:
        store = QueueStore.open(db)
    except SQLAlchemyError as e:
        print(f"error: cannot open queue database {db}: {e}", file=sys.stderr)
        return 2
    try:
        res = merge_from_store(
            store, root=root, dataset=dataset, created_by=created_by, dedup_index=dedup_index
        )
    except NothingToMerge as e:
        print(e)
        return NOTHING_NEW
    except (ReleaseError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
    m = read_manifest(res.path)
    parent = f"v{res.parent}" if res.parent else "none"
    print(
        f"{dataset} v{res.version} (parent {parent}) at {res.path}: +{res.added} rows, {res.total} in total"
    )
    print(
        f"  skipped: {dict(res.skipped) or 'nothing'}; review agreement {m['review']['agreement_rate']}, "
        f"kappa {m['review']['kappa']}"
    )
    tm = m["review"].get("time") or {}
    if tm:
        print(
            f"  physician minutes per approved sample: {tm['minutes_per_approved']} "
            f"({tm['total_minutes']} review minutes, {tm['approved_items']} approved)"
        )
    for col in ("label", "task", "area"):
        print(f"  {col}: {m['counts'][col]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.merge", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--db", default=os.environ.get("MEDAUG_QUEUE_DB", DEFAULT_QUEUE_URL))
    parser.add_argument("--root", default=os.environ.get("MEDAUG_DATASETS", "datasets"))
    parser.add_argument("--by", default=None, help="maintainer name (default: $USER)")
    parser.add_argument("--dedup-index", default=None)
    args = parser.parse_args(argv)
    return run_merge(
        args.dataset,
        args.db,
        Path(args.root),
        args.by or getpass.getuser(),
        Path(args.dedup_index) if args.dedup_index else None,
    )


if __name__ == "__main__":
    sys.exit(main())
