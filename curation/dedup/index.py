"""A persistent index of everything already queued or released, for dedup across runs.

Storage: a folder of Parquet shards (one per `add`) plus `manifest.json`, replaced
atomically. Why not SQLite: the lookup is a bulk join of a batch's ~24 band keys
per sample against tens of millions of stored keys; loading the key columns into
numpy/polars and joining in memory takes ~1 s at 1 M entries, while a B-tree on
24 M key rows costs minutes to build and GBs on disk. Adds are append-only and
serialised by a file lock, so a crashed add never corrupts what was there: a shard
not listed in the manifest is ignored.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curation.dedup.config import DedupConfig
from curation.dedup.features import extract, raw_text
from medaug.schema import conform_table, now_utc

# the settings band keys depend on: an index is only usable with the same ones
KEY_PARAMS = ("shingle", "bands", "rows", "seed", "script", "surface")
# what an index written before a setting existed was built with
_KEY_DEFAULTS = {"surface": False}
FORMAT = 1


@dataclass
class IndexHits:
    """Index entries that share an exact key or a band key with a query batch."""

    rows: np.ndarray  # index row numbers
    ids: list[str]
    origins: list[str]
    parent_ids: list[str | None]
    labels: list[str]
    exact: np.ndarray
    keys: np.ndarray  # (len(rows), bands)
    texts: list[str]
    raw: list[str | None] = field(default_factory=list)  # as written, for the facts check; None: not stored


class DedupIndex:
    """Exact keys, MinHash band keys and normalised text of queued/released samples."""

    def __init__(self, path: str | Path, cfg: DedupConfig | None = None):
        self.path = Path(path)
        self.manifest_path = self.path / "manifest.json"
        manifest = self._read_manifest()
        if manifest:
            stored = {**_KEY_DEFAULTS, **manifest["params"]}
            if cfg is not None:
                wrong = {k: (stored[k], getattr(cfg, k)) for k in KEY_PARAMS if stored[k] != getattr(cfg, k)}
                if wrong:
                    detail = ", ".join(
                        f"{k}: index has {a!r}, config has {b!r}" for k, (a, b) in wrong.items()
                    )
                    raise ValueError(f"dedup index {self.path} was built with other settings ({detail})")
            base = cfg or DedupConfig()
            self.cfg = DedupConfig(**{**base.to_dict(), **{k: stored[k] for k in KEY_PARAMS}})
        else:
            self.cfg = cfg or DedupConfig()
        self._cache: dict[str, Any] | None = None

    # ------------------------------------------------------------------ writing

    def add(self, table: pa.Table, origin: str) -> int:
        """Record `table`'s samples as seen under `origin` ("queue", "release:v3", ...).
        Samples already recorded under the same origin are skipped; returns rows added."""
        if not origin or "/" in origin:
            raise ValueError(f"dedup index origin must be a non-empty name without '/', got {origin!r}")
        feats = extract(table, self.cfg)
        with self._locked():
            manifest = self._read_manifest() or self._new_manifest()
            self._cache = None
            present = set(self._column("id", manifest, origin=origin))
            fresh: list[int] = []
            seen_now: set[str] = set()
            for i, sid in enumerate(feats.ids):
                if sid not in present and sid not in seen_now:
                    seen_now.add(sid)
                    fresh.append(i)
            if not fresh:
                return 0
            rows = np.asarray(fresh, dtype=np.int64)
            keys = feats.keys_for(rows, self.cfg)
            shard = pa.table(
                {
                    "id": pa.array([feats.ids[i] for i in fresh], pa.string()),
                    "label": pa.array([feats.labels[i] for i in fresh], pa.string()),
                    "parent_id": pa.array([feats.parent_ids[i] for i in fresh], pa.string()),
                    "exact": pa.array(feats.exact[rows], pa.uint64()),
                    "keys": pa.FixedSizeListArray.from_arrays(
                        pa.array(keys.ravel(), pa.uint64()), self.cfg.bands
                    ),
                    "text": pa.array([feats.texts[i] for i in fresh], pa.large_string()),
                    "raw": pa.array(_raw_column(table, rows), pa.large_string()),
                }
            )
            name = f"shard-{len(manifest['shards']):06d}.parquet"
            tmp = self.path / f".{name}.tmp"
            pq.write_table(shard, tmp, compression="zstd")
            os.replace(tmp, self.path / name)
            manifest["shards"].append(
                {"file": name, "origin": origin, "rows": len(fresh), "added_at": now_utc().isoformat()}
            )
            self._write_manifest(manifest)
            return len(fresh)

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        manifest = self._read_manifest()
        return sum(s["rows"] for s in manifest["shards"]) if manifest else 0

    def origins(self) -> Counter[str]:
        manifest = self._read_manifest()
        counts: Counter[str] = Counter()
        for s in manifest["shards"] if manifest else []:
            counts[s["origin"]] += s["rows"]
        return counts

    def lookup(self, exact: np.ndarray, keys: np.ndarray) -> IndexHits:
        """Index entries sharing an exact key with `exact` or any band key with `keys`."""
        c = self._load()
        if c["n"] == 0:
            return self._hits(np.empty(0, dtype=np.int64))
        by_exact = c["exact_df"].join(pl.DataFrame({"exact": exact}), on="exact", how="semi")["row"]
        by_key = c["key_df"].join(pl.DataFrame({"key": keys.ravel()}), on="key", how="semi")["row"]
        rows = np.unique(np.concatenate((by_exact.to_numpy(), by_key.to_numpy()))).astype(np.int64)
        return self._hits(rows)

    def _hits(self, rows: np.ndarray) -> IndexHits:
        c = self._load()
        if rows.size == 0:
            return IndexHits(
                rows, [], [], [], [], np.empty(0, np.uint64), np.empty((0, self.cfg.bands), np.uint64), []
            )
        take = pa.array(rows)
        meta = c["meta"].take(take)
        texts: list[str] = [""] * rows.size
        raw: list[str | None] = [None] * rows.size
        shard_of = np.searchsorted(c["offsets"], rows, side="right") - 1
        for s in np.unique(shard_of).tolist():
            sel = np.flatnonzero(shard_of == s)
            path = self.path / c["files"][s]
            has_raw = (
                "raw" in pq.read_schema(path).names
            )  # shards written before raw texts were stored lack it
            shard = pq.read_table(path, columns=["text", "raw"] if has_raw else ["text"])
            picked = shard.take(pa.array(rows[sel] - c["offsets"][s]))
            for j, t in zip(sel.tolist(), picked.column("text").to_pylist(), strict=True):
                texts[j] = t
            if has_raw:
                for j, t in zip(sel.tolist(), picked.column("raw").to_pylist(), strict=True):
                    raw[j] = t
        return IndexHits(
            rows=rows,
            ids=meta.column("id").to_pylist(),
            origins=meta.column("origin").to_pylist(),
            parent_ids=meta.column("parent_id").to_pylist(),
            labels=meta.column("label").to_pylist(),
            exact=c["exact"][rows],
            keys=c["keys"][rows],
            texts=texts,
            raw=raw,
        )

    def _load(self) -> dict[str, Any]:
        if self._cache is not None:
            return self._cache
        manifest = self._read_manifest() or self._new_manifest()
        metas, exacts, keys, offsets, files = [], [], [], [0], []
        for s in manifest["shards"]:
            t = pq.read_table(self.path / s["file"], columns=["id", "label", "parent_id", "exact", "keys"])
            metas.append(
                pa.table(
                    {
                        "id": t.column("id"),
                        "label": t.column("label"),
                        "parent_id": t.column("parent_id"),
                        "origin": pa.array([s["origin"]] * t.num_rows, pa.string()),
                    }
                )
            )
            exacts.append(t.column("exact").to_numpy())
            flat = t.column("keys").combine_chunks().flatten().to_numpy()
            keys.append(flat.reshape(-1, self.cfg.bands))
            offsets.append(offsets[-1] + t.num_rows)
            files.append(s["file"])
        n = offsets[-1]
        exact = np.concatenate(exacts) if exacts else np.empty(0, np.uint64)
        key_arr = np.concatenate(keys) if keys else np.empty((0, self.cfg.bands), np.uint64)
        self._cache = {
            "n": n,
            "meta": pa.concat_tables(metas) if metas else None,
            "exact": exact,
            "keys": key_arr,
            "offsets": np.asarray(offsets, dtype=np.int64),
            "files": files,
            "exact_df": pl.DataFrame({"exact": exact, "row": np.arange(n, dtype=np.int64)}),
            "key_df": pl.DataFrame(
                {"key": key_arr.ravel(), "row": np.repeat(np.arange(n, dtype=np.int64), self.cfg.bands)}
            ),
        }
        return self._cache

    def _column(self, name: str, manifest: dict[str, Any], origin: str) -> list[str]:
        out: list[str] = []
        for s in manifest["shards"]:
            if s["origin"] == origin:
                out.extend(pq.read_table(self.path / s["file"], columns=[name]).column(name).to_pylist())
        return out

    # ------------------------------------------------------------------ manifest

    def _new_manifest(self) -> dict[str, Any]:
        return {"format": FORMAT, "params": {k: getattr(self.cfg, k) for k in KEY_PARAMS}, "shards": []}

    def _read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(
                f"dedup index manifest {self.manifest_path}:{e.lineno}: malformed JSON: {e.msg}"
            ) from e
        if manifest.get("format") != FORMAT:
            raise ValueError(f"dedup index {self.manifest_path}: unknown format {manifest.get('format')!r}")
        return manifest

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.manifest_path)

    @contextmanager
    def _locked(self):  # type: ignore[no-untyped-def]
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _raw_column(table: pa.Table, rows: np.ndarray) -> list[str]:
    sub = conform_table(table).select(["instruction", "input", "output"]).take(pa.array(rows))
    cols = [sub.column(c).to_pylist() for c in ("instruction", "input", "output")]
    return [raw_text(a, b, c) for a, b, c in zip(*cols, strict=True)]
