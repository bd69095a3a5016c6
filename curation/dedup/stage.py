"""The dedup batch stage: exact, then near-duplicate, within the batch and against the index.

Which sample of a cluster is kept (stated rule, first difference decides):
  1. one already released, then one already queued (it has been or is being reviewed);
  2. the most traceable: most provenance fields filled;
  3. the fewest augmentation steps (closest to its source);
  4. the earliest `provenance.created_at`;
  5. the first in input order.
Members are visited in that order and one is dropped only when it is an exact or
verified near-duplicate of a member already kept (see cluster.py for why not strictly
one per cluster). Only samples with the same label merge, and never a sample with its
own parent or child (a paraphrase or negative built from a sample is not its
duplicate), and never two whose clinical facts differ (negation, numbers, drugs, doses:
medaug.facts on the raw texts), which is checked only for pairs that passed the text
similarity and would drop a sample (cluster.py), so it costs time only where there is
something to decide. Every dropped
sample names the kept one and their similarity in `detail`.
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np
import pyarrow as pa

from curation.dedup.candidates import bucket_pairs
from curation.dedup.cluster import keep_greedy
from curation.dedup.config import DedupConfig
from curation.dedup.features import Features, extract, raw_text
from curation.dedup.index import KEY_PARAMS, DedupIndex, IndexHits
from curation.dedup.verify import FactCheck, verify_pairs
from medaug.run import StageStats
from medaug.schema import conform_table
from medaug.stage import LOCAL, Cluster, StageResult, count_reasons, reject_table

STAGE = "dedup"


class Engine(Protocol):
    """Where the heavy steps run: in this process, or as Ray tasks (curation.dedup.distributed).
    An engine with `fork = True` lets the fact check fork processes on this machine."""

    name: str

    def features(self, table: pa.Table, cfg: DedupConfig) -> Features: ...

    def keys(self, feats: Features, rows: np.ndarray, cfg: DedupConfig) -> np.ndarray: ...

    def pairs(
        self, keys: np.ndarray, nodes: np.ndarray, lengths: np.ndarray, cfg: DedupConfig
    ) -> np.ndarray: ...

    def verify(
        self, pairs: np.ndarray, texts: list[str], cfg: DedupConfig
    ) -> tuple[np.ndarray, np.ndarray]: ...


class LocalEngine:
    """In this process. `fork`: may the fact check spread over forked processes (cfg.fact_workers)?
    Not on a driver that joined Ray: forking a process that runs Ray's threads is unsafe."""

    name = "local"

    def __init__(self, fork: bool = True):
        self.fork = fork

    def features(self, table: pa.Table, cfg: DedupConfig) -> Features:
        return extract(table, cfg)

    def keys(self, feats: Features, rows: np.ndarray, cfg: DedupConfig) -> np.ndarray:
        return feats.keys_for(rows, cfg)

    def pairs(self, keys: np.ndarray, nodes: np.ndarray, lengths: np.ndarray, cfg: DedupConfig) -> np.ndarray:
        return bucket_pairs(keys, nodes, lengths, cfg)

    def verify(self, pairs: np.ndarray, texts: list[str], cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
        return verify_pairs(pairs, texts, cfg)


def pick_engine(rows: int, cfg: DedupConfig, cluster: Cluster = LOCAL) -> Engine:
    """Ray tasks on a cluster the job joined, for inputs of at least `cfg.ray_min_rows` rows; this
    process otherwise (without forking when the process is a Ray driver)."""
    if cluster.ray and rows >= cfg.ray_min_rows:
        from curation.dedup.distributed import RayEngine

        return RayEngine()
    return LocalEngine(fork=not cluster.ray)


def dedup_table(
    table: pa.Table, cfg: DedupConfig | None = None, index: DedupIndex | None = None, cluster: Cluster = LOCAL
) -> StageResult:
    """Dedup one table where `cluster` says (pick_engine): Ray tasks only when the caller joined a
    cluster and says so; in this process by default (the CLI, the benches, the diversity check)."""
    cfg = cfg or (index.cfg if index is not None else DedupConfig())
    return run_dedup(table, cfg, index, pick_engine(table.num_rows, cfg, cluster))


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
    if index is not None and any(getattr(index.cfg, k) != getattr(cfg, k) for k in KEY_PARAMS):
        raise ValueError(f"dedup config does not match the settings index {index.path} was built with")
    feats = engine.features(table, cfg)

    # exact: one representative node per distinct (label, normalised text)
    _, reps, rep_of_row = np.unique(feats.exact, return_index=True, return_inverse=True)
    rep_of_row = rep_of_row.reshape(-1)
    r = reps.size
    rep_keys = engine.keys(feats, reps, cfg)
    hits = (
        index.lookup(feats.exact[reps], rep_keys)
        if index is not None
        else IndexHits(
            np.empty(0, np.int64),
            [],
            [],
            [],
            [],
            np.empty(0, np.uint64),
            np.empty((0, cfg.bands), np.uint64),
            [],
        )
    )
    m = hits.rows.size

    # near: nodes are the representatives, then the index entries that share a key with them
    # node ids, lengths and pairs are int32 (half the memory of the 24 band copies and of the pairs)
    texts = [feats.texts[i] for i in reps.tolist()] + hits.texts
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int32, count=r + m)
    all_keys = np.concatenate((rep_keys, hits.keys)) if m else rep_keys
    del rep_keys
    nodes = np.repeat(np.arange(r + m, dtype=np.int32), cfg.bands)
    cand = engine.pairs(all_keys.ravel(), nodes, np.repeat(lengths, cfg.bands), cfg)
    del all_keys, nodes, lengths
    if m:
        cand = cand[cand[:, 0] < r]  # index entries were deduplicated when they were added
    lineage = _not_lineage(cand, feats, reps, rep_of_row, hits)
    if lineage is not None:
        cand = cand[lineage]
    n_cand = len(cand)
    edges, scores = engine.verify(cand, texts, cfg)
    n_verified = len(edges)
    procs = (
        cfg.fact_workers if getattr(engine, "fork", False) else 1
    )  # forked fact checks: LocalEngine's call
    facts = (
        FactCheck(edges, _raw_texts(table, reps, edges, hits.raw), procs, scores < cfg.threshold)
        if cfg.check_facts and n_verified
        else None
    )
    if m:  # exact matches with the index need no verification
        rep_pos = {int(k): i for i, k in enumerate(feats.exact[reps].tolist())}
        ex = [(rep_pos[int(e)], r + j) for j, e in enumerate(hits.exact.tolist()) if int(e) in rep_pos]
        if ex:
            edges = np.concatenate((edges, np.asarray(ex, dtype=np.int64)))
            scores = np.concatenate((scores, np.ones(len(ex), np.float32)))

    # rule order over rows; an exact group is represented by its best row
    row_order = np.lexsort((np.arange(n), feats.created_us, feats.aug_steps, -feats.richness))
    row_rank = np.empty(n, dtype=np.int64)
    row_rank[row_order] = np.arange(n)
    node_rank = np.full(r, n, dtype=np.int64)
    np.minimum.at(node_rank, rep_of_row, row_rank)
    best_row = row_order[node_rank]
    # index entries come first (released, then queued, then other origins) and are always kept
    hit_origin = np.fromiter((_origin_rank(o) for o in hits.origins), dtype=np.int64, count=m)
    hit_prio = np.empty(m, dtype=np.int64)
    hit_prio[np.lexsort((hits.rows, hit_origin))] = np.arange(m)
    # nodes are renumbered so the index entries are 0..m-1 for keep_greedy
    renum = np.concatenate((np.arange(m, m + r), np.arange(m)))
    prio = np.concatenate((hit_prio, m + node_rank))
    keeper_of, score_of = keep_greedy(
        prio, renum[edges] if len(edges) else edges, scores, fixed=m, agree=facts
    )

    row_node = rep_of_row + m
    row_keeper = keeper_of[row_node]
    kept_mask = (row_keeper == row_node) & (best_row[rep_of_row] == np.arange(n))
    ids, reasons, details = [], [], []
    for row in np.flatnonzero(~kept_mask).tolist():
        node, k = int(row_node[row]), int(row_keeper[row])
        if k < m:
            other, reason = f"{hits.ids[k]} ({hits.origins[k]})", seen_reason(hits.origins[k])
        elif k == node:
            other, reason = feats.ids[best_row[node - m]], "duplicate_exact"
        else:
            other, reason = feats.ids[best_row[k - m]], "near_duplicate"
        ids.append(feats.ids[row])
        reasons.append(reason)
        details.append(f"{other} score={float(score_of[node]) if k != node else 1.0:.3f}")
    kept_rows = np.flatnonzero(kept_mask)
    rejected = reject_table(ids, reasons, details)
    stats.rows_out = kept_rows.size
    stats.rejects = count_reasons(rejected)
    stats.seconds = time.perf_counter() - t0
    stats.extra = {
        "candidates": n_cand,
        "verified": n_verified,
        "facts_checked": facts.checked if facts else 0,
        "facts_differ": facts.differ if facts else 0,
        "index_hits": m,
        "engine": engine.name,
    }
    return StageResult(kept=table.take(pa.array(kept_rows)), rejected=rejected, stats=stats)


def _raw_texts(
    table: pa.Table, reps: np.ndarray, edges: np.ndarray, hit_raw: list[str | None]
) -> list[str | None]:
    """Raw text per node, filled only for nodes that appear in an edge (the rest stay None)."""
    r = reps.size
    raw: list[str | None] = [None] * (r + len(hit_raw))
    nodes = np.unique(edges)
    batch = nodes[nodes < r]
    if batch.size:
        sub = table.select(["instruction", "input", "output"]).take(pa.array(reps[batch]))
        cols = [sub.column(c).to_pylist() for c in ("instruction", "input", "output")]
        for node, a, b, c in zip(batch.tolist(), *cols, strict=True):
            raw[node] = raw_text(a, b, c)
    for node in nodes[nodes >= r].tolist():
        raw[node] = hit_raw[node - r]
    return raw


def _not_lineage(
    pairs: np.ndarray, feats: Features, reps: np.ndarray, rep_of_row: np.ndarray, hits: IndexHits
) -> np.ndarray | None:
    """Mask of pairs that are neither parent and child nor siblings (children of one parent);
    None when no node has a parent (every pair passes, and no id map is built).

    Paraphrase variants of one sample are near-duplicates on purpose (胸口疼 vs 胸痛 is what the
    model should learn); the augmenter, not dedup, decides how many of them a parent gets.
    """
    r = reps.size
    parents = [feats.parent_ids[i] for i in reps.tolist()] + hits.parent_ids
    if not any(parents) or len(pairs) == 0:
        return None
    node_of: dict[str, int] = {sid: int(rep_of_row[i]) for i, sid in enumerate(feats.ids)}
    for j, sid in enumerate(hits.ids):
        node_of.setdefault(sid, r + j)
    parent_node = np.fromiter(
        (node_of.get(p, -1) if p else -1 for p in parents), dtype=np.int64, count=len(parents)
    )
    codes: dict[str, int] = {}
    family = np.fromiter(
        (codes.setdefault(p, len(codes)) if p else -1 for p in parents), dtype=np.int64, count=len(parents)
    )
    a, b = pairs[:, 0], pairs[:, 1]
    siblings = (family[a] >= 0) & (family[a] == family[b])
    return (parent_node[a] != b) & (parent_node[b] != a) & ~siblings
