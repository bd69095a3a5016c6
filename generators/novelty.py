"""A novelty filter: is a new text a near-duplicate of one already accepted (or of a seed, or of the dedup index)?

It asks the same question the dedup stage asks later (curation/dedup: its normaliser, its
MinHash/LSH band keys, rapidfuzz normalised Levenshtein similarity at the same threshold), but
one text at a time against a growing set, so a planner can redraw a prompt instead of paying a
GPU to generate a sample that dedup will throw away.

Incremental LSH: each band key maps to the most recent `bucket_cap` accepted texts. Buckets of
template boilerplate grow with every prompt; keeping all members would make each check linear
in the plan. Near-duplicates share many band keys, so the candidates verified are those sharing
the most keys (at most `max_verify`). Recall is high, not total: the dedup stage stays the judge.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein

from curation.dedup import DedupConfig, DedupIndex
from curation.dedup.features import label_codes
from curation.dedup.minhash import band_keys, signatures
from curation.dedup.normalize import compare_text, exact_keys

PROMPT_LABEL = "positive"  # prompts compared as question-only samples (instruction = the text)


class NoveltyFilter:
    """Accepts texts that are not near-duplicates of anything accepted or added before."""

    def __init__(
        self,
        threshold: float = 0.85,
        *,
        cfg: DedupConfig | None = None,
        index: DedupIndex | None = None,
        bucket_cap: int = 32,
        max_verify: int = 16,
        min_shared: int = 2,
    ):
        base = index.cfg if index is not None else (cfg or DedupConfig())
        self.cfg = DedupConfig(**{**base.to_dict(), "threshold": threshold})
        self.threshold = threshold
        self.index = index
        self.bucket_cap = bucket_cap
        self.max_verify = max_verify
        self.min_shared = min_shared
        self.texts: list[str] = []
        self._buckets: dict[int, deque[int]] = {}
        self._exact: dict[int, int] = {}
        self.rejected = 0
        self.index_hits = 0

    def _features(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        norm = [compare_text(t, "", "", self.cfg.script) for t in texts]
        if not norm:
            return norm, np.empty(0, np.uint64), np.empty((0, self.cfg.bands), np.uint64)
        labels = [PROMPT_LABEL] * len(norm)
        keys = band_keys(signatures(norm, self.cfg), label_codes(labels), self.cfg)
        return norm, exact_keys(norm, labels), keys

    def _insert(self, text: str, exact: int, keys: np.ndarray) -> int:
        node = len(self.texts)
        self.texts.append(text)
        self._exact.setdefault(exact, node)
        for k in keys.tolist():
            b = self._buckets.get(k)
            if b is None:
                b = self._buckets[k] = deque(maxlen=self.bucket_cap)
            b.append(node)
        return node

    def add(self, texts: Sequence[str]) -> None:
        """Texts to keep away from (seeds, earlier output), accepted without a check."""
        norm, exact, keys = self._features(texts)
        for i, t in enumerate(norm):
            self._insert(t, int(exact[i]), keys[i])

    def _match(self, text: str, exact: int, keys: np.ndarray) -> int | None:
        hit = self._exact.get(exact)
        if hit is not None:
            return hit
        counts: Counter[int] = Counter()
        for k in keys.tolist():
            b = self._buckets.get(k)
            if b:
                counts.update(b)
        if not counts:
            return None
        n = len(text)
        sim = Levenshtein.normalized_similarity
        for node, shared in counts.most_common(self.max_verify):
            if shared < self.min_shared:  # one shared band of 24 is chance (template boilerplate)
                break
            other = self.texts[node]
            m = len(other)
            if min(n, m) < self.threshold * max(n, m) - 1e-9:  # similarity can never exceed min/max length
                continue
            if sim(text, other, score_cutoff=self.threshold) >= self.threshold:
                return node
        return None

    def check(self, texts: Sequence[str]) -> list[int | None]:
        """Per text in order: None when novel (and then accepted, so later texts are checked against it),
        else the position of the accepted or added text it nearly duplicates."""
        norm, exact, keys = self._features(texts)
        if self.index is not None and norm:
            self._pull_index(exact, keys)
        out: list[int | None] = []
        for i, t in enumerate(norm):
            m = self._match(t, int(exact[i]), keys[i])
            if m is None:
                self._insert(t, int(exact[i]), keys[i])
            else:
                self.rejected += 1
            out.append(m)
        return out

    def _pull_index(self, exact: np.ndarray, keys: np.ndarray) -> None:
        """Index entries sharing a key with this batch join the accepted set (once each)."""
        assert self.index is not None
        hits = self.index.lookup(exact, keys)
        seen = getattr(self, "_index_rows", set())
        self._index_rows = seen
        for j, row in enumerate(hits.rows.tolist()):
            if row not in seen:
                seen.add(row)
                self.index_hits += 1
                self._insert(hits.texts[j], int(hits.exact[j]), hits.keys[j])

    def is_novel(self, text: str) -> bool:
        return self.check([text])[0] is None
