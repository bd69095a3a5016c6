"""MinHash signatures and LSH band keys for many texts at once, as numpy array work.

Per-item Python MinHash (datasketch) costs ~k hash calls per shingle in the
interpreter. Here all texts of a chunk become one uint32 code-point array; every
character n-gram (n ≤ 3) packs exactly into a uint64 (21 bits a code point), is
mixed once, and each permutation is one multiply-add over the whole chunk followed
by `np.minimum.reduceat` per text. No Python loop runs per shingle or per text.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from curation.dedup.config import DedupConfig

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_PAD = "\x00"
_BLOCK_TEXTS = 1024


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads packed code points over all 64 bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _permutations(cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(cfg.seed)
    a = rng.integers(1, 2**63, size=cfg.num_perm, dtype=np.uint64) | np.uint64(1)  # odd multipliers
    b = rng.integers(0, 2**63, size=cfg.num_perm, dtype=np.uint64)
    return a, b


def shingle_hashes(texts: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mixed 64-bit hash of every character n-gram, and the start offset of each text's run."""
    padded = [t if len(t) >= n else t + _PAD * (n - len(t)) for t in texts]
    lengths = np.fromiter((len(t) for t in padded), dtype=np.int64, count=len(padded))
    codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    text_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    counts = lengths - n + 1
    run_starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    # position of each shingle in `codes`: its text's start plus its rank inside the text
    pos = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(text_starts - run_starts, counts)
    packed = codes[pos]
    for k in range(1, n):
        packed = (packed << np.uint64(21)) | codes[pos + k]
    return _mix64(packed), run_starts


def signatures(texts: list[str], cfg: DedupConfig, threads: int | None = None) -> np.ndarray:
    """(len(texts), num_perm) uint32 MinHash signatures.

    Chunks of cfg.chunk_rows texts run on `threads` threads (default: cfg.workers, -1 = every core):
    the work is numpy ufuncs on ~1 MB blocks, which release the GIL, and each chunk writes its own
    rows, so the signatures are the same for any thread count."""
    a, b = _permutations(cfg)
    out = np.empty((len(texts), cfg.num_perm), dtype=np.uint32)
    bounds = range(0, len(texts), cfg.chunk_rows)
    threads = threads or cfg.workers
    threads = min(len(bounds), (os.cpu_count() or 1) if threads < 1 else threads)

    def chunk(lo: int) -> None:
        hashes, starts = shingle_hashes(texts[lo : lo + cfg.chunk_rows], cfg.shingle)
        ends = np.append(starts[1:], hashes.size)
        # all permutations over a block of texts whose shingles stay in cache (~1 MB), then the next
        # block: the same arithmetic as one pass per permutation over the chunk, ~2x faster
        for t0 in range(0, len(starts), _BLOCK_TEXTS):
            t1 = min(len(starts), t0 + _BLOCK_TEXTS)
            h = hashes[starts[t0] : ends[t1 - 1]]
            at = starts[t0:t1] - starts[t0]
            buf = np.empty_like(h)
            block = out[lo + t0 : lo + t1]
            for k in range(cfg.num_perm):
                np.multiply(h, a[k], out=buf)
                np.add(buf, b[k], out=buf)
                np.right_shift(buf, np.uint64(32), out=buf)  # multiply-shift: the high bits are the good ones
                block[:, k] = np.minimum.reduceat(buf, at)

    if threads <= 1:
        for lo in bounds:
            chunk(lo)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(chunk, bounds))
    return out


def band_keys(sig: np.ndarray, label_codes: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    """(n, bands) uint64 keys; the band number and the label are mixed in, so one flat
    join over all keys finds candidates, and different labels never share a bucket."""
    n = sig.shape[0]
    keys = np.empty((n, cfg.bands), dtype=np.uint64)
    with np.errstate(over="ignore"):  # wrapping uint64 arithmetic is the point
        base = label_codes.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        for band in range(cfg.bands):
            acc = base + np.uint64(band + 1) * np.uint64(0xD6E8FEB86659FD93)
            for j in range(cfg.rows):
                acc = _mix64(acc ^ sig[:, band * cfg.rows + j].astype(np.uint64))
            keys[:, band] = acc
    return keys
