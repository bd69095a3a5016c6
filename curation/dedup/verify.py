"""Verification of candidate pairs: rapidfuzz similarity (the scorer the threshold is defined on),
then, for pairs that pass it, the clinical facts of the raw texts.

Before any edit distance is computed, two exact lower bounds drop the pairs that cannot pass:
the length difference, and the bag distance over character counts hashed into 64 buckets (an
edit changes one count on each side by one, a swap none, so it never exceeds the Levenshtein or
OSA distance; hashing characters together only lowers it). On the 1 M benchmark the bag bound
rules out ~95 % of the pairs that share an LSH band, at ~1 µs a pair against ~7 µs for the
distance, and rules out nothing that would have been accepted."""

from __future__ import annotations

import multiprocessing
import os
import sys
import unicodedata
from collections.abc import Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA, Levenshtein

from curation.dedup.config import DedupConfig
from curation.dedup.normalize import noise_aligned, numbers_or_negation_differ

_CHUNK = 1 << 20
_BAG_BUCKETS = 64  # a power of two
_BAG_PAIRS = 1 << 16  # pairs per slice of the bag test (two 4 MB count blocks)
_BAG_TEXTS = 1 << 16  # texts per slice when counting characters


def char_counts(texts: Sequence[str]) -> np.ndarray:
    """(len(texts), 64) uint8 character counts per hashed bucket, saturated at 255."""
    shift = np.uint32(32 - _BAG_BUCKETS.bit_length() + 1)
    out = np.empty((len(texts), _BAG_BUCKETS), dtype=np.uint8)
    for lo in range(0, len(texts), _BAG_TEXTS):
        part = texts[lo : lo + _BAG_TEXTS]
        lengths = np.fromiter((len(t) for t in part), dtype=np.int64, count=len(part))
        codes = np.frombuffer("".join(part).encode("utf-32-le"), dtype=np.uint32)
        bucket = (codes * np.uint32(0x9E3779B1)) >> shift  # Fibonacci hashing, wraps in uint32
        cell = np.repeat(np.arange(len(part), dtype=np.int64) * _BAG_BUCKETS, lengths) + bucket
        counts = np.bincount(cell, minlength=len(part) * _BAG_BUCKETS)
        out[lo : lo + len(part)] = np.minimum(counts, 255).reshape(len(part), _BAG_BUCKETS)
    return out


def bag_distance(pairs: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per pair, a lower bound on its edit distance: max(chars only in a, chars only in b) over
    the bucket counts. With s = sum |ca - cb| and d = sum (ca - cb) that is (s + |d|) / 2."""
    out = np.empty(len(pairs), dtype=np.int64)
    for lo in range(0, len(pairs), _BAG_PAIRS):
        p = pairs[lo : lo + _BAG_PAIRS]
        diff = counts[p[:, 0]].astype(np.int16) - counts[p[:, 1]]
        out[lo : lo + len(p)] = (
            np.abs(diff).sum(1, dtype=np.int64) + np.abs(diff.sum(1, dtype=np.int64))
        ) // 2
    return out


def verify_pairs(
    pairs: np.ndarray, texts: Sequence[str], cfg: DedupConfig, workers: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose normalised Levenshtein similarity is >= cfg.threshold, or that differ by at most
    cfg.typos characters in a long enough text (see DedupConfig), and their similarity scores.

    A length filter goes first: similarity can never exceed min/max length, and the edit
    distance is at least the length difference; then the bag distance (see the module note).
    Most chance collisions are dropped without computing a distance. `workers` (default
    cfg.workers) is rapidfuzz's thread count for the distances.
    """
    workers = cfg.workers if workers is None else workers
    threshold = cfg.threshold
    if len(pairs) == 0:
        return pairs.reshape(0, 2), np.empty(0, dtype=np.float32)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int32, count=len(texts))
    # typos allowed per the shorter text's own characters (the field separators do not count)
    own = lengths - np.fromiter((t.count("\x1e") for t in texts), dtype=np.int32, count=len(texts))
    # character counts only for the texts that occur in a pair
    used = np.zeros(len(texts), dtype=bool)
    used[pairs.ravel()] = True
    nodes = np.flatnonzero(used)
    del used
    slot = np.full(len(texts), -1, dtype=np.int32 if len(texts) < 2**31 else np.int64)
    slot[nodes] = np.arange(nodes.size)
    counts = char_counts([texts[i] for i in nodes.tolist()])
    del nodes
    parts = []
    for lo in range(0, len(pairs), _CHUNK):  # the bounds, a slice of pairs at a time
        p = pairs[lo : lo + _CHUNK]
        la, lb = lengths[p[:, 0]], lengths[p[:, 1]]
        short = np.minimum(own[p[:, 0]], own[p[:, 1]])
        allowed = np.minimum(
            cfg.typos, short // cfg.typo_chars
        )  # edits a pair may differ by, whatever the ratio
        ok = (short >= threshold * np.maximum(la, lb) - 1e-9) | (np.abs(la - lb) <= allowed)
        p, allowed, la, lb = p[ok], allowed[ok], la[ok], lb[ok]
        # most edits a pair may differ by and still pass either test (the epsilon errs on keeping)
        most = np.maximum(np.floor((1.0 - threshold) * np.maximum(la, lb) + 1e-6).astype(np.int64), allowed)
        ok = bag_distance(slot[p], counts) <= most
        parts.append(p[ok])
    del counts, slot
    pairs = np.concatenate(parts)
    la, lb = lengths[pairs[:, 0]], lengths[pairs[:, 1]]
    allowed = np.minimum(cfg.typos, np.minimum(own[pairs[:, 0]], own[pairs[:, 1]]) // cfg.typo_chars)
    scores = np.zeros(len(pairs), dtype=np.float32)
    keep = np.zeros(len(pairs), dtype=bool)
    for lo in range(0, len(pairs), _CHUNK):  # element-wise in C (rapidfuzz cpdist), a chunk at a time
        sl = slice(lo, lo + _CHUNK)
        qa = [texts[i] for i in pairs[sl, 0].tolist()]
        qb = [texts[i] for i in pairs[sl, 1].tolist()]
        got = process.cpdist(
            qa,
            qb,
            scorer=Levenshtein.normalized_similarity,
            score_cutoff=threshold,
            dtype=np.float32,
            workers=workers,
        )
        scores[sl] = got
        keep[sl] = got >= threshold
        # typos are counted as OSA edits: two swapped characters (怎么 → 么怎) are one typo, not two
        k = allowed[sl]
        try_typos = np.flatnonzero(~keep[sl] & (k > 0) & (np.abs(la[sl] - lb[sl]) <= k))
        if try_typos.size:
            ta = [qa[i] for i in try_typos.tolist()]
            tb = [qb[i] for i in try_typos.tolist()]
            edits = process.cpdist(
                ta, tb, scorer=OSA.distance, score_cutoff=cfg.typos, dtype=np.int64, workers=workers
            )
            hit = try_typos[edits <= k[try_typos]]
            keep[lo + hit] = True
            for i in hit.tolist():
                scores[lo + i] = Levenshtein.normalized_similarity(qa[i], qb[i])
    return pairs[keep], scores[keep]


# below this many verified pairs the facts are checked in this process, one pair when asked
PARALLEL_MIN_PAIRS = 20_000
_FORK_STATE: tuple[np.ndarray, Sequence[str | None], np.ndarray | None] | None = None


def _facts_slice(bounds: tuple[int, int]) -> np.ndarray:
    assert _FORK_STATE is not None
    pairs, raw, typo = _FORK_STATE
    lo, hi = bounds
    return same_facts(pairs[lo:hi], raw, None if typo is None else typo[lo:hi])


def _can_fork() -> bool:
    """A guard, not the choice: the caller decides (procs; run_dedup passes 1 unless its engine may
    fork), and this refuses anyway inside a Ray worker or driver (forking a process that runs Ray's
    threads is unsafe, whoever asks)."""
    ray = sys.modules.get("ray")
    return os.name == "posix" and not (ray is not None and ray.is_initialized())


def facts_in_processes(
    pairs: np.ndarray, raw: Sequence[str | None], procs: int, typo: np.ndarray | None = None
) -> np.ndarray | None:
    """`same_facts` of every pair, computed by `procs` forked processes (they inherit the texts
    and the built extractor); None when that is not worth it or not safe here."""
    global _FORK_STATE
    procs = min(procs, os.cpu_count() or 1)
    if procs < 2 or len(pairs) < PARALLEL_MIN_PAIRS or not _can_fork():
        return None
    from medaug.facts import default_extractor

    default_extractor()  # built once, before the fork
    step = 2000
    bounds = [(lo, min(len(pairs), lo + step)) for lo in range(0, len(pairs), step)]
    _FORK_STATE = (pairs, raw, typo)
    try:
        with multiprocessing.get_context("fork").Pool(procs) as pool:
            return np.concatenate(pool.map(_facts_slice, bounds, chunksize=4))
    finally:
        _FORK_STATE = None


class FactCheck:
    """`same_facts` for one pair at a time, asked only when the pair decides a drop
    (keep_greedy's `agree`); counts the pairs it checked and those whose facts differ.

    With `procs` >= 2 and many pairs, every pair is checked up front in forked processes: ~25 %
    more checks than are asked for, on every core instead of one (same answers)."""

    def __init__(
        self, pairs: np.ndarray, raw: Sequence[str | None], procs: int = 1, typo: np.ndarray | None = None
    ):
        self.pairs, self.raw, self.typo = pairs, raw, typo
        self.checked = self.differ = 0
        self.known = facts_in_processes(pairs, raw, procs, typo)

    def __call__(self, edge: int) -> bool:
        if edge >= len(self.pairs):  # edges past the verified pairs need no check (exact matches)
            return True
        a, b = (int(x) for x in self.pairs[edge])
        ra, rb = self.raw[a], self.raw[b]
        if ra is None or rb is None or ra == rb:
            return True
        self.checked += 1
        if self.known is not None:
            same = bool(self.known[edge])
        else:
            same = not facts_differ(ra, rb, typo=self.typo is not None and bool(self.typo[edge]))
        self.differ += not same
        return same


def same_facts(pairs: np.ndarray, raw: Sequence[str | None], typo: np.ndarray | None = None) -> np.ndarray:
    """Mask of pairs whose raw texts state the same clinical facts (medaug.facts.fact_changes).

    Only verified pairs come here, so the extractor (jieba, a few hundred ms to build) is
    loaded only when there is something to check. A text that is None (an index entry
    written before raw texts were stored) cannot be checked and is let through.
    """
    if len(pairs) == 0:
        return np.ones(0, dtype=bool)
    out = np.ones(len(pairs), dtype=bool)
    for i, (a, b) in enumerate(pairs.tolist()):
        ra, rb = raw[a], raw[b]
        if ra is not None and rb is not None and ra != rb:
            out[i] = not facts_differ(ra, rb, typo=typo is not None and bool(typo[i]))
    return out


SHORT_TEXT = 64  # characters (raw, fields included): a question, not an answer


def facts_differ(a: str, b: str, typo: bool = False) -> bool:
    """Whether two raw texts state different clinical facts, read as two users' wordings of one
    sample: their surface noise taken out first (normalize.noise_aligned), and a term mistyped by one
    character no change (medaug.facts, typos=True; never a negation, side, number or severity
    character). Negation, numbers, drugs, doses and every other fact must still agree, and where the
    noise-free texts still differ no digit, numeral or negation may stand
    (normalize.numbers_or_negation_differ; on the texts as written, width aside, when their facts
    agree). Texts whose facts agree as written are not read again (most pairs: the cheap path).
    A pair that passed the text test only by its typo allowance (`typo`, similarity below the
    threshold), and any pair of short texts (a question, where one word is the question), must also
    differ by more than one word put for another (南瓜/兔肉, 甲肝/丙肝, 脑部/肺部: `word_replaced`);
    long texts are left to their facts (the check segments text and would cost ~1 ms a pair there)."""
    from medaug.facts import fact_changes

    typo = typo or min(len(a), len(b)) <= SHORT_TEXT
    if not fact_changes(a, b):
        x, y = unicodedata.normalize("NFKC", a), unicodedata.normalize("NFKC", b)
        return numbers_or_negation_differ(x, y) or (typo and word_replaced(*noise_aligned(a, b)))
    x, y = noise_aligned(a, b)
    return (
        numbers_or_negation_differ(x, y)
        or (typo and word_replaced(x, y))
        or bool(fact_changes(x, y, typos=True))
    )


def word_replaced(a: str, b: str) -> bool:
    """Whether, where the two texts differ (aligned character by character), each holds a word of two
    or more characters the dictionary knows, and not the same one: a word put for another (南瓜/兔肉),
    where a typo leaves a non-word on one side (妊辰/妊娠, 感昌/感冒)."""
    from rapidfuzz.distance import Indel

    from medaug.facts import default_extractor

    seg = default_extractor().seg
    ops = [op for op in Indel.opcodes(a, b) if op.tag != "equal"]
    # adjacent deletions and insertions are one replaced stretch
    regions: list[list[int]] = []
    for op in ops:
        if regions and regions[-1][1] == op.src_start and regions[-1][3] == op.dest_start:
            regions[-1][1], regions[-1][3] = op.src_end, op.dest_end
        else:
            regions.append([op.src_start, op.src_end, op.dest_start, op.dest_end])
    for s0, s1, d0, d1 in regions:
        if s0 < s1 and d0 < d1:
            wa, wb = _words_over(seg, a, s0, s1), _words_over(seg, b, d0, d1)
            if wa and wb and wa != wb:
                return True
    return False


def _words_over(seg, text: str, start: int, end: int) -> set[str]:
    """Words of two or more characters that overlap text[start:end], cut in a window of context."""
    w0 = max(0, start - 8)
    return {w for a, b, w in seg.tokens(text[w0 : end + 8]) if b - a >= 2 and a < end - w0 and b > start - w0}
