"""The dedup steps as Ray tasks, for inputs too large for one process.

Same algorithm as the local engine, split where it parallelises: normalisation and
MinHash per row chunk, candidate pairing per band-key partition (the shuffle by LSH
band: every key goes to partition key % P, so all members of a bucket meet in one
task), verification per chunk of pairs with only the texts that chunk names. Clustering and the keep rule stay on the driver: they are linear and cheap.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import ray

from curation.dedup.candidates import bucket_pairs
from curation.dedup.config import DedupConfig
from curation.dedup.features import Features, extract
from curation.dedup.minhash import band_keys, signatures
from curation.dedup.verify import verify_pairs


@ray.remote
def _extract(table: pa.Table, cfg: DedupConfig) -> Features:
    return extract(table, cfg)


@ray.remote
def _keys(texts: list[str], codes: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    return band_keys(signatures(texts, cfg, threads=1), codes, cfg)  # one task per CPU already


@ray.remote
def _pairs(keys: np.ndarray, nodes: np.ndarray, lengths: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    return bucket_pairs(keys, nodes, lengths, cfg)


@ray.remote(num_returns=2)
def _verify(pairs: np.ndarray, texts: list[str], cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    return verify_pairs(pairs, texts, cfg, workers=1)  # one task per CPU already


class RayEngine:
    """Runs each heavy step as `parts` Ray tasks (default: two per CPU in the cluster)."""

    name = "ray"

    def __init__(self, parts: int | None = None):
        self.parts = parts or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))

    def _bounds(self, n: int) -> list[tuple[int, int]]:
        step = max(1, -(-n // self.parts))
        return [(lo, min(n, lo + step)) for lo in range(0, n, step)]

    def features(self, table: pa.Table, cfg: DedupConfig) -> Features:
        parts = ray.get(
            [_extract.remote(table.slice(lo, hi - lo), cfg) for lo, hi in self._bounds(table.num_rows)]
        )
        return Features(
            ids=[x for p in parts for x in p.ids],
            labels=[x for p in parts for x in p.labels],
            parent_ids=[x for p in parts for x in p.parent_ids],
            texts=[x for p in parts for x in p.texts],
            exact=np.concatenate([p.exact for p in parts]),
            richness=np.concatenate([p.richness for p in parts]),
            aug_steps=np.concatenate([p.aug_steps for p in parts]),
            created_us=np.concatenate([p.created_us for p in parts]),
        )

    def keys(self, feats: Features, rows: np.ndarray, cfg: DedupConfig) -> np.ndarray:
        from curation.dedup.features import label_codes

        refs = []
        for lo, hi in self._bounds(rows.size):
            sel = rows[lo:hi].tolist()
            codes = label_codes([feats.labels[i] for i in sel])
            refs.append(_keys.remote([feats.texts[i] for i in sel], codes, cfg))
        return np.concatenate(ray.get(refs)) if refs else np.empty((0, cfg.bands), np.uint64)

    def pairs(self, keys: np.ndarray, nodes: np.ndarray, lengths: np.ndarray, cfg: DedupConfig) -> np.ndarray:
        part = (keys % np.uint64(self.parts)).astype(np.int64)
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(self.parts + 1))
        refs = []
        for p in range(self.parts):
            sel = order[bounds[p] : bounds[p + 1]]
            if sel.size > 1:
                refs.append(_pairs.remote(keys[sel], nodes[sel], lengths[sel], cfg))
        found = ray.get(refs)
        return np.unique(np.concatenate(found), axis=0) if found else np.empty((0, 2), np.int64)

    def verify(self, pairs: np.ndarray, texts: list[str], cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
        if len(pairs) == 0:
            return verify_pairs(pairs, texts, cfg)
        # each task gets only the texts its pairs name (renumbered), not every text: a node's memory
        # then follows its share of the pairs, not the input size
        results, used = [], []
        for lo, hi in self._bounds(len(pairs)):
            nodes, local = np.unique(pairs[lo:hi], return_inverse=True)
            used.append(nodes)
            results.append(_verify.remote(local.reshape(-1, 2), [texts[i] for i in nodes.tolist()], cfg))
        edges = [nodes[e] for nodes, e in zip(used, ray.get([e for e, _ in results]), strict=True)]
        scores = ray.get([s for _, s in results])
        return np.concatenate(edges), np.concatenate(scores)
