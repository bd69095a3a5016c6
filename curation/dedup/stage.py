"""The dedup batch stage: exact, then near-duplicate, within the batch and against the index.

Which sample a cluster keeps (stated rule, first difference decides):
  1. one already released, then one already queued (it has been or is being reviewed);
  2. the most traceable: most provenance fields filled;
  3. the fewest augmentation steps (closest to its source);
  4. the earliest `provenance.created_at`;
  5. the first in input order.
Only samples with the same label merge, and never a sample with its own parent or
child (a paraphrase or negative built from a sample is not its duplicate). Every
dropped sample names the kept one and their similarity in `detail`.
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np
import pyarrow as pa
from rapidfuzz.distance import Levenshtein

from curation.dedup.candidates import bucket_pairs
from curation.dedup.cluster import components, keepers
from curation.dedup.config import DedupConfig
from curation.dedup.features import Features, extract
from curation.dedup.index import DedupIndex, IndexHits
from curation.dedup.verify import verify_pairs
from medaug.run import StageStats
from medaug.schema import conform_table
from medaug.stage import StageResult, count_reasons, reject_table

STAGE = "dedup"


class Engine(Protocol):
    """Where the heavy steps run: in this process, or as Ray tasks (curation.dedup.distributed)."""

    name: str

    def features(self, table: pa.Table, cfg: DedupConfig) -> Features: ...

    def keys(self, feats: Features, rows: np.ndarray, cfg: DedupConfig) -> np.ndarray: ...

    def pairs(self, keys: np.ndarray, nodes: np.ndarray, lengths: np.ndarray, cfg: DedupConfig) -> np.ndarray: ...

    def verify(self, pairs: np.ndarray, texts: list[str], threshold: float) -> tuple[np.ndarray, np.ndarray]: ...


class LocalEngine:
    name = "local"

    def features(self, table: pa.Table, cfg: DedupConfig) -> Features:
        return extract(table, cfg)

    def keys(self, feats: Features, rows: np.ndarray, cfg: DedupConfig) -> np.ndarray:
        return feats.keys_for(rows, cfg)

    def pairs(self, keys: np.ndarray, nodes: np.ndarray, lengths: np.ndarray, cfg: DedupConfig) -> np.ndarray:
        return bucket_pairs(keys, nodes, lengths, cfg)

    def verify(self, pairs: np.ndarray, texts: list[str], threshold: float) -> tuple[np.ndarray, np.ndarray]:
        return verify_pairs(pairs, texts, threshold)


def dedup_table(table: pa.Table, cfg: DedupConfig | None = None, index: DedupIndex | None = None) -> StageResult:
    """The stage entry point. Inputs of at least `cfg.ray_min_rows` rows run as Ray tasks when
    Ray is already initialised (a job joined a cluster); everything else runs in this process."""
    cfg = cfg or (index.cfg if index is not None else DedupConfig())
    if table.num_rows >= cfg.ray_min_rows:
        import ray

        if ray.is_initialized():
            from curation.dedup.distributed import RayEngine

            return run_dedup(table, cfg, index, RayEngine())
    return run_dedup(table, cfg, index, LocalEngine())


def _origin_rank(origin: str) -> int:
    if origin.startswith("release"):
        return 0
    return 1 if origin == "queue" else 2


def seen_reason(origin: str) -> str:
    """seen_in_queue, seen_in_release (for "release:v3"), seen_in_<origin> otherwise."""
    return f"seen_in_{origin.split(':', 1)[0]}"


def run_dedup(table: pa.Table, cfg: DedupConfig, index: DedupIndex | None, engine: Engine) -> StageResult:
    t0 = time.perf_counter()
    table = conform_table(table)
    n = table.num_rows
    stats = StageStats(STAGE, rows_in=n)
    if n == 0:
        return StageResult(kept=table, stats=stats)
    if index is not None and any(getattr(index.cfg, k) != getattr(cfg, k) for k in ("shingle", "bands", "rows", "seed", "script")):
        raise ValueError(f"dedup config does not match the settings index {index.path} was built with")
    feats = engine.features(table, cfg)

    # exact: one representative node per distinct (label, normalised text)
    _, reps, rep_of_row = np.unique(feats.exact, return_index=True, return_inverse=True)
    rep_of_row = rep_of_row.reshape(-1)
    r = reps.size
    rep_keys = engine.keys(feats, reps, cfg)
    hits = index.lookup(feats.exact[reps], rep_keys) if index is not None else IndexHits(
        np.empty(0, np.int64), [], [], [], [], np.empty(0, np.uint64), np.empty((0, cfg.bands), np.uint64), []
    )
    m = hits.rows.size

    # near: nodes are the representatives, then the index entries that share a key with them
    texts = [feats.texts[i] for i in reps.tolist()] + hits.texts
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=r + m)
    all_keys = np.concatenate((rep_keys, hits.keys)) if m else rep_keys
    nodes = np.repeat(np.arange(r + m, dtype=np.int64), cfg.bands)
    cand = engine.pairs(all_keys.ravel(), nodes, np.repeat(lengths, cfg.bands), cfg)
    cand = cand[cand[:, 0] < r]  # index entries were deduplicated when they were added
    cand = cand[_not_lineage(cand, feats, reps, rep_of_row, hits)]
    n_cand = len(cand)
    edges, scores = engine.verify(cand, texts, cfg.threshold)
    if m:  # exact matches with the index need no verification
        rep_pos = {int(k): i for i, k in enumerate(feats.exact[reps].tolist())}
        ex = [(rep_pos[int(e)], r + j) for j, e in enumerate(hits.exact.tolist()) if int(e) in rep_pos]
        if ex:
            edges = np.concatenate((edges, np.asarray(ex, dtype=np.int64)))
    comp = components(r + m, edges)

    # keeper per cluster, at row level: rows are units 0..n-1, index entries n..n+m-1
    unit_comp = np.concatenate((comp[rep_of_row], comp[r:]))
    hit_origin = np.fromiter((_origin_rank(o) for o in hits.origins), dtype=np.int64, count=m)
    rank = [
        np.concatenate((np.full(n, 3, np.int64), hit_origin)),
        np.concatenate((-feats.richness, np.zeros(m, np.int64))),
        np.concatenate((feats.aug_steps, np.zeros(m, np.int64))),
        np.concatenate((feats.created_us, np.zeros(m, np.int64))),
        np.concatenate((np.arange(n, dtype=np.int64), hits.rows)),
    ]
    keeper = keepers(unit_comp, rank)[:n]

    # a cluster can join a sample to its own parent or child through a third member;
    # such a pair was never a duplicate edge, so the sample stays
    unit_ids = feats.ids + hits.ids
    unit_parents = feats.parent_ids + hits.parent_ids
    for row in np.flatnonzero(keeper != np.arange(n)).tolist():
        k = int(keeper[row])
        if unit_parents[row] == unit_ids[k] or (unit_parents[k] == feats.ids[row] and unit_ids[k] != feats.ids[row]):
            keeper[row] = row
    kept_rows = np.flatnonzero(keeper == np.arange(n))
    ids, reasons, details = [], [], []
    for row in np.flatnonzero(keeper != np.arange(n)).tolist():
        k = int(keeper[row])
        if k >= n:
            j = k - n
            other_id, other_text, reason = hits.ids[j], hits.texts[j], seen_reason(hits.origins[j])
            suffix = f" ({hits.origins[j]})"
        else:
            other_id, other_text, suffix = feats.ids[k], feats.texts[k], ""
            reason = "duplicate_exact" if feats.exact[row] == feats.exact[k] else "near_duplicate"
        score = Levenshtein.normalized_similarity(feats.texts[row], other_text)
        ids.append(feats.ids[row])
        reasons.append(reason)
        details.append(f"{other_id}{suffix} score={score:.3f}")
    rejected = reject_table(ids, reasons, details)
    stats.rows_out = kept_rows.size
    stats.rejects = count_reasons(rejected)
    stats.seconds = time.perf_counter() - t0
    stats.extra = {"candidates": n_cand, "verified": int(len(edges)), "index_hits": m, "engine": engine.name}
    return StageResult(kept=table.take(pa.array(kept_rows)), rejected=rejected, stats=stats)


def _not_lineage(
    pairs: np.ndarray, feats: Features, reps: np.ndarray, rep_of_row: np.ndarray, hits: IndexHits
) -> np.ndarray:
    """Mask of pairs that are not parent and child of each other."""
    r = reps.size
    node_of: dict[str, int] = {sid: int(rep_of_row[i]) for i, sid in enumerate(feats.ids)}
    for j, sid in enumerate(hits.ids):
        node_of.setdefault(sid, r + j)
    parents = [feats.parent_ids[i] for i in reps.tolist()] + hits.parent_ids
    parent_node = np.fromiter((node_of.get(p, -1) if p else -1 for p in parents), dtype=np.int64, count=len(parents))
    if not (parent_node >= 0).any() or len(pairs) == 0:
        return np.ones(len(pairs), dtype=bool)
    a, b = pairs[:, 0], pairs[:, 1]
    return (parent_node[a] != b) & (parent_node[b] != a)
