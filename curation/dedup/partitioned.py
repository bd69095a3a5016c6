"""Dedup as partitioned Ray tasks, for inputs whose texts do not fit on one machine.

The driver holds numbers only (per row: exact key, keep-rule fields, id hashes; per verified
pair: two node ids and a score); every text stays in the object store or in the input chunks.
The result is the local engine's result (stage.run_dedup), row for row. Data flow, with C
input chunks (tables in the object store, or parquet files the tasks read) and P key partitions:

  1. extract, one task per chunk (features.extract): numbers back to the driver, the chunk's
     normalised texts into the object store as their own ref (an Arrow array, read in place).
  2. driver: exact duplicates by np.unique over the exact keys of all rows, as run_dedup does:
     one node per distinct (label, text), represented by its first row, whose chunk holds its
     text; the lineage arrays (parent node and family per node, from hashes of ids).
  3. keys, one task per chunk: MinHash band keys of the chunk's representative rows, returned
     split by key % P (num_returns=P), so that every member of an LSH bucket meets in one task;
     the driver only passes the refs on (a shuffle through the object store).
  4. pairs, one task per partition: candidates.bucket_pairs over the slices it is handed,
     split by the chunk of the pair's first node (num_returns=C).
  5. verify, one task per chunk a: its pairs from every partition, repeats and lineage pairs
     dropped, then verify.verify_pairs for each partner chunk b in turn with the texts of a and
     b only (two chunks at a time bound a task's memory), then the clinical facts
     (verify.same_facts) of the verified pairs, on raw texts read back from the input.
  6. driver: verified pairs in the local engine's order, cluster.keep_greedy with the same keep
     rule and those facts as its `agree`, then per row: kept, or rejected naming a row.
  7. ids (per chunk, the ids that other chunks' rejections name, num_returns=C) and finish (per
     chunk, its kept rows and its rejected rows with their details): tables stay in the store.

Ids and parent ids meet through 64-bit blake2b hashes (as exact keys are already): two
different ids with the same hash (about 3e-6 at 10 M rows) would read as parent and child.
The DedupIndex (samples already queued or released) is not supported here: use run_dedup.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from curation.dedup.candidates import bucket_pairs
from curation.dedup.cluster import keep_greedy
from curation.dedup.config import DedupConfig
from curation.dedup.features import extract, label_codes, raw_text
from curation.dedup.minhash import band_keys, signatures
from curation.dedup.verify import same_facts, verify_pairs
from medaug.run import StageStats
from medaug.schema import conform_table, empty_table
from medaug.stage import REJECT_SCHEMA, StageResult, reject_table

STAGE = "dedup"
ENGINE = "ray-partitioned"
Source = ray.ObjectRef | str  # a ref to a pa.Table, or the path of a parquet file


def _load(chunk: pa.Table | str) -> pa.Table:
    return conform_table(pq.read_table(chunk) if isinstance(chunk, str) else chunk)


def _split(values: list, n: int) -> list:
    """What a task with num_returns=n returns (a bare value when n == 1)."""
    return values if n > 1 else values[0]


def _refs(refs: object, n: int) -> list:
    return refs if n > 1 else [refs]  # type: ignore[return-value, list-item]


def _hash64(values: list[str | None]) -> np.ndarray:
    """63-bit hash per string (-1 for None or empty): ids and parent ids compared as numbers."""
    out = np.full(len(values), -1, dtype=np.int64)
    for i, v in enumerate(values):
        if v:
            out[i] = int.from_bytes(hashlib.blake2b(v.encode(), digest_size=8).digest(), "little") >> 1
    return out


@ray.remote(num_returns=2)
def _extract(chunk: pa.Table | str, cfg: DedupConfig) -> tuple[dict[str, np.ndarray], pa.Array]:
    f = extract(_load(chunk), cfg)
    numbers = {
        "exact": f.exact,
        "richness": f.richness,
        "aug_steps": f.aug_steps,
        "created_us": f.created_us,
        "label": label_codes(f.labels),
        "id": _hash64(f.ids),
        "parent": _hash64(f.parent_ids),
    }
    return numbers, pa.array(f.texts, pa.large_string())  # an Arrow array: read in place from the store


@ray.remote
def _keys(
    texts: pa.Array, rows: np.ndarray, nodes: np.ndarray, labels: np.ndarray, parts: int, cfg: DedupConfig
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    sub = texts.take(pa.array(rows.astype(np.int64))).to_pylist()
    keys = band_keys(signatures(sub, cfg, threads=1), labels, cfg).ravel()
    node = np.repeat(nodes.astype(np.int32), cfg.bands)
    length = np.repeat(np.fromiter((len(t) for t in sub), dtype=np.int32, count=len(sub)), cfg.bands)
    part = keys % np.uint64(parts)
    return _split([(keys[part == p], node[part == p], length[part == p]) for p in range(parts)], parts)


@ray.remote
def _pairs(
    chunks: int, node_chunk: np.ndarray, cfg: DedupConfig, *slices: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> list[np.ndarray]:
    """Candidate pairs of one key partition, split by the chunk of their first node."""
    keys, nodes, lengths = (np.concatenate([s[i] for s in slices]) for i in range(3))
    pairs = bucket_pairs(keys, nodes, lengths, cfg)
    del keys, nodes, lengths
    owner = node_chunk[pairs[:, 0]]
    return _split([pairs[owner == c] for c in range(chunks)], chunks)


def _raw_rows(chunk: ray.ObjectRef | str, rows: np.ndarray) -> list[str]:
    """Raw texts (features.raw_text) of some rows of a chunk: a parquet file reads only the row
    groups that hold them."""
    cols = ["instruction", "input", "output"]
    if isinstance(chunk, str):
        f = pq.ParquetFile(chunk)
        starts = np.cumsum([0] + [f.metadata.row_group(g).num_rows for g in range(f.num_row_groups)])
        group = np.searchsorted(starts, rows, side="right") - 1
        used = np.unique(group)
        part = f.read_row_groups(used.tolist(), columns=[c for c in cols if c in f.schema_arrow.names])
        sizes = starts[used + 1] - starts[used]
        at = np.concatenate(([0], np.cumsum(sizes)[:-1]))  # where each used group starts in `part`
        sub = part.take(pa.array(rows - starts[group] + at[np.searchsorted(used, group)]))
    else:
        table = ray.get(chunk)
        sub = table.select([c for c in cols if c in table.column_names]).take(pa.array(rows.astype(np.int64)))
    got = [sub.column(c).to_pylist() if c in sub.column_names else [None] * len(rows) for c in cols]
    return [raw_text(x, y, z) for x, y, z in zip(*got, strict=True)]


def _texts_of(nodes: np.ndarray, node_chunk: np.ndarray, node_row: np.ndarray, arrays: dict) -> list[str]:
    """Texts of `nodes` (in that order) from the chunks' text arrays (chunk -> pa.Array)."""
    out = np.empty(nodes.size, dtype=object)
    ch = node_chunk[nodes]
    for c, arr in arrays.items():
        mine = ch == c
        if mine.any():
            out[mine] = arr.take(pa.array(node_row[nodes[mine]].astype(np.int64))).to_pylist()
    return out.tolist()


# a fresh worker process every few chunks: the Python heap a verify task grew is returned to the
# node, so a node's memory follows one task, not the largest of the many it ran
@ray.remote(max_calls=4)
def _verify(
    cfg: DedupConfig,
    chunk: int,
    maps: tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None],
    refs: tuple[list[ray.ObjectRef], list[ray.ObjectRef | str]],
    *slices: np.ndarray,
) -> dict[str, np.ndarray | int]:
    """The candidate pairs whose first node lies in `chunk`: repeats across partitions and lineage
    pairs (stage._not_lineage) dropped, then verified one partner chunk at a time, so a task holds
    the texts of two chunks at most; then the clinical facts of the verified pairs."""
    node_chunk, node_row, lineage = maps
    text_refs, sources = refs
    pairs = np.concatenate(slices).astype(np.int64)
    if len(pairs):
        width = int(pairs.max()) + 1
        code = np.unique(pairs[:, 0] * width + pairs[:, 1])  # sorted (a, b), each pair once
        pairs = np.stack((code // width, code % width), axis=1)
        del code
    if lineage is not None and len(pairs):
        parent, family = lineage
        a, b = pairs[:, 0], pairs[:, 1]
        siblings = (family[a] >= 0) & (family[a] == family[b])
        pairs = pairs[(parent[a] != b) & (parent[b] != a) & ~siblings]
    n_cand = len(pairs)
    own = ray.get(text_refs[chunk])
    partner = node_chunk[pairs[:, 1]]
    edges, scores = [np.empty((0, 2), np.int64)], [np.empty(0, np.float32)]
    for other in np.unique(partner).tolist():
        sel = pairs[partner == other]
        arrays = {chunk: own} | ({} if other == chunk else {other: ray.get(text_refs[other])})
        nodes, local = np.unique(sel, return_inverse=True)
        found, sc = verify_pairs(
            local.reshape(-1, 2), _texts_of(nodes, node_chunk, node_row, arrays), cfg, workers=1
        )  # one task per CPU already
        edges.append(nodes[found].reshape(-1, 2))
        scores.append(sc)
        del arrays, sel, nodes, local
    del own, pairs
    edges_all, scores_all = np.concatenate(edges), np.concatenate(scores)
    # raw texts of the verified pairs' nodes, a chunk at a time, for the facts
    nodes, local = np.unique(edges_all, return_inverse=True)
    local = local.reshape(-1, 2)
    raw = np.empty(nodes.size, dtype=object)
    ch = node_chunk[nodes]
    for c in np.unique(ch).tolist():
        raw[ch == c] = _raw_rows(sources[c], node_row[nodes[ch == c]].astype(np.int64))
    raw_list = raw.tolist()
    plain = np.fromiter((raw_list[a] == raw_list[b] for a, b in local.tolist()), dtype=bool, count=len(local))
    same = (
        same_facts(local, raw_list, scores_all < cfg.threshold)
        if cfg.check_facts
        else np.ones(len(local), dtype=bool)
    )
    return {"edges": edges_all, "scores": scores_all, "same": same, "plain": plain, "candidates": n_cand}


@ray.remote
def _ids(chunk: pa.Table | str, chunks: int, requests: list[np.ndarray]) -> list[list[str]]:
    ids = _load(chunk).column("id")
    return _split([ids.take(pa.array(r, pa.int64())).to_pylist() for r in requests], chunks)


@ray.remote(num_returns=2)
def _finish(
    chunk: pa.Table | str,
    kept: np.ndarray,
    rejected: np.ndarray,
    near: np.ndarray,
    scores: np.ndarray,
    other_chunk: np.ndarray,
    *other_ids: list[str],
) -> tuple[pa.Table, pa.Table]:
    table = _load(chunk)
    others = np.empty(len(rejected), dtype=object)
    for c, ids in enumerate(other_ids):
        if ids:
            others[other_chunk == c] = ids
    ids = table.column("id").take(pa.array(rejected, pa.int64())).to_pylist()
    reasons = ["near_duplicate" if x else "duplicate_exact" for x in near.tolist()]
    details = [f"{o} score={float(s):.3f}" for o, s in zip(others.tolist(), scores.tolist(), strict=True)]
    return table.take(pa.array(kept, pa.int64())), reject_table(ids, reasons, details)


class _Facts:
    """keep_greedy's `agree` from the facts the verify tasks computed; counts like verify.FactCheck."""

    def __init__(self, same: np.ndarray, plain: np.ndarray):
        self.same, self.plain = same, plain
        self.checked = self.differ = 0

    def __call__(self, edge: int) -> bool:
        if self.plain[edge]:
            return True
        self.checked += 1
        self.differ += not self.same[edge]
        return bool(self.same[edge])


@dataclass
class PartitionedResult:
    """Per input chunk, refs to its kept rows and its rejected rows (REJECT_SCHEMA), in input order."""

    kept: list[ray.ObjectRef]
    rejected: list[ray.ObjectRef]
    stats: StageStats
    kept_rows: np.ndarray = field(repr=False)  # global row numbers, ascending

    def tables(self) -> tuple[pa.Table, pa.Table]:
        """Both as single tables, on the driver (for inputs that fit in its memory)."""
        kept = pa.concat_tables(ray.get(self.kept)) if self.kept else empty_table()
        rejected = pa.concat_tables(ray.get(self.rejected)) if self.rejected else REJECT_SCHEMA.empty_table()
        return kept, rejected


def dedup_partitioned(
    chunks: list[Source], cfg: DedupConfig | None = None, partitions: int | None = None, index: object = None
) -> PartitionedResult:
    """Dedup of the rows of `chunks` (in order) as one batch, with the local engine's result.

    partitions: key partitions and pair groups (default: twice the cluster's CPUs, at least the
    number of chunks). Ray must be initialised.
    """
    if index is not None:
        raise ValueError("dedup_partitioned does not look samples up in a DedupIndex; use run_dedup")
    t0 = time.perf_counter()
    cfg = cfg or DedupConfig()
    C = len(chunks)
    P = partitions or max(C, 2 * int(ray.cluster_resources().get("CPU", 1)))
    # 1. features
    extracted = [_extract.remote(c, cfg) for c in chunks]
    text_refs = [t for _, t in extracted]
    parts = ray.get([f for f, _ in extracted])
    t_extract = time.perf_counter()
    sizes = np.array([p["exact"].size for p in parts], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    n = int(offsets[-1])
    col = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    del parts
    stats = StageStats(STAGE, rows_in=n)
    if n == 0:
        stats.extra = {"engine": ENGINE}
        return PartitionedResult([], [], stats, np.empty(0, np.int64))
    # 2. exact duplicates: node = distinct exact key, its row the first one (as run_dedup)
    _, reps, rep_of_row = np.unique(col["exact"], return_index=True, return_inverse=True)
    rep_of_row = rep_of_row.reshape(-1)
    r = reps.size
    rep_chunk = (np.searchsorted(offsets, reps, side="right") - 1).astype(np.int32)
    rep_row = (reps - offsets[rep_chunk]).astype(np.int32)
    lineage = _lineage(col["id"], col["parent"], reps, rep_of_row)
    # 3.-4. band keys, shuffled by key % P, then candidate pairs per partition, by first node % P
    key_refs = []
    for c in range(C):
        sel = np.flatnonzero(rep_chunk == c)
        key_refs.append(
            _refs(
                _keys.options(num_returns=P).remote(
                    text_refs[c], rep_row[sel], sel, col["label"][reps[sel]], P, cfg
                ),
                P,
            )
        )
    node_chunk = ray.put(rep_chunk)
    pair_refs = [
        _refs(
            _pairs.options(num_returns=C).remote(C, node_chunk, cfg, *[key_refs[c][p] for c in range(C)]), C
        )
        for p in range(P)
    ]
    del key_refs
    # 5. verification per chunk of first nodes, partner chunk by partner chunk
    maps = ray.put((rep_chunk, rep_row, lineage))
    refs = ray.put((text_refs, list(chunks)))  # refs inside an object: fetched by the tasks when needed
    found = ray.get(
        [_verify.remote(cfg, c, maps, refs, *[pair_refs[p][c] for p in range(P)]) for c in range(C)]
    )
    del pair_refs, maps, refs, node_chunk, text_refs
    edges = np.concatenate([f["edges"] for f in found]).astype(np.int64).reshape(-1, 2)
    order = np.argsort(edges[:, 0] * r + edges[:, 1], kind="stable")  # the local engine's edge order
    edges = edges[order]
    scores = np.concatenate([f["scores"] for f in found])[order]
    facts = (
        _Facts(
            np.concatenate([f["same"] for f in found])[order],
            np.concatenate([f["plain"] for f in found])[order],
        )
        if cfg.check_facts and len(edges)
        else None
    )
    n_cand = sum(f["candidates"] for f in found)
    del found
    t_verify = time.perf_counter()
    # 8. keep rule and clustering, as run_dedup (no index: no fixed nodes)
    row_order = np.lexsort((np.arange(n), col["created_us"], col["aug_steps"], -col["richness"]))
    del col
    row_rank = np.empty(n, dtype=np.int64)
    row_rank[row_order] = np.arange(n)
    node_rank = np.full(r, n, dtype=np.int64)
    np.minimum.at(node_rank, rep_of_row, row_rank)
    del row_rank
    best_row = row_order[node_rank]
    del row_order
    keeper_of, score_of = keep_greedy(node_rank, edges, scores, agree=facts)
    row_keeper = keeper_of[rep_of_row]
    kept_mask = (row_keeper == rep_of_row) & (best_row[rep_of_row] == np.arange(n))
    rej = np.flatnonzero(~kept_mask)
    node, k = rep_of_row[rej], row_keeper[rej]
    near = k != node
    other = best_row[k]  # the kept row named: the group's best row (exact) or the keeper's
    rej_score = np.where(near, score_of[node], 1.0)
    del row_keeper, best_row, keeper_of, score_of, rep_of_row
    kept_rows = np.flatnonzero(kept_mask)
    t_keep = time.perf_counter()
    # 9. ids of the rows named, from the chunks that hold them, then the tables per chunk
    rej_chunk = np.searchsorted(offsets, rej, side="right") - 1
    other_chunk = np.searchsorted(offsets, other, side="right") - 1
    id_refs = [
        _refs(
            _ids.options(num_returns=C).remote(
                chunks[d],
                C,
                [other[(rej_chunk == c) & (other_chunk == d)] - offsets[d] for c in range(C)],
            ),
            C,
        )
        for d in range(C)
    ]
    kept_refs, rej_refs = [], []
    for c in range(C):
        mine = rej_chunk == c
        kr, rr = _finish.remote(
            chunks[c],
            kept_rows[(kept_rows >= offsets[c]) & (kept_rows < offsets[c + 1])] - offsets[c],
            rej[mine] - offsets[c],
            near[mine],
            rej_score[mine],
            other_chunk[mine],
            *[id_refs[d][c] for d in range(C)],
        )
        kept_refs.append(kr)
        rej_refs.append(rr)
    stats.rows_out = int(kept_rows.size)
    stats.rejects.update({"duplicate_exact": int((~near).sum()), "near_duplicate": int(near.sum())})
    stats.rejects = +stats.rejects  # no zero counts, as count_reasons
    stats.seconds = time.perf_counter() - t0
    stats.extra = {
        "candidates": n_cand,
        "verified": len(edges),
        "facts_checked": facts.checked if facts else 0,
        "facts_differ": facts.differ if facts else 0,
        "index_hits": 0,
        "engine": ENGINE,
        "chunks": C,
        "partitions": P,
        # where the wall time went: features; keys, pairs and verification (one pipeline); keep rule
        "phase_s": {
            "extract": round(t_extract - t0, 1),
            "keys_pairs_verify": round(t_verify - t_extract, 1),
            "keep": round(t_keep - t_verify, 1),
        },
    }
    return PartitionedResult(kept_refs, rej_refs, stats, kept_rows)


def dedup_table_partitioned(
    table: pa.Table, cfg: DedupConfig | None = None, chunk_rows: int = 250_000, partitions: int | None = None
) -> StageResult:
    """dedup_partitioned over a table the caller already holds, as the stage's StageResult."""
    chunks = [ray.put(table.slice(lo, chunk_rows)) for lo in range(0, table.num_rows, chunk_rows)]
    res = dedup_partitioned(chunks, cfg, partitions)
    kept, rejected = res.tables()
    return StageResult(kept=kept, rejected=rejected, stats=res.stats)


def _lineage(
    id_hash: np.ndarray, parent_hash: np.ndarray, reps: np.ndarray, rep_of_row: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per node, the node of its parent (-1 if none here) and its family (parent hash, -1 if none),
    as stage._not_lineage builds from ids: an id given twice names the node of its last row."""
    family = parent_hash[reps]
    if not (family >= 0).any():
        return None
    order = np.argsort(id_hash, kind="stable")
    sorted_ids = id_hash[order]
    pos = np.searchsorted(sorted_ids, family, side="right") - 1
    found = (family >= 0) & (pos >= 0) & (sorted_ids[np.maximum(pos, 0)] == family)
    parent = np.where(found, rep_of_row[order[np.maximum(pos, 0)]], -1)
    return parent.astype(np.int64), family
